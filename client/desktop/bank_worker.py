"""The bank's HTTP calls on a thread of their own, so a slow bank never stalls a frame.

The app submits a coroutine function of the VisitorClient and a callback; the answer (or
the exception) waits in a queue until the frame loop drains it with ``poll()`` and runs the
callback on the main thread, where Panda3D and the UI live.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from bank.client import VisitorClient

Done = Callable[[Any, BaseException | None], None]


class BankWorker:
    def __init__(self, bank_url: str, token: str | None = None) -> None:
        self.bank_url = bank_url
        self._loop = asyncio.new_event_loop()
        self._results: queue.Queue[tuple[Done, Any, BaseException | None]] = queue.Queue()
        self._client: VisitorClient | None = None
        self._token = token
        self._thread = threading.Thread(target=self._loop.run_forever, name="expo-bank", daemon=True)
        self._thread.start()
        self.pending = 0

    def _visitor(self) -> VisitorClient:
        if self._client is None:
            self._client = VisitorClient(self.bank_url, self._token, timeout=8.0, retries=2)
        return self._client

    def use_token(self, token: str | None) -> None:
        """Switch credentials (a freshly opened account); takes effect for later calls."""
        def swap() -> None:
            old, self._client, self._token = self._client, None, token
            if old is not None:
                asyncio.ensure_future(old.aclose())
        self._loop.call_soon_threadsafe(swap)

    def submit(self, call: Callable[[VisitorClient], Awaitable[Any]], done: Done) -> None:
        async def run() -> None:
            try:
                result = await call(self._visitor())
            except Exception as exc:  # noqa: BLE001 - handed to the callback, not lost
                self._results.put((done, None, exc))
            else:
                self._results.put((done, result, None))
        self.pending += 1
        asyncio.run_coroutine_threadsafe(run(), self._loop)

    def poll(self) -> int:
        """Run the callbacks of finished calls (main thread); returns how many ran."""
        ran = 0
        while True:
            try:
                done, result, error = self._results.get_nowait()
            except queue.Empty:
                return ran
            self.pending -= 1
            ran += 1
            done(result, error)

    def close(self, timeout: float = 3.0) -> None:
        async def shut() -> None:
            if self._client is not None:
                await self._client.aclose()
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
