"""What the relays of one process to the others (chat, deal news) share: one subscription to
a subject pattern, publishing without waiting (the caller is the tick or a deal step), and
counts of what went out and came in for /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from .node import ClusterNode


class SubjectRelay:
    def __init__(self, node: ClusterNode, pattern: str) -> None:
        self.node = node
        self.pattern = pattern
        self.sent = 0
        self.received = 0
        self._subscription: Subscription | None = None
        self._pending: set[asyncio.Task] = set()

    async def subscribe(self) -> None:
        assert self.node.nc is not None
        self._subscription = await self.node.nc.subscribe(self.pattern, cb=self._on_message)

    async def unsubscribe(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        if self._pending:
            await asyncio.wait(self._pending, timeout=2)

    def send(self, subject: str, fields: dict) -> None:
        """Publish ``fields`` (with our ``origin``) as JSON on ``subject``; nothing while NATS is closed."""
        nc = self.node.nc
        if nc is None or nc.is_closed:
            return
        payload = json.dumps({"origin": self.node.id, **fields}, separators=(",", ":")).encode()
        task = asyncio.get_running_loop().create_task(nc.publish(subject, payload))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        self.sent += 1

    async def _on_message(self, msg: Msg) -> None:
        raise NotImplementedError
