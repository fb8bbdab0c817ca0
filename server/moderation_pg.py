"""Mutes, bans and reports on PostgreSQL, for the cluster: every hall process enforces the
organiser's decisions and takes visitors' reports, and the console (at one of them) shows
them all. Before, only the console's process had moderation at all: a banned visitor joined
at another process, and a report filed there was refused ("this server takes no reports").

The questions (``muted``, ``banned``) are still answered from memory: each process reloads
the sanctions every ``REFRESH`` seconds (``refresh``, on a thread), so a ban decided at the
console's process holds everywhere within that time."""

from __future__ import annotations

from collections.abc import Callable

from server.pg import PgDatabase

from .moderation import Kind, Moderation, Sanction

REFRESH = 2.0  # seconds
SCHEMA_LOCK = 0x6578704D  # 'expM'
SCHEMA = """
CREATE TABLE IF NOT EXISTS sanctions (
    visitor TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('mute', 'ban')),
    reason TEXT NOT NULL, since DOUBLE PRECISION NOT NULL, until DOUBLE PRECISION, by TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (visitor, kind));
CREATE TABLE IF NOT EXISTS reports (
    id BIGSERIAL PRIMARY KEY, reporter TEXT NOT NULL, visitor TEXT NOT NULL,
    reason TEXT NOT NULL, hall TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, handled_by TEXT,
    reporter_id TEXT, visitor_id TEXT);
"""


class PgModeration(Moderation):
    def __init__(self, dsn: str, wall_clock: Callable[[], float]) -> None:  # not super().__init__: no SQLite file
        self.pg = PgDatabase(dsn, SCHEMA, SCHEMA_LOCK)
        self.now = wall_clock
        self._cache: dict[tuple[str, Kind], Sanction] = {}
        self.refresh()

    def close(self) -> None:
        self.pg.close()

    def _stored_sanctions(self) -> list[tuple]:
        with self.pg.transaction() as db:
            rows = db.execute("SELECT visitor, kind, reason, since, until, by, name FROM sanctions").fetchall()
        return [(r["visitor"], r["kind"], r["reason"], r["since"], r["until"], r["by"], r["name"]) for r in rows]

    def _store_sanction(self, s: Sanction) -> None:
        with self.pg.transaction() as db:
            db.execute("INSERT INTO sanctions (visitor, kind, reason, since, until, by, name) "
                       "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (visitor, kind) DO UPDATE SET "
                       "reason = EXCLUDED.reason, since = EXCLUDED.since, until = EXCLUDED.until, by = EXCLUDED.by, "
                       "name = EXCLUDED.name", (s.visitor, s.kind.value, s.reason, s.since, s.until, s.by, s.name))

    def _delete_sanction(self, visitor_id: str, kind: Kind) -> None:
        with self.pg.transaction() as db:
            db.execute("DELETE FROM sanctions WHERE visitor = %s AND kind = %s", (visitor_id, kind.value))

    def _store_report(self, row: tuple) -> int:
        with self.pg.transaction() as db:
            found = db.execute("INSERT INTO reports (reporter, visitor, reason, hall, at, reporter_id, visitor_id) "
                               "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id", row).fetchone()
        assert found is not None
        return int(found["id"])

    def _stored_reports(self, open_only: bool, limit: int) -> list[tuple]:
        where = "WHERE handled_by IS NULL" if open_only else ""
        with self.pg.transaction() as db:
            rows = db.execute(f"SELECT id, reporter, visitor, reason, hall, at, handled_by, reporter_id, visitor_id "
                              f"FROM reports {where} ORDER BY id DESC LIMIT %s", (limit,)).fetchall()
        return [tuple(r.values()) for r in rows]

    def _mark_handled(self, report_id: int, by: str) -> bool:
        with self.pg.transaction() as db:
            return db.execute("UPDATE reports SET handled_by = %s WHERE id = %s AND handled_by IS NULL",
                              (by, report_id)).rowcount == 1
