"""The hot path (bank.hotpath) answers confirmations, escrow holds and posts as the routes do:
a request it answered and its retry that the routes answer are one request (same body,
replayed, money moved once), its refusals have the routes' shape, and it counts in /metrics."""

from __future__ import annotations

from dataclasses import replace

import httpx
from bankutil import BASE, PLATFORM_KEY, bearer
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from bank.api import create_app
from bank.audit import audit
from bank.escrow import PendingStatus, PendingTransfer, VoidReason
from bank.intents import Intent, IntentStatus, Payment
from bank.service import Bank, _iso, _iso_exact, encode, escrow_json, escrow_out, intent_json, intent_out

#: JSON values as replies hold them (no floats: amounts are integers), with text that needs escaping
#: (a lone surrogate is not here: neither encoder can write one as UTF-8).
_TEXT = st.text(st.sampled_from("\x00\x1f\x7f\"\\/é\u2028\U0001f600") | st.characters(codec="utf-8"), max_size=10)
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TEXT,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
                     max_leaves=12)


@settings(max_examples=300)
@given(body=st.dictionaries(_TEXT, _JSON, max_size=6))
def test_a_reply_is_encoded_as_the_routes_json_response_writes_it(body) -> None:
    """The hot path sends, and the idempotency record keeps, ``encode``'s bytes (msgspec); a
    route's JSONResponse of the same body must be the same bytes."""
    assert encode(body) == JSONResponse(body).body


def _headers(token: str, key: str) -> dict[str, str]:
    return {**bearer(token), "Idempotency-Key": key}


async def test_an_answer_of_the_hot_path_is_replayed_by_the_routes(storage, clock, config, platform,
                                                                     new_visitor, http) -> None:
    merchant = await platform.create_merchant("Penang Batik", "MYR")
    buyer = await new_visitor("MYR")
    token = buyer.token or ""
    start = (await buyer.me()).balance
    first, second = [(await platform.create_intent(merchant.id, 500, "MYR")).id for _ in range(2)]
    await buyer.confirm_intent(first)  # the routes authenticate the token: from now on the bank knows it
    paid = await http.post(f"/v1/payment_intents/{second}/confirm", headers=_headers(token, "pay-2"))
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded"
    hold = {"payee_account_id": merchant.id, "amount": 300, "currency": "MYR", "end_to_end_id": "PO-1"}
    held = await http.post("/v1/escrows", json=hold, headers=_headers(token, "hold-1"))
    assert held.status_code == 201, held.text
    escrow_id = held.json()["id"]
    posted = await http.post(f"/v1/escrows/{escrow_id}/post", headers={**bearer(PLATFORM_KEY),
                                                                      "Idempotency-Key": "post-1"})
    assert posted.status_code == 200 and posted.json()["status"] == "posted"

    # a bank restarted on the same database does not know the token yet: the routes answer the retries
    fresh = create_app(Bank(storage, clock, config), PLATFORM_KEY, background=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fresh), base_url=BASE) as again:
        for method_path, body, key, first_answer in (
            (f"/v1/payment_intents/{second}/confirm", None, "pay-2", paid),
            ("/v1/escrows", hold, "hold-1", held),
        ):
            retry = await again.post(method_path, json=body, headers=_headers(token, key))
            assert (retry.status_code, retry.json()) == (first_answer.status_code, first_answer.json())
            assert retry.headers["Idempotent-Replayed"] == "true"
        # the same key for another deposit is refused, by the hot path now that the token is known
        other = await again.post("/v1/escrows", json={**hold, "amount": 301}, headers=_headers(token, "hold-1"))
        assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    # the routes answer a post with a header twice (the hot path passes it on): the first answer again
    retry = await http.post(f"/v1/escrows/{escrow_id}/post", headers=[
        ("Authorization", f"Bearer {PLATFORM_KEY}"), ("Idempotency-Key", "post-1"), ("Accept", "*/*"),
        ("Accept", "application/json")])
    assert (retry.status_code, retry.json()) == (200, posted.json())
    assert retry.headers["Idempotent-Replayed"] == "true"

    assert (await buyer.me()).balance == start - 500 - 500 - 300  # each once
    result = audit(storage)
    assert result.ok, result.problems


async def test_the_hot_path_refuses_in_the_routes_words(platform, new_visitor, http) -> None:
    merchant = await platform.create_merchant("Penang Batik", "MYR")
    buyer = await new_visitor("MYR")
    token = buyer.token or ""
    intent = (await platform.create_intent(merchant.id, 500, "MYR")).id
    await buyer.confirm_intent(intent)
    again = await http.post(f"/v1/payment_intents/{intent}/confirm", headers=_headers(token, "pay-again"))
    assert again.status_code == 409 and set(again.json()) == {"error"}
    poor = await http.post("/v1/escrows", headers=_headers(token, "hold-big"), json={
        "payee_account_id": merchant.id, "amount": 10**12, "currency": "MYR", "end_to_end_id": "PO-9"})
    assert poor.status_code == 409 and poor.json()["error"]["code"] == "insufficient_funds"
    for bad in ({"payee_account_id": merchant.id, "amount": "5", "currency": "MYR", "end_to_end_id": "PO-9"},
                {"payee_account_id": merchant.id, "amount": 5, "currency": "MYR"}, [1, 2]):
        answer = await http.post("/v1/escrows", json=bad, headers=_headers(token, "hold-bad"))
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request", answer.text
    as_visitor = await http.post("/v1/escrows/esc_0123/post", headers=_headers(token, "post-x"))
    assert as_visitor.status_code == 403 and as_visitor.json()["error"]["code"] == "forbidden"
    missing = await http.post("/v1/escrows/esc_0123/post", headers={**bearer(PLATFORM_KEY), "Idempotency-Key": "p"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "escrow_not_found"
    metrics = (await http.get("/metrics")).text
    assert 'route="/v1/escrows/{escrow_id}/post",status="404"' in metrics
    assert 'route="/v1/payment_intents/{intent_id}/confirm",status="409"' in metrics


_MS = st.integers(0, 4_102_444_800_000)  # to 2100, any millisecond (a fraction of a second or none)
#: Every millisecond ``to_datetime`` takes (years 1-9999), and each side of where ``_iso`` stops caching.
_ANY_MS = st.integers(-62_135_596_800_000, 253_402_300_799_999) | st.sampled_from(
    [sign * (2**32 * 1000 + d) for sign in (1, -1) for d in (-1001, -1000, -999, -1, 0, 1, 999, 1000)])


@settings(max_examples=2000, deadline=None)
@given(_ANY_MS)
def test_a_time_from_the_cached_second_is_the_exact_text(ms: int) -> None:
    """``_iso`` (the second's text made once) writes the same bytes as ``isoformat`` of the datetime,
    including where ``ms / 1000`` is no longer exact to the microsecond."""
    assert _iso(ms) == _iso_exact(ms)
    assert _iso(ms) == _iso(ms)  # and again from the cache
_TEXT = st.text(max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.builds(
    Intent, id=_TEXT, merchant_account_id=_TEXT, amount=st.integers(1, 10**12), currency=_TEXT,
    status=st.sampled_from(IntentStatus), metadata=st.dictionaries(_TEXT, _TEXT, max_size=3),
    created_at=_MS, updated_at=_MS, expires_at=_MS, payer_account_id=st.none() | _TEXT,
    payment=st.none() | st.builds(Payment, payer_account_id=_TEXT, transaction_id=_TEXT,
                                  debit_amount=st.integers(1, 10**12), debit_currency=_TEXT,
                                  fee=st.integers(0, 10**6)),
), _MS)
def test_an_intent_reply_built_directly_is_the_models_json_dump(intent, now) -> None:
    """A confirmation answers with ``intent_json``: what ``IntentOut``'s JSON dump gives, in every
    state (expired by ``now`` or not) and at any millisecond."""
    expected = intent_out(intent, now).model_dump(mode="json")
    assert intent_json(intent, now) == expected
    assert encode(intent_json(intent, now)) == encode(expected)


@settings(max_examples=300, deadline=None)
@given(st.builds(
    lambda fx_amount, fee, **kw: PendingTransfer(debit_amount=fx_amount + fee, fx_amount=fx_amount, fee=fee, **kw),
    id=_TEXT, payer_account_id=_TEXT, payee_account_id=_TEXT, amount=st.integers(1, 10**12),
    currency=_TEXT, debit_currency=_TEXT, fx_amount=st.integers(0, 10**12), fee=st.integers(0, 10**6), fx_lock_id=st.none() | _TEXT, uetr=_TEXT, end_to_end_id=_TEXT,
    status=st.just(PendingStatus.PENDING), created_at=_MS, updated_at=_MS, expires_at=_MS,
    hold_transaction_id=_TEXT, metadata=st.dictionaries(_TEXT, _TEXT, max_size=3),
), _MS, st.sampled_from([None, *PendingStatus]))
def test_an_escrow_reply_built_directly_is_the_models_json_dump(pending, now, status) -> None:
    """An escrow hold or post answers with ``escrow_json``: what ``EscrowOut``'s JSON dump gives,
    pending, posted or voided (for a reason, or by expiry at ``now``)."""
    if status is PendingStatus.POSTED:
        pending = replace(pending, status=status, final_transaction_id="txn_1")
    elif status is PendingStatus.VOIDED:
        pending = replace(pending, status=status, final_transaction_id="txn_1", void_reason=VoidReason.CANCELED)
    expected = escrow_out(pending, now).model_dump(mode="json")
    assert escrow_json(pending, now) == expected
    assert encode(escrow_json(pending, now)) == encode(expected)
