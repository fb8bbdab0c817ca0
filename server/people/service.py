"""The server side of cards and meetings: protocol messages in, the cores' decisions, the
store on the database thread, replies out.

``handle`` runs on the event loop and decides at once what needs no database (the
exchange state machine lives in memory, loaded from the store at start); everything that
touches the store runs on the database thread, and a reply that acknowledges something
(a card shown, a meeting booked) is sent only after its analytics event and its lead are
committed: a crash after the acknowledgement loses none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import protocol as p
from server.analytics.events import Event, EventKind
from server.analytics.store import EventLog
from server.dbthread import DatabaseThread
from server.ratelimit import KeyedBuckets
from server.requests import SessionRequests

from .cards import Card, CardError, make_card
from .exchange import CardExchanges, Exchange, ExchangeRefused, ExchangeRules, ExchangeState
from .leads import LeadSource, Touch
from .meetings import REMINDER_LEAD, Booking, BookingStatus, MeetingError, Slot
from .store import PeopleStore

if TYPE_CHECKING:
    from server.simulation import Session, Simulation

log = logging.getLogger("expo.people")

RATE = 2.0  # people messages per second per visitor, sustained
BURST = 10.0
SWEEP_INTERVAL = 1.0


class WallClock:
    """The injected wall reading as a whole Clock: exchanges expire at stored wall instants,
    and their rate limits may count the same seconds."""

    def __init__(self, wall: Callable[[], float]) -> None:
        self.wall = self.monotonic = wall


class PeopleService:
    def __init__(self, sim: Simulation, store: PeopleStore, events: EventLog, db: DatabaseThread,
                 wall: Callable[[], float] = time.time, rules: ExchangeRules | None = None) -> None:
        self.sim = sim
        self.store = store
        self.events = events
        self.db = db
        self.wall = wall
        self.exchanges = CardExchanges(WallClock(wall), rules or ExchangeRules(), new_id=lambda: _new_id("xch"))
        self._has_card: set[str] = set()
        self._buckets = KeyedBuckets(RATE, BURST, WallClock(wall))
        self._tasks: set[asyncio.Task] = set()
        self._requests = SessionRequests(self._tasks, self._refusal, log, "people")
        self.exchange_hooks: list[Callable[[str, str], None]] = []  # two visitors exchanged cards (bank contacts)
        self._sweeper: asyncio.Task | None = None

    async def start(self) -> None:
        self.exchanges.load(await self.db.run(self.store.exchanges))
        self._has_card = set(await self.db.run(self.store.card_holders))
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="people-sweeper")
        log.info("people ready", extra={"cards": len(self._has_card), "exchanges": len(self.exchanges.exchanges)})

    async def close(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        for task in list(self._tasks) + ([self._sweeper] if self._sweeper else []):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------ messages

    def handle(self, session: Session, message: p.Message) -> None:
        """One message of PEOPLE_CLIENT_MESSAGES; a ProtocolError for what is refused at once."""
        me = session.visitor_id
        if not self._buckets.take(me):
            raise p.ProtocolError(p.ErrorCode.RATE_LIMITED, "too many card and meeting requests; wait a moment")
        match message:
            case p.SetCard():
                try:
                    card = make_card(message.name, message.company, message.country, message.role,
                                     message.language, message.timezone, message.email, message.phone)
                except CardError as exc:
                    raise p.ProtocolError(p.ErrorCode.BAD_CARD, str(exc)) from None
                self._spawn(session, message, self._set_card(session, me, card))
            case p.OfferCard():
                self._offer(session, me, message)
            case p.AnswerCard():
                self._spawn(session, message, self._answer(me, message))
            case p.ListSlots():
                if self.sim.expo.booth(message.booth) is None:
                    raise p.ProtocolError(p.ErrorCode.UNKNOWN_BOOTH, f"no booth {message.booth!r}")
                self._spawn(session, message, self._send_slots(session, message.booth, me))
            case p.PublishSlot():
                if session.staff_of is None:
                    raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, "only booth staff publish meeting slots")
                slot = Slot(_new_id("slot"), session.staff_of, me, session.name, message.starts_at, message.minutes)
                self._spawn(session, message, self._publish(session, slot))
            case p.BookSlot():
                self._spawn(session, message, self._book(session, me, message.slot_id))
            case p.CancelBooking():
                self._spawn(session, message, self._cancel(me, message.booking_id))
            case p.RescheduleBooking():
                self._spawn(session, message, self._reschedule(me, message.booking_id, message.slot_id))

    def _offer(self, session: Session, me: str, message: p.OfferCard) -> None:
        target = next((s for s in self.sim.sessions.values() if s.entity == message.entity), None)
        av = self.sim.avatars
        if target is None or target is session or av.hall[target.slot] != av.hall[session.slot] or math.dist(
            av.pos[target.slot], av.pos[session.slot]
        ) > self.sim.config.view_radius:
            raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, "offer your card to someone you can see")
        them = target.visitor_id
        booth, staff = (target.staff_of, them) if target.staff_of else (session.staff_of, me if session.staff_of else None)
        self._spawn(session, message, self._offer_between(me, them, booth, staff))

    async def _offer_between(self, me: str, them: str, booth: str | None, staff: str | None) -> None:
        """Decide with what the store knows of the two (another process of the cluster may
        have seen their last exchange, or the offerer's card being set)."""
        history, has_card = await self.db.run(self._what_store_knows, me, them)
        self.exchanges.merge(history)
        x = self._refusing(self.exchanges.offer, me, them, booth, has_card, staff)
        await self._settled(x)

    async def _answer(self, me: str, message: p.AnswerCard) -> None:
        stored, has_card = await self.db.run(self._what_store_knows_of, message.exchange_id, me)
        self.exchanges.merge(stored)
        await self._settled(self._refusing(self.exchanges.answer, message.exchange_id, me, message.accept, has_card))

    def _what_store_knows(self, me: str, them: str) -> tuple[list[Exchange], bool]:
        """On the database thread: the two's exchanges, and whether ``me`` has a card."""
        return self.store.exchanges_between(me, them), me in self._has_card or self.store.card(me) is not None

    def _what_store_knows_of(self, exchange_id: str, me: str) -> tuple[list[Exchange], bool]:
        x = self.store.exchange(exchange_id)
        return ([x] if x is not None else []), me in self._has_card or self.store.card(me) is not None

    @staticmethod
    def _refusing(move: Callable[..., Exchange], *args: Any) -> Exchange:
        try:
            return move(*args)
        except ExchangeRefused as exc:
            raise p.ProtocolError(p.ErrorCode(exc.code), exc.message) from None

    # ------------------------------------------------------------------ cards

    async def _set_card(self, session: Session, me: str, card: Card) -> None:
        await self.db.run(self.store.set_card, me, card, self.wall())
        self._has_card.add(me)
        session.send(p.CardSaved(card.as_tuple()))

    async def _settled(self, x: Exchange) -> None:
        """An exchange moved: store it, then tell whom it concerns."""
        await self.db.run(self.store.save_exchange, x)
        offerer, recipient = self._sessions(x.offerer), self._sessions(x.recipient)
        if x.state is ExchangeState.OFFERED:
            name = offerer[0].name if offerer else "someone"
            entity = offerer[0].entity if offerer else 0
            for s in recipient:
                s.send(p.CardOffered(x.id, entity, name, x.booth, max(0.0, x.expires_at - self.wall())))
            for s in offerer:
                s.send(p.CardAnswer(x.id, x.state.value, "waiting for an answer"))
            return
        if x.state is ExchangeState.ACCEPTED:
            await self._accepted(x)
            return
        for s in offerer + (recipient if x.state is ExchangeState.DECLINED else []):
            s.send(p.CardAnswer(x.id, x.state.value, f"the offer was {x.state.value}"))

    async def _accepted(self, x: Exchange) -> None:
        cards = await self.db.run(self.store.cards, [x.offerer, x.recipient])
        for hook in self.exchange_hooks:
            hook(x.offerer, x.recipient)
        lead = x.lead_visitor
        if x.booth is not None and lead is not None:
            sessions = self._sessions(lead)
            card = cards.get(lead)
            name = sessions[0].name if sessions else (card.name[:24] if card else lead)
            booth = self.sim.expo.booth(x.booth)
            await self._acknowledged(
                Event(self.wall(), EventKind.CARD_EXCHANGED, lead, x.booth, booth.hall if booth else "", ref=x.id, other=x.staff),
                Touch(x.booth, lead, name, self.wall(), LeadSource.CARD, x.id),
            )
        for me, other in ((x.offerer, x.recipient), (x.recipient, x.offerer)):
            assert self.exchanges.may_see(me, other)
            others = self._sessions(other)
            entity = others[0].entity if others else 0
            for s in self._sessions(me):
                s.send(p.CardAnswer(x.id, x.state.value, "cards exchanged"))
                if other in cards:
                    s.send(p.CardShown(x.id, entity, cards[other].as_tuple()))

    # ------------------------------------------------------------------ meetings

    async def _send_slots(self, session: Session, booth: str, me: str | None = None) -> None:
        """The booth's slots; asked by visitor ``me``, then also a Booking for each of their live
        bookings there, so a client that restarted can still cancel or move them."""
        rows = await self.db.run(self.store.slots, booth, self.wall())
        session.send(p.Slots(booth, tuple((s.id, s.host_name, s.starts_at, s.minutes, taken) for s, taken in rows)))
        if me is None:
            return
        for b in await self.db.run(self.store.bookings_of, me):
            if b.visitor == me and b.slot.booth == booth and b.status is BookingStatus.BOOKED and b.slot.ends_at > self.wall():
                session.send(_booking_message(b))

    async def _publish(self, session: Session, slot: Slot) -> None:
        await self.db.run(self.store.publish_slot, slot, self.wall())
        await self._send_slots(session, slot.booth)

    async def _book(self, session: Session, me: str, slot_id: str) -> None:
        booking = await self.db.run(self.store.book, _new_id("bkg"), slot_id, me, session.name, self.wall())
        booth = self.sim.expo.booth(booking.slot.booth)
        await self._acknowledged(
            Event(self.wall(), EventKind.MEETING_BOOKED, me, booking.slot.booth, booth.hall if booth else "",
                  ref=booking.id, other=booking.slot.host),
            Touch(booking.slot.booth, me, session.name, self.wall(), LeadSource.MEETING, booking.id),
        )
        self._tell_booking(booking)

    async def _cancel(self, me: str, booking_id: str) -> None:
        self._tell_booking(await self.db.run(self.store.cancel, booking_id, me))

    async def _reschedule(self, me: str, booking_id: str, slot_id: str) -> None:
        """The same meeting at another time: no new lead touch nor booking event."""
        old, new = await self.db.run(self.store.reschedule, booking_id, _new_id("bkg"), slot_id, me, self.wall())
        self._tell_booking(old)
        self._tell_booking(new)

    def _tell_booking(self, b: Booking) -> None:
        message = _booking_message(b)
        for s in self._sessions(b.visitor) + self._sessions(b.slot.host):
            s.send(message)

    # ------------------------------------------------------------------ shared

    async def _acknowledged(self, event: Event, lead_touch: Touch) -> None:
        """Commit the event and the lead before anyone is told."""
        await self.db.run(self.events.append, [event])
        await self.db.run(self.store.add_touch, lead_touch)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await self.sweep()
            except Exception:
                log.exception("people sweep failed")

    async def sweep(self) -> None:
        """Expire unanswered offers, send the reminders that are due."""
        for x in self.exchanges.expire_due():
            await self._settled(x)
        for b in await self.db.run(self.store.take_due_reminders, self.wall(), REMINDER_LEAD):
            for s in self._sessions(b.visitor):
                s.send(p.MeetingReminder(b.id, b.slot.booth, b.slot.host_name[:24], b.slot.starts_at, b.slot.minutes))
            for s in self._sessions(b.slot.host):
                s.send(p.MeetingReminder(b.id, b.slot.booth, b.visitor_name[:24], b.slot.starts_at, b.slot.minutes))

    def _sessions(self, visitor: str | None) -> list[Session]:
        session = self.sim.by_visitor.get(visitor) if visitor is not None else None
        return [session] if session is not None and session.peer is not None else []

    def _spawn(self, session: Session, request: p.Message, work: Coroutine) -> None:
        """Run ``work``; a refusal from the store becomes an Error to the one who asked."""
        self._requests.spawn(session, request, work)

    @staticmethod
    def _refusal(exc: Exception) -> tuple[str, str] | None:
        if isinstance(exc, MeetingError):
            return p.ErrorCode(exc.code).value, exc.message
        if isinstance(exc, p.ProtocolError):  # refused once the store had its say
            return exc.code.value, exc.message
        return None

def _booking_message(b: Booking) -> p.Booking:
    return p.Booking(b.id, b.slot.id, b.slot.booth, b.slot.host_name[:24], b.visitor_name[:24],
                     b.slot.starts_at, b.slot.minutes, b.status.value)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(12)}"
