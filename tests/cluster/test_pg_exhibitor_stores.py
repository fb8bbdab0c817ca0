"""The exhibitors' stores on PostgreSQL keep the SQLite stores' contract (the same
assertions run against both): one live booking per slot, also when two processes race for
it; rescheduling all or nothing; a touch counted once; reminders taken once; the event log
append-only and whole batches or nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from server.analytics.events import Event, EventKind, PositionSecond
from server.analytics.pg_store import PgEventLog
from server.analytics.store import SQLiteEventLog
from server.people.cards import make_card
from server.people.leads import LeadSource, Touch
from server.people.meetings import BookingStatus, MeetingError, Slot
from server.people.pg_store import PgPeopleStore
from server.people.store import SQLitePeopleStore

T0 = 1_780_000_000.0
RACE = Path(__file__).parent.parent / "server" / "people" / "book_race.py"


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path) -> str:
    return str(tmp_path / "people.sqlite3") if request.param == "sqlite" else request.getfixturevalue("fresh_database")


def open_people(where: str) -> SQLitePeopleStore | PgPeopleStore:
    return PgPeopleStore(where) if where.startswith("postgresql://") else SQLitePeopleStore(where)


@pytest.fixture
def people(where) -> Iterator[SQLitePeopleStore | PgPeopleStore]:
    store = open_people(where)
    yield store
    store.close()


def slot(i: int, start: float = T0 + 3600, host: str = "staff1") -> Slot:
    return Slot(f"s{i}", "b1", host, "Aigerim", start, 15)


def test_one_live_booking_per_slot_cancel_and_rebook(people):
    people.publish_slot(slot(0), T0)
    with pytest.raises(MeetingError, match="overlaps"):
        people.publish_slot(slot(1, T0 + 3600 + 600), T0)
    assert people.book("k1", "s0", "v1", "Li", T0).status is BookingStatus.BOOKED
    with pytest.raises(MeetingError) as info:
        people.book("k2", "s0", "v2", "Bo", T0)
    assert info.value.code == "taken"
    with pytest.raises(MeetingError, match="used already"):
        people.book("k1", "s0", "v3", "Cy", T0)
    assert people.cancel("k1", "v1").status is BookingStatus.CANCELLED
    assert people.book("k2", "s0", "v2", "Bo", T0).visitor == "v2"
    assert people.slots("b1", T0) == [(slot(0), True)]


def test_rescheduling_is_all_or_nothing(people):
    for i in range(3):
        people.publish_slot(slot(i, T0 + 3600 * (i + 1)), T0)
    people.book("k1", "s0", "v1", "Li", T0)
    people.book("k2", "s2", "v2", "Bo", T0)
    with pytest.raises(MeetingError, match="someone else"):
        people.reschedule("k1", "k1b", "s2", "v1", T0)
    assert [(b.id, b.status) for b in people.bookings_of("v1")] == [("k1", BookingStatus.BOOKED)]
    old, new = people.reschedule("k1", "k1b", "s1", "v1", T0)
    assert (old.status, new.slot.id) == (BookingStatus.CANCELLED, "s1")


def test_touches_count_once_reminders_once_cards_and_notes_kept(people):
    t = Touch("b1", "v1", "Li", T0, LeadSource.ORDER, "o1")
    people.add_touch(t)
    people.annotate("b1", "v1", "wants 40 t", 4)
    lead = people.add_touch(t)
    assert (lead.orders, lead.notes, lead.rating) == (1, "wants 40 t", 4)
    people.set_card("v1", make_card("李伟", "Silk Co", "CN", "Buyer", "zh-Hans"), T0)
    people.set_card("v1", make_card("Li Wei", "Silk Co", "CN", "Buyer", "zh-Hans"), T0 + 1)
    assert people.card("v1").name == "Li Wei" and people.card_holders() == ["v1"]
    people.publish_slot(slot(0), T0)
    people.book("k1", "s0", "v1", "Li", T0)
    assert people.take_due_reminders(T0 + 3600 - 301, 300) == []
    assert [b.id for b in people.take_due_reminders(T0 + 3600 - 300, 300)] == ["k1"]
    assert people.take_due_reminders(T0 + 3600 - 100, 300) == []


def test_two_processes_racing_for_twenty_slots_get_one_each(where, people):
    count = 20
    for i in range(count):
        people.publish_slot(Slot(f"s{i}", "b1", f"host{i}", "Host", T0 + 3600, 15), T0)
    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, str(RACE), where, who, repr(start), str(count), "0.05"],
                              stdout=subprocess.PIPE, text=True) for who in ("ana", "bo")]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        results.append(dict(line.split() for line in out.splitlines()))
    for i in range(count):
        assert sorted((results[0][str(i)], results[1][str(i)])) == ["ok", "taken"], i
    assert [taken for _, taken in people.slots("b1", T0)] == [True] * count


@pytest.fixture
def log(where) -> Iterator[SQLiteEventLog | PgEventLog]:
    store = PgEventLog(where) if where.startswith("postgresql://") else SQLiteEventLog(where)
    yield store
    store.close()


def test_the_event_log_round_trips_refuses_changes_and_stores_whole_batches(log, where):
    events = [Event(10.0, EventKind.BOOTH_ENTERED, "a", "b1", "main"),
              Event(19.5, EventKind.BOOTH_LEFT, "a", "b1", "main", dwell=9.5),
              Event(20.0, EventKind.ORDER_PAID, "a", "b2", "main", sku="S", ref="o1", amount_minor=1250, currency="CNY")]
    stored = log.append(events[:2], [PositionSecond.of(10.0, "main", np.array([[1.5, 2.5], [0.1, 0.2]]))])
    stored += log.append(events[2:])
    assert [e.seq for e in stored] == [1, 2, 3] and log.events() == stored and log.events("b2") == stored[2:]
    assert log.positions("main").tolist() == [[1.5, 2.5], [0.1, 0.2]] and log.booths() == ["b1", "b2"]
    with pytest.raises(ValueError, match="stored already"):
        log.append([events[0], stored[0]])
    assert len(log.events()) == 3
    assert log.forget_positions(10.0) == 0 and log.forget_positions(10.5) == 2  # the retention rule's delete, in samples
    assert len(log.positions("main")) == 0 and len(log.events()) == 3  # events are never pruned
    if where.startswith("postgresql://"):
        with psycopg.connect(where, autocommit=True) as db:
            for sql in ("UPDATE events SET dwell = 0", "DELETE FROM events"):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    db.execute(sql)


LEGACY_POSITIONS = """CREATE TABLE positions (at {real} NOT NULL, visitor TEXT NOT NULL, hall TEXT NOT NULL,
    x {real} NOT NULL, y {real} NOT NULL)"""  # the table as main wrote it before position_seconds


def test_a_database_with_the_old_positions_table_is_read_and_pruned_with_the_new(where):
    """The heatmap of the same samples is the same whether they were stored a row per
    visitor-second (an old database) or a row per hall-second, for any cell size."""
    from server.analytics.heatmap import heatmap
    from world.loader import default_expo_path, load_expo

    hall = load_expo(default_expo_path()).halls[0]
    rng = np.random.default_rng(3)
    xy = rng.uniform(-1, hall.width + 1, (60, 25, 2))  # 60 seconds of 25 visitors, some off the floor
    xy[:, :5] = rng.integers(0, 20, (60, 5, 2)) * 0.3  # on cell edges (0.3 m cells and 0.1-step floats)
    old = [(float(t), f"v{i}", hall.id, *map(float, xy[t, i])) for t in range(30) for i in range(25)]
    old += [(5.0, "w", "elsewhere", 1.0, 1.0)]
    if where.startswith("postgresql://"):
        with psycopg.connect(where, autocommit=True) as db:
            db.execute(LEGACY_POSITIONS.format(real="DOUBLE PRECISION"))
            with db.cursor() as cur:
                cur.executemany("INSERT INTO positions VALUES (%s, %s, %s, %s, %s)", old)
        log: SQLiteEventLog | PgEventLog = PgEventLog(where)
    else:
        import sqlite3

        with sqlite3.connect(where) as db:
            db.execute(LEGACY_POSITIONS.format(real="REAL"))
            db.executemany("INSERT INTO positions VALUES (?, ?, ?, ?, ?)", old)
        log = SQLiteEventLog(where)
    try:
        assert log.legacy
        log.append([], [PositionSecond.of(float(t), hall.id, xy[t]) for t in range(30, 60)])
        assert sorted(map(tuple, log.positions(hall.id).tolist())) == sorted(map(tuple, xy.reshape(-1, 2).tolist()))
        assert len(log.positions(hall.id, 29.0, 31.0)) == 50 and len(log.positions("elsewhere")) == 1
        for cell in (0.3, 1.0, 2.0, 2.5):
            assert (heatmap(log.positions(hall.id), hall, cell).counts == heatmap(xy.reshape(-1, 2), hall, cell).counts).all()
        assert log.forget_positions(31.0) == 30 * 25 + 1 + 25  # old rows and new alike, counted in samples
        assert len(log.positions(hall.id)) == 29 * 25
    finally:
        log.close()
