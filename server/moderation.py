"""Mutes and bans, sans I/O: what the organiser decided about a visitor, and until when.

Visitors are known by their visitor id (``Session.visitor_id``, proved by the signed visitor
token), not by their display name: two people may share a name, and one person may change
theirs, so a ban follows the person across sessions, reconnects and renames. The display name
is stored beside the id only for people to read. The simulation asks two questions, ``muted`` (their
chat goes to nobody) and ``banned`` (their Hello is refused); the admin interface
(server.admin) writes the decisions. Decisions are kept in SQLite beside the commerce data so
that a restart does not lift a ban; ``:memory:`` keeps them for one process (tests).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS sanctions (
    visitor TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('mute', 'ban')),
    reason TEXT NOT NULL, since REAL NOT NULL, until REAL, by TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (visitor, kind));
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reporter TEXT NOT NULL, visitor TEXT NOT NULL,
    reason TEXT NOT NULL, hall TEXT NOT NULL, at REAL NOT NULL, handled_by TEXT,
    reporter_id TEXT, visitor_id TEXT);
"""
SCHEMA_VERSION = 2  # 1: keyed on the case-folded display name; 2: on the visitor id
LEGACY_BY = "name-keyed before visitor ids"  # version 1's sanctions, kept for the record, enforced on no one

MAX_REASON = 200


class Kind(str, Enum):
    MUTE = "mute"
    BAN = "ban"


@dataclass(frozen=True, slots=True)
class Sanction:
    visitor: str  # the visitor id
    kind: Kind
    reason: str
    since: float  # wall-clock seconds
    until: float | None  # None: until lifted
    by: str  # who decided: "organiser"
    name: str  # the display name when it was decided, for people to read

    def active(self, now: float) -> bool:
        return self.by != LEGACY_BY and (self.until is None or now < self.until)


@dataclass(frozen=True, slots=True)
class Report:
    """A visitor's complaint about another, filed from the client (protocol ``Report``)."""

    id: int
    reporter: str  # display names, for people to read
    visitor: str
    reason: str
    hall: str
    at: float
    handled_by: str | None
    reporter_id: str | None  # visitor ids (None in reports filed before ids were kept)
    visitor_id: str | None


def visitor_key(name: str) -> str:
    return name.casefold()


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a version-1 file (name-keyed) to version 2. Its sanctions name no visitor id, so
    they cannot be enforced on anyone: they are kept, marked legacy, for the record."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    columns = {row[1] for row in db.execute("PRAGMA table_info(sanctions)")}
    if "name" not in columns:
        db.execute("ALTER TABLE sanctions ADD COLUMN name TEXT NOT NULL DEFAULT ''")
        db.execute("UPDATE sanctions SET name = visitor, by = ?", (LEGACY_BY,))
    columns = {row[1] for row in db.execute("PRAGMA table_info(reports)")}
    for column in ("reporter_id", "visitor_id"):
        if column not in columns:
            db.execute(f"ALTER TABLE reports ADD COLUMN {column} TEXT")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class Moderation:
    """The decisions and reports, kept in SQLite; every question is answered from memory."""

    def __init__(self, path: Path | str, wall_clock: Callable[[], float]) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        _migrate(self.db)
        self.now = wall_clock
        self._cache: dict[tuple[str, Kind], Sanction] = {}  # read on every chat line: no query there
        self.refresh()

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ storage (PgModeration has its own)

    def _stored_sanctions(self) -> list[tuple]:
        return self.db.execute("SELECT visitor, kind, reason, since, until, by, name FROM sanctions").fetchall()

    def _store_sanction(self, s: Sanction) -> None:
        self.db.execute("INSERT OR REPLACE INTO sanctions (visitor, kind, reason, since, until, by, name) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", (s.visitor, s.kind.value, s.reason, s.since, s.until, s.by, s.name))

    def _delete_sanction(self, visitor_id: str, kind: Kind) -> None:
        self.db.execute("DELETE FROM sanctions WHERE visitor = ? AND kind = ?", (visitor_id, kind.value))

    def _store_report(self, row: tuple) -> int:
        cursor = self.db.execute("INSERT INTO reports (reporter, visitor, reason, hall, at, reporter_id, visitor_id) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _stored_reports(self, open_only: bool, limit: int) -> list[tuple]:
        where = "WHERE handled_by IS NULL" if open_only else ""
        return self.db.execute(f"SELECT id, reporter, visitor, reason, hall, at, handled_by, reporter_id, visitor_id "
                               f"FROM reports {where} ORDER BY id DESC LIMIT ?", (limit,)).fetchall()

    def _mark_handled(self, report_id: int, by: str) -> bool:
        return self.db.execute("UPDATE reports SET handled_by = ? WHERE id = ? AND handled_by IS NULL",
                               (by, report_id)).rowcount == 1

    def refresh(self) -> None:
        """The sanctions in memory as the store has them (in a cluster, as every process decided)."""
        cache = {}
        for row in self._stored_sanctions():
            sanction = Sanction(row[0], Kind(row[1]), row[2], row[3], row[4], row[5], row[6])
            cache[(sanction.visitor, sanction.kind)] = sanction
        self._cache = cache

    # ------------------------------------------------------------------ questions

    def _active(self, visitor_id: str, kind: Kind) -> Sanction | None:
        sanction = self._cache.get((visitor_id, kind))
        return sanction if sanction is not None and sanction.active(self.now()) else None

    def muted(self, visitor_id: str) -> Sanction | None:
        return self._active(visitor_id, Kind.MUTE)

    def banned(self, visitor_id: str) -> Sanction | None:
        return self._active(visitor_id, Kind.BAN)

    def sanctions(self) -> list[Sanction]:
        """The sanctions in force, newest first."""
        now = self.now()
        return sorted((s for s in self._cache.values() if s.active(now)), key=lambda s: -s.since)

    # ------------------------------------------------------------------ decisions

    def impose(self, visitor_id: str, name: str, kind: Kind, reason: str, minutes: float | None, by: str) -> Sanction:
        """Mute or ban the visitor ``visitor_id`` (shown as ``name``) for ``minutes`` (None:
        until lifted); replaces an earlier one."""
        reason = reason.strip()
        if not reason:
            raise ValueError("say why: a reason is required")
        if len(reason) > MAX_REASON:
            raise ValueError(f"a reason has at most {MAX_REASON} characters")
        if minutes is not None and not 0 < minutes <= 60 * 24 * 366:
            raise ValueError("a duration is between 1 minute and a year, or empty for until lifted")
        key = visitor_id.strip()
        if not key:
            raise ValueError("whom? a visitor id is required")
        now = self.now()
        sanction = Sanction(key, kind, reason, now, None if minutes is None else now + minutes * 60, by, name)
        self._store_sanction(sanction)
        self._cache[(key, kind)] = sanction
        return sanction

    def lift(self, visitor_id: str, kind: Kind) -> bool:
        self._delete_sanction(visitor_id, kind)
        return self._cache.pop((visitor_id, kind), None) is not None

    # ------------------------------------------------------------------ reports

    def file_report(self, reporter_id: str, reporter: str, visitor_id: str, visitor: str, reason: str, hall: str) -> int:
        """A report by visitor id (and the display names both had, for people to read)."""
        return self._store_report((reporter, visitor, reason[:MAX_REASON], hall, self.now(), reporter_id, visitor_id))

    def reports(self, open_only: bool = True, limit: int = 100) -> list[Report]:
        return [Report(*row) for row in self._stored_reports(open_only, limit)]

    def handle_report(self, report_id: int, by: str) -> bool:
        return self._mark_handled(report_id, by)


def open_moderation(db_url: str | None, data_dir: Path, wall_clock: Callable[[], float]) -> Moderation:
    """PostgreSQL at ``db_url`` (the cluster: one set of decisions and reports for every hall
    process), else ``moderation.sqlite3`` in ``data_dir``."""
    if db_url:
        from .moderation_pg import PgModeration

        return PgModeration(db_url, wall_clock)
    return Moderation(data_dir / "moderation.sqlite3", wall_clock)
