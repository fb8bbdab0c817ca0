"""Who may use the console: the organiser's token, exhibitors' logins, sessions, login limits.

The organiser's token is made at first start and kept in a 0600 file beside the server's
data (like the bank's platform key): there is no default to guess. Exhibitor logins are
tokens the organiser issues, each bound to one booth; only their SHA-256 is stored (they are
random, 32 bytes: a slow hash buys nothing). A login opens a server-side session named by a
random cookie; each session carries its own CSRF token, which every form posts back.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from server.clock import Clock
from server.ratelimit import TokenBucket

SESSION_SECONDS = 12 * 3600
EXHIBITOR_PREFIX = "exh_"

SCHEMA = """
CREATE TABLE IF NOT EXISTS exhibitor_logins (
    digest TEXT PRIMARY KEY, booth TEXT NOT NULL, label TEXT NOT NULL,
    created_at REAL NOT NULL, revoked_at REAL);
"""


class Role(str, Enum):
    ORGANISER = "organiser"
    EXHIBITOR = "exhibitor"


@dataclass(frozen=True, slots=True)
class Identity:
    role: Role
    booth: str | None  # the one booth an exhibitor may see; None for the organiser

    def __post_init__(self) -> None:
        assert (self.role is Role.EXHIBITOR) == (self.booth is not None), self

    def may_see(self, booth_id: str) -> bool:
        return self.role is Role.ORGANISER or self.booth == booth_id


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    id: str
    identity: Identity
    csrf: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class ExhibitorLogin:
    digest: str
    booth: str
    label: str
    created_at: float
    revoked_at: float | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def organiser_token(path: Path, token: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> str:
    """The organiser's token, made (0600, never overwritten) the first time it is asked for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        text = path.read_text().strip()
        if not text:
            raise SystemExit(f"{path} is empty: delete it to make a new organiser token") from None
        return text
    with os.fdopen(fd, "w") as out:
        value = token()
        out.write(value + "\n")
    return value


class Credentials:
    def __init__(self, data_dir: Path, wall_clock: Callable[[], float],
                 token: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> None:
        self.token_file = data_dir / "organiser.token"
        self._organiser = organiser_token(self.token_file, token)
        self._token = token
        self.now = wall_clock
        self.db = sqlite3.connect(str(data_dir / "console.sqlite3"), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def check(self, token: str) -> Identity | None:
        """Who this token is, or None. Constant-time against the organiser's token."""
        token = token.strip()
        if not token:
            return None
        if hmac.compare_digest(token.encode(), self._organiser.encode()):
            return Identity(Role.ORGANISER, None)
        row = self.db.execute("SELECT booth FROM exhibitor_logins WHERE digest = ? AND revoked_at IS NULL",
                              (_digest(token),)).fetchone()
        return Identity(Role.EXHIBITOR, row[0]) if row else None

    def issue(self, booth: str, label: str) -> str:
        """A new login for ``booth``; the token is shown once and only its digest is kept."""
        label = label.strip() or booth
        token = EXHIBITOR_PREFIX + self._token()
        self.db.execute("INSERT INTO exhibitor_logins VALUES (?, ?, ?, ?, NULL)", (_digest(token), booth, label[:80], self.now()))
        return token

    def logins(self) -> list[ExhibitorLogin]:
        rows = self.db.execute("SELECT digest, booth, label, created_at, revoked_at FROM exhibitor_logins "
                               "ORDER BY booth, created_at")
        return [ExhibitorLogin(*row) for row in rows]

    def revoke(self, digest: str) -> bool:
        return self.db.execute("UPDATE exhibitor_logins SET revoked_at = ? WHERE digest = ? AND revoked_at IS NULL",
                               (self.now(), digest)).rowcount == 1


class Sessions:
    """Logged-in browsers, in memory: a restart of the server logs everyone out."""

    def __init__(self, clock: Clock, token: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> None:
        self.clock = clock
        self._token = token
        self._sessions: dict[str, ConsoleSession] = {}

    def open(self, identity: Identity) -> ConsoleSession:
        now = self.clock.monotonic()
        for sid in [s.id for s in self._sessions.values() if s.expires_at <= now]:
            del self._sessions[sid]
        session = ConsoleSession(self._token(), identity, self._token(), now + SESSION_SECONDS)
        self._sessions[session.id] = session
        return session

    def get(self, sid: str | None) -> ConsoleSession | None:
        session = self._sessions.get(sid) if sid else None
        if session is None or session.expires_at <= self.clock.monotonic():
            return None
        return session

    def close(self, sid: str) -> None:
        self._sessions.pop(sid, None)

    def close_booth(self, booth: str) -> None:
        """End the sessions of a booth's exhibitors (its logins were revoked)."""
        for sid in [s.id for s in self._sessions.values() if s.identity.booth == booth]:
            del self._sessions[sid]


class LoginLimiter:
    """Wrong tokens: a few at once per address, then one every 10 s; and 30 a minute in all, so
    guessing from many addresses is slow too. Only a wrong token spends: an office's staff
    behind one address may all log in, while a limited address waits even with the right one."""

    def __init__(self, clock: Clock, per_address: tuple[float, float] = (0.1, 5), overall: tuple[float, float] = (0.5, 30)) -> None:
        self.clock = clock
        self.per_address = per_address
        self._addresses: dict[str, TokenBucket] = {}
        self._overall = TokenBucket(*overall, clock)

    def _bucket(self, address: str) -> TokenBucket:
        if len(self._addresses) > 10_000:  # forget the quiet ones rather than grow without bound
            self._addresses.clear()
        return self._addresses.setdefault(address, TokenBucket(*self.per_address, self.clock))

    def allow(self, address: str) -> bool:
        """Whether ``address`` may try a token now."""
        return self._bucket(address).ready() and self._overall.ready()

    def failed(self, address: str) -> None:
        """A wrong token from ``address``: it spends one attempt there and one of the overall."""
        self._bucket(address).take()
        self._overall.take()
