"""The meetings panel's rules: numbers book a free time, X asks before it cancels, V then a
number moves your meeting (one RescheduleBooking), Esc steps back without sending."""

from __future__ import annotations

import protocol as p
from client.desktop.meetings import Book, Cancel, MeetingDesk, Mode, Move

BOOTH = "kz-altai-honey"
T = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def slots(*free: str) -> p.Slots:
    return p.Slots(BOOTH, tuple((sid, "Dana", T + i * 1800, 30, False) for i, sid in enumerate(free))
                   + (("taken", "Dana", T + 7200, 30, True),))


def booking(bid: str, slot: str, at: float, status: str = "booked", booth: str = BOOTH) -> p.Booking:
    return p.Booking(bid, slot, booth, "Dana", "Ana", at, 30, status)


def test_numbers_book_free_times_only_and_the_list_says_how():
    desk = MeetingDesk(BOOTH)
    assert desk.lines("Altai Honey", None) == ["Asking the booth…"]
    desk.received(slots("s1", "s2"))
    lines = desk.lines("Altai Honey", "Asia/Almaty")
    assert lines[2].startswith("1  13:00 Asia/Almaty · 30 min · Dana"), lines  # UTC+5
    assert [line[:3] for line in lines if " min · " in line] == ["1  ", "2  "]  # the taken one is not offered
    assert lines[-1] == "1-9 book · B close"
    assert desk.number(1) == Book("s2")
    assert desk.number(2) is None  # no third free time
    assert desk.cancel_key() is False and desk.move_key() is False  # nothing of yours here


def test_x_asks_first_and_y_cancels_n_keeps():
    desk = MeetingDesk(BOOTH)
    desk.received(slots("s1"))
    desk.updated(booking("b1", "s9", T + 3600))
    desk.updated(booking("elsewhere", "s8", T, booth="other-booth"))  # another booth's: not listed
    assert list(desk.mine) == ["b1"]
    assert "X cancel" in desk.lines("Altai Honey", None)[-1]
    assert desk.cancel_key() is True and desk.mode is Mode.CONFIRM_CANCEL
    assert desk.question(None).startswith("Cancel your meeting with Dana at 09:00 UTC?")
    assert desk.number(0) is None  # a number does not book while the question waits
    assert desk.answer(False) is None and desk.mode is Mode.BROWSING  # N keeps it
    desk.cancel_key()
    assert desk.answer(True) == Cancel("b1")
    desk.updated(booking("b1", "s9", T + 3600, "cancelled"))
    assert desk.mine == {} and desk.question(None) is None


def test_v_then_a_number_moves_the_meeting_and_esc_steps_back():
    desk = MeetingDesk(BOOTH)
    desk.received(slots("s1", "s2"))
    desk.updated(booking("b1", "s9", T + 9000))
    desk.updated(booking("b2", "s7", T + 5400))
    assert desk.move_key() is True
    assert desk.chosen == "b2"  # the next one first
    assert desk.move_key() and desk.chosen == "b1"  # V again: the one after
    assert "Move your 10:30 UTC meeting to:" in desk.lines("Altai Honey", None)
    assert desk.back() is True and desk.mode is Mode.BROWSING
    assert desk.back() is False  # Esc again closes the panel, the app's business
    desk.move_key()
    assert desk.number(1) == Move("b2", "s2") and desk.mode is Mode.BROWSING
    assert desk.number(0) == Book("s1")  # the move is done: numbers book again
