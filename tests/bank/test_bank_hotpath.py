"""The hot path (bank.hotpath) answers confirmations, escrow holds and posts as the routes do:
a request it answered and its retry that the routes answer are one request (same body,
replayed, money moved once), its refusals have the routes' shape, and it counts in /metrics."""

from __future__ import annotations

import httpx
from bankutil import BASE, PLATFORM_KEY, bearer
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from bank.api import create_app
from bank.audit import audit
from bank.service import Bank, encode

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
