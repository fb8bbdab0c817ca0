"""Card exchange by mutual consent, as an explicit state machine (sans I/O, injected clock).

One exchange is an offer from one visitor to another::

    OFFERED --accept--> ACCEPTED     both now see each other's card, for good
    OFFERED --decline--> DECLINED    the offerer may not offer again for ``decline_cooldown``
    OFFERED --expire--> EXPIRED      unanswered after ``offer_ttl``
    OFFERED --withdraw--> WITHDRAWN  the offerer took it back

Nothing of a card is shown before ACCEPTED: the offer carries only the offerer's display
name, which everyone near them sees anyway. An offer that meets the same offer going the
other way is consent from both sides and accepts it. Offers are rate-limited per offerer
(a token bucket) and bounded in number while unanswered.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from server.clock import Clock  # its wall reading: an exchange expires at a stored instant
from server.ratelimit import KeyedBuckets


class ExchangeState(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class Move(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"
    WITHDRAW = "withdraw"


TRANSITIONS: dict[tuple[ExchangeState, Move], ExchangeState] = {
    (ExchangeState.OFFERED, Move.ACCEPT): ExchangeState.ACCEPTED,
    (ExchangeState.OFFERED, Move.DECLINE): ExchangeState.DECLINED,
    (ExchangeState.OFFERED, Move.EXPIRE): ExchangeState.EXPIRED,
    (ExchangeState.OFFERED, Move.WITHDRAW): ExchangeState.WITHDRAWN,
}


@dataclass(frozen=True, slots=True)
class ExchangeRules:
    offer_ttl: float = 120.0  # seconds an offer waits for an answer
    decline_cooldown: float = 3600.0  # after a decline, the same offer is refused this long
    offer_rate: float = 1 / 20  # offers per second, sustained, per offerer
    offer_burst: float = 5.0
    max_pending: int = 3  # unanswered offers per offerer at once


@dataclass(frozen=True, slots=True)
class Exchange:
    id: str
    offerer: str  # visitor ids
    recipient: str
    booth: str | None  # the booth whose staff member is one of the two (a lead for that booth)
    state: ExchangeState
    offered_at: float
    expires_at: float
    answered_at: float | None = None
    staff: str | None = None  # which of the two is the booth's staff member, with ``booth``

    def __post_init__(self) -> None:
        assert (self.booth is None) == (self.staff is None), "booth and staff go together"
        assert self.staff in (None, self.offerer, self.recipient), "the staff member is one of the two"

    @property
    def lead_visitor(self) -> str | None:
        """The visitor who becomes the booth's lead: the one who is not its staff."""
        if self.staff is None:
            return None
        return self.recipient if self.staff == self.offerer else self.offerer


class ExchangeRefused(Exception):
    """The move is not allowed; ``code`` is a protocol error code, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # one of protocol.ErrorCode's values
        self.message = message


class CardExchanges:
    """Every exchange, the pairs who consented, and the rules between them."""

    def __init__(self, clock: Clock, rules: ExchangeRules = ExchangeRules(),
                 new_id: Callable[[], str] | None = None) -> None:
        self.clock = clock
        self.rules = rules
        counter = itertools.count(1)
        self._new_id = new_id or (lambda: f"x{next(counter)}")
        self.exchanges: dict[str, Exchange] = {}
        self._pending: dict[tuple[str, str], str] = {}  # (offerer, recipient) -> id
        self._declined: dict[tuple[str, str], float] = {}  # (offerer, recipient) -> when
        self._contacts: dict[str, set[str]] = {}
        self._buckets = KeyedBuckets(rules.offer_rate, rules.offer_burst, clock)

    def load(self, exchanges: Iterable[Exchange]) -> None:
        """Rebuild from stored exchanges (oldest first), e.g. after a restart."""
        for x in exchanges:
            self._record(x)

    def merge(self, exchanges: Iterable[Exchange]) -> None:
        """Learn what other processes decided (the store is shared in a cluster): a stored
        exchange replaces ours only if ours is unknown or still OFFERED, never going back."""
        for x in exchanges:
            ours = self.exchanges.get(x.id)
            if ours is None or (ours.state is ExchangeState.OFFERED and ours != x):
                self._record(x)

    # ------------------------------------------------------------------ moves

    def offer(self, offerer: str, recipient: str, booth: str | None, offerer_has_card: bool,
              staff: str | None = None) -> Exchange:
        """Offer ``offerer``'s card to ``recipient``; returns the new (or, when the recipient
        had offered first, the accepted) exchange. ``booth`` and ``staff`` name the booth
        and which of the two is its staff member, when one is."""
        now = self.clock.wall()
        if offerer == recipient:
            raise ExchangeRefused("not_allowed", "you cannot exchange cards with yourself")
        if not offerer_has_card:
            raise ExchangeRefused("no_card", "set your card before offering it")
        if recipient in self._contacts.get(offerer, ()):
            raise ExchangeRefused("not_allowed", "you have exchanged cards already")
        if (offerer, recipient) in self._pending:
            raise ExchangeRefused("not_allowed", "your offer is waiting for an answer")
        reverse = self._pending.get((recipient, offerer))
        if reverse is not None:
            return self._move(self.exchanges[reverse], Move.ACCEPT, now)
        declined = self._declined.get((offerer, recipient))
        if declined is not None and now - declined < self.rules.decline_cooldown:
            wait = self.rules.decline_cooldown - (now - declined)
            raise ExchangeRefused("cooldown", f"they declined; you may offer again in {_minutes(wait)}")
        if sum(1 for (o, _) in self._pending if o == offerer) >= self.rules.max_pending:
            raise ExchangeRefused("rate_limited", f"at most {self.rules.max_pending} offers may wait for an answer")
        if not self._buckets.take(offerer):
            raise ExchangeRefused("rate_limited", "you are offering cards too fast; wait a moment")
        x = Exchange(self._new_id(), offerer, recipient, booth, ExchangeState.OFFERED, now, now + self.rules.offer_ttl,
                     staff=staff)
        assert x.id not in self.exchanges, f"exchange id {x.id} reused"
        self._record(x)
        return x

    def answer(self, exchange_id: str, by: str, accept: bool, has_card: bool = True) -> Exchange:
        x = self._get(exchange_id)
        if x.recipient != by:
            raise ExchangeRefused("not_allowed", "only the one offered the card may answer")
        if accept and not has_card:
            raise ExchangeRefused("no_card", "set your card before accepting: they would see nothing")
        now = self.clock.wall()
        if x.state is ExchangeState.OFFERED and now >= x.expires_at:
            self._move(x, Move.EXPIRE, x.expires_at)
            raise ExchangeRefused("expired", "that offer has expired")
        return self._move(x, Move.ACCEPT if accept else Move.DECLINE, now)

    def withdraw(self, exchange_id: str, by: str) -> Exchange:
        x = self._get(exchange_id)
        if x.offerer != by:
            raise ExchangeRefused("not_allowed", "only the offerer may withdraw an offer")
        return self._move(x, Move.WITHDRAW, self.clock.wall())

    def expire_due(self) -> list[Exchange]:
        """Expire every offer whose time is up; the expired exchanges."""
        now = self.clock.wall()
        due = [self.exchanges[i] for i in self._pending.values() if self.exchanges[i].expires_at <= now]
        return [self._move(x, Move.EXPIRE, x.expires_at) for x in due]

    # ------------------------------------------------------------------ who may see what

    def may_see(self, viewer: str, owner: str) -> bool:
        """Whether ``viewer`` may see ``owner``'s card: themselves, or after an accepted exchange."""
        return viewer == owner or owner in self._contacts.get(viewer, ())

    def contacts_of(self, visitor: str) -> frozenset[str]:
        return frozenset(self._contacts.get(visitor, ()))

    # ------------------------------------------------------------------ internals

    def _get(self, exchange_id: str) -> Exchange:
        x = self.exchanges.get(exchange_id)
        if x is None:
            raise ExchangeRefused("unknown", f"no card offer {exchange_id!r}")
        return x

    def _move(self, x: Exchange, move: Move, at: float) -> Exchange:
        target = TRANSITIONS.get((x.state, move))
        if target is None:
            raise ExchangeRefused("not_allowed", f"that offer is {x.state.value} already")
        moved = replace(x, state=target, answered_at=at)
        self._record(moved)
        return moved

    def _record(self, x: Exchange) -> None:
        self.exchanges[x.id] = x
        pair = (x.offerer, x.recipient)
        if x.state is ExchangeState.OFFERED:
            self._pending[pair] = x.id
            return
        if self._pending.get(pair) == x.id:
            del self._pending[pair]
        if x.state is ExchangeState.ACCEPTED:
            self._contacts.setdefault(x.offerer, set()).add(x.recipient)
            self._contacts.setdefault(x.recipient, set()).add(x.offerer)
        elif x.state is ExchangeState.DECLINED:
            assert x.answered_at is not None, "a decline has its time"
            self._declined[pair] = x.answered_at
        assert not (x.state is ExchangeState.ACCEPTED and pair in self._pending)


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
