"""Who a visitor is, apart from the name they show: the visitor id and the token that proves it.

A visitor's first Hello comes without a token: the server makes a visitor id (random) and
gives the client a token for it in Welcome, which the client keeps in the user's config
directory and presents in every later Hello. The token is ``v1.<visitor id>.<mac>``, the
mac an HMAC-SHA256 of the id under the server's visitor secret, so the server keeps no
table of visitors and every process sharing the secret (a cluster) recognises the token.
Everything a visitor owns (orders, inventory, limits, the bank account link) is keyed on
the id; names are only for people, and two visitors may share one.

With admission by ticket (an organiser's choice), the visitor id of a ticket holder is
derived from the ticket code, so one ticket is one visitor however often it is presented.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

from protocol.limits import MAX_NAME_LEN

TOKEN_VERSION = "v1"
TICKET_VISITOR_PREFIX = "tkt_"
TAG_LENGTH = 4
_TAG_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: a tag is read aloud


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_visitor_id() -> str:
    return "vis_" + secrets.token_urlsafe(12)


class VisitorPasses:
    """Issues and checks visitor tokens under one secret; ``new_id`` is injectable."""

    def __init__(self, secret: bytes, new_id: Callable[[], str] = new_visitor_id) -> None:
        if len(secret) < 16:
            raise ValueError("the visitor secret needs at least 16 bytes")
        self._key = hmac.new(secret, b"expo visitor token", hashlib.sha256).digest()
        self._ticket_key = hmac.new(secret, b"expo ticket visitor", hashlib.sha256).digest()
        self._new_id = new_id

    def _mac(self, visitor_id: str) -> str:
        return _b64(hmac.new(self._key, visitor_id.encode(), hashlib.sha256).digest()[:24])

    def new_visitor(self) -> str:
        return self._new_id()

    def ticket_visitor(self, ticket: str) -> str:
        """The visitor a ticket admits: always the same one for the same code."""
        return TICKET_VISITOR_PREFIX + _b64(hmac.new(self._ticket_key, ticket.encode(), hashlib.sha256).digest()[:12])

    def token(self, visitor_id: str) -> str:
        assert "." not in visitor_id, visitor_id
        return f"{TOKEN_VERSION}.{visitor_id}.{self._mac(visitor_id)}"

    def verify(self, token: str) -> str | None:
        """The visitor id the token proves, or None for anything else."""
        version, _, rest = token.partition(".")
        visitor_id, _, mac = rest.partition(".")
        if version != TOKEN_VERSION or not visitor_id or not mac:
            return None
        return visitor_id if hmac.compare_digest(mac, self._mac(visitor_id)) else None


def tag_of(visitor_id: str) -> str:
    """A short tag that tells two visitors of the same name apart (shown as ``Li Wei #K3F9``)."""
    digest = hashlib.sha256(visitor_id.encode()).digest()
    return "".join(_TAG_ALPHABET[b % len(_TAG_ALPHABET)] for b in digest[:TAG_LENGTH])


def tagged(name: str, visitor_id: str) -> str:
    """The name with the visitor's tag, cut to fit the wire's name length."""
    suffix = f" #{tag_of(visitor_id)}"
    return name[: MAX_NAME_LEN - len(suffix)].rstrip() + suffix


def load_secret(path: Path) -> bytes:
    """The secret kept at ``path``, made (random, mode 0600) on first start. Never a default
    anyone can read in the source."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return load_secret(path)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
    if len(text) < 16:
        raise ValueError(f"{path}: the secret is too short (at least 16 characters)")
    return text.encode()


def load_tickets(lines: Iterable[str]) -> frozenset[str]:
    """Ticket codes, one a line; blank lines and ``#`` comments are skipped."""
    return frozenset(code for line in lines if (code := line.split("#", 1)[0].strip()))


def passes_for(visitor_secret: str | None, data_dir: Path) -> VisitorPasses:
    """The server's visitor passes: the configured secret, else the one kept in the data
    directory (made at first start), so visitors stay themselves across restarts."""
    secret = visitor_secret.encode() if visitor_secret else load_secret(data_dir / "visitor.secret")
    return VisitorPasses(secret)


def tickets_for(path: Path | None) -> frozenset[str] | None:
    if path is None:
        return None
    tickets = load_tickets(path.read_text(encoding="utf-8").splitlines())
    if not tickets:
        raise ValueError(f"{path}: no ticket codes in it (one a line)")
    return tickets
