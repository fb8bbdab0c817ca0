"""Group commit: concurrent write transactions share one database transaction and one commit.

A durable commit costs an fsync (several milliseconds here), and the bank did one per request,
so its rate was the disk's fsync rate however many requests waited. Here the requests that
arrive while one is running join its *batch*: each runs alone on the one writer connection
inside its own savepoint (so the hash chain, balances and idempotency records of the batch are
built one request after another, exactly as if each had its own transaction), and the last one
of the batch commits them all at once. Nobody is answered before the commit that holds their
work: a request that failed waits too, because its answer may rest on what the batch wrote.

A failed request rolls back to its savepoint and leaves the batch intact; a failed commit (or a
savepoint that cannot be rolled back) fails every request of the batch, which then changed
nothing. The database side is a :class:`Transactional` (SQLite and PostgreSQL both have
savepoints).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol


class Transactional(Protocol):
    """The statements a group commit needs from the writer connection."""

    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def savepoint(self) -> None: ...
    def release(self) -> None: ...
    def rollback_to_savepoint(self) -> None: ...


class BatchFailed(RuntimeError):
    """The batch this request was part of did not commit: nothing of it happened; retry."""


@dataclass(eq=False)
class _Batch:
    members: int = 0
    done: threading.Event = field(default_factory=threading.Event)  # set once committed or failed
    error: BaseException | None = None
    broken: bool = False  # a savepoint could not be undone: the batch must roll back


class GroupCommit:
    """Serializes writers on one connection and commits them in batches of at most ``max_batch``.

    The connection is handed from one request to the next waiting one directly (each waiter
    blocks on a lock of its own, released by the request before it), and a batch's members wait
    on the batch's own event: a hand-over wakes one thread, a commit wakes its batch. (With one
    condition for everything, every hand-over woke every waiting thread to find it was not its
    turn: a tenth of the bank's CPU under twenty clients at once.)
    """

    def __init__(self, db: Transactional, max_batch: int = 64) -> None:
        self._db = db
        self.max_batch = max_batch
        self._lock = threading.Lock()  # guards the fields below
        self._busy = False  # someone owns the connection (running a request or committing)
        self._queue: deque[threading.Lock] = deque()  # requests waiting for it, first come first served
        self._batch: _Batch | None = None  # the open batch, if a transaction is open
        self.batches = 0  # committed batches, and requests in them (for metrics and tests)
        self.committed = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block as one request of a batch; returns once the batch is durable."""
        batch = self._enter()
        failure: BaseException | None = None
        try:
            self._db.savepoint()
        except BaseException as exc:
            batch.broken = True
            failure = exc
        if failure is None:
            try:
                yield
            except BaseException as exc:
                failure = exc
                try:
                    self._db.rollback_to_savepoint()
                    self._db.release()
                except BaseException:
                    batch.broken = True
            else:
                try:
                    self._db.release()
                except BaseException as exc:
                    batch.broken, failure = True, exc
        self._leave(batch)
        if batch.error is not None:
            raise BatchFailed(f"the transaction was not committed: {batch.error}") from (failure or batch.error)
        if failure is not None:
            raise failure

    def _acquire(self) -> None:
        """Own the connection: at once if it is free, else when the request before hands it over."""
        with self._lock:
            if not self._busy:
                self._busy = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._queue.append(turn)
        turn.acquire()  # released by whoever hands the connection to this request (still busy)

    def _hand_over(self) -> None:
        """Give the connection to the first waiting request, or mark it free."""
        with self._lock:
            if self._queue:
                self._queue.popleft().release()
            else:
                self._busy = False

    def _enter(self) -> _Batch:
        self._acquire()
        if self._batch is None:
            try:
                self._db.begin()
            except BaseException:
                self._hand_over()
                raise
            self._batch = _Batch()
        self._batch.members += 1
        return self._batch

    def _leave(self, batch: _Batch) -> None:
        with self._lock:
            if self._queue and batch.members < self.max_batch and not batch.broken:
                self._queue.popleft().release()  # the next request runs in this batch
                join = True
            else:
                self._batch = None  # the last of the batch: commit it (still busy, so newcomers queue)
                join = False
        if join:
            batch.done.wait()
            return
        try:
            if batch.broken:
                raise RuntimeError("a request's savepoint could not be rolled back")
            self._db.commit()
        except BaseException as exc:
            batch.error = exc
            try:
                self._db.rollback()
            except BaseException:
                pass  # the transaction is gone either way
        if batch.error is None:
            with self._lock:
                self.batches += 1
                self.committed += batch.members
        batch.done.set()
        self._hand_over()
