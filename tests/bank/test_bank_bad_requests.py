"""Every bad request gets a clear 4xx in the one error shape, and changes nothing at all."""

from __future__ import annotations

import re

import pytest
from bankutil import PLATFORM_KEY, bearer, key, snapshot
from pydantic import TypeAdapter, ValidationError

from bank.schemas import DisplayName, OpenAccountRequest


@pytest.fixture
async def scene(platform, new_visitor, clock):
    """A visitor, a merchant, and an intent in each state, plus one bound to another visitor."""
    visitor, other = await new_visitor("MYR"), await new_visitor("MYR")
    merchant = await platform.create_merchant("Booth", "MYR")
    intent = lambda **kw: platform.create_intent(merchant.id, 1_000, "MYR", **kw)  # noqa: E731
    ids = {
        "open": (await intent()).id,
        "pricey": (await platform.create_intent(merchant.id, 10**12, "MYR")).id,
        "canceled": (await intent()).id,
        "succeeded": (await intent()).id,
        "expired": (await intent(expires_in_seconds=1)).id,
        "others": (await intent(payer_account_id=(await other.me()).id)).id,
        "merchant": merchant.id,
        "visitor": (await visitor.me()).id,
    }
    await platform.cancel_intent(ids["canceled"])
    await visitor.confirm_intent(ids["succeeded"])
    clock.advance(2)
    return visitor.token, ids


def intent_body(ids, **overrides):
    return {"merchant_account_id": ids["merchant"], "amount": 100, "currency": "MYR", **overrides}


P, V, NONE = "platform", "visitor", "none"
BAD = [
    # (who, method, path, body or body-maker, status, code)
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, amount="100"), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, amount=1.5), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, amount="100"), 400, "invalid_request"),  # 100.0 is a JSON integer
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, amount=True), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, amount=None), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, amount=0), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, amount=-100), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, amount=10**12 + 1), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, amount=2**63), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, amount=10**400), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, currency="XYZ"), 400, "unknown_currency"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, currency="myr"), 400, "unknown_currency"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, currency="EURO"), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, currency="KZT"), 400, "currency_mismatch"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, metadata={"bad key": "x"}), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, metadata={"k": 5}), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, metadata={f"k{i}": "v" for i in range(21)}),
     400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, expires_in_seconds=0), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, expires_in_seconds=10**9), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, surprise=1), 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: [1, 2, 3], 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", b"{not json", 400, "invalid_request"),
    (P, "POST", "/v1/payment_intents", lambda ids: intent_body(ids, merchant_account_id="acct_x"), 404,
     "merchant_account_not_found"),
    (NONE, "POST", "/v1/accounts", {"display_name": "   ", "currency": "MYR"}, 400, "invalid_request"),
    (NONE, "POST", "/v1/accounts", {"display_name": "x" * 81, "currency": "MYR"}, 400, "invalid_request"),
    (NONE, "POST", "/v1/accounts", {"display_name": 7, "currency": "MYR"}, 400, "invalid_request"),
    (NONE, "POST", "/v1/accounts", {"display_name": "x", "currency": "BTC"}, 400, "unknown_currency"),
    (NONE, "POST", "/v1/accounts", {"display_name": "x"}, 400, "invalid_request"),
    (P, "POST", "/v1/merchant_accounts", {"display_name": "x", "currency": "XAU"}, 400, "unknown_currency"),
    (V, "POST", "/v1/payment_intents/{pricey}/confirm", None, 409, "insufficient_funds"),
    (V, "POST", "/v1/payment_intents/{canceled}/confirm", None, 409, "intent_canceled"),
    (V, "POST", "/v1/payment_intents/{succeeded}/confirm", None, 409, "intent_already_succeeded"),
    (V, "POST", "/v1/payment_intents/{expired}/confirm", None, 409, "intent_expired"),
    (V, "POST", "/v1/payment_intents/{others}/confirm", None, 403, "not_your_intent"),
    (V, "POST", "/v1/payment_intents/pi_nope/confirm", None, 404, "payment_intent_not_found"),
    (P, "POST", "/v1/payment_intents/{succeeded}/cancel", None, 409, "intent_already_succeeded"),
    (P, "POST", "/v1/payment_intents/{canceled}/cancel", None, 409, "intent_canceled"),
    (P, "POST", "/v1/payment_intents/{expired}/cancel", None, 409, "intent_expired"),
    (NONE, "POST", "/v1/payment_intents/{open}/confirm", None, 401, "unauthenticated"),
    (P, "GET", "/v1/payment_intents?status=paid", None, 400, "invalid_request"),
    (P, "GET", "/v1/payment_intents?limit=0", None, 400, "invalid_request"),
    (P, "GET", "/v1/payment_intents?limit=abc", None, 400, "invalid_request"),
    (P, "GET", "/v1/payment_intents?since=yesterday", None, 400, "invalid_request"),
    (P, "GET", "/v1/payment_intents?metadata=nocolon", None, 400, "invalid_request"),
    (V, "GET", "/v1/accounts/me/transactions?limit=100000", None, 400, "invalid_request"),
    (V, "GET", "/v1/accounts/me/transactions?before=-1", None, 400, "invalid_request"),
    (NONE, "GET", "/v1/fx/quote?from=MYR&to=KZT", None, 400, "invalid_request"),
    (NONE, "GET", "/v1/nowhere", None, 404, "not_found"),
    (NONE, "DELETE", "/v1/accounts/me", None, 405, "method_not_allowed"),
]


@pytest.mark.parametrize("who, method, path, body, status, code", BAD,
                         ids=[f"{m} {p} -> {c}" for _, m, p, _, _, c in BAD])
async def test_bad_request_changes_nothing(http, scene, db_path, who, method, path, body, status, code) -> None:
    token, ids = scene
    headers = {**key(), **{P: {"Authorization": f"Bearer {PLATFORM_KEY}"}, V: bearer(token), NONE: {}}[who]}
    payload = body(ids) if callable(body) else body
    before = snapshot(db_path)
    kwargs = {"content": payload, "headers": {**headers, "Content-Type": "application/json"}} \
        if isinstance(payload, bytes) else {"json": payload, "headers": headers}
    r = await http.request(method, path.format(**ids), **kwargs)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"}
    error = r.json()["error"]
    assert error["code"] == code and error["message"] and set(error) <= {"code", "message", "field"}
    if "field" in error:  # a body field at fault, named as the request spells it (or should have)
        assert isinstance(payload, dict) and f"body.{error['field']}:" in error["message"], error
    assert snapshot(db_path) == before


#: ``\s`` and ``.`` as ECMA-262 reads them (a client checking the OpenAPI schema) and as Rust's
#: ``regex`` reads them (pydantic-core, the bank's own check): they differ at U+0085, U+FEFF and CR.
_ECMA = {"\\s": "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff",
         ".": "[^\\n\\r\\u2028\\u2029]"}
_RUST = {"\\s": "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000",
         ".": "[^\\n]"}


def _as_read_by(pattern: str, engine: dict[str, str]) -> re.Pattern[str]:
    """``pattern`` with ``\\s`` (in a class or alone, plain or negated) and ``.`` spelled out."""
    out, i = [], 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and pattern[i + 1] in "sS":
            chars = engine["\\s"]
            out.append(chars if in_class else (f"[{chars}]" if pattern[i + 1] == "s" else f"[^{chars}]"))
            assert not (in_class and pattern[i + 1] == "S"), "no \\S inside a class in these patterns"
            i += 2
            continue
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        out.append(engine["."] if c == "." and not in_class else c)
        i += 1
    return re.compile("".join(out))


def test_the_schemas_trimmed_text_means_what_the_bank_checks_in_every_regex_engine() -> None:
    """schemathesis sent a display name starting with U+0085: ECMA's ``\\S`` takes it, so the
    schema allowed it, and the bank (Rust's ``\\s`` has it) refused it as invalid."""
    pattern = OpenAccountRequest.model_json_schema()["properties"]["display_name"]["pattern"]  # as OpenAPI says it
    check = TypeAdapter(DisplayName)
    edges = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
    for value in ["Aru", "a b", "é", "a\tb", *(f"{c}x" for c in edges), *(f"x{c}" for c in edges), "a\rb", "a\u2028b"]:
        try:
            check.validate_python(value)
            accepted = True
        except ValidationError:
            accepted = False
        for engine in (_ECMA, _RUST):  # fullmatch: Python's $ also matches before a final \n
            assert bool(_as_read_by(pattern, engine).fullmatch(value)) == accepted, (value, engine is _ECMA)
