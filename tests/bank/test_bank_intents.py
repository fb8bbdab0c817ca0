"""Payment intents: the pure state machine, then the API (confirm, cancel, expiry, listing)."""

from __future__ import annotations

import datetime as dt

import pytest
from bankutil import assert_sound, bearer, key, snapshot

from bank import intents
from bank.client import BankAPIError
from bank.intents import Intent, IntentStateError, IntentStatus, Payment
from bank.ledger import Account, AccountKind

T0 = 1_000_000


def created(payer: str | None = None) -> Intent:
    return Intent("pi_1", "m", 100, "MYR", IntentStatus.CREATED, {"sku": "a"}, T0, T0, T0 + 60_000, payer)


PAY = Payment("v", "txn_1", 100, "MYR", 0)


def test_created_can_succeed_or_cancel() -> None:
    paid = intents.succeed(created(), PAY, T0 + 1)
    assert paid.status is IntentStatus.SUCCEEDED and paid.payment == PAY and paid.updated_at == T0 + 1
    assert intents.cancel(created(), T0 + 1).status is IntentStatus.CANCELED


def test_expiry_is_decided_by_time_alone() -> None:
    intent = created()
    assert intents.effective_status(intent, T0 + 59_999) is IntentStatus.CREATED
    assert intents.effective_status(intent, T0 + 60_000) is IntentStatus.EXPIRED
    with pytest.raises(IntentStateError) as err:
        intents.succeed(intent, PAY, T0 + 60_000)
    assert err.value.code == "intent_expired"
    with pytest.raises(IntentStateError, match="not_expired|is created"):
        intents.expire(intent, T0 + 59_999)
    assert intents.expire(intent, T0 + 60_000).status is IntentStatus.EXPIRED


@pytest.mark.parametrize("final, code", [
    (lambda i: intents.succeed(i, PAY, T0), "intent_already_succeeded"),
    (lambda i: intents.cancel(i, T0), "intent_canceled"),
    (lambda i: intents.expire(i, T0 + 60_000), "intent_expired"),
])
def test_final_states_are_final(final, code) -> None:
    done = final(created())
    for action in (lambda: intents.succeed(done, PAY, T0 + 1), lambda: intents.cancel(done, T0 + 1)):
        with pytest.raises(IntentStateError) as err:
            action()
        assert err.value.code == code
    with pytest.raises(IntentStateError):
        intents.expire(done, T0 + 120_000)


def test_a_bound_intent_is_payable_only_by_its_payer() -> None:
    with pytest.raises(IntentStateError) as err:
        intents.succeed(created(payer="someone-else"), PAY, T0)
    assert err.value.code == "not_your_intent"


async def test_confirm_pays_once(platform, new_visitor, storage) -> None:
    visitor = await new_visitor("PKR")
    merchant = await platform.create_merchant("Lahore Leather", "PKR", reference="booth-12")
    intent = await platform.create_intent(merchant.id, 250_000, "PKR", metadata={"order_id": "o-1", "booth": "12"})
    assert intent.status == "created" and intent.metadata == {"order_id": "o-1", "booth": "12"}
    paid = await visitor.confirm_intent(intent.id)
    assert paid.status == "succeeded"
    assert (await platform.get_intent(intent.id)) == paid
    with pytest.raises(BankAPIError) as err:
        await visitor.confirm_intent(intent.id)
    assert (err.value.status, err.value.code) == (409, "intent_already_succeeded")
    with pytest.raises(BankAPIError) as err:
        await platform.cancel_intent(intent.id)
    assert err.value.code == "intent_already_succeeded"
    assert (await platform.get_account(merchant.id)).balance == 250_000
    assert_sound(storage)


async def test_merchant_reference_returns_the_same_account(platform) -> None:
    first = await platform.create_merchant("Kenyan Coffee", "KES", reference="exhibitor-9")
    again = await platform.create_merchant("Kenyan Coffee (renamed)", "KES", reference="exhibitor-9")
    assert again.id == first.id
    with pytest.raises(BankAPIError) as err:
        await platform.create_merchant("Kenyan Coffee", "USD", reference="exhibitor-9")
    assert (err.value.status, err.value.code) == (409, "reference_conflict")


async def test_cancel_then_confirm_is_refused(platform, new_visitor, db_path) -> None:
    visitor = await new_visitor("EGP")
    merchant = await platform.create_merchant("Cairo Cotton", "EGP")
    intent = await platform.create_intent(merchant.id, 10_000, "EGP")
    assert (await platform.cancel_intent(intent.id)).status == "canceled"
    before = snapshot(db_path)
    with pytest.raises(BankAPIError) as err:
        await visitor.confirm_intent(intent.id)
    assert (err.value.status, err.value.code) == (409, "intent_canceled")
    assert snapshot(db_path) == before


async def test_expiry(bank, platform, new_visitor, clock, db_path) -> None:
    visitor = await new_visitor("MYR")
    merchant = await platform.create_merchant("Penang Batik", "MYR")
    intent = await platform.create_intent(merchant.id, 5_000, "MYR", expires_in_seconds=60, metadata={"order_id": "x"})
    assert intent.expires_at - intent.created_at == dt.timedelta(seconds=60)
    clock.advance(59.999)
    assert (await visitor.get_intent(intent.id)).status == "created"
    clock.advance(0.001)
    assert (await visitor.get_intent(intent.id)).status == "expired"  # before any sweep
    before = snapshot(db_path)
    with pytest.raises(BankAPIError) as err:
        await visitor.confirm_intent(intent.id)
    assert (err.value.status, err.value.code) == (409, "intent_expired")
    assert snapshot(db_path) == before
    assert bank.expire_due() == 1 and bank.expire_due() == 0
    assert snapshot(db_path).intents[intent.id] == "expired"


async def test_listing_for_reconciliation(platform, new_visitor, clock) -> None:
    visitor = await new_visitor("MYR")
    merchant = await platform.create_merchant("Penang Batik", "MYR")
    other = await platform.create_merchant("Other", "MYR")
    made = [await platform.create_intent(merchant.id, 100 + n, "MYR", metadata={"order_id": f"o{n}", "booth": "7"},
                                         expires_in_seconds=30) for n in range(5)]
    foreign = await platform.create_intent(other.id, 1, "MYR", metadata={"order_id": "o0"})
    await visitor.confirm_intent(made[0].id)
    await visitor.confirm_intent(made[1].id)
    await platform.cancel_intent(made[2].id)
    clock.advance(10)
    checkpoint = clock.now_ms()
    await visitor.confirm_intent(made[3].id)
    clock.advance(30)  # made[4] expires; the listing writes that down first

    async def ids(**filters) -> list[str]:
        return [i.id for i in await platform.list_intents(page_size=2, **filters)]

    assert await ids(status="succeeded") == [made[0].id, made[1].id, made[3].id]
    assert await ids(status="canceled") == [made[2].id]
    assert await ids(status="expired") == [made[4].id]
    assert await ids(status="created") == [foreign.id]
    assert await ids(metadata={"order_id": "o0"}) == [made[0].id, foreign.id]
    assert await ids(metadata={"order_id": "o0", "booth": "7"}) == [made[0].id]
    assert await ids(merchant_account_id=other.id) == [foreign.id]
    since = dt.datetime.fromtimestamp(checkpoint / 1000, dt.UTC)
    assert await ids(status="succeeded", since=since) == [made[3].id]
    assert await ids(since=since) == [made[3].id, made[4].id]


async def test_intent_validation(platform, new_visitor, http) -> None:
    visitor = await new_visitor("MYR")
    merchant = await platform.create_merchant("M", "MYR")
    cases = [
        (dict(merchant_account_id=merchant.id, amount=100, currency="KZT"), 400, "currency_mismatch"),
        (dict(merchant_account_id="acct_nope", amount=100, currency="MYR"), 404, "merchant_account_not_found"),
        (dict(merchant_account_id=(await visitor.me()).id, amount=100, currency="MYR"), 404,
         "merchant_account_not_found"),
        (dict(merchant_account_id=merchant.id, amount=100, currency="MYR", payer_account_id=merchant.id), 404,
         "payer_account_not_found"),
    ]
    for body, status, code in cases:
        with pytest.raises(BankAPIError) as err:
            await platform.create_intent(**body)
        assert (err.value.status, err.value.code) == (status, code)


async def test_visitor_reads_open_intents_by_id(platform, new_visitor, http) -> None:
    a = await new_visitor("MYR")
    merchant = await platform.create_merchant("M", "MYR")
    open_intent = await platform.create_intent(merchant.id, 10, "MYR")
    r = await http.get(f"/v1/payment_intents/{open_intent.id}", headers=bearer(a.token))
    assert r.status_code == 200 and r.json()["amount"] == 10
    r = await http.get("/v1/payment_intents/pi_missing", headers=bearer(a.token))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "payment_intent_not_found")
    r = await http.post("/v1/payment_intents/pi_missing/confirm", headers={**bearer(a.token), **key()})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "payment_intent_not_found")


@pytest.mark.parametrize("change", ["succeed", "cancel", "expire"])
def test_a_state_change_written_reads_back_whole(storage, change: str) -> None:
    """``update_intent`` writes only what a state change moves; read back, the intent is the changed
    one in every field (and the others are as created)."""
    intent = created()
    with storage.writing() as tx:
        tx.insert_account(Account("m", AccountKind.MERCHANT, "MYR", "Penang Batik", 0, T0))
        tx.insert_intent(intent)
    changed = {"succeed": lambda: intents.succeed(intent, PAY, T0 + 1),
               "cancel": lambda: intents.cancel(intent, T0 + 1),
               "expire": lambda: intents.expire(intent, T0 + 60_000)}[change]()
    with storage.writing() as tx:
        tx.update_intent(changed)
    with storage.reading() as tx:
        stored = tx.intent(intent.id)
    assert stored == changed
