"""Mutes and bans, sans I/O: what the organiser decided about a visitor, and until when.

Visitors are known by their display name, case-folded (as commerce knows them), so a ban
holds across sessions and reconnects. The simulation asks two questions, ``muted`` (their
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
    PRIMARY KEY (visitor, kind));
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reporter TEXT NOT NULL, visitor TEXT NOT NULL,
    reason TEXT NOT NULL, hall TEXT NOT NULL, at REAL NOT NULL, handled_by TEXT);
"""

MAX_REASON = 200


class Kind(str, Enum):
    MUTE = "mute"
    BAN = "ban"


@dataclass(frozen=True, slots=True)
class Sanction:
    visitor: str  # the case-folded display name
    kind: Kind
    reason: str
    since: float  # wall-clock seconds
    until: float | None  # None: until lifted
    by: str  # who decided: "organiser"

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True)
class Report:
    """A visitor's complaint about another, filed from the client (protocol ``Report``)."""

    id: int
    reporter: str
    visitor: str
    reason: str
    hall: str
    at: float
    handled_by: str | None


def visitor_key(name: str) -> str:
    return name.casefold()


class Moderation:
    def __init__(self, path: Path | str, wall_clock: Callable[[], float]) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.now = wall_clock
        self._cache: dict[tuple[str, Kind], Sanction] = {}  # read on every chat line: no query there
        for row in self.db.execute("SELECT visitor, kind, reason, since, until, by FROM sanctions"):
            sanction = Sanction(row[0], Kind(row[1]), row[2], row[3], row[4], row[5])
            self._cache[(sanction.visitor, sanction.kind)] = sanction

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ questions

    def _active(self, name: str, kind: Kind) -> Sanction | None:
        sanction = self._cache.get((visitor_key(name), kind))
        return sanction if sanction is not None and sanction.active(self.now()) else None

    def muted(self, name: str) -> Sanction | None:
        return self._active(name, Kind.MUTE)

    def banned(self, name: str) -> Sanction | None:
        return self._active(name, Kind.BAN)

    def sanctions(self) -> list[Sanction]:
        """The sanctions in force, newest first."""
        now = self.now()
        return sorted((s for s in self._cache.values() if s.active(now)), key=lambda s: -s.since)

    # ------------------------------------------------------------------ decisions

    def impose(self, name: str, kind: Kind, reason: str, minutes: float | None, by: str) -> Sanction:
        """Mute or ban ``name`` for ``minutes`` (None: until lifted); replaces an earlier one."""
        reason = reason.strip()
        if not reason:
            raise ValueError("say why: a reason is required")
        if len(reason) > MAX_REASON:
            raise ValueError(f"a reason has at most {MAX_REASON} characters")
        if minutes is not None and not 0 < minutes <= 60 * 24 * 366:
            raise ValueError("a duration is between 1 minute and a year, or empty for until lifted")
        key = visitor_key(name.strip())
        if not key:
            raise ValueError("whom? a visitor's name is required")
        now = self.now()
        sanction = Sanction(key, kind, reason, now, None if minutes is None else now + minutes * 60, by)
        self.db.execute("INSERT OR REPLACE INTO sanctions VALUES (?, ?, ?, ?, ?, ?)",
                        (key, kind.value, reason, now, sanction.until, by))
        self._cache[(key, kind)] = sanction
        return sanction

    def lift(self, name: str, kind: Kind) -> bool:
        key = visitor_key(name)
        self.db.execute("DELETE FROM sanctions WHERE visitor = ? AND kind = ?", (key, kind.value))
        return self._cache.pop((key, kind), None) is not None

    # ------------------------------------------------------------------ reports

    def file_report(self, reporter: str, visitor: str, reason: str, hall: str) -> int:
        cursor = self.db.execute("INSERT INTO reports (reporter, visitor, reason, hall, at) VALUES (?, ?, ?, ?, ?)",
                                 (reporter, visitor, reason[:MAX_REASON], hall, self.now()))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def reports(self, open_only: bool = True, limit: int = 100) -> list[Report]:
        where = "WHERE handled_by IS NULL" if open_only else ""
        rows = self.db.execute(f"SELECT id, reporter, visitor, reason, hall, at, handled_by FROM reports {where} "
                               "ORDER BY id DESC LIMIT ?", (limit,))
        return [Report(*row) for row in rows]

    def handle_report(self, report_id: int, by: str) -> bool:
        return self.db.execute("UPDATE reports SET handled_by = ? WHERE id = ? AND handled_by IS NULL",
                               (by, report_id)).rowcount == 1
