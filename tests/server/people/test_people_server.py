"""Cards and meetings through a real expo-server on loopback: consent before any card is
shown (and a third visitor sees nothing), one booking per slot when two ask at once,
reminders, clear errors, and what was acknowledged survives a SIGKILL of the server."""

from __future__ import annotations

import secrets
import signal
import sqlite3
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from processes import BIN, free_port, start
from wire import WireVisitor

import protocol as p
from server.staff import issue_pass

pytestmark = pytest.mark.e2e

BOOTH = "cn-yunnan-tea"
TOWARDS_THE_BOOTH = (-0.93, 0.37)  # from the spawn (60, 6) to its staff's post (26, 19.5), below the booths' row
SECRET = secrets.token_urlsafe(16)  # the server's staff secret, so the test can issue passes


@pytest.fixture
def server(tmp_path: Path):
    """(a function that joins a visitor, the server process, its data directory)."""
    port = free_port()
    proc = start([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(tmp_path), "--no-watch"],
                 f"http://127.0.0.1:{port}/healthz", env={"EXPO_STAFF_SECRET": SECRET}, log=tmp_path / "server.log")
    url = f"ws://127.0.0.1:{port}/"
    with ExitStack() as stack:
        yield (lambda name, staff=None: WireVisitor(stack, url, name, staff_pass(staff) if staff else None)), proc, tmp_path
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


def staff_pass(booth: str) -> str:
    return issue_pass(SECRET, booth)


def card(name: str, country: str = "CN") -> p.SetCard:
    return p.SetCard(name, f"{name} Trading", country, "Buyer", "en", "Asia/Shanghai", f"{name.lower()}@example.org", None)


def test_cards_are_shown_only_after_both_consent_and_a_third_sees_nothing(server):
    join, proc, data = server
    ana, staff, cy = join("Ana"), join("Aigerim", BOOTH), join("Cy")
    for v in (ana, staff, cy):
        v.send(card(v.name))
        assert v.expect(p.CardSaved).card[0] == v.name
    ana.walk_until_in_view(staff.entity, TOWARDS_THE_BOOTH)  # staff stand at their booth, across the hall
    cy.walk_until_in_view(ana.entity, TOWARDS_THE_BOOTH)

    ana.send(p.OfferCard(staff.entity))
    offer = staff.expect(p.CardOffered)
    assert (offer.entity, offer.name, offer.booth) == (ana.entity, "Ana", BOOTH)  # a name, no card
    assert ana.expect(p.CardAnswer).state == "offered"
    staff.pump(0.3)
    assert staff.seen(p.CardShown) == [] and ana.seen(p.CardShown) == []

    cy.send(p.AnswerCard(offer.exchange_id, True))  # not Cy's to answer
    assert cy.expect(p.Error).code == "not_allowed"
    staff.send(p.AnswerCard(offer.exchange_id, True))
    shown_to_ana = ana.expect(p.CardShown)
    shown_to_staff = staff.expect(p.CardShown)
    assert shown_to_ana.card[0] == "Aigerim" and shown_to_ana.entity == staff.entity
    assert shown_to_staff.card[0] == "Ana" and shown_to_staff.card[6] == "ana@example.org"

    cy.send(p.OfferCard(ana.entity))  # Cy tries: Ana declines, and Cy may not insist
    ana.send(p.AnswerCard(ana.expect(p.CardOffered).exchange_id, False))
    assert cy.expect(p.CardAnswer, where=lambda m: m.state == "declined")
    cy.send(p.OfferCard(ana.entity))
    assert cy.expect(p.Error).code == "cooldown"
    cy.pump(0.5)
    assert cy.seen(p.CardShown, p.CardOffered) == []
    assert all("Aigerim" not in repr(m) and "ana@example.org" not in repr(m) for m in cy.inbox)

    proc.send_signal(signal.SIGKILL)  # acknowledged: the lead and the event are on disk
    proc.wait()
    events = sqlite3.connect(data / "events.sqlite3").execute(
        "SELECT kind, visitor, booth, other FROM events WHERE kind = 'card_exchanged'").fetchall()
    assert events == [("card_exchanged", ana.welcome.visitor_id, BOOTH, staff.welcome.visitor_id)]
    leads = sqlite3.connect(data / "people.sqlite3").execute("SELECT booth, visitor, sources FROM leads").fetchall()
    assert leads == [(BOOTH, ana.welcome.visitor_id, "card")]


def test_two_visitors_booking_one_slot_at_once_one_gets_it(server):
    join, proc, data = server
    staff = join("Aigerim", BOOTH)
    ana, bo = join("Ana"), join("Bo")
    starts = time.time() + 3600
    staff.send(p.PublishSlot(starts, 15))
    (slot_id, host, at, minutes, taken) = staff.expect(p.Slots).items[0]
    assert (host, minutes, taken) == ("Aigerim", 15, False) and abs(at - starts) < 1e-3
    ana.send(p.BookSlot(slot_id))
    bo.send(p.BookSlot(slot_id))  # before Ana's answer came back
    outcomes = {}
    for v in (ana, bo):
        v.pump(1.0)
        booked = v.seen(p.Booking)
        errors = v.seen(p.Error)
        outcomes[v.name] = booked[0].status if booked else errors[0].code
    assert sorted(outcomes.values()) == ["booked", "taken"], outcomes
    winner = ana if outcomes["Ana"] == "booked" else bo
    assert staff.expect(p.Booking).visitor_name == winner.name  # the host hears of it
    loser = bo if winner is ana else ana
    for v in (winner, loser):
        v.inbox.clear()
        v.send(p.ListSlots(BOOTH))
        assert v.expect(p.Slots).items[0][4] is True
        v.pump(0.5)
    # the list comes with the asker's own booking there (a restarted client can cancel it), and only theirs
    assert [(b.slot_id, b.status) for b in winner.seen(p.Booking)] == [(slot_id, "booked")]
    assert loser.seen(p.Booking) == []

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = sqlite3.connect(data / "people.sqlite3").execute("SELECT visitor, status FROM bookings").fetchall()
    assert rows == [(winner.welcome.visitor_id, "booked")]
    kinds = sqlite3.connect(data / "events.sqlite3").execute("SELECT kind, visitor FROM events WHERE kind = 'meeting_booked'").fetchall()
    assert kinds == [("meeting_booked", winner.welcome.visitor_id)]


def test_reminders_cancel_and_reschedule(server):
    join, _, _ = server
    staff = join("Aigerim", BOOTH)
    ana = join("Ana")
    soon = time.time() + 301.5  # its reminder is due in 1.5 s
    staff.send(p.PublishSlot(soon, 10))
    soon_id = staff.expect(p.Slots).items[0][0]
    staff.send(p.PublishSlot(soon + 3600, 10))
    later_id = next(s[0] for s in staff.expect(p.Slots).items if s[0] != soon_id)
    ana.send(p.BookSlot(soon_id))
    booking = ana.expect(p.Booking)
    reminder = ana.expect(p.MeetingReminder, timeout=5)
    assert (reminder.booking_id, reminder.booth, reminder.with_name) == (booking.booking_id, BOOTH, "Aigerim")
    assert staff.expect(p.MeetingReminder, timeout=5).with_name == "Ana"

    ana.send(p.RescheduleBooking(booking.booking_id, later_id))
    old = ana.expect(p.Booking, where=lambda m: m.status == "cancelled")
    new = ana.expect(p.Booking, where=lambda m: m.status == "booked")
    assert old.booking_id == booking.booking_id and new.slot_id == later_id
    ana.send(p.CancelBooking(new.booking_id))
    assert ana.expect(p.Booking).status == "cancelled"
    assert staff.expect(p.Booking, where=lambda m: m.booking_id == new.booking_id and m.status == "cancelled")


def test_bad_requests_get_clear_errors_and_change_nothing(server):
    join, _, _ = server
    ana = join("Ana")
    ana.send(p.SetCard("Ana", "Co", "XX", "Buyer", "en", "UTC", None, None))
    error = ana.expect(p.Error)
    assert error.code == "bad_card" and error.message.startswith("country")
    ana.send(p.OfferCard(ana.entity + 100))
    assert ana.expect(p.Error).code == "not_allowed"
    ana.send(p.PublishSlot(time.time() + 3600, 15))
    assert "only booth staff" in ana.expect(p.Error).message
    ana.send(p.BookSlot("slot_nope"))
    assert ana.expect(p.Error).code == "unknown"
    ana.send(p.ViewProduct(BOOTH, "NO-SUCH-SKU"))
    assert ana.expect(p.Error).code == "unknown_product"
    ana.send(p.ListSlots("no-such-booth"))
    assert ana.expect(p.Error).code == "unknown_booth"
    bo = join("Bo")
    bo.send(card("Bo"))
    bo.expect(p.CardSaved)
    bo.send(p.OfferCard(ana.entity))
    ana.send(p.AnswerCard(ana.expect(p.CardOffered).exchange_id, True))
    assert ana.expect(p.Error).code == "no_card"  # Ana has no card yet: accepting would show nothing
