"""The seats of one hall instance, sans I/O: a value kept under one key in NATS KV and only
ever replaced by compare-and-set, so no interleaving of processes can seat more than the cap.

A seat is either *pending* (reserved for a visitor who has not arrived yet: a one-use token
with an expiry, so a visitor who never comes gives the seat back by itself) or *held* by the
process that simulates the visitor (a count per process, so the seats of a process that died
can be given back at once when its directory entry expires).

Every grant is decided by ``grant``: it is the one place that can say yes, and it asserts
the invariant ``used <= cap``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Seats:
    cap: int
    held: dict[str, int] = field(default_factory=dict)  # process id -> visitors it simulates here
    pending: dict[str, float] = field(default_factory=dict)  # token -> wall-clock expiry

    def __post_init__(self) -> None:
        assert self.cap >= 0 and all(n > 0 for n in self.held.values()), self
        assert self.used_total() <= self.cap, f"seats over the cap: {self}"

    def used_total(self) -> int:
        return sum(self.held.values()) + len(self.pending)

    def free(self, now: float) -> int:
        return self.cap - sum(self.held.values()) - sum(1 for t in self.pending.values() if t > now)

    # ------------------------------------------------------------------ transitions

    def without_expired(self, now: float, alive: frozenset[str] | None = None) -> Seats:
        """Drop pending seats past their expiry and, when ``alive`` is known, the seats held by
        processes no longer in the directory."""
        held = self.held if alive is None else {p: n for p, n in self.held.items() if p in alive}
        return Seats(self.cap, held, {t: e for t, e in self.pending.items() if e > now})

    def grant(self, tokens: list[str], expires_at: float, now: float) -> tuple[Seats, list[str]]:
        """Reserve a pending seat for as many of ``tokens`` as fit, in order. Returns the new
        value and the tokens granted (a prefix of ``tokens``)."""
        base = self.without_expired(now)
        room = max(0, base.free(now))
        granted = tokens[:room]
        pending = dict(base.pending)
        for token in granted:
            assert token not in pending, f"token {token} reserved twice"
            pending[token] = expires_at
        after = Seats(base.cap, dict(base.held), pending)
        assert after.used_total() <= after.cap
        return after, granted

    def confirm(self, token: str, process: str, now: float) -> tuple[Seats, bool]:
        """The visitor arrived: its pending seat becomes a seat held by ``process``. False when
        the token is unknown or expired (the seat may have gone to someone else)."""
        if self.pending.get(token, 0.0) <= now:
            return self, False
        pending = {t: e for t, e in self.pending.items() if t != token}
        held = dict(self.held)
        held[process] = held.get(process, 0) + 1
        return Seats(self.cap, held, pending), True

    def walk_in(self, process: str, now: float) -> tuple[Seats, bool]:
        """A visitor of ``process`` walked in from another of its instances (a portal hop
        inside the process): a seat held at once if one is free. False when full."""
        if self.free(now) <= 0:
            return self, False
        held = dict(self.held)
        held[process] = held.get(process, 0) + 1
        after = Seats(self.cap, held, {t: e for t, e in self.pending.items() if e > now})
        assert after.used_total() <= after.cap
        return after, True

    def cancel(self, *tokens: str) -> Seats:
        """Reserved seats nobody will take (the join failed): free them now, not at their expiry."""
        return Seats(self.cap, dict(self.held), {t: e for t, e in self.pending.items() if t not in tokens})

    def release(self, process: str, count: int = 1) -> Seats:
        """``process`` no longer simulates ``count`` visitors here. Never below zero."""
        held = dict(self.held)
        left = held.get(process, 0) - count
        if left > 0:
            held[process] = left
        else:
            held.pop(process, None)
        return Seats(self.cap, held, dict(self.pending))

    def with_held(self, process: str, count: int) -> Seats:
        """Set what ``process`` holds: how the directory rebuilds after NATS lost its store,
        from what each process knows it simulates. Those seats were granted under the cap,
        so together they still fit (the constructor asserts it)."""
        held = {p: n for p, n in self.held.items() if p != process}
        if count > 0:
            held[process] = count
        return Seats(self.cap, held, dict(self.pending))

    # ------------------------------------------------------------------ wire

    def encode(self) -> bytes:
        return json.dumps({"cap": self.cap, "held": self.held, "pending": self.pending},
                          separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Seats:
        raw = json.loads(data)
        return cls(int(raw["cap"]), {str(k): int(v) for k, v in raw["held"].items()},
                   {str(k): float(v) for k, v in raw["pending"].items()})
