"""The SQLite people store: cards, exchanges, leads and meetings, and the rules the
database keeps: one live booking per slot (across processes), a touch counted once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import ROOT

from server.clock import ManualClock
from server.people.cards import make_card
from server.people.exchange import CardExchanges
from server.people.leads import LeadError, LeadSource, Touch
from server.people.meetings import BookingStatus, MeetingError, Slot
from server.people.store import SQLitePeopleStore

T0 = 1_780_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> SQLitePeopleStore:
    s = SQLitePeopleStore(tmp_path / "people.db")
    yield s
    s.close()


def test_cards_round_trip_and_are_replaced(store, tmp_path):
    store.set_card("v1", make_card("李伟", "Silk Co", "CN", "Buyer", "zh-Hans", "Asia/Shanghai", "li@example.cn"), T0)
    store.set_card("v1", make_card("Li Wei", "Silk Co", "CN", "Buyer", "zh-Hans", "Asia/Shanghai"), T0 + 1)
    again = SQLitePeopleStore(tmp_path / "people.db")
    assert again.card("v1") == make_card("Li Wei", "Silk Co", "CN", "Buyer", "zh-Hans", "Asia/Shanghai")
    assert again.card("v2") is None and again.cards([f"v{i}" for i in range(1200)]).keys() == {"v1"}
    assert again.card_holders() == ["v1"]


def test_exchanges_survive_a_restart_with_their_consent(store, tmp_path):
    clock = ManualClock(T0, T0)
    book = CardExchanges(clock)
    x = book.offer("ana", "bo", "b1", True, staff="bo")
    assert x.lead_visitor == "ana"
    store.save_exchange(x)
    store.save_exchange(book.answer(x.id, "bo", True))
    y = book.offer("cy", "bo", None, True)
    store.save_exchange(y)
    again = CardExchanges(clock, new_id=lambda: "z")
    again.load(SQLitePeopleStore(tmp_path / "people.db").exchanges())
    assert again.may_see("ana", "bo") and not again.may_see("cy", "bo")
    assert again.exchanges[y.id] == y and again.exchanges[x.id].staff == "bo"


def test_a_touch_counts_once_and_notes_and_rating_stay(store):
    t = Touch("b1", "v1", "Li", T0, LeadSource.ORDER, "o1")
    store.add_touch(t)
    store.annotate("b1", "v1", "wants 40 t of tea", 4)
    lead = store.add_touch(t)  # the same order again: a retry
    assert (lead.orders, lead.notes, lead.rating) == (1, "wants 40 t of tea", 4)
    lead = store.add_touch(Touch("b1", "v1", "Li", T0 + 9, LeadSource.MEETING, "k1"))
    assert (lead.orders, lead.meetings, lead.sources, lead.notes) == (1, 1, (LeadSource.ORDER, LeadSource.MEETING), "wants 40 t of tea")
    store.add_touch(Touch("b2", "v1", "Li", T0, LeadSource.CARD, "x1"))
    assert [lead.booth for lead in store.leads("b1")] == ["b1"] and len(store.leads("b2")) == 1
    assert store.annotate("b1", "v1", None, None).notes == "wants 40 t of tea"
    with pytest.raises(LeadError):
        store.annotate("b1", "v1", "x", 9)
    with pytest.raises(KeyError):
        store.annotate("b1", "nobody", "x", 1)
    assert store.leads("b1")[0].rating is None


def slot(i: int, start: float = T0 + 3600, host: str = "staff1", minutes: int = 15) -> Slot:
    return Slot(f"s{i}", "b1", host, "Aigerim", start, minutes)


def test_a_slot_is_booked_once_cancelled_and_booked_again(store):
    store.publish_slot(slot(0), T0)
    with pytest.raises(MeetingError, match="overlaps"):
        store.publish_slot(slot(1, T0 + 3600 + 600), T0)
    with pytest.raises(MeetingError, match="exists already"):
        store.publish_slot(slot(0, T0 + 9000), T0)
    first = store.book("k1", "s0", "v1", "Li", T0)
    assert first.status is BookingStatus.BOOKED and first.slot == slot(0)
    with pytest.raises(MeetingError) as info:
        store.book("k2", "s0", "v2", "Bo", T0)
    assert info.value.code == "taken"
    assert store.slots("b1", T0) == [(slot(0), True)]
    with pytest.raises(MeetingError, match="no booking"):
        store.cancel("k1", "v2")  # not theirs
    assert store.cancel("k1", "v1").status is BookingStatus.CANCELLED
    with pytest.raises(MeetingError, match="cancelled already"):
        store.cancel("k1", "v1")
    assert store.book("k2", "s0", "v2", "Bo", T0).visitor == "v2"
    assert store.cancel("k2", "staff1").status is BookingStatus.CANCELLED  # the host may cancel
    with pytest.raises(MeetingError, match="no slot"):
        store.book("k3", "nope", "v2", "Bo", T0)


def test_rescheduling_moves_the_booking_or_leaves_it_where_it_was(store):
    for i in range(3):
        store.publish_slot(slot(i, T0 + 3600 * (i + 1)), T0)
    store.book("k1", "s0", "v1", "Li", T0)
    store.book("k2", "s2", "v2", "Bo", T0)
    with pytest.raises(MeetingError, match="someone else"):
        store.reschedule("k1", "k1b", "s2", "v1", T0)
    assert [(b.id, b.status) for b in store.bookings_of("v1")] == [("k1", BookingStatus.BOOKED)]
    old, moved = store.reschedule("k1", "k1b", "s1", "v1", T0)
    assert moved.slot.id == "s1" and (old.id, old.status) == ("k1", BookingStatus.CANCELLED)
    assert [(b.id, b.status) for b in store.bookings_of("v1")] == [("k1", BookingStatus.CANCELLED), ("k1b", BookingStatus.BOOKED)]
    assert [t for _, t in store.slots("b1", T0)] == [False, True, True]


def test_reminders_are_taken_once(store):
    store.publish_slot(slot(0), T0)
    store.book("k1", "s0", "v1", "Li", T0)
    assert store.take_due_reminders(T0 + 3600 - 301, 300) == []
    (due,) = store.take_due_reminders(T0 + 3600 - 300, 300)
    assert due.id == "k1" and due.reminded
    assert store.take_due_reminders(T0 + 3600 - 200, 300) == []


def test_two_processes_booking_the_same_slots_at_once_get_one_each(tmp_path: Path):
    path = tmp_path / "people.db"
    store = SQLitePeopleStore(path)
    count = 20
    for i in range(count):
        store.publish_slot(Slot(f"s{i}", "b1", f"host{i}", "Host", T0 + 3600, 15), T0)
    start = time.time() + 1.5  # both processes are up by then
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("book_race.py")), str(path), who,
                               repr(start), str(count), "0.05"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for who in ("ana", "bo")]
    results = {}
    for who, proc in zip(("ana", "bo"), procs):
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        results[who] = dict(line.split() for line in out.splitlines())
    for i in range(count):
        outcome = sorted((results["ana"][str(i)], results["bo"][str(i)]))
        assert outcome == ["ok", "taken"], (i, outcome)
    booked = [taken for _, taken in store.slots("b1", T0)]
    assert booked == [True] * count
    rows = store.db.execute("SELECT slot_id, COUNT(*) FROM bookings WHERE status = 'booked' GROUP BY slot_id").fetchall()
    assert all(n == 1 for _, n in rows) and len(rows) == count
