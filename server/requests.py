"""A session's request that needs the database or the bank runs as a task of its own (the
event loop never waits); whatever refuses it becomes an ``Error`` to the one who asked,
naming the request's type, and anything unexpected is logged and answered in words."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING

import protocol as p

if TYPE_CHECKING:
    from server.simulation import Session

Refusal = Callable[[Exception], tuple[str, str] | None]  # an expected refusal's (code, message), or None


class SessionRequests:
    def __init__(self, tasks: set[asyncio.Task], refusal: Refusal, log: logging.Logger, what: str) -> None:
        self._tasks = tasks  # the owner awaits these when it closes
        self._refusal = refusal
        self._log = log
        self._what = what

    def spawn(self, session: Session, request: p.Message, work: Coroutine) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception as exc:
                answer = self._refusal(exc)
                if answer is None:
                    self._log.exception("%s request failed", self._what, extra={"type": type(request).__name__})
                    answer = (p.ErrorCode.NOT_ALLOWED.value, "that could not be done; try again")
                session.send(p.Error(answer[0], answer[1][:512], request.TYPE))

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, *others: asyncio.Task | None) -> None:
        """Wait for the requests in flight (and ``others``, cancelled first) to end."""
        for task in others:
            if task is not None:
                task.cancel()
        for task in [*self._tasks, *(t for t in others if t is not None)]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
