"""How the server's SQLite stores open their file and run a transaction, in one place."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def connect(path: Path | str, schema: str, busy_timeout: float = 10.0) -> sqlite3.Connection:
    """A connection in WAL mode with ``synchronous=FULL`` (a committed write survives a
    crash of the process and of the machine), foreign keys on, the schema applied. One
    thread uses it at a time (the store's database thread); others wait up to
    ``busy_timeout`` for a write lock held by another process."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(schema)
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE takes the write lock first, so two processes never deadlock upgrading
    a read; anything raised rolls the whole transaction back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
