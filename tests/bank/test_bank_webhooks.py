"""Webhook signatures (pure), and delivery from the outbox with retries to a real receiver app."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from bankutil import PLATFORM_KEY, snapshot
from cancelling import ends_when_cancelled
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bank.api import create_app
from bank.delivery import Deliverer
from bank.service import Bank, BankConfig
from bank.webhooks import (
    ReplayGuard,
    WebhookError,
    WebhookReceiver,
    retry_delay,
    sign,
    verify_signature,
)

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"payment_intent.succeeded","created":1700000000,"data":{"object":{}}}'
NOW = 1_700_000_000


def test_sign_and_verify() -> None:
    header = sign(SECRET, BODY, NOW)
    assert header.startswith(f"t={NOW},v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature(SECRET, header, BODY, NOW + 299) == NOW


@pytest.mark.parametrize("header, body, now, code", [
    (sign("other-secret", BODY, NOW), BODY, NOW, "signature_invalid"),
    (sign(SECRET, BODY, NOW), BODY + b" ", NOW, "signature_invalid"),
    (sign(SECRET, BODY, NOW).replace(f"t={NOW}", f"t={NOW + 1}"), BODY, NOW, "signature_invalid"),
    (sign(SECRET, BODY, NOW), BODY, NOW + 301, "signature_stale"),
    (sign(SECRET, BODY, NOW), BODY, NOW - 301, "signature_stale"),
    (None, BODY, NOW, "signature_missing"),
    ("", BODY, NOW, "signature_missing"),
    ("v1=abc", BODY, NOW, "signature_malformed"),
    (f"t={NOW}", BODY, NOW, "signature_malformed"),
    ("t=soon,v1=abc", BODY, NOW, "signature_malformed"),
])
def test_bad_signatures_are_refused(header, body, now, code) -> None:
    with pytest.raises(WebhookError) as err:
        verify_signature(SECRET, header, body, now)
    assert err.value.code == code


def test_rotation_accepts_any_matching_v1() -> None:
    header = sign(SECRET, BODY, NOW) + "," + sign("old", BODY, NOW).split(",")[1]
    assert verify_signature(SECRET, header, BODY, NOW) == NOW
    assert verify_signature("old", header, BODY, NOW) == NOW


def test_receiver_refuses_a_replay_but_not_a_fresh_retry() -> None:
    receiver = WebhookReceiver(SECRET)
    header = sign(SECRET, BODY, NOW)
    assert receiver.receive(header, BODY, NOW).id == "evt_1"
    with pytest.raises(WebhookError) as err:
        receiver.receive(header, BODY, NOW + 5)
    assert err.value.code == "webhook_replayed"
    # the bank's own retry is signed afresh; it passes, and the receiver dedups by event id
    assert receiver.receive(sign(SECRET, BODY, NOW + 60), BODY, NOW + 60).id == "evt_1"
    with pytest.raises(WebhookError) as err:
        receiver.receive(sign(SECRET, b"[]", NOW), b"[]", NOW)
    assert err.value.code == "event_malformed"


def test_replay_guard_forgets_only_what_is_stale() -> None:
    guard = ReplayGuard(tolerance=10, max_size=3)
    guard.check("a", 0)
    guard.check("b", 1)
    with pytest.raises(WebhookError):
        guard.check("a", 15)
    guard.check("a", 21)  # older than twice the tolerance: forgotten (its signature is stale anyway)
    for s in "cde":
        guard.check(s, 22)
    assert len(guard._seen) == 3


def test_retry_delay_grows_and_is_capped() -> None:
    delays = [retry_delay(n, jitter=1.0) for n in range(1, 15)]
    assert delays[:4] == [1, 2, 4, 8] and max(delays) == 600
    assert retry_delay(3, jitter=0.0) == 2.0


class Receiver:
    """A world-server-like receiver: verifies, refuses replays, fails on purpose the first N times."""

    def __init__(self, clock, fail_first: int = 0) -> None:
        self.clock = clock
        self.fail_first = fail_first
        self.events: list[dict] = []
        self.attempts = 0
        self.webhooks = WebhookReceiver(SECRET)
        self.app = FastAPI()
        self.app.post("/hook")(self.hook)

    async def hook(self, request: Request) -> JSONResponse:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return JSONResponse({"error": "down"}, status_code=503)
        body = await request.body()
        try:
            event = self.webhooks.receive(request.headers.get("Expo-Signature"), body, self.clock.now_ms() / 1000)
        except WebhookError as exc:
            return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=400)
        assert request.headers["Expo-Event-Id"] == event.id
        self.events.append(json.loads(body))
        return JSONResponse({"ok": True})


@pytest.fixture
def config() -> BankConfig:
    return BankConfig(webhook_urls=("http://receiver.test/hook",), max_delivery_attempts=4)


@pytest.fixture
def bank(storage, clock, config) -> Bank:
    return Bank(storage, clock, config, jitter=lambda: 0.5)  # backoff 0.75 s, 1.5 s, 3 s, ...


@pytest.fixture
def receiver(clock) -> Receiver:
    return Receiver(clock)


@pytest.fixture
def app(bank, receiver):
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app))
    return create_app(bank, PLATFORM_KEY, webhook_secret=SECRET, http_client=client, background=False)


async def test_each_change_is_delivered_signed(app, bank, platform, new_visitor, receiver, clock) -> None:
    visitor = await new_visitor("MYR")
    merchant = await platform.create_merchant("M", "MYR")
    paid, canceled, expired = [await platform.create_intent(merchant.id, 10, "MYR", expires_in_seconds=5)
                               for _ in range(3)]
    await visitor.confirm_intent(paid.id)
    await platform.cancel_intent(canceled.id)
    clock.advance(5)
    assert bank.expire_due() == 1
    assert await app.state.deliverer.deliver_due() == 3
    assert [(e["type"], e["data"]["object"]["id"]) for e in receiver.events] == [
        ("payment_intent.succeeded", paid.id),
        ("payment_intent.canceled", canceled.id),
        ("payment_intent.expired", expired.id),
    ]
    assert receiver.events[0]["data"]["object"] == (await platform.get_intent(paid.id)).model_dump(mode="json")
    assert bank.pending_deliveries() == 0
    assert await app.state.deliverer.deliver_due() == 0


async def test_a_gift_is_delivered_signed_with_both_accounts(app, bank, platform, new_visitor, receiver, clock) -> None:
    """``item.gifted``: the platform shows the giver and the recipient their lists at once."""
    exhibitor = await platform.create_merchant("Almaty Honey", "KZT")
    edition = await platform.create_edition(exhibitor.id, issuer_kind="exhibitor", kind="certificate", title="Honey",
                                            size=10, currency="KZT", product="H", batch="1", origin="Altai")
    giver, friend = await new_visitor("KZT", "Giver"), await new_visitor("MYR", "Friend")
    giver_id, friend_id = (await giver.me()).id, (await friend.me()).id
    item = await platform.issue_item(edition.id, giver_id, order_id="order-1")
    for v, document in ((giver, "N12345678"), (friend, "P99887766")):
        await v.submit_kyc("Aigerim Nurlanovna", "1990-04-12", "KZ", document)
    await platform.add_contact(giver_id, friend_id)
    clock.advance(180 * 86_400)
    await giver.gift_item(item.serial, friend_id)
    assert await app.state.deliverer.deliver_due() == 1
    [event] = receiver.events
    assert event["type"] == "item.gifted" and event["data"]["object"] == {
        "serial": item.serial, "edition_id": edition.id, "from_account_id": giver_id, "to_account_id": friend_id}


async def test_failed_deliveries_are_retried_with_backoff(app, bank, platform, new_visitor, receiver, clock) -> None:
    receiver.fail_first = 2
    visitor = await new_visitor("MYR")
    merchant = await platform.create_merchant("M", "MYR")
    await visitor.confirm_intent((await platform.create_intent(merchant.id, 10, "MYR")).id)
    deliverer = app.state.deliverer
    assert await deliverer.deliver_due() == 1 and receiver.attempts == 1
    assert await deliverer.deliver_due() == 0  # not due yet: backing off 0.75 s
    clock.advance(1)
    assert await deliverer.deliver_due() == 1 and receiver.attempts == 2
    clock.advance(1)
    assert await deliverer.deliver_due() == 0  # the second backoff is 1.5 s
    clock.advance(1)
    assert await deliverer.deliver_due() == 1 and len(receiver.events) == 1
    assert bank.pending_deliveries() == 0


async def test_deliveries_give_up_after_the_last_attempt(app, bank, platform, new_visitor, receiver, clock,
                                                         db_path) -> None:
    receiver.fail_first = 10**6
    visitor = await new_visitor("MYR")
    merchant = await platform.create_merchant("M", "MYR")
    await visitor.confirm_intent((await platform.create_intent(merchant.id, 10, "MYR")).id)
    for _ in range(10):
        await app.state.deliverer.deliver_due()
        clock.advance(600)
    assert receiver.attempts == 4 and bank.pending_deliveries() == 0
    assert snapshot(db_path).tables["outbox"] == 1


async def test_background_worker_delivers_without_being_asked(bank, platform, new_visitor, receiver) -> None:
    """The app's lifespan runs the worker; a confirmation wakes it at once."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app))
    app = create_app(bank, PLATFORM_KEY, webhook_secret=SECRET, http_client=client, sweep_interval=0.01)
    merchant = await platform.create_merchant("M", "MYR")
    intent = await platform.create_intent(merchant.id, 10, "MYR")
    visitor = await new_visitor("MYR")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bank.test") as http:
            r = await http.post(f"/v1/payment_intents/{intent.id}/confirm",
                                headers={"Authorization": f"Bearer {visitor.token}", "Idempotency-Key": "k1"})
            assert r.status_code == 200
        for _ in range(200):
            if receiver.events:
                break
            await asyncio.sleep(0.01)
    assert [e["type"] for e in receiver.events] == ["payment_intent.succeeded"]


@pytest.mark.parametrize("turns", range(6))
def test_the_delivery_worker_stops_when_cancelled_as_it_is_woken(bank, turns):
    """The bank's shutdown cancels the worker and waits for it: a cancel that lands in the
    same turn of the loop as a wake must end it too (asyncio.wait_for on Python 3.11
    swallowed such a cancel, and the worker would have polled on for ever)."""
    async def scenario() -> bool:
        async with httpx.AsyncClient() as client:
            deliverer = Deliverer(bank, "s" * 32, client, idle_poll=30.0)
            run = asyncio.create_task(deliverer.run())
            await asyncio.sleep(0.3)  # its first round found nothing: it waits to be woken
            deliverer.wake()
            return await ends_when_cancelled(run, turns)

    assert asyncio.run(scenario())
