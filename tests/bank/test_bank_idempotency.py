"""Idempotency-Key: a retry gets the first answer, a reused key is refused, failures consume nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

from bankutil import PLATFORM_KEY, assert_sound, bearer, key, snapshot


async def test_retry_returns_the_first_response(http, db_path) -> None:
    k = key()
    first = await http.post("/v1/accounts", json={"display_name": "Aigerim", "currency": "KZT"}, headers=k)
    again = await http.post("/v1/accounts", json={"display_name": "Aigerim", "currency": "KZT"}, headers=k)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()  # the same account and the same token, shown again
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert snapshot(db_path).tables["accounts"] == 4 * 24 + 1  # the bank's four per currency, and this one
    me = await http.get("/v1/accounts/me", headers=bearer(first.json()["token"]))
    assert me.json()["id"] == first.json()["account"]["id"]


async def test_the_database_keeps_neither_token_nor_readable_response(http, db_path) -> None:
    r = await http.post("/v1/accounts", json={"display_name": "Bao", "currency": "VND"}, headers=key())
    token = r.json()["token"]
    raw = db_path.read_bytes() + (db_path.parent / (db_path.name + "-wal")).read_bytes()
    assert token.encode() not in raw
    assert b'"display_name":"Bao"' not in raw  # the stored response is sealed under the key


async def test_same_key_different_parameters_is_refused(http, db_path) -> None:
    k = key()
    await http.post("/v1/accounts", json={"display_name": "Chen", "currency": "CNY"}, headers=k)
    before = snapshot(db_path)
    r = await http.post("/v1/accounts", json={"display_name": "Chen", "currency": "USD"}, headers=k)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert snapshot(db_path) == before


async def test_failed_validation_does_not_consume_the_key(http, db_path) -> None:
    k = key()
    before = snapshot(db_path)
    bad = await http.post("/v1/accounts", json={"display_name": "", "currency": "MYR"}, headers=k)
    assert bad.status_code == 400
    unknown = await http.post("/v1/accounts", json={"display_name": "Dana", "currency": "XYZ"}, headers=k)
    assert unknown.json()["error"]["code"] == "unknown_currency"
    assert snapshot(db_path) == before
    good = await http.post("/v1/accounts", json={"display_name": "Dana", "currency": "MYR"}, headers=k)
    assert good.status_code == 201


async def test_a_refused_payment_does_not_consume_the_key(bank, platform, new_visitor, http) -> None:
    visitor = await new_visitor("USD")
    me = await visitor.me()
    merchant = await platform.create_merchant("Dubai Dates", "USD")
    intent = await platform.create_intent(merchant.id, me.balance + 1, "USD")
    k = key()
    r = await http.post(f"/v1/payment_intents/{intent.id}/confirm", headers={**bearer(visitor.token), **k})
    assert r.json()["error"]["code"] == "insufficient_funds"
    bank.grant(me.id, 1)
    r = await http.post(f"/v1/payment_intents/{intent.id}/confirm", headers={**bearer(visitor.token), **k})
    assert r.status_code == 200 and r.json()["status"] == "succeeded"


async def test_keys_are_scoped_to_the_caller(platform, new_visitor, http, storage) -> None:
    a, b = await new_visitor("MYR"), await new_visitor("MYR")
    merchant = await platform.create_merchant("Penang Batik", "MYR")
    ia = await platform.create_intent(merchant.id, 1000, "MYR")
    ib = await platform.create_intent(merchant.id, 1000, "MYR")
    shared = key()
    ra = await http.post(f"/v1/payment_intents/{ia.id}/confirm", headers={**bearer(a.token), **shared})
    rb = await http.post(f"/v1/payment_intents/{ib.id}/confirm", headers={**bearer(b.token), **shared})
    assert ra.status_code == rb.status_code == 200
    assert ra.json()["payment"]["payer_account_id"] != rb.json()["payment"]["payer_account_id"]
    assert_sound(storage)


async def test_concurrent_retries_with_one_key_pay_once(platform, new_visitor, http, storage) -> None:
    visitor = await new_visitor("THB")
    merchant = await platform.create_merchant("Bangkok Silk", "THB")
    intent = await platform.create_intent(merchant.id, 50_000, "THB")
    k = key()
    replies = await asyncio.gather(*(
        http.post(f"/v1/payment_intents/{intent.id}/confirm", headers={**bearer(visitor.token), **k})
        for _ in range(8)
    ))
    assert {r.status_code for r in replies} == {200}
    assert len({r.text for r in replies}) == 1
    assert (await platform.get_account(merchant.id)).balance == 50_000
    assert_sound(storage)


async def test_every_post_needs_a_key(http, platform, new_visitor, db_path) -> None:
    visitor = await new_visitor("MYR")
    merchant = await platform.create_merchant("M", "MYR")
    intent = await platform.create_intent(merchant.id, 100, "MYR")
    auth = {"Authorization": f"Bearer {PLATFORM_KEY}"}
    before = snapshot(db_path)
    posts = [
        ("/v1/accounts", {}, {"display_name": "x", "currency": "MYR"}),
        ("/v1/merchant_accounts", auth, {"display_name": "x", "currency": "MYR"}),
        ("/v1/payment_intents", auth, {"merchant_account_id": merchant.id, "amount": 1, "currency": "MYR"}),
        (f"/v1/payment_intents/{intent.id}/cancel", auth, None),
        (f"/v1/payment_intents/{intent.id}/confirm", bearer(visitor.token), None),
    ]
    for path, headers, body in posts:
        r = await http.post(path, json=body, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "idempotency_key_missing"), path
        r = await http.post(path, json=body, headers={**headers, "Idempotency-Key": "x" * 256})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "idempotency_key_invalid"), path
    assert snapshot(db_path) == before


async def test_idempotency_record_commits_with_the_effect(http, db_path, platform) -> None:
    """One transaction: an intent row exists exactly when its idempotency row does."""
    merchant = await platform.create_merchant("M", "MYR")
    k = str(uuid.uuid4())
    await platform.create_intent(merchant.id, 100, "MYR", idempotency_key=k)
    await platform.create_intent(merchant.id, 100, "MYR", idempotency_key=k)
    conn = sqlite3.connect(db_path)
    intents, records = (conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                        for t in ("payment_intents", "idempotency"))
    conn.close()
    assert intents == 1 and records == 2  # the merchant and the intent
