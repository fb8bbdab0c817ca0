"""The deal's state machine without I/O: each transition once, retries change nothing,
every wrong move refused with its code; and the SQLite store keeps deals whole and refuses
a write from a state the deal has left."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from server.deals import machine as m
from server.deals.machine import DealRefused, DealState
from server.deals.store import StaleDeal, open_deal_store

NOW = 1_790_000_000.0
TIERS = ((1, "10.00"), (100, "8.50"), (1000, "7.25"))


def rfq(qty: int = 150) -> m.Deal:
    return m.request("po_1", "k1", "mei", "kz-honey", "HONEY-1", qty, "CIF", "CN", NOW)


def quoted(qty: int = 150, valid_for: float = 60.0) -> m.Deal:
    quotation = m.make_quotation(TIERS, "USD", valid_for, 14, 30, NOW)
    return m.quote(rfq(qty), quotation, "aigerim", "acct_booth", NOW)


def deposit(deal: m.Deal, **changes) -> m.Deposit:
    base = m.Deposit("esc_1", "pending", "acct_booth", deal.deposit_minor or 0, "USD", "MYR", deal.id,
                     "uetr-1", "fxl_1", "acct_mei")
    return replace(base, **changes)


def refused(code: str, move, *args) -> str:
    with pytest.raises(DealRefused) as caught:
        move(*args)
    assert caught.value.code == code
    return caught.value.message


def test_tiers_price_by_quantity_and_the_deposit_is_a_share_of_the_total():
    deal = quoted(150)
    assert deal.quote is not None and deal.quote.unit_price(150) == Decimal("8.50")
    assert (deal.total_minor, deal.deposit_minor, deal.balance_minor) == (127500, 38250, 89250)
    assert quoted(1000).total_minor == 725000 and quoted(99).total_minor == 99000


def test_a_deal_runs_requested_quoted_ordered_shipped_delivered_and_retries_change_nothing():
    deal = quoted()
    ordered = m.order(deal, "mei", deposit(deal), NOW + 1)
    assert (ordered.state, ordered.escrow_id, ordered.uetr, ordered.fx_lock_id) == (DealState.ORDERED, "esc_1", "uetr-1", "fxl_1")
    assert m.order(ordered, "mei", deposit(deal), NOW + 2) is ordered
    shipped = m.bill_balance(m.ship(ordered, NOW + 3), "pi_1", NOW + 3)
    assert m.ship(shipped, NOW + 4) is shipped
    refused("wrong_state", m.deliver, shipped, "created", NOW + 5)
    delivered = m.deliver(shipped, "succeeded", NOW + 5)
    assert delivered.state is DealState.DELIVERED and m.deliver(delivered, None, NOW + 6) is delivered
    refused("wrong_state", m.cancel, delivered, True, None, NOW + 7)


def test_wrong_moves_are_refused_with_their_code():
    assert "FOB" in refused("bad_incoterm", m.request, "po_1", "k", "mei", "b", "s", 1, "FOX", "CN", NOW)
    refused("bad_field", m.request, "po_1", "k", "mei", "b", "s", 1, "FOB", "XX", NOW)
    refused("bad_field", m.make_quotation, TIERS, "BTC", 60.0, 1, 30, NOW)
    refused("bad_field", m.make_quotation, ((5, "1"), (5, "2")), "USD", 60.0, 1, 30, NOW)
    refused("bad_field", m.make_quotation, ((1, "1.001"),), "USD", 60.0, 1, 30, NOW)
    refused("bad_field", m.make_quotation, ((1, "-1"),), "USD", 60.0, 1, 30, NOW)
    refused("bad_field", m.quote, rfq(5), m.make_quotation(((10, "1"),), "USD", 60.0, 1, 30, NOW), "a", "acct", NOW)
    deal = quoted()
    refused("not_allowed", m.order, deal, "cy", deposit(deal), NOW)
    refused("expired", m.order, deal, "mei", deposit(deal), NOW + 60)
    assert "not pending" in refused("bad_deposit", m.order, deal, "mei", deposit(deal, status="voided"), NOW)
    refused("bad_deposit", m.order, deal, "mei", deposit(deal, amount=1), NOW)
    refused("bad_deposit", m.order, deal, "mei", deposit(deal, payee_account="acct_other"), NOW)
    refused("bad_deposit", m.order, deal, "mei", deposit(deal, end_to_end_id="po_2"), NOW)
    assert "FX lock" in refused("bad_deposit", m.order, deal, "mei", deposit(deal, fx_lock_id=None), NOW)
    refused("wrong_state", m.ship, deal, NOW)
    refused("not_allowed", m.cancel, deal, False, "other-booth", NOW)
    refused("wrong_state", m.quote, m.cancel(deal, True, None, NOW), deal.quote, "a", "acct", NOW)


def test_only_an_unanswered_quotation_expires_and_a_lapsed_deposit_ends_the_deal():
    deal = quoted(valid_for=60.0)
    assert m.expire(deal, NOW + 59) is None
    assert m.expire(deal, NOW + 60).state is DealState.EXPIRED  # type: ignore[union-attr]
    ordered = m.order(deal, "mei", deposit(deal), NOW + 1)
    assert m.expire(ordered, NOW + 1e6) is None
    assert m.deposit_lapsed(ordered, "pending", None, NOW) is None
    assert m.deposit_lapsed(ordered, "voided", "expired", NOW).state is DealState.EXPIRED  # type: ignore[union-attr]


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path) -> str | None:
    """The database URL of a deal store (None: a SQLite file in tmp_path)."""
    return request.getfixturevalue("fresh_database") if request.param == "postgresql" else None


def test_the_store_keeps_deals_whole_and_refuses_a_stale_write(where, tmp_path):
    store = open_deal_store(where, tmp_path)
    first = store.add(rfq())
    assert store.add(replace(rfq(), id="po_2")) == first  # the same buyer's key: the same deal
    deal = quoted()
    store.save(deal, DealState.REQUESTED)
    with pytest.raises(StaleDeal):
        store.save(deal, DealState.REQUESTED)
    reopened = open_deal_store(where, tmp_path)  # another process, or a restart
    assert reopened.get("po_1") == deal and reopened.of_buyer("mei") == [deal] and reopened.of_booth("kz-honey") == [deal]
    assert reopened.in_states((DealState.QUOTED,)) == [deal] and reopened.in_states((DealState.ORDERED,)) == []


def test_two_processes_on_postgresql_keep_one_deal_per_key_and_one_transition(fresh_database, tmp_path):
    """Two hall processes' stores on one PostgreSQL: the same RFQ key twice is one deal, and of
    two racing moves from the same state only the first lands."""
    import threading

    one, other = open_deal_store(fresh_database, tmp_path), open_deal_store(fresh_database, tmp_path)
    got: list[m.Deal] = []
    racers = [threading.Thread(target=lambda s=s, i=i: got.append(s.add(replace(rfq(), id=f"po_{i}"))))
              for i, s in enumerate((one, other, one, other))]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    assert len({d.id for d in got}) == 1 and len(one.of_buyer("mei")) == 1
    first = got[0]
    deal = quoted()
    one.save(replace(deal, id=first.id), DealState.REQUESTED)
    with pytest.raises(StaleDeal):
        other.save(replace(deal, id=first.id), DealState.REQUESTED)
    assert other.get(first.id).state is DealState.QUOTED
    one.close()
    other.close()
