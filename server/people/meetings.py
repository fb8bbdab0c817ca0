"""Meetings: staff publish availability slots, visitors book them (sans-I/O rules).

The rules here decide whether a slot may be published or booked, and which reminders are
due. The one rule that must hold across processes, one booking per slot, is the store's:
a unique index on the slot of live bookings, so two processes racing for a slot cannot both
win (see ``server.people.store``). Times are UTC seconds everywhere; a person's IANA time
zone is used only to show a time (``local_time``).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

MIN_MINUTES = 5
MAX_MINUTES = 120
MAX_BOOKINGS = 5  # live bookings a visitor may hold
REMINDER_LEAD = 300.0  # seconds before the start that both parties are reminded


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Slot:
    id: str
    booth: str
    host: str  # the staff member's visitor id
    host_name: str
    starts_at: float  # UTC seconds
    minutes: int

    @property
    def ends_at(self) -> float:
        return self.starts_at + self.minutes * 60

    def overlaps(self, other: Slot) -> bool:
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at


@dataclass(frozen=True, slots=True)
class Booking:
    id: str
    slot: Slot
    visitor: str
    visitor_name: str
    status: BookingStatus
    booked_at: float
    reminded: bool = False


class MeetingError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # one of protocol.ErrorCode's values
        self.message = message


def check_slot(slot: Slot, host_slots: Iterable[Slot], now: float) -> None:
    """A slot may be published if it is in the future, of a sensible length, and does not
    overlap another slot of the same host."""
    if not (MIN_MINUTES <= slot.minutes <= MAX_MINUTES):
        raise MeetingError("bad_field", f"a slot lasts {MIN_MINUTES} to {MAX_MINUTES} minutes, not {slot.minutes}")
    if slot.starts_at <= now:
        raise MeetingError("bad_field", "a slot must start in the future")
    for other in host_slots:
        if other.id != slot.id and other.host == slot.host and other.overlaps(slot):
            raise MeetingError("conflict", f"it overlaps your slot at {local_time(other.starts_at, 'UTC')}")


def check_booking(slot: Slot, visitor: str, visitor_bookings: Iterable[Booking], now: float) -> None:
    """A visitor may book a future slot of someone else that does not clash with their
    other live bookings, up to MAX_BOOKINGS. (Whether the slot is free is the store's.)"""
    if slot.host == visitor:
        raise MeetingError("not_allowed", "you cannot book your own slot")
    if slot.starts_at <= now:
        raise MeetingError("not_allowed", "that slot has started already")
    live = [b for b in visitor_bookings if b.status is BookingStatus.BOOKED and b.slot.id != slot.id]
    if len(live) >= MAX_BOOKINGS:
        raise MeetingError("rate_limited", f"you hold {MAX_BOOKINGS} bookings already; cancel one first")
    for b in live:
        if b.slot.overlaps(slot):
            raise MeetingError("conflict", f"you have a meeting then ({local_time(b.slot.starts_at, 'UTC')})")


def reminders_due(bookings: Iterable[Booking], now: float, lead: float = REMINDER_LEAD) -> list[Booking]:
    """Live bookings not yet reminded whose meeting starts within ``lead`` seconds (and has
    not ended: a server that was down through a meeting does not remind of it after)."""
    return [
        b for b in bookings
        if b.status is BookingStatus.BOOKED and not b.reminded and b.slot.starts_at - lead <= now < b.slot.ends_at
    ]


def local_time(ts: float, timezone: str) -> str:
    """A UTC time as a person in ``timezone`` reads it, e.g. '2026-12-02 09:30 CST'."""
    local = dt.datetime.fromtimestamp(ts, dt.UTC).astimezone(zoneinfo.ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d %H:%M %Z")
