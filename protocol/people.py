"""Messages for what exhibitors come for: visitor cards, card exchange, meetings, product views.

Kept beside the core catalogue (``messages.py``) and registered in the same tables, with
type numbers of their own (client 40-49, server 110-119) so the catalogue can grow without
renumbering. Their error codes are in protocol/errors.py with the rest. Meeting times are UTC seconds since the epoch (wall clock), not server time:
a meeting is at a time of day, and each person's client shows it in their own time zone.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from .fields import CLEAN, ENTITY, ID, MESSAGE, NAME, TOKEN
from .messages import Message, _register

CARD_TEXT = Annotated[str, Meta(max_length=80), CLEAN]  # every card field is at most 80 characters
UTC = Annotated[float, Meta(ge=0.0, le=1e11)]  # UTC seconds since the epoch
MINUTES = Annotated[int, Meta(ge=1, le=24 * 60)]
STATE = Annotated[str, Meta(min_length=1, max_length=16), CLEAN]
CARD_FIELD_COUNT = 8
Card = tuple[CARD_TEXT, CARD_TEXT, CARD_TEXT, CARD_TEXT, CARD_TEXT, CARD_TEXT, CARD_TEXT | None, CARD_TEXT | None]
SLOT = tuple[TOKEN, NAME, UTC, MINUTES, bool]  # (slot_id, host name, starts_at UTC, minutes, taken)


# --------------------------------------------------------------------------- client -> server


@_register
class SetCard(Message, tag=40, frozen=True):
    """Your card, kept with your identity and shown only to those you exchange it with."""

    name: CARD_TEXT
    company: CARD_TEXT
    country: CARD_TEXT  # ISO 3166-1 alpha-2
    role: CARD_TEXT
    language: CARD_TEXT  # BCP 47
    timezone: CARD_TEXT  # IANA, e.g. "Asia/Shanghai"
    email: CARD_TEXT | None = None
    phone: CARD_TEXT | None = None


@_register
class OfferCard(Message, tag=41, frozen=True):
    """Offer your card to the avatar ``entity`` (in your hall, within your view)."""

    entity: ENTITY


@_register
class AnswerCard(Message, tag=42, frozen=True):
    exchange_id: TOKEN
    accept: bool


@_register
class ListSlots(Message, tag=43, frozen=True):
    booth: ID


@_register
class BookSlot(Message, tag=44, frozen=True):
    slot_id: TOKEN


@_register
class CancelBooking(Message, tag=45, frozen=True):
    booking_id: TOKEN


@_register
class RescheduleBooking(Message, tag=46, frozen=True):
    booking_id: TOKEN
    slot_id: TOKEN


@_register
class PublishSlot(Message, tag=47, frozen=True):
    """Booth staff only: you are available at your booth from ``starts_at`` (UTC)."""

    starts_at: UTC
    minutes: MINUTES


@_register
class ViewProduct(Message, tag=48, frozen=True):
    """The visitor looked at one product of a booth's catalogue (analytics and leads)."""

    booth: ID
    sku: ID


# --------------------------------------------------------------------------- server -> client


@_register
class CardSaved(Message, tag=110, frozen=True):
    card: Card  # the card as stored (normalised), CARD_FIELD_COUNT fields in SetCard's order


@_register
class CardOffered(Message, tag=111, frozen=True):
    """Someone offers you their card. Only their avatar and display name: no card yet."""

    exchange_id: TOKEN
    entity: ENTITY
    name: NAME
    booth: ID | None  # the booth whose staff is part of the exchange, if any
    expires_in: Annotated[float, Meta(ge=0.0, le=86400.0)]  # seconds left to answer


@_register
class CardAnswer(Message, tag=112, frozen=True):
    """How an exchange stands: offered (your offer is out), accepted, declined, expired, withdrawn."""

    exchange_id: TOKEN
    state: STATE
    message: MESSAGE


@_register
class CardShown(Message, tag=113, frozen=True):
    """Both consented: the other's card. Sent to each of the two, never to anyone else."""

    exchange_id: TOKEN
    entity: ENTITY  # the card owner's avatar (0 when they are not online)
    card: Card


@_register
class Slots(Message, tag=114, frozen=True):
    booth: ID
    items: Annotated[tuple[SLOT, ...], Meta(max_length=512)]


@_register
class Booking(Message, tag=115, frozen=True):
    """A booking changed (booked, cancelled); sent to the visitor and to the host."""

    booking_id: TOKEN
    slot_id: TOKEN
    booth: ID
    host_name: NAME
    visitor_name: NAME
    starts_at: UTC
    minutes: MINUTES
    status: STATE  # "booked" | "cancelled"


@_register
class MeetingReminder(Message, tag=116, frozen=True):
    """A meeting starts soon: the client offers to walk the visitor to the booth."""

    booking_id: TOKEN
    booth: ID
    with_name: NAME  # the other party
    starts_at: UTC
    minutes: MINUTES


PEOPLE_CLIENT_MESSAGES = (SetCard, OfferCard, AnswerCard, ListSlots, BookSlot, CancelBooking,
                          RescheduleBooking, PublishSlot)  # the ones server.people handles

__all__ = [
    "SetCard", "OfferCard", "AnswerCard", "ListSlots", "BookSlot", "CancelBooking",
    "RescheduleBooking", "PublishSlot", "ViewProduct", "CardSaved", "CardOffered", "CardAnswer", "CardShown",
    "Slots", "Booking", "MeetingReminder", "PEOPLE_CLIENT_MESSAGES", "CARD_FIELD_COUNT",
]
