"""FX math (pure) and conversions through the bank's own FX accounts (API)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from bankutil import assert_sound
from hypothesis import given
from hypothesis import strategies as st

from bank import fx
from bank.ledger import AccountKind
from bank.service import internal_account_id


def test_minor_units_come_from_iso_4217() -> None:
    assert fx.minor_units("MYR") == 2
    assert fx.minor_units("VND") == 0
    # CLDR's display precision says 0 for these (and has changed between babel releases);
    # ISO 4217 says 2, and a stored balance must keep its meaning whatever babel is installed
    assert [fx.minor_units(c) for c in ("RSD", "HUF", "IDR")] == [2, 2, 2]
    assert len(fx.CURRENCIES) == 24 and "USD" in fx.CURRENCIES


def test_same_currency_has_no_fx_and_no_fee() -> None:
    q = fx.quote("MYR", "MYR", 12345)
    assert (q.debit, q.fx_amount, q.fee, q.is_conversion) == (12345, 12345, 0, False)


@pytest.mark.parametrize("source, target, amount, fx_amount, fee", [
    # 1500.00 KZT = 1500/520*4.25 MYR = 12.2596 -> 1226 sen, fee ceil(6.13) = 7
    ("MYR", "KZT", 150_000, 1226, 7),
    # 1.00 USD = 26100 VND exactly (VND has no minor unit); fee ceil(130.5) = 131
    ("VND", "USD", 100, 26100, 131),
    # 26100 VND = 1.00 USD exactly; fee ceil(0.5) = 1 cent
    ("USD", "VND", 26100, 100, 1),
    # 0.01 IDR costs a fraction of a cent: rounded up to one cent, plus a one-cent fee
    ("USD", "IDR", 1, 1, 1),
    # 100.00 EUR = 100/0.857*345 = 40256.709 HUF -> 4025671 fillér, fee ceil(20128.35)
    ("HUF", "EUR", 10_000, 4_025_671, 20_129),
])
def test_known_conversions(source, target, amount, fx_amount, fee) -> None:
    q = fx.quote(source, target, amount)
    assert (q.fx_amount, q.fee, q.debit) == (fx_amount, fee, fx_amount + fee)


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(fx.UnknownCurrency):
        fx.quote("MYR", "XXX", 100)
    with pytest.raises(fx.UnknownCurrency):
        fx.minor_units("BTC")


@given(st.sampled_from(fx.CURRENCIES), st.sampled_from(fx.CURRENCIES), st.integers(1, 10**12))
def test_rounding_always_favours_the_bank_by_less_than_a_unit_each(source, target, amount) -> None:
    q = fx.quote(source, target, amount)
    if source == target:
        assert q.debit == amount
        return
    mid = fx.mid_convert(amount, target, source)
    assert mid <= q.fx_amount < mid + 1
    assert mid * fx.DEFAULT_SPREAD <= q.fee < mid * fx.DEFAULT_SPREAD + 1
    # converting back what the bank paid out never exceeds what the payer paid
    assert fx.mid_convert(q.target_amount, target, source) * (1 + fx.DEFAULT_SPREAD) <= q.debit


async def test_cross_currency_payment_goes_through_the_fx_accounts(bank, platform, new_visitor, storage) -> None:
    visitor = await new_visitor("MYR")
    merchant = await platform.create_merchant("Almaty Apples", "KZT")
    before = (await visitor.me()).balance
    intent = await platform.create_intent(merchant.id, 150_000, "KZT", metadata={"sku": "apple-box"})
    quote = await visitor.quote("MYR", "KZT", 150_000)
    paid = await visitor.confirm_intent(intent.id)

    assert paid.status == "succeeded" and paid.payment is not None
    assert (paid.payment.debit_amount, paid.payment.debit_currency, paid.payment.fee) == (1233, "MYR", 7)
    assert quote.debit_amount == 1233 and quote.fee == 7
    assert (await visitor.me()).balance == before - 1233
    assert (await platform.get_account(merchant.id)).balance == 150_000

    legs = {e.account_id: e.amount for e in storage_entries(storage) if e.transaction_id == paid.payment.transaction_id}
    assert legs == {
        (await visitor.me()).id: -1233,
        internal_account_id(AccountKind.FX, "MYR"): 1226,
        internal_account_id(AccountKind.FEES, "MYR"): 7,
        internal_account_id(AccountKind.FX, "KZT"): -150_000,
        merchant.id: 150_000,
    }
    assert_sound(storage)


async def test_same_currency_payment_has_two_legs(platform, new_visitor, storage) -> None:
    visitor = await new_visitor("HUF")
    merchant = await platform.create_merchant("Budapest Paprika", "HUF")
    paid = await visitor.confirm_intent((await platform.create_intent(merchant.id, 99_900, "HUF")).id)
    legs = [e for e in storage_entries(storage) if e.transaction_id == paid.payment.transaction_id]
    assert sorted(e.amount for e in legs) == [-99_900, 99_900]
    assert paid.payment.fee == 0


async def test_quote_endpoint_validates(http) -> None:
    ok = await http.get("/v1/fx/quote", params={"from": "USD", "to": "VND", "amount": 26100})
    assert ok.status_code == 200 and ok.json()["debit_amount"] == 101
    assert Fraction(ok.json()["spread"]) == fx.DEFAULT_SPREAD
    bad = await http.get("/v1/fx/quote", params={"from": "USD", "to": "ABC", "amount": 1})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "unknown_currency")
    for amount in ("0", "-5", "1.5", "x", str(2**64)):
        r = await http.get("/v1/fx/quote", params={"from": "USD", "to": "MYR", "amount": amount})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_request"), amount


def storage_entries(storage):
    with storage.reading() as tx:
        return list(tx.entries())
