"""A client connection's life as the simulation and the shell both see it: one state, the
transitions allowed between states in one table, and how each reason to close closes.

Before this, four nullable fields (the peer's close request and closing task, the
session's peer, the socket protocol's own state) said the same thing in four ways, and a
close was started from inside the tick's flush, only when the tick had frames to write.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import protocol as p


class LinkState(enum.Enum):
    JOINING = "joining"  # the WebSocket is open; no Hello accepted yet
    JOINED = "joined"  # carries a session: gets snapshots, may move
    DETACHED = "detached"  # its session ended (Bye) or moved to another connection; closing next
    CLOSING = "closing"  # the simulation asked to close: its last frames go, then the close
    CLOSED = "closed"  # the socket is gone


TRANSITIONS: dict[LinkState, frozenset[LinkState]] = {
    LinkState.JOINING: frozenset({LinkState.JOINED, LinkState.CLOSING, LinkState.CLOSED}),
    LinkState.JOINED: frozenset({LinkState.DETACHED, LinkState.CLOSING, LinkState.CLOSED}),
    LinkState.DETACHED: frozenset({LinkState.CLOSING, LinkState.CLOSED}),
    LinkState.CLOSING: frozenset({LinkState.CLOSED}),
    LinkState.CLOSED: frozenset(),
}


class BadTransition(RuntimeError):
    """A bug: the code asked for a transition the table does not allow."""


def check_transition(current: LinkState, to: LinkState) -> None:
    if to not in TRANSITIONS[current]:
        raise BadTransition(f"a connection cannot go from {current.value} to {to.value}")


@dataclass(frozen=True, slots=True)
class CloseRule:
    """How a connection closes for one reason: the WebSocket close code, and whether a
    closing handshake is attempted at all (a client that stopped reading cannot take one:
    its socket is aborted)."""

    code: int
    handshake: bool = True


# The reason is the ErrorCode the simulation gave (None: a normal close, after Bye).
CLOSE_RULES: dict[p.ErrorCode | None, CloseRule] = {
    None: CloseRule(1000),
    p.ErrorCode.SHUTDOWN: CloseRule(1001),
    p.ErrorCode.TOO_SLOW: CloseRule(1008, handshake=False),
    p.ErrorCode.FLOOD: CloseRule(1008),
    p.ErrorCode.TIMEOUT: CloseRule(1008),
    p.ErrorCode.REPLACED: CloseRule(1008),
}
REFUSED_RULE = CloseRule(1008)  # after any Refused(code): the connection may not join
CLOSE_REASON_BYTES = 120  # a close frame's reason is at most 123 bytes of UTF-8


def close_rule(reason: p.ErrorCode | None) -> CloseRule:
    return CLOSE_RULES.get(reason, REFUSED_RULE)


def close_reason_text(message: str) -> str:
    """The message cut to fit a close frame, on a character boundary."""
    return message.encode()[:CLOSE_REASON_BYTES].decode(errors="ignore")
