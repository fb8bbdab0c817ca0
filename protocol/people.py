"""Messages for what exhibitors come for: visitor cards, card exchange, meetings, product views.

Kept beside the core catalogue (``messages.py``) and registered in the same tables, with
type numbers of their own (client 40-49, server 110-119) so the catalogue can grow without
renumbering. Their error codes are in protocol/errors.py with the rest. Meeting times are UTC seconds since the epoch (wall clock), not server time:
a meeting is at a time of day, and each person's client shows it in their own time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .limits import MAX_NAME_LEN
from .messages import (
    ENTITY,
    ID,
    TOKEN,
    Message,
    _register,
    f,  # protocol.fields (the package's own name 'fields' is dataclasses')
)

CARD_TEXT = f.text(80)  # every card field is at most 80 characters
UTC = f.number(0.0, 1e11)  # UTC seconds since the epoch
CARD_FIELD_COUNT = 8


def _card(value: Any, name: str) -> tuple:
    items = f.sequence(f.any_value, CARD_FIELD_COUNT)(value, name)
    if len(items) != CARD_FIELD_COUNT:
        raise f.ProtocolError(f.ErrorCode.BAD_FIELD, f"{name}: expected {CARD_FIELD_COUNT} card fields")
    check = (CARD_TEXT,) * 6 + (f.optional(CARD_TEXT),) * 2
    return tuple(c(v, f"{name}[{i}]") for i, (c, v) in enumerate(zip(check, items)))


# --------------------------------------------------------------------------- client -> server


@_register
@dataclass(frozen=True, slots=True)
class SetCard(Message):
    """Your card, kept with your identity and shown only to those you exchange it with."""

    TYPE: ClassVar[int] = 40
    FIELDS: ClassVar = (CARD_TEXT, CARD_TEXT, CARD_TEXT, CARD_TEXT, CARD_TEXT, CARD_TEXT,
                        f.optional(CARD_TEXT), f.optional(CARD_TEXT))
    name: str
    company: str
    country: str  # ISO 3166-1 alpha-2
    role: str
    language: str  # BCP 47
    timezone: str  # IANA, e.g. "Asia/Shanghai"
    email: str | None = None
    phone: str | None = None


@_register
@dataclass(frozen=True, slots=True)
class OfferCard(Message):
    """Offer your card to the avatar ``entity`` (in your hall, within your view)."""

    TYPE: ClassVar[int] = 41
    FIELDS: ClassVar = (ENTITY,)
    entity: int


@_register
@dataclass(frozen=True, slots=True)
class AnswerCard(Message):
    TYPE: ClassVar[int] = 42
    FIELDS: ClassVar = (TOKEN, f.boolean)
    exchange_id: str
    accept: bool


@_register
@dataclass(frozen=True, slots=True)
class ListSlots(Message):
    TYPE: ClassVar[int] = 43
    FIELDS: ClassVar = (ID,)
    booth: str


@_register
@dataclass(frozen=True, slots=True)
class BookSlot(Message):
    TYPE: ClassVar[int] = 44
    FIELDS: ClassVar = (TOKEN,)
    slot_id: str


@_register
@dataclass(frozen=True, slots=True)
class CancelBooking(Message):
    TYPE: ClassVar[int] = 45
    FIELDS: ClassVar = (TOKEN,)
    booking_id: str


@_register
@dataclass(frozen=True, slots=True)
class RescheduleBooking(Message):
    TYPE: ClassVar[int] = 46
    FIELDS: ClassVar = (TOKEN, TOKEN)
    booking_id: str
    slot_id: str


@_register
@dataclass(frozen=True, slots=True)
class PublishSlot(Message):
    """Booth staff only: you are available at your booth from ``starts_at`` (UTC)."""

    TYPE: ClassVar[int] = 47
    FIELDS: ClassVar = (UTC, f.integer(1, 24 * 60))
    starts_at: float
    minutes: int


@_register
@dataclass(frozen=True, slots=True)
class ViewProduct(Message):
    """The visitor looked at one product of a booth's catalogue (analytics and leads)."""

    TYPE: ClassVar[int] = 48
    FIELDS: ClassVar = (ID, ID)
    booth: str
    sku: str


# --------------------------------------------------------------------------- server -> client


@_register
@dataclass(frozen=True, slots=True)
class CardSaved(Message):
    TYPE: ClassVar[int] = 110
    FIELDS: ClassVar = (_card,)
    card: tuple  # the card as stored (normalised), CARD_FIELD_COUNT fields in SetCard's order


@_register
@dataclass(frozen=True, slots=True)
class CardOffered(Message):
    """Someone offers you their card. Only their avatar and display name: no card yet."""

    TYPE: ClassVar[int] = 111
    FIELDS: ClassVar = (TOKEN, ENTITY, f.text(MAX_NAME_LEN, 1), f.optional(ID), f.number(0.0, 86400.0))
    exchange_id: str
    entity: int
    name: str
    booth: str | None  # the booth whose staff is part of the exchange, if any
    expires_in: float  # seconds left to answer


@_register
@dataclass(frozen=True, slots=True)
class CardAnswer(Message):
    """How an exchange stands: offered (your offer is out), accepted, declined, expired, withdrawn."""

    TYPE: ClassVar[int] = 112
    FIELDS: ClassVar = (TOKEN, f.text(16, 1), f.text(512))
    exchange_id: str
    state: str
    message: str


@_register
@dataclass(frozen=True, slots=True)
class CardShown(Message):
    """Both consented: the other's card. Sent to each of the two, never to anyone else."""

    TYPE: ClassVar[int] = 113
    FIELDS: ClassVar = (TOKEN, ENTITY, _card)
    exchange_id: str
    entity: int  # the card owner's avatar (0 when they are not online)
    card: tuple


def _slot(value: Any, name: str) -> tuple:
    items = f.sequence(f.any_value, 5)(value, name)
    if len(items) != 5:
        raise f.ProtocolError(f.ErrorCode.BAD_FIELD, f"{name}: expected [slot_id, host, starts_at, minutes, taken]")
    return (TOKEN(items[0], f"{name}.slot_id"), f.text(MAX_NAME_LEN, 1)(items[1], f"{name}.host"),
            UTC(items[2], f"{name}.starts_at"), f.integer(1, 24 * 60)(items[3], f"{name}.minutes"),
            f.boolean(items[4], f"{name}.taken"))


@_register
@dataclass(frozen=True, slots=True)
class Slots(Message):
    TYPE: ClassVar[int] = 114
    FIELDS: ClassVar = (ID, f.sequence(_slot, 512))
    booth: str
    items: tuple[tuple[str, str, float, int, bool], ...]  # (slot_id, host name, starts_at UTC, minutes, taken)


@_register
@dataclass(frozen=True, slots=True)
class Booking(Message):
    """A booking changed (booked, cancelled); sent to the visitor and to the host."""

    TYPE: ClassVar[int] = 115
    FIELDS: ClassVar = (TOKEN, TOKEN, ID, f.text(MAX_NAME_LEN, 1), f.text(MAX_NAME_LEN, 1), UTC,
                        f.integer(1, 24 * 60), f.text(16, 1))
    booking_id: str
    slot_id: str
    booth: str
    host_name: str
    visitor_name: str
    starts_at: float
    minutes: int
    status: str  # "booked" | "cancelled"


@_register
@dataclass(frozen=True, slots=True)
class MeetingReminder(Message):
    """A meeting starts soon: the client offers to walk the visitor to the booth."""

    TYPE: ClassVar[int] = 116
    FIELDS: ClassVar = (TOKEN, ID, f.text(MAX_NAME_LEN, 1), UTC, f.integer(1, 24 * 60))
    booking_id: str
    booth: str
    with_name: str  # the other party
    starts_at: float
    minutes: int


PEOPLE_CLIENT_MESSAGES = (SetCard, OfferCard, AnswerCard, ListSlots, BookSlot, CancelBooking,
                          RescheduleBooking, PublishSlot)  # the ones server.people handles

__all__ = [
    "SetCard", "OfferCard", "AnswerCard", "ListSlots", "BookSlot", "CancelBooking",
    "RescheduleBooking", "PublishSlot", "ViewProduct", "CardSaved", "CardOffered", "CardAnswer", "CardShown",
    "Slots", "Booking", "MeetingReminder", "PEOPLE_CLIENT_MESSAGES", "CARD_FIELD_COUNT",
]
