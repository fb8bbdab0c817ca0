"""Where the event log lives: a storage interface and its SQLite implementation.

``EventLog`` is what the server needs; a PostgreSQL implementation for the cluster follows
the same methods (the table layout below ports as is). Calls block: the server makes them
from its database thread (``server.dbthread``), never from the event loop.

Position samples are a hall's second to a row (``PositionSecond``). A database written
before that keeps its old ``positions`` table, a row per visitor-second: it is read along
with the new one and pruned by the same retention until it is empty, so nothing is
converted at startup (a month of it is billions of rows).

Durability: ``append`` returns only after the transaction is committed with
``synchronous=FULL`` in WAL mode, so an event whose append returned survives a SIGKILL of
the process (and a power cut). That return is the acknowledgement. The log is append-only
by construction: triggers refuse every UPDATE and DELETE of an event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from server.sqlite import connect, transaction

from .events import Event, EventKind, PositionSecond, unpack

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL, kind TEXT NOT NULL, visitor TEXT NOT NULL, booth TEXT NOT NULL, hall TEXT NOT NULL,
    sku TEXT, amount_minor INTEGER, currency TEXT, dwell REAL, ref TEXT, other TEXT);
CREATE INDEX IF NOT EXISTS events_booth ON events (booth, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TABLE IF NOT EXISTS position_seconds (
    at REAL NOT NULL, hall TEXT NOT NULL, samples INTEGER NOT NULL, xy BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS position_seconds_hall ON position_seconds (hall, at);
CREATE INDEX IF NOT EXISTS position_seconds_at ON position_seconds (at);
"""
LEGACY = "positions"  # before 2026-12-07, a row per visitor-second (at, visitor, hall, x, y): read, pruned, not written

POSITION_RETENTION = 30 * 86400.0  # seconds a position sample is kept for the heatmap

COLUMNS = tuple(fl.name for fl in fields(Event) if fl.name != "seq")


class EventLog(Protocol):
    def append(self, events: Sequence[Event], samples: Sequence[PositionSecond] = ()) -> list[Event]:
        """Store events (and position samples, a hall's second to a row) in one durable
        transaction; the events with their ``seq``. Nothing is stored if anything is refused."""

    def events(self, booth: str | None = None, after_seq: int = 0) -> list[Event]:
        """Stored events in log order, of one booth or all, after a seq."""

    def positions(self, hall: str, start: float | None = None, end: float | None = None) -> np.ndarray:
        """Where visitors stood in a hall, sampled with ``start <= at < end``: (n, 2) x, y,
        in no particular order (a heatmap counts them)."""

    def forget_positions(self, before: float) -> int:
        """Delete the position samples taken before ``before`` (the retention rule; events
        are never deleted); how many samples went."""

    def close(self) -> None: ...


class SQLiteEventLog:
    def __init__(self, path: Path | str, busy_timeout: float = 10.0) -> None:
        self.db = connect(path, SCHEMA, busy_timeout)  # synchronous=FULL: an acknowledged event survives a power cut too
        self.legacy = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                      (LEGACY,)).fetchone() is not None

    def close(self) -> None:
        self.db.close()

    def append(self, events: Sequence[Event], samples: Sequence[PositionSecond] = ()) -> list[Event]:
        for e in events:
            if e.seq:
                raise ValueError(f"event {e.seq} was stored already")
        stored = []
        with transaction(self.db) as db:
            for e in events:
                cursor = db.execute(
                    f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                    tuple(getattr(e, c) for c in COLUMNS),
                )
                assert cursor.lastrowid is not None
                stored.append(replace(e, seq=cursor.lastrowid))
            db.executemany("INSERT INTO position_seconds VALUES (?, ?, ?, ?)", samples)
        return stored

    def events(self, booth: str | None = None, after_seq: int = 0) -> list[Event]:
        if booth is None:
            rows = self.db.execute("SELECT * FROM events WHERE seq > ? ORDER BY seq", (after_seq,))
        else:
            rows = self.db.execute("SELECT * FROM events WHERE booth = ? AND seq > ? ORDER BY seq", (booth, after_seq))
        return [_event(row) for row in rows]

    def positions(self, hall: str, start: float | None = None, end: float | None = None) -> np.ndarray:
        span = (hall, -1.0 if start is None else start, 1e18 if end is None else end)
        blobs = [row[0] for row in self.db.execute(
            "SELECT xy FROM position_seconds WHERE hall = ? AND at >= ? AND at < ?", span)]
        old = self.db.execute(f"SELECT x, y FROM {LEGACY} WHERE hall = ? AND at >= ? AND at < ?",
                              span).fetchall() if self.legacy else []
        return joined(blobs, old)

    def booths(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT DISTINCT booth FROM events ORDER BY booth")]

    def forget_positions(self, before: float) -> int:
        with transaction(self.db) as db:
            gone = sum(row[0] for row in db.execute(
                "DELETE FROM position_seconds WHERE at < ? RETURNING samples", (before,)))
            if self.legacy:
                gone += db.execute(f"DELETE FROM {LEGACY} WHERE at < ?", (before,)).rowcount
        return gone


def joined(blobs: Iterable[bytes], legacy: Sequence[Sequence[float]]) -> np.ndarray:
    """The positions of ``position_seconds`` rows and of a legacy table's (x, y) rows, as one array."""
    return np.concatenate([unpack(blobs), np.array(legacy, dtype=np.float64).reshape(-1, 2)])


def _event(row: Sequence) -> Event:
    """A row of ``events`` (seq first, then the fields in COLUMNS order) as its record."""
    values = dict(zip(COLUMNS, row[1:]))
    return Event(**{**values, "kind": EventKind(values["kind"]), "seq": row[0]})
