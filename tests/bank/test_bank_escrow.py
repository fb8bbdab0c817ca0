"""B2B escrow: a two-phase pending transfer that neither side can spend, posted once on shipment
or voided once on cancel or expiry, with FX locked at the quote and ISO 20022 identifiers on
every ledger entry."""

from __future__ import annotations

import uuid
from dataclasses import replace
from fractions import Fraction

import pytest
from bankutil import assert_sound, bearer, key, platform_headers

from bank import fx
from bank.client import BankAPIError

DAY = 86_400


async def refused(call, status: int, code: str) -> BankAPIError:
    with pytest.raises(BankAPIError) as err:
        await call
    assert (err.value.status, err.value.code) == (status, code), err.value
    return err.value


@pytest.fixture
async def deal(platform, new_visitor):
    exhibitor = await platform.create_merchant("Shenzhen Lights", "CNY", reference="booth-lights")
    buyer = await new_visitor("MYR", "Buyer")
    return exhibitor, buyer


def escrowed(storage, currency: str) -> int:
    with storage.reading() as tx:
        return tx.account(f"bank:escrow:{currency}").balance


async def test_deposit_held_then_posted_once_then_balance_on_delivery(deal, platform, storage) -> None:
    exhibitor, buyer = deal
    start = (await buyer.me()).balance
    deposit = await buyer.create_escrow(exhibitor.id, 30_000, "CNY", "PO-2025-0042", metadata={"deal": "rfq-7"})
    assert deposit.status == "pending" and deposit.debit_currency == "MYR"
    assert deposit.debit_amount == fx.quote("MYR", "CNY", 30_000).debit
    assert uuid.UUID(deposit.uetr).version == 4 and deposit.end_to_end_id == "PO-2025-0042"
    assert (await buyer.me()).balance == start - deposit.debit_amount  # the buyer cannot spend it
    assert (await platform.get_account(exhibitor.id)).balance == 0  # nor can the exhibitor, yet
    assert escrowed(storage, "MYR") == deposit.debit_amount
    rest = await platform.create_intent(exhibitor.id, fx.usd_equivalent(1, "CNY"), "CNY")
    posted = await platform.post_escrow(deposit.id)  # shipment confirmed
    assert posted.status == "posted" and posted.final_transaction_id
    assert (await platform.get_account(exhibitor.id)).balance == 30_000
    assert escrowed(storage, "MYR") == 0
    await refused(platform.post_escrow(deposit.id), 409, "escrow_already_posted")
    await refused(platform.void_escrow(deposit.id), 409, "escrow_already_posted")
    await buyer.confirm_intent(rest.id)  # the balance on delivery, a payment intent
    assert (await platform.get_account(exhibitor.id)).balance == 30_000 + rest.amount
    with storage.reading() as tx:
        legs = [e for e in tx.entries() if e.ref == deposit.id]
    assert {e.kind for e in legs} == {"escrow_hold", "escrow_post"}
    assert {(e.uetr, e.end_to_end_id) for e in legs} == {(deposit.uetr, "PO-2025-0042")}
    with storage.reading() as tx:
        paid = [e for e in tx.entries() if e.intent_id == rest.id]
    assert paid and all(uuid.UUID(e.uetr).version == 4 for e in paid)
    assert_sound(storage)


async def test_neither_side_can_spend_the_deposit(deal, platform, storage) -> None:
    exhibitor, buyer = deal
    balance = (await buyer.me()).balance
    amount = fx.quote("MYR", "CNY", 1).target_amount
    # hold almost everything: what is left cannot pay for more than it is
    big = await buyer.create_escrow(exhibitor.id, fx.usd_equivalent(900, "CNY"), "CNY", "PO-1")
    left = balance - big.debit_amount
    intent = await platform.create_intent((await platform.create_merchant("m", "MYR")).id, left + 1, "MYR")
    await refused(buyer.confirm_intent(intent.id), 409, "insufficient_funds")
    await refused(buyer.create_escrow(exhibitor.id, fx.usd_equivalent(200, "CNY"), "CNY", "PO-2"), 409,
                  "insufficient_funds")
    assert amount and (await platform.get_account(exhibitor.id)).balance == 0
    assert_sound(storage)


async def test_void_on_cancel_returns_everything_once(deal, platform, storage) -> None:
    exhibitor, buyer = deal
    start = (await buyer.me()).balance
    deposit = await buyer.create_escrow(exhibitor.id, 12_345, "CNY", "PO-9")
    voided = await platform.void_escrow(deposit.id)
    assert (voided.status, voided.void_reason) == ("voided", "canceled")
    assert (await buyer.me()).balance == start  # the fee too
    await refused(platform.void_escrow(deposit.id), 409, "escrow_voided")
    await refused(platform.post_escrow(deposit.id), 409, "escrow_voided")
    assert (await platform.get_account(exhibitor.id)).balance == 0
    assert_sound(storage)


async def test_expiry_voids_and_nothing_posts_after_it(deal, platform, bank, clock, storage) -> None:
    exhibitor, buyer = deal
    start = (await buyer.me()).balance
    deposit = await buyer.create_escrow(exhibitor.id, 5_000, "CNY", "PO-3", expires_in_seconds=7 * DAY)
    clock.advance(7 * DAY)
    assert (await platform.get_escrow(deposit.id)).status == "voided"  # as time decided, before the sweep
    await refused(platform.post_escrow(deposit.id), 409, "escrow_expired")
    await refused(platform.void_escrow(deposit.id), 409, "escrow_expired")
    assert bank.expire_due() == 1 and bank.expire_due() == 0
    swept = await buyer.get_escrow(deposit.id)
    assert (swept.status, swept.void_reason) == ("voided", "expired")
    assert (await buyer.me()).balance == start
    assert_sound(storage)


async def test_fx_is_locked_at_the_quote(deal, platform, bank, clock, storage) -> None:
    exhibitor, buyer = deal
    lock = await buyer.lock_fx("CNY", 40_000, expires_in_seconds=600)
    assert (lock.source, lock.target, lock.debit_amount) == ("MYR", "CNY", fx.quote("MYR", "CNY", 40_000).debit)
    deposit = await buyer.create_escrow(exhibitor.id, 40_000, "CNY", "PO-4", fx_lock_id=lock.id)
    assert (deposit.debit_amount, deposit.fee, deposit.fx_lock_id) == (lock.debit_amount, lock.fee, lock.id)
    await refused(buyer.create_escrow(exhibitor.id, 40_000, "CNY", "PO-5", fx_lock_id=lock.id), 409, "fx_lock_used")
    bank.config = replace(bank.config, spread=Fraction(5, 100))  # the bank's terms change before shipment
    with storage.reading() as tx:
        fees_before = tx.account("bank:fees:MYR").balance
    await platform.post_escrow(deposit.id)
    with storage.reading() as tx:
        assert tx.account("bank:fees:MYR").balance - fees_before == lock.fee  # the locked fee, not today's
    assert (await platform.get_account(exhibitor.id)).balance == 40_000
    other = await buyer.lock_fx("CNY", 1_000, expires_in_seconds=60)
    await refused(buyer.create_escrow(exhibitor.id, 2_000, "CNY", "PO-6", fx_lock_id=other.id), 400,
                  "fx_lock_mismatch")
    clock.advance(60)
    await refused(buyer.create_escrow(exhibitor.id, 1_000, "CNY", "PO-6", fx_lock_id=other.id), 409,
                  "fx_lock_expired")
    assert_sound(storage)


async def test_who_may_do_what(deal, platform, new_visitor, http) -> None:
    exhibitor, buyer = deal
    deposit = await buyer.create_escrow(exhibitor.id, 1_000, "CNY", "PO-7")
    stranger = await new_visitor("MYR")
    await refused(stranger.get_escrow(deposit.id), 404, "escrow_not_found")
    for action in ("post", "void"):
        answer = await http.post(f"/v1/escrows/{deposit.id}/{action}", headers={**bearer(buyer.token), **key()})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    made = await http.post("/v1/escrows", headers=platform_headers(), json={
        "payee_account_id": exhibitor.id, "amount": 1, "currency": "CNY", "end_to_end_id": "x"})
    assert made.status_code == 403
    await refused(buyer.create_escrow(exhibitor.id, 1_000, "MYR", "PO-8"), 400, "currency_mismatch")
    await refused(buyer.create_escrow((await buyer.me()).id, 1_000, "MYR", "PO-8"), 404, "merchant_account_not_found")
    too_long = await http.post("/v1/escrows", headers={**bearer(buyer.token), **key()}, json={
        "payee_account_id": exhibitor.id, "amount": 1, "currency": "CNY", "end_to_end_id": "x" * 36})
    assert too_long.status_code == 400  # pacs.008 end-to-end ids are at most 35 characters


async def test_the_platform_lists_escrows_to_reconcile(deal, platform, new_visitor, clock, http) -> None:
    exhibitor, buyer = deal
    made = [await buyer.create_escrow(exhibitor.id, 1_000 + n, "CNY", f"PO-L{n}", expires_in_seconds=ttl)
            for n, ttl in enumerate([600, 600, 60, 3600, 3600])]
    await platform.post_escrow(made[0].id)
    await platform.void_escrow(made[1].id)
    clock.advance(61)  # made[2] expires: listed as voided (expired), already swept
    every = await platform.list_escrows(page_size=2)
    assert [e.id for e in every] == [e.id for e in made]
    assert [(e.status, e.void_reason) for e in every] == [
        ("posted", None), ("voided", "canceled"), ("voided", "expired"), ("pending", None), ("pending", None)]
    assert [e.id for e in await platform.list_escrows(status="pending")] == [made[3].id, made[4].id]
    assert await platform.list_escrows(payee_account_id="acct_none") == []
    answer = await http.get("/v1/escrows", headers=bearer(buyer.token))
    assert answer.status_code == 403
