"""The event log on PostgreSQL, for the cluster: ``EventLog`` as in SQLite, shared by every
hall process. Append-only by a trigger, as there; a batch is one transaction.

``seq`` comes from an identity column: with several processes appending, a row may commit
after one with a higher seq, so readers that follow the log by ``after_seq`` should stay a
few seconds behind its end (the reports read it whole). Position samples as in SQLite: a
hall's second to a row, and a database from before that read and pruned in its old
``positions`` table too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from server.pg import PgDatabase

from .events import Event, EventKind, PositionSecond
from .store import COLUMNS, LEGACY, joined

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, visitor TEXT NOT NULL, booth TEXT NOT NULL, hall TEXT NOT NULL,
    sku TEXT, amount_minor BIGINT, currency TEXT, dwell DOUBLE PRECISION, ref TEXT, other TEXT);
CREATE INDEX IF NOT EXISTS events_booth ON events (booth, seq);
CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'the event log is append-only'; END $$;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_append_only') THEN
        CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
            FOR EACH ROW EXECUTE FUNCTION events_append_only();
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS position_seconds (
    at DOUBLE PRECISION NOT NULL, hall TEXT NOT NULL, samples INTEGER NOT NULL, xy BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS position_seconds_hall ON position_seconds (hall, at);
CREATE INDEX IF NOT EXISTS position_seconds_at ON position_seconds (at);
"""

SCHEMA_LOCK = 0x65787045  # 'expE'


class PgEventLog:
    def __init__(self, dsn: str) -> None:
        self.pg = PgDatabase(dsn, SCHEMA, SCHEMA_LOCK)
        with self.pg.transaction() as db:
            row = db.execute("SELECT to_regclass(%s) IS NOT NULL AS legacy", (LEGACY,)).fetchone()
        self.legacy = bool(row and row["legacy"])

    def close(self) -> None:
        self.pg.close()

    def append(self, events: Sequence[Event], samples: Sequence[PositionSecond] = ()) -> list[Event]:
        for e in events:
            if e.seq:
                raise ValueError(f"event {e.seq} was stored already")
        stored = []
        insert = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) RETURNING seq"
        with self.pg.transaction() as db:
            for e in events:
                row = db.execute(insert, tuple(getattr(e, c) for c in COLUMNS)).fetchone()
                assert row is not None
                stored.append(replace(e, seq=row["seq"]))
            if samples:
                with db.cursor() as cur:
                    cur.executemany("INSERT INTO position_seconds VALUES (%s, %s, %s, %s)", samples)
        return stored

    def events(self, booth: str | None = None, after_seq: int = 0) -> list[Event]:
        with self.pg.transaction() as db:
            if booth is None:
                rows = db.execute("SELECT * FROM events WHERE seq > %s ORDER BY seq", (after_seq,)).fetchall()
            else:
                rows = db.execute("SELECT * FROM events WHERE booth = %s AND seq > %s ORDER BY seq",
                                  (booth, after_seq)).fetchall()
        return [Event(**{**row, "kind": EventKind(row["kind"])}) for row in rows]

    def positions(self, hall: str, start: float | None = None, end: float | None = None) -> np.ndarray:
        span = (hall, -1.0 if start is None else start, 1e18 if end is None else end)
        with self.pg.transaction() as db:
            blobs = db.execute("SELECT xy FROM position_seconds WHERE hall = %s AND at >= %s AND at < %s", span).fetchall()
            old = db.execute(f"SELECT x, y FROM {LEGACY} WHERE hall = %s AND at >= %s AND at < %s",
                             span).fetchall() if self.legacy else []
        return joined((row["xy"] for row in blobs), [(row["x"], row["y"]) for row in old])

    def booths(self) -> list[str]:
        with self.pg.transaction() as db:
            return [row["booth"] for row in db.execute("SELECT DISTINCT booth FROM events ORDER BY booth").fetchall()]

    def forget_positions(self, before: float) -> int:
        """Every hall process may run it: deleting what another deleted already is no harm."""
        with self.pg.transaction() as db:
            row = db.execute("WITH gone AS (DELETE FROM position_seconds WHERE at < %s RETURNING samples) "
                             "SELECT coalesce(sum(samples), 0) AS n FROM gone", (before,)).fetchone()
            gone = int(row["n"]) if row else 0
            if self.legacy:
                gone += db.execute(f"DELETE FROM {LEGACY} WHERE at < %s", (before,)).rowcount
        return gone
