"""Platform key and visitor tokens: each does its own job, neither can act for the other."""

from __future__ import annotations

import pytest
from bankutil import PLATFORM_KEY, bearer, key, snapshot


@pytest.fixture
async def world(platform, new_visitor):
    alice, bob = await new_visitor("MYR", "Alice"), await new_visitor("KZT", "Bob")
    merchant = await platform.create_merchant("Booth", "MYR")
    for_alice = await platform.create_intent(merchant.id, 100, "MYR", payer_account_id=(await alice.me()).id)
    return alice, bob, merchant, for_alice


def P() -> dict[str, str]:
    return {"Authorization": f"Bearer {PLATFORM_KEY}", **key()}


async def expect(response, status: int, code: str) -> None:
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text


async def test_visitor_cannot_do_platform_things(http, world, db_path) -> None:
    alice, bob, merchant, intent = world
    v = {**bearer(alice.token), **key()}
    before = snapshot(db_path)
    await expect(await http.post("/v1/payment_intents", headers=v,
                                 json={"merchant_account_id": merchant.id, "amount": 1, "currency": "MYR"}),
                 403, "forbidden")
    await expect(await http.post("/v1/merchant_accounts", headers=v, json={"display_name": "x", "currency": "MYR"}),
                 403, "forbidden")
    await expect(await http.post(f"/v1/payment_intents/{intent.id}/cancel", headers=v), 403, "forbidden")
    await expect(await http.get("/v1/payment_intents", headers=v), 403, "forbidden")
    await expect(await http.get(f"/v1/accounts/{merchant.id}", headers=v), 403, "not_your_account")
    await expect(await http.get(f"/v1/accounts/{(await bob.me()).id}", headers=v), 403, "not_your_account")
    await expect(await http.get(f"/v1/accounts/{(await bob.me()).id}/transactions", headers=v), 403,
                 "not_your_account")
    assert snapshot(db_path) == before


async def test_platform_cannot_move_or_read_visitor_money(http, world, db_path) -> None:
    alice, bob, merchant, intent = world
    before = snapshot(db_path)
    await expect(await http.post(f"/v1/payment_intents/{intent.id}/confirm", headers=P()), 403, "forbidden")
    await expect(await http.get("/v1/accounts/me", headers=P()), 403, "forbidden")
    await expect(await http.get(f"/v1/accounts/{(await alice.me()).id}", headers=P()), 403, "not_a_merchant_account")
    await expect(await http.get(f"/v1/accounts/{(await alice.me()).id}/transactions", headers=P()), 403,
                 "not_a_merchant_account")
    assert snapshot(db_path) == before
    merchant_view = await http.get(f"/v1/accounts/{merchant.id}", headers=P())
    assert merchant_view.status_code == 200


async def test_another_visitors_intent(http, world, db_path) -> None:
    alice, bob, merchant, intent = world
    before = snapshot(db_path)
    await expect(await http.post(f"/v1/payment_intents/{intent.id}/confirm", headers={**bearer(bob.token), **key()}),
                 403, "not_your_intent")
    await expect(await http.get(f"/v1/payment_intents/{intent.id}", headers=bearer(bob.token)), 403, "not_your_intent")
    assert snapshot(db_path) == before
    assert (await alice.confirm_intent(intent.id)).status == "succeeded"


@pytest.mark.parametrize("headers, code", [
    ({}, "unauthenticated"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "unauthenticated"),
    ({"Authorization": "Bearer"}, "unauthenticated"),
    ({"Authorization": "Bearer ebt_forged-token-that-was-never-issued"}, "invalid_token"),
    ({"Authorization": f"Bearer {PLATFORM_KEY}x"}, "invalid_token"),
    ({"Authorization": f"Bearer {PLATFORM_KEY[:-1]}"}, "invalid_token"),
])
async def test_missing_or_forged_credentials(http, world, db_path, headers, code) -> None:
    alice, bob, merchant, intent = world
    before = snapshot(db_path)
    for method, path in [
        ("GET", "/v1/accounts/me"),
        ("GET", "/v1/accounts/me/transactions"),
        ("GET", f"/v1/payment_intents/{intent.id}"),
        ("GET", "/v1/payment_intents"),
        ("POST", f"/v1/payment_intents/{intent.id}/confirm"),
        ("POST", f"/v1/payment_intents/{intent.id}/cancel"),
        ("POST", "/v1/merchant_accounts"),
    ]:
        r = await http.request(method, path, headers={**headers, **key()},
                               json={"display_name": "x", "currency": "MYR"} if "merchant" in path else None)
        await expect(r, 401, code)
    assert snapshot(db_path) == before


async def test_visitor_reads_own_account_and_entries(world) -> None:
    alice, *_ = world
    me = await alice.me()
    assert me.kind == "visitor" and me.currency == "MYR" and me.balance == 425_000
    assert me.balance_display == "MYR 4,250.00"
    entries = await alice.transactions()
    assert [(e.kind, e.amount, e.balance_after) for e in entries.data] == [("grant", 425_000, 425_000)]
    assert entries.next_before is None
