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

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


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


class StorageClosed(RuntimeError):
    """The storage is shutting down: this request did nothing."""


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
        self._closed = False  # no new writers: close() waits for the connection to be free
        self._free = threading.Condition(self._lock)  # notified when the connection becomes free
        self.batches = 0  # committed batches, and requests in them (for metrics and tests)
        self.committed = 0
        self._submitted: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any],
                                                 Callable[[], Any]] | None] = queue.SimpleQueue()
        self._round_thread: threading.Thread | None = None
        self._round_thread_id: int | None = None
        self._round: _Batch | None = None  # the round thread's batch while it runs calls

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block as one request of a batch; returns once the batch is durable.

        On the round thread (a call of :meth:`submit`), the block is one savepoint of the round's
        batch, and the round answers it once the batch is durable."""
        if self._round is not None and threading.get_ident() == self._round_thread_id:
            with self._savepoint(self._round):
                yield
            return
        batch = self._enter()
        failure: BaseException | None = None
        try:
            with self._savepoint(batch):
                yield
        except BaseException as exc:
            failure = exc
        self._leave(batch)
        if batch.error is not None:
            raise BatchFailed(f"the transaction was not committed: {batch.error}") from (failure or batch.error)
        if failure is not None:
            raise failure

    @contextmanager
    def _savepoint(self, batch: _Batch) -> Iterator[None]:
        """The block in a savepoint of ``batch``: undone alone if it raises."""
        try:
            self._db.savepoint()
        except BaseException:
            batch.broken = True
            raise
        try:
            yield
        except BaseException:
            try:
                self._db.rollback_to_savepoint()
                self._db.release()
            except BaseException:
                batch.broken = True
            raise
        try:
            self._db.release()
        except BaseException:
            batch.broken = True
            raise

    def submit(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """From an event loop: run ``call`` (it writes through :meth:`transaction`) on the round thread.

        The future is resolved on its loop once the batch holding the call's work is durable. One
        thread takes whatever was submitted while its last round ran and runs it as one round: no
        thread hop per request, and the connection is handed between threads once per round,
        not once per request."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submitted.put((loop, future, call))
        if self._round_thread is None:
            with self._lock:
                if self._round_thread is None:
                    self._round_thread = threading.Thread(target=self._serve_rounds, name="bank-writer", daemon=True)
                    self._round_thread.start()
        return future

    def close(self) -> None:
        """Stop the round thread once it has served what was submitted before, then wait for
        the writers in flight and keep the connection: the caller may close it after this, never
        under a running request (a background sweep's, say: closing an SQLite connection in use
        by another thread crashes the process). Later writers get :class:`StorageClosed`."""
        with self._lock:
            thread, self._round_thread = self._round_thread, None
            if self._closed:
                return
        if thread is not None:
            self._submitted.put(None)
            thread.join(timeout=30)
        with self._lock:
            self._closed = True  # those queued already are still served, in their batches
            while self._busy:
                self._free.wait()
            self._busy = True  # for good

    def _serve_rounds(self) -> None:
        self._round_thread_id = threading.get_ident()
        while True:
            first = self._submitted.get()
            if first is None:
                return
            round_ = [first]
            while len(round_) < self.max_batch:
                try:
                    item = self._submitted.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._submitted.put(None)  # stop after this round
                    break
                round_.append(item)
            outcomes = self._run_round([call for _, _, call in round_])
            settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
            for (loop, future, _), (ok, value) in zip(round_, outcomes, strict=True):
                settled.setdefault(loop, []).append((future, ok, value))
            for loop, results in settled.items():
                try:
                    loop.call_soon_threadsafe(_settle, results)
                except RuntimeError:  # the loop is closed: nobody waits for these answers any more
                    pass

    def _run_round(self, calls: list[Callable[[], Any]]) -> list[tuple[bool, Any]]:
        """Each call in a savepoint of one batch; (True, result) or (False, exception) each, once durable."""
        try:
            batch = self._enter()
        except Exception as exc:
            return [(False, exc)] + [(False, BatchFailed(f"the transaction did not start: {exc}")) for _ in calls[1:]]
        batch.members += len(calls) - 1
        outcomes: list[tuple[bool, Any]] = []
        self._round = batch
        try:
            for call in calls:
                if batch.broken:  # the batch will not commit: run nothing more in it
                    outcomes.append((False, None))
                    continue
                try:
                    outcomes.append((True, call()))
                except Exception as exc:
                    outcomes.append((False, exc))
                except BaseException as exc:  # not for a future to raise: fail the call, keep the thread
                    outcomes.append((False, RuntimeError(f"the call was interrupted: {exc!r}")))
        finally:
            self._round = None
            self._leave(batch)
        if batch.error is not None:
            failed: list[tuple[bool, Any]] = []
            for _ in calls:
                refused = BatchFailed(f"the transaction was not committed: {batch.error}")
                refused.__cause__ = batch.error
                failed.append((False, refused))
            return failed
        return outcomes

    def _acquire(self) -> None:
        """Own the connection: at once if it is free, else when the request before hands it over."""
        with self._lock:
            if self._closed:
                raise StorageClosed("the bank's storage is closed")
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
                self._free.notify_all()

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


def _settle(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """On the futures' loop: answer a round's calls (a cancelled waiter has gone: its work stands)."""
    for future, ok, value in results:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
