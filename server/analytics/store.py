"""Where the event log lives: a storage interface and its SQLite implementation.

``EventLog`` is what the server needs; a PostgreSQL implementation for the cluster follows
the same methods (the table layout below ports as is). Calls block: the server makes them
from its database thread (``server.dbthread``), never from the event loop.

Durability: ``append`` returns only after the transaction is committed with
``synchronous=FULL`` in WAL mode, so an event whose append returned survives a SIGKILL of
the process (and a power cut). That return is the acknowledgement. The log is append-only
by construction: triggers refuse every UPDATE and DELETE of an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Protocol

from server.sqlite import connect, transaction

from .events import Event, EventKind, PositionRow, PositionSample

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
CREATE TABLE IF NOT EXISTS positions (
    at REAL NOT NULL, visitor TEXT NOT NULL, hall TEXT NOT NULL, x REAL NOT NULL, y REAL NOT NULL);
CREATE INDEX IF NOT EXISTS positions_hall ON positions (hall, at);
CREATE INDEX IF NOT EXISTS positions_at ON positions (at);
"""

POSITION_RETENTION = 30 * 86400.0  # seconds a position sample is kept for the heatmap

COLUMNS = tuple(fl.name for fl in fields(Event) if fl.name != "seq")


class EventLog(Protocol):
    def append(self, events: Sequence[Event], samples: Sequence[PositionRow] = ()) -> list[Event]:
        """Store events (and position samples: PositionSamples or plain rows of their
        fields) in one durable transaction; the events with their ``seq``. Nothing is stored
        if anything is refused."""

    def events(self, booth: str | None = None, after_seq: int = 0) -> list[Event]:
        """Stored events in log order, of one booth or all, after a seq."""

    def samples(self, hall: str, start: float | None = None, end: float | None = None) -> list[PositionSample]:
        """Position samples of a hall with ``start <= at < end``."""

    def forget_positions(self, before: float) -> int:
        """Delete the position samples taken before ``before`` (the retention rule; events
        are never deleted); how many went."""

    def close(self) -> None: ...


class SQLiteEventLog:
    def __init__(self, path: Path | str, busy_timeout: float = 10.0) -> None:
        self.db = connect(path, SCHEMA, busy_timeout)  # synchronous=FULL: an acknowledged event survives a power cut too

    def close(self) -> None:
        self.db.close()

    def append(self, events: Sequence[Event], samples: Sequence[PositionRow] = ()) -> list[Event]:
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
            db.executemany("INSERT INTO positions VALUES (?, ?, ?, ?, ?)", samples)
        return stored

    def events(self, booth: str | None = None, after_seq: int = 0) -> list[Event]:
        if booth is None:
            rows = self.db.execute("SELECT * FROM events WHERE seq > ? ORDER BY seq", (after_seq,))
        else:
            rows = self.db.execute("SELECT * FROM events WHERE booth = ? AND seq > ? ORDER BY seq", (booth, after_seq))
        return [_event(row) for row in rows]

    def samples(self, hall: str, start: float | None = None, end: float | None = None) -> list[PositionSample]:
        rows = self.db.execute(
            "SELECT at, visitor, hall, x, y FROM positions WHERE hall = ? AND at >= ? AND at < ? ORDER BY at",
            (hall, -1.0 if start is None else start, 1e18 if end is None else end),
        )
        return [PositionSample(*row) for row in rows]

    def booths(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT DISTINCT booth FROM events ORDER BY booth")]

    def forget_positions(self, before: float) -> int:
        with transaction(self.db) as db:
            return db.execute("DELETE FROM positions WHERE at < ?", (before,)).rowcount


def _event(row: Sequence) -> Event:
    """A row of ``events`` (seq first, then the fields in COLUMNS order) as its record."""
    values = dict(zip(COLUMNS, row[1:]))
    return Event(**{**values, "kind": EventKind(values["kind"]), "seq": row[0]})
