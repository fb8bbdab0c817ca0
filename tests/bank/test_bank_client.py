"""bank.client against the real app: typed results, error codes, safe retries; plus ops endpoints."""

from __future__ import annotations

import httpx
import pytest
from bankutil import BASE, PLATFORM_KEY, assert_sound, snapshot

from bank.client import BankAPIError, BankUnavailable, PlatformClient, VisitorClient


class LoseFirstResponses(httpx.AsyncBaseTransport):
    """Forwards each request to the app, then drops the first ``n`` responses on the floor:
    the bank has acted, the client never hears of it (a network cut after the commit)."""

    def __init__(self, app, n: int) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.n = n
        self.keys: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("Idempotency-Key"))
        response = await self.inner.handle_async_request(request)
        if self.n:
            self.n -= 1
            await response.aread()
            raise httpx.ReadError("connection reset after the bank answered")
        return response


async def test_lost_responses_are_retried_with_the_same_key(app, platform, new_visitor, db_path, storage) -> None:
    payer = await new_visitor("MYR")
    merchant = await platform.create_merchant("M", "KZT")
    intent = await platform.create_intent(merchant.id, 100_000, "KZT")
    flaky = LoseFirstResponses(app, n=2)
    async with VisitorClient(BASE, payer.token, transport=flaky, retries=3, backoff=0) as client:
        paid = await client.confirm_intent(intent.id)
    assert paid.status == "succeeded"
    assert len(flaky.keys) == 3 and len(set(flaky.keys)) == 1  # one key across the retries
    assert (await platform.get_account(merchant.id)).balance == 100_000  # paid once
    assert snapshot(db_path).tables["idempotency"] == 4  # visitor, merchant, intent, confirmation
    assert_sound(storage)


async def test_gives_up_as_unavailable(app) -> None:
    async with PlatformClient(BASE, PLATFORM_KEY, transport=LoseFirstResponses(app, n=10), retries=1,
                              backoff=0) as client:
        with pytest.raises(BankUnavailable) as err:
            await client.list_intents()
    assert err.value.code == "bank_unavailable"
    async with VisitorClient("http://127.0.0.1:9", retries=0) as nobody:
        with pytest.raises(BankUnavailable):
            await nobody.quote("MYR", "USD", 100)


async def test_errors_carry_the_bank_code(platform, new_visitor) -> None:
    visitor = await new_visitor("NGN")
    with pytest.raises(BankAPIError) as err:
        await platform.create_intent("acct_nope", 100, "NGN")
    assert (err.value.status, err.value.code) == (404, "merchant_account_not_found")
    with pytest.raises(BankAPIError) as err:
        await visitor.quote("NGN", "ZZZ", 1)
    assert err.value.code == "unknown_currency"
    merchant = await platform.create_merchant("M", "NGN")
    with pytest.raises(BankAPIError) as err:
        await visitor.confirm_intent((await platform.create_intent(merchant.id, 10**11, "NGN")).id)
    assert (err.value.status, err.value.code) == (409, "insufficient_funds")


async def test_visitor_history_pages(platform, new_visitor) -> None:
    visitor = await new_visitor("MYR")
    merchant = await platform.create_merchant("M", "MYR")
    for n in range(5):
        await visitor.confirm_intent((await platform.create_intent(merchant.id, 100 + n, "MYR")).id)
    first = await visitor.transactions(limit=4)
    rest = await visitor.transactions(limit=4, before=first.next_before)
    amounts = [e.amount for e in first.data + rest.data]
    assert amounts == [-104, -103, -102, -101, -100, 425_000] and rest.next_before is None


async def test_health_metrics_and_docs(http, platform, new_visitor) -> None:
    visitor = await new_visitor("MYR")
    merchant = await platform.create_merchant("M", "MYR")
    await visitor.confirm_intent((await platform.create_intent(merchant.id, 1234, "MYR")).id)
    health = await http.get("/healthz")
    assert health.json() == {"status": "ok", "webhook_outbox_pending": 0}
    metrics = (await http.get("/metrics")).text
    assert 'bank_payments_total{currency="MYR"} 1.0' in metrics
    assert 'bank_payment_volume_minor_total{currency="MYR"} 1234.0' in metrics
    assert 'route="/v1/payment_intents/{intent_id}/confirm",status="200"' in metrics
    assert "bank_webhook_outbox_pending 0.0" in metrics
    assert (await http.get("/docs")).status_code == 200
    spec = (await http.get("/openapi.json")).json()
    assert "/v1/payment_intents/{intent_id}/confirm" in spec["paths"]
