"""One PostgreSQL connection for a blocking store, used under a lock: the stores' methods
are synchronous like their SQLite twins, and the caller runs them on its database thread.

A broken connection (PostgreSQL restarted) fails that call with ``StoreUnavailable`` and the
next call reconnects; nothing is retried blindly, because a COMMIT whose answer was lost may
have happened. Processes starting together create the schema one at a time (an advisory
lock), so ``CREATE ... IF NOT EXISTS`` never races.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from psycopg.rows import DictRow, dict_row

T = TypeVar("T")


class StoreUnavailable(RuntimeError):
    """PostgreSQL cannot be reached right now; the call did nothing or its outcome is in the
    database (look the record up again). The next call reconnects."""


class PgDatabase:
    def __init__(self, dsn: str, schema: str, schema_lock: int, connect_timeout: float = 5.0) -> None:
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"a PostgreSQL URL starts with postgresql://, not {dsn.split(':', 1)[0]}:")
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._conn: psycopg.Connection[DictRow] | None = None
        with self.transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (schema_lock,))
            db.execute(schema)

    def _connection(self) -> psycopg.Connection[DictRow]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row,
                                             connect_timeout=max(1, int(self.connect_timeout)))
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"PostgreSQL is not reachable: {exc}") from exc
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[DictRow]]:
        """One transaction; the connection is held for its length. Anything raised rolls it back."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    yield conn
            except psycopg.OperationalError as exc:
                if conn.broken:
                    raise StoreUnavailable(f"the connection to PostgreSQL broke: {exc}") from exc
                raise

    def retrying(self, operation: Callable[[], T], wait: float) -> T:
        """Run ``operation`` until it gets through, reconnecting every half second for up to
        ``wait`` seconds while PostgreSQL is away (a restart: the caller waits, then
        completes). Only for operations that are safe to run again after a COMMIT whose
        answer was lost: the store using it says why each of its operations is."""
        deadline = time.monotonic() + wait
        while True:
            try:
                return operation()
            except StoreUnavailable:
                if time.monotonic() >= deadline or self._stopping.wait(0.5):
                    raise

    def stop_waiting(self) -> None:
        """From any thread, at shutdown: a call waiting for PostgreSQL to come back fails now,
        and so does each one queued behind it, instead of each waiting out its time."""
        self._stopping.set()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
