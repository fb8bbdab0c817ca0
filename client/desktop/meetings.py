"""The meetings panel (B at a booth): the booth's free times to book, your own meetings
there to cancel or move to another time. Sans-I/O: the app feeds it Slots and Booking
messages and keys, and sends the request it returns.

The panel is a small state machine: BROWSING (1-9 books a free time), MOVING (1-9 moves
your meeting there, one RescheduleBooking: if the new time cannot be had the old meeting
stands) and CONFIRM_CANCEL (Y cancels, N or Esc keeps it). X and V act on your next
meeting at the booth; with more than one there, pressing X or V again picks the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import protocol as p

from .i18n import _

MAX_ROWS = 9


def meeting_time(seconds: float, zone: str | None) -> str:
    """A meeting's time of day in the visitor's time zone (their card's), e.g. "14:30
    Asia/Almaty": the protocol keeps UTC, and each person reads their own clock. An unknown
    zone, or none, shows UTC and says so."""
    try:
        tz = ZoneInfo(zone) if zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    label = "UTC" if tz is UTC else str(zone)
    return f"{datetime.fromtimestamp(seconds, tz):%H:%M} {label}"


class Mode(StrEnum):
    BROWSING = "browsing"
    MOVING = "moving"
    CONFIRM_CANCEL = "confirm_cancel"


@dataclass(frozen=True, slots=True)
class Book:
    slot_id: str


@dataclass(frozen=True, slots=True)
class Move:
    booking_id: str
    slot_id: str


@dataclass(frozen=True, slots=True)
class Cancel:
    booking_id: str


Request = Book | Move | Cancel


@dataclass
class MeetingDesk:
    """What the panel shows for one booth, and what a key there means."""

    booth: str
    free: list[tuple] = field(default_factory=list)  # Slots items not taken: (slot_id, host, starts_at, minutes, taken)
    mine: dict[str, p.Booking] = field(default_factory=dict)  # your live bookings at this booth, by id
    mode: Mode = Mode.BROWSING
    chosen: str | None = None  # the booking that X / V act on
    asked: bool = False  # a Slots answer arrived

    def received(self, slots: p.Slots) -> None:
        self.free = [item for item in slots.items if not item[4]][:MAX_ROWS]
        self.asked = True

    def updated(self, booking: p.Booking) -> None:
        """A Booking for this booth: kept while live, gone once cancelled (a move sends the
        old one cancelled and the new one booked)."""
        if booking.booth != self.booth:
            return
        if booking.status == "booked":
            self.mine[booking.booking_id] = booking
        else:
            self.mine.pop(booking.booking_id, None)
            if self.chosen == booking.booking_id:
                self.chosen, self.mode = None, Mode.BROWSING

    def _ordered(self) -> list[p.Booking]:
        return sorted(self.mine.values(), key=lambda b: (b.starts_at, b.booking_id))

    def _choose_next(self) -> p.Booking | None:
        """Your next meeting here; pressed again in the same mode, the one after it."""
        ordered = self._ordered()
        if not ordered:
            return None
        ids = [b.booking_id for b in ordered]
        i = ids.index(self.chosen) + 1 if self.chosen in ids else 0
        booking = ordered[i % len(ordered)]
        self.chosen = booking.booking_id
        return booking

    # ------------------------------------------------------------------ keys

    def number(self, index: int) -> Request | None:
        """1-9: book that free time, or move the chosen meeting to it."""
        if self.mode is Mode.CONFIRM_CANCEL or index >= len(self.free):
            return None
        slot_id = self.free[index][0]
        if self.mode is Mode.MOVING and self.chosen in self.mine:
            booking_id, self.chosen, self.mode = self.chosen, None, Mode.BROWSING
            return Move(booking_id, slot_id)
        return Book(slot_id)

    def cancel_key(self) -> bool:
        """X: ask whether to cancel your (next) meeting here; False when you have none."""
        return self._pick(Mode.CONFIRM_CANCEL)

    def move_key(self) -> bool:
        """V: the next number moves your (next) meeting here to that time."""
        return self._pick(Mode.MOVING)

    def _pick(self, mode: Mode) -> bool:
        if self.mode is not mode:  # pressed again in the same mode: the meeting after the chosen one
            self.chosen = None
        booking = self._choose_next()
        self.mode = mode if booking else Mode.BROWSING
        return booking is not None

    def answer(self, yes: bool) -> Request | None:
        """Y or N while a cancel is asked."""
        if self.mode is not Mode.CONFIRM_CANCEL or self.chosen not in self.mine:
            return None
        booking_id, self.chosen, self.mode = self.chosen, None, Mode.BROWSING
        return Cancel(booking_id) if yes else None

    def back(self) -> bool:
        """Esc: out of moving or cancelling (True), or nothing to step back from."""
        if self.mode is Mode.BROWSING:
            return False
        self.mode, self.chosen = Mode.BROWSING, None
        return True

    # ------------------------------------------------------------------ drawing

    def question(self, zone: str | None) -> str | None:
        """The prompt a cancel waits on."""
        booking = self.mine.get(self.chosen or "")
        if self.mode is not Mode.CONFIRM_CANCEL or booking is None:
            return None
        return (_("Cancel your meeting with {host} at {when}?").format(host=booking.host_name,
                                                                        when=meeting_time(booking.starts_at, zone))
                + "\n" + _("Y cancel it · N keep it") + ("  ·  " + _("X the next one") if len(self.mine) > 1 else ""))

    def lines(self, exhibitor: str, zone: str | None) -> list[str]:
        if not self.asked:
            return [_("Asking the booth…")]
        out = [exhibitor, ""]
        moving = self.mine.get(self.chosen or "") if self.mode is Mode.MOVING else None
        if moving is not None:
            out += [_("Move your {when} meeting to:").format(when=meeting_time(moving.starts_at, zone)), ""]
        out += [f"{i}  {meeting_time(starts, zone)} · {minutes} min · {host}"
                for i, (_sid, host, starts, minutes, _taken) in enumerate(self.free, 1)]
        if not self.free:
            out.append(_("No free meeting times at this booth."))
        if self.mine:
            out += ["", _("Your meetings here:")]
            out += [("▶ " if b.booking_id == self.chosen else "✓ ")
                    + f"{meeting_time(b.starts_at, zone)} · {b.minutes} min · {b.host_name}" for b in self._ordered()]
        out.append("")
        if moving is not None:
            out.append(_("1-9 move it there · V the next one · Esc back"))
        elif self.mine:
            out.append(_("1-9 book · X cancel · V move to another time · B close"))
        else:
            out.append(_("1-9 book · B close"))
        return out
