"""The people cores, exactly: cards, the exchange state machine, leads and CSV, meeting rules."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from server.analytics.events import Event, EventKind
from server.clock import ManualClock
from server.people.cards import CardError, make_card
from server.people.exchange import CardExchanges, ExchangeRefused, ExchangeRules, ExchangeState
from server.people.leads import (
    CSV_COLUMNS,
    LeadError,
    LeadSource,
    Touch,
    check_access,
    check_rating,
    csv_rows,
    looked_at,
    to_csv,
    touch,
)
from server.people.meetings import (
    Booking,
    BookingStatus,
    MeetingError,
    Slot,
    check_booking,
    check_slot,
    local_time,
    reminders_due,
)

T0 = 1_780_000_000.0


def card(name="Li Wei", **kw):
    return make_card(**({"name": name, "company": "Silk Co", "country": "cn", "role": "Buyer", "language": "zh-Hans"} | kw))


# --------------------------------------------------------------------------- cards


def test_a_card_is_normalised():
    c = card(name="  Li Wei ", email="li@example.cn", timezone="Asia/Shanghai")
    assert (c.name, c.country, c.email, c.phone, c.timezone) == ("Li Wei", "CN", "li@example.cn", None, "Asia/Shanghai")
    assert card(email="  ").email is None


@pytest.mark.parametrize("kw, field", [
    (dict(name=""), "name"), (dict(country="XX"), "country"), (dict(language="not a tag"), "language"),
    (dict(timezone="Mars/Olympus"), "timezone"), (dict(email="li@"), "email"), (dict(phone="call me"), "phone"),
    (dict(company="x" * 81), "company"), (dict(role="a\u0000b"), "role"), (dict(name=7), "name"),
])
def test_a_bad_card_field_is_named(kw, field):
    with pytest.raises(CardError) as info:
        card(**kw)
    assert info.value.field == field and str(info.value).startswith(field)


# --------------------------------------------------------------------------- exchange


def exchanges(**rules):
    clock = ManualClock(T0, T0)
    return clock, CardExchanges(clock, ExchangeRules(**rules))


def test_cards_are_seen_only_after_both_consent_and_a_third_sees_nothing():
    clock, book = exchanges()
    x = book.offer("ana", "bo", "b1", offerer_has_card=True, staff="bo")
    assert x.state is ExchangeState.OFFERED
    assert not book.may_see("bo", "ana") and not book.may_see("ana", "bo")  # the offer alone shows nothing
    clock.advance(5)
    done = book.answer(x.id, "bo", accept=True)
    assert (done.state, done.answered_at) == (ExchangeState.ACCEPTED, T0 + 5)
    assert book.may_see("bo", "ana") and book.may_see("ana", "bo")
    assert not book.may_see("cy", "ana") and not book.may_see("cy", "bo")
    assert book.contacts_of("cy") == frozenset()


def test_only_the_recipient_answers_and_only_once():
    _, book = exchanges()
    x = book.offer("ana", "bo", None, True)
    with pytest.raises(ExchangeRefused, match="only the one offered"):
        book.answer(x.id, "cy", accept=True)
    book.answer(x.id, "bo", accept=False)
    with pytest.raises(ExchangeRefused, match="declined already"):
        book.answer(x.id, "bo", accept=True)
    with pytest.raises(ExchangeRefused, match="no card offer"):
        book.answer("nope", "bo", accept=True)


def test_a_decline_holds_off_the_same_offer_for_the_cooldown():
    clock, book = exchanges(decline_cooldown=600)
    x = book.offer("ana", "bo", None, True)
    book.answer(x.id, "bo", accept=False)
    clock.advance(599)
    with pytest.raises(ExchangeRefused) as info:
        book.offer("ana", "bo", None, True)
    assert info.value.code == "cooldown" and "1 minute" in info.value.message
    clock.advance(1)
    assert book.offer("ana", "bo", None, True).state is ExchangeState.OFFERED
    assert not book.may_see("ana", "bo")


def test_an_unanswered_offer_expires_and_cannot_be_accepted_after():
    clock, book = exchanges(offer_ttl=60)
    x = book.offer("ana", "bo", None, True)
    clock.advance(59)
    assert book.expire_due() == []
    clock.advance(1)
    with pytest.raises(ExchangeRefused) as info:
        book.answer(x.id, "bo", accept=True)
    assert info.value.code == "expired" and book.exchanges[x.id].state is ExchangeState.EXPIRED
    y = book.offer("ana", "bo", None, True)  # expiry is no decline: offering again is fine
    clock.advance(60)
    assert [e.id for e in book.expire_due()] == [y.id] and book.expire_due() == []
    assert not book.may_see("bo", "ana")


def test_two_offers_that_cross_are_consent_from_both():
    _, book = exchanges()
    x = book.offer("ana", "bo", None, True)
    y = book.offer("bo", "ana", None, True)
    assert (y.id, y.state) == (x.id, ExchangeState.ACCEPTED)
    assert book.may_see("ana", "bo")
    with pytest.raises(ExchangeRefused, match="exchanged cards already"):
        book.offer("ana", "bo", None, True)


def test_offers_are_rate_limited_and_bounded_while_unanswered():
    clock, book = exchanges(offer_burst=3, offer_rate=0.1, max_pending=2)
    book.offer("ana", "b1", None, True)
    with pytest.raises(ExchangeRefused, match="waiting for an answer"):
        book.offer("ana", "b1", None, True)
    book.offer("ana", "b2", None, True)
    with pytest.raises(ExchangeRefused) as info:
        book.offer("ana", "b3", None, True)
    assert info.value.code == "rate_limited" and "2 offers" in info.value.message
    book.withdraw(next(iter(book.exchanges)), "ana")
    book.offer("ana", "b3", None, True)  # the third token
    book.withdraw(next(x.id for x in book.exchanges.values() if x.recipient == "b3"), "ana")
    with pytest.raises(ExchangeRefused, match="too fast"):
        book.offer("ana", "b4", None, True)
    clock.advance(10)
    assert book.offer("ana", "b4", None, True).state is ExchangeState.OFFERED


def test_no_card_no_offer_and_no_acceptance():
    _, book = exchanges()
    with pytest.raises(ExchangeRefused, match="set your card"):
        book.offer("ana", "bo", None, offerer_has_card=False)
    with pytest.raises(ExchangeRefused, match="yourself"):
        book.offer("ana", "ana", None, True)
    x = book.offer("ana", "bo", None, True)
    with pytest.raises(ExchangeRefused, match="set your card"):
        book.answer(x.id, "bo", accept=True, has_card=False)
    with pytest.raises(ExchangeRefused, match="only the offerer"):
        book.withdraw(x.id, "bo")


def test_a_reloaded_book_keeps_contacts_pending_offers_and_cooldowns():
    clock, book = exchanges()
    a = book.offer("ana", "bo", None, True)
    book.answer(a.id, "bo", True)
    b = book.offer("cy", "bo", None, True)
    book.answer(b.id, "bo", False)
    c = book.offer("dee", "bo", None, True)
    again = CardExchanges(clock, new_id=lambda: "fresh")
    again.load(book.exchanges.values())
    assert again.may_see("ana", "bo") and not again.may_see("cy", "bo")
    with pytest.raises(ExchangeRefused, match="they declined"):
        again.offer("cy", "bo", None, True)
    assert again.answer(c.id, "bo", True).state is ExchangeState.ACCEPTED


# --------------------------------------------------------------------------- leads


def test_touches_make_one_lead_per_visitor_and_booth():
    lead = touch(None, Touch("b1", "v1", "Li", T0 + 10, LeadSource.ORDER, "o1"))
    lead = touch(lead, Touch("b1", "v1", "Li", T0, LeadSource.CARD, "x1"))
    lead = touch(lead, Touch("b1", "v1", "Li", T0 + 20, LeadSource.ORDER, "o2"))
    assert (lead.first_at, lead.last_at, lead.orders, lead.meetings) == (T0, T0 + 20, 2, 0)
    assert lead.sources == (LeadSource.CARD, LeadSource.ORDER) and lead.card_shared
    with pytest.raises(AssertionError):
        touch(lead, Touch("b2", "v1", "Li", T0, LeadSource.CARD, "x2"))


def test_only_the_booths_staff_see_its_leads():
    check_access("b1", "b1")
    for other in ("b2", None):
        with pytest.raises(LeadError, match="only the staff of booth 'b1'"):
            check_access(other, "b1")
    for bad in (0, 6, True, 2.5):
        with pytest.raises(LeadError):
            check_rating(bad)
    assert check_rating(None) is None and check_rating(5) == 5


def test_the_csv_has_one_row_per_lead_shows_cards_only_when_shared_and_defuses_formulas():
    shared = touch(None, Touch("b1", "v1", "liwei", T0, LeadSource.CARD, "x1"))
    order_only = touch(None, Touch("b1", "v2", "=HYPERLINK(\"x\")", T0 + 3600, LeadSource.ORDER, "o1"))
    cards = {"v1": card(name="李伟, \"Wei\"", email="li@example.cn"), "v2": card(name="Secret Person")}
    seen = looked_at([
        Event(T0, EventKind.CATALOGUE_OPENED, "v1", "b1"),
        Event(T0, EventKind.PRODUCT_VIEWED, "v1", "b1", sku="TEA-1"),
        Event(T0, EventKind.PRODUCT_VIEWED, "v1", "b1", sku="TEA-1"),
        Event(T0, EventKind.PRODUCT_VIEWED, "v1", "b2", sku="OTHER"),
    ], "b1")
    data = to_csv(csv_rows([shared, order_only], cards, seen))
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(CSV_COLUMNS) and len(rows) == 3
    one, two = (dict(zip(CSV_COLUMNS, r)) for r in rows[1:])
    assert one["name"] == "李伟, \"Wei\"" and one["email"] == "li@example.cn" and one["country"] == "CN"
    assert one["looked_at"] == "catalogue;TEA-1" and one["sources"] == "card"
    assert one["first_contact_utc"] == "2026-05-28T20:26:40Z"
    assert two["name"] == "'=HYPERLINK(\"x\")" and two["company"] == "" and two["email"] == ""
    assert "Secret Person" not in data.decode("utf-8-sig")


# --------------------------------------------------------------------------- meetings


def slot(id="s1", start=T0 + 3600, minutes=15, host="staff1"):
    return Slot(id, "b1", host, "Aigerim", start, minutes)


def test_a_slot_must_be_future_sensible_and_not_overlap_the_hosts_others():
    check_slot(slot(), [slot("s0", T0 + 3600 - 15 * 60)], T0)  # back to back is fine
    with pytest.raises(MeetingError, match="overlaps"):
        check_slot(slot(), [slot("s0", T0 + 3600 + 14 * 60)], T0)
    check_slot(slot(), [slot("s0", host="staff2")], T0)  # another host's slot at the same time
    with pytest.raises(MeetingError, match="5 to 120 minutes"):
        check_slot(slot(minutes=4), [], T0)
    with pytest.raises(MeetingError, match="future"):
        check_slot(slot(start=T0), [], T0)


def test_a_booking_must_not_clash_with_the_visitors_other_meetings():
    mine = Booking("k1", slot("s0", host="staff2"), "v1", "Li", BookingStatus.BOOKED, T0)
    with pytest.raises(MeetingError, match="you have a meeting then"):
        check_booking(slot(), "v1", [mine], T0)
    cancelled = Booking("k1", slot("s0", host="staff2"), "v1", "Li", BookingStatus.CANCELLED, T0)
    check_booking(slot(), "v1", [cancelled], T0)
    with pytest.raises(MeetingError, match="your own slot"):
        check_booking(slot(), "staff1", [], T0)
    with pytest.raises(MeetingError, match="started"):
        check_booking(slot(), "v1", [], T0 + 3600)
    many = [Booking(f"k{i}", slot(f"m{i}", T0 + 7200 + i * 3600), "v1", "Li", BookingStatus.BOOKED, T0) for i in range(5)]
    with pytest.raises(MeetingError, match="5 bookings"):
        check_booking(slot(), "v1", many, T0)


def test_reminders_are_due_a_few_minutes_before_once_and_not_after_the_meeting():
    b = Booking("k1", slot(), "v1", "Li", BookingStatus.BOOKED, T0)
    start = b.slot.starts_at
    assert reminders_due([b], start - 301) == []
    assert reminders_due([b], start - 300) == [b]
    assert reminders_due([replace(b, reminded=True)], start - 10) == []
    assert reminders_due([b], b.slot.ends_at) == []
    assert reminders_due([replace(b, status=BookingStatus.CANCELLED)], start - 10) == []


def test_times_are_utc_and_shown_in_each_persons_zone():
    noon_utc = 1_780_056_000.0  # 2026-05-29 12:00 UTC
    assert local_time(noon_utc, "UTC") == "2026-05-29 12:00 UTC"
    assert local_time(noon_utc, "Asia/Shanghai") == "2026-05-29 20:00 CST"
    assert local_time(noon_utc, "Asia/Almaty").startswith("2026-05-29 17:00")
