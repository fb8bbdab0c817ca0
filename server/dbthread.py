"""One thread for a store's blocking database calls, so they never run on the event loop.

A single worker serialises the calls (a SQLite connection is used by one thread at a time)
and keeps their order: what the simulation submitted first is written first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DatabaseThread:
    def __init__(self, name: str) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Run ``fn(*args)`` on the thread; its future (call from any thread)."""
        return self._pool.submit(fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Await ``fn(*args)`` run on the thread."""
        return await asyncio.wrap_future(self._pool.submit(fn, *args))

    def close(self) -> None:
        """Finish what was submitted, then stop."""
        self._pool.shutdown(wait=True)
