"""The webhook outbox worker: sends queued events, signed, and retries with backoff.

Events are queued in the same database transaction as the state change they describe, so a
crash after the commit loses nothing: on restart the worker finds them still pending. Delivery
is at-least-once; receivers drop duplicates by event id (``webhooks.ReplayGuard``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import anyio.to_thread
import httpx

from .service import Bank
from .storage import Delivery
from .webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, sign

log = logging.getLogger("bank.delivery")


class Deliverer:
    def __init__(self, bank: Bank, secret: str, client: httpx.AsyncClient, *, batch: int = 50,
                 idle_poll: float = 1.0, timeout: float = 10.0) -> None:
        self._bank = bank
        self._secret = secret
        self._client = client
        self._batch = batch
        self._idle_poll = idle_poll
        self._timeout = timeout
        self._wake = asyncio.Event()
        self.sent = 0
        self.failed = 0

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll (call from the event loop)."""
        self._wake.set()

    async def _send(self, d: Delivery) -> None:
        timestamp = self._bank.clock.now_ms() // 1000
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, d.body, timestamp),
            EVENT_ID_HEADER: d.event_id,
        }
        error: str | None
        try:
            response = await self._client.post(d.url, content=d.body, headers=headers, timeout=self._timeout)
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self.sent += 1
        else:
            self.failed += 1
            log.info("webhook %s to %s failed (attempt %d): %s", d.event_id, d.url, d.attempts + 1, error)
        await anyio.to_thread.run_sync(self._bank.finish_delivery, d.id, d.attempts, error)

    async def deliver_due(self) -> int:
        """Send every delivery that is due now (one batch); returns how many were attempted."""
        due = await anyio.to_thread.run_sync(self._bank.due_deliveries, self._batch)
        await asyncio.gather(*(self._send(d) for d in due))
        return len(due)

    async def run(self) -> None:
        """Deliver until cancelled; a failing batch is logged, never fatal."""
        while True:
            try:
                attempted = await self.deliver_due()
            except Exception:
                log.exception("webhook delivery round failed")
                attempted = 0
            if attempted < self._batch:
                self._wake.clear()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that lands
                # as the wake does, and the bank's shutdown would wait for this loop for ever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle_poll):
                        await self._wake.wait()
