"""The purchase flow against a real bank process: order, pay at the bank, fulfil once."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from processes import BIN, free_port, start, stop
from support import small_expo
from websockets.asyncio.client import connect

import protocol as p
from bank.client import BankAPIError, PlatformClient, VisitorClient
from bank.webhooks import SIGNATURE_HEADER, sign
from server.app import ExpoServer
from server.config import ServerConfig
from server.webhooks import MAX_WEBHOOK_BODY

PLATFORM_KEY = "commerce-test-platform-key"
WEBHOOK_SECRET = "commerce-test-webhook-secret"


@pytest.fixture
def bank_process(tmp_path):
    """expo-bank serve on a free port, posting webhooks to a port the server will take."""
    port, webhook_port = free_port(), free_port()
    proc = start(
        [str(BIN / "expo-bank"), "serve", "--port", str(port), "--db", str(tmp_path / "bank.sqlite3"),
         "--platform-key", PLATFORM_KEY, "--webhook-secret", WEBHOOK_SECRET,
         "--webhook-url", f"http://127.0.0.1:{webhook_port}/bank/webhook"],
        f"http://127.0.0.1:{port}/healthz", log=tmp_path / "bank.log",
    )
    yield f"http://127.0.0.1:{port}", webhook_port, tmp_path / "bank.sqlite3"
    stop(proc)


def server_config(bank_process, tmp_path, **overrides) -> ServerConfig:
    url, webhook_port, _ = bank_process
    return ServerConfig(port=0, bank_url=url, bank_platform_key=PLATFORM_KEY, webhook_secret=WEBHOOK_SECRET,
                        webhook_port=webhook_port, data_dir=tmp_path / "server", **overrides)


@pytest.fixture
async def expo(bank_process, tmp_path):
    srv = ExpoServer(small_expo(), server_config(bank_process, tmp_path))
    await srv.start()
    yield srv
    await srv.stop()


class Shopper:
    """A visitor: a protocol connection plus its own bank account, linked to the visitor
    with the bank's proof."""

    def __init__(self, ws, bank: VisitorClient, welcome: p.Welcome | None = None) -> None:
        self.ws = ws
        self.bank = bank
        self.welcome = welcome
        self.inbox: list[p.Message] = []

    @classmethod
    async def join(cls, srv: ExpoServer, name: str, currency: str = "MYR", *, visitor_token: str | None = None,
                   bank_token: str | None = None, link: bool = True) -> Shopper:
        # max_queue=None: reads on while the test looks away (a full queue stops reading; close() then waits 10 s)
        ws = await connect(f"ws://127.0.0.1:{srv.port}/", compression=None, max_queue=None)
        await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0, visitor_token=visitor_token)))
        welcome = p.decode_server(await ws.recv())
        assert isinstance(welcome, p.Welcome), welcome
        bank = VisitorClient(welcome.bank_url, bank_token)
        if bank_token is None:
            await bank.open_account(name, currency)
        shopper = cls(ws, bank, welcome)
        if link:
            await shopper.link()
        return shopper

    async def link(self) -> p.AccountLinked:
        proof = await self.bank.account_proof(self.welcome.visitor_id)
        await self.send(p.LinkAccount(proof.proof))
        return await self.expect(p.AccountLinked)

    async def send(self, message: p.Message) -> None:
        await self.ws.send(p.encode(message))

    async def expect(self, kind, where=lambda m: True, timeout: float = 10.0):
        for m in self.inbox:
            if isinstance(m, kind) and where(m):
                self.inbox.remove(m)
                return m
        async with asyncio.timeout(timeout):
            while True:
                m = p.decode_server(await self.ws.recv())
                if isinstance(m, kind) and where(m):
                    return m
                if not isinstance(m, p.Snapshot):
                    self.inbox.append(m)

    async def order(self, sku: str, qty: int = 1, key: str | None = None, booth: str = "kz-honey") -> p.OrderStatus:
        key = key or f"key-{time.monotonic_ns()}"
        await self.send(p.Order(booth, sku, qty, key))
        return await self.expect(p.OrderStatus, lambda m: m.key == key)

    async def buy(self, sku: str, qty: int = 1) -> p.Receipt:
        return await self.buy_order(await self.order(sku, qty))

    async def buy_order(self, status: p.OrderStatus) -> p.Receipt:
        assert status.status == "pending_payment", status
        await self.bank.confirm_intent(status.intent_id)
        await self.send(p.OrderPaid(status.order_id))
        return await self.expect(p.Receipt, lambda m: m.order_id == status.order_id)

    async def close(self) -> None:
        await self.ws.close()
        await self.bank.aclose()


async def stock(shopper: Shopper) -> dict[str, int]:
    await shopper.send(p.QueryStock("kz-honey"))
    return dict((await shopper.expect(p.Stock)).items)


async def test_purchase_end_to_end(expo, bank_process):
    aru = await Shopper.join(expo, "Aru")
    before = (await aru.bank.me()).balance
    receipt = await aru.buy("HONEY-1", 2)
    assert (receipt.product_name, receipt.qty, receipt.amount, receipt.currency) == ("Mountain honey", 2, "9000.00", "KZT")
    fulfilled = await aru.expect(p.OrderStatus, lambda m: m.status == "fulfilled")
    assert fulfilled.order_id == receipt.order_id
    assert (await aru.bank.me()).balance < before  # paid in MYR for a KZT price
    await aru.send(p.QueryInventory())
    assert (await aru.expect(p.Inventory)).items == (("kz-honey", "HONEY-1", "Mountain honey", 2),)
    assert (await stock(aru))["HONEY-1"] == 8
    async with PlatformClient(bank_process[0], PLATFORM_KEY) as platform:
        merchant = expo.commerce.store.merchant("kz-honey", "KZT")
        assert (await platform.get_account(merchant)).balance == 900000  # 9000.00 KZT in minor units
    await aru.close()


async def test_an_order_at_a_booth_without_a_merchant_account_fails_and_gives_its_stock_back(expo):
    """A booth a world reload added while the bank was down has no merchant account yet."""
    with expo.commerce.store.transaction() as db:
        db.execute("DELETE FROM merchants WHERE booth = 'kz-honey'")
    aru = await Shopper.join(expo, "Aru")
    status = await aru.order("HONEY-1", 1)
    if status.status == "reserving":
        status = await aru.expect(p.OrderStatus, lambda m: m.order_id == status.order_id and m.status != "reserving")
    assert status.status == "failed" and "cannot take KZT payments yet" in status.message
    assert (await stock(aru))["HONEY-1"] == 10
    await aru.close()


async def test_retried_order_key_returns_the_same_order(expo):
    aru = await Shopper.join(expo, "Aru")
    first = await aru.order("HONEY-1", 1, key="same")
    again = await aru.order("HONEY-1", 1, key="same")
    assert again.order_id == first.order_id and again.intent_id == first.intent_id
    await aru.send(p.Order("kz-honey", "HONEY-1", 2, "same"))
    assert (await aru.expect(p.Error)).code == "bad_field"
    assert (await stock(aru))["HONEY-1"] == 9  # reserved once
    await aru.close()


async def test_limits_stock_and_unknown_products(expo):
    aru = await Shopper.join(expo, "Aru")
    over = await aru.order("HONEY-1", 3)
    assert over.status == "failed" and "limit is 2" in over.message
    await aru.send(p.Order("kz-honey", "NOPE", 1, "k"))
    assert (await aru.expect(p.Error)).code == "unknown_product"
    bea = await Shopper.join(expo, "Bea")
    await aru.order("CARPET-1", 1)  # the only carpet, reserved by Aru
    assert (await bea.order("CARPET-1", 1)).message == "sold out"
    await aru.close()
    await bea.close()


async def test_insufficient_funds_then_cancel_releases_stock(expo):
    aru = await Shopper.join(expo, "Aru")
    status = await aru.order("CARPET-1", 1)
    with pytest.raises(BankAPIError) as refused:
        await aru.bank.confirm_intent(status.intent_id)
    assert refused.value.code == "insufficient_funds"
    await aru.send(p.CancelOrder(status.order_id))
    canceled = await aru.expect(p.OrderStatus, lambda m: m.status == "canceled")
    assert canceled.order_id == status.order_id
    assert (await stock(aru))["CARPET-1"] == 1
    await aru.close()


async def test_unpaid_orders_expire_and_release_stock(bank_process, tmp_path):
    srv = ExpoServer(small_expo(), server_config(bank_process, tmp_path, order_ttl=1.0))
    await srv.start()
    aru = await Shopper.join(srv, "Aru")
    status = await aru.order("HONEY-1", 2)
    expired = await aru.expect(p.OrderStatus, lambda m: m.status == "expired", timeout=10)
    assert expired.order_id == status.order_id
    assert (await stock(aru))["HONEY-1"] == 10
    with pytest.raises(BankAPIError) as late:
        await aru.bank.confirm_intent(status.intent_id)  # the bank no longer takes it
    assert late.value.code in ("intent_canceled", "intent_expired")
    await aru.close()
    await srv.stop()


async def test_order_paid_is_answered_before_the_bank_has_settled_and_after(expo):
    """OrderPaid for an intent not paid yet gets the order as it stands, saying the bank has
    not settled it (it got no answer at all); asked again once fulfilled, the receipt again."""
    aru = await Shopper.join(expo, "Aru")
    status = await aru.order("HONEY-1", 1)
    await aru.send(p.OrderPaid(status.order_id))
    early = await aru.expect(p.OrderStatus, lambda m: m.order_id == status.order_id)
    assert early.status == "pending_payment" and "has not settled" in early.message
    assert early.intent_id == status.intent_id and early.expires_at == pytest.approx(status.expires_at, abs=1.0)
    receipt = await aru.buy_order(status)
    await aru.send(p.OrderPaid(status.order_id))
    again = await aru.expect(p.Receipt, lambda m: m.order_id == status.order_id)
    assert (again.intent_id, again.amount, again.qty) == (receipt.intent_id, receipt.amount, receipt.qty)
    assert again.settled_at == pytest.approx(receipt.settled_at, abs=0.01)  # the same instant, read again
    await aru.close()


async def test_the_bank_webhook_alone_fulfils(expo, tmp_path):
    aru = await Shopper.join(expo, "Aru")
    status = await aru.order("HONEY-1", 1)
    await aru.bank.confirm_intent(status.intent_id)  # no OrderPaid: the webhook must do it
    receipt = await aru.expect(p.Receipt, timeout=15)
    assert receipt.order_id == status.order_id
    await aru.close()
    bank_log = (tmp_path / "bank.log").read_text()
    assert "bank/webhook" not in bank_log, bank_log[-2000:]  # a delivered webhook is not a line of `make run`


async def test_forged_and_replayed_webhooks_are_refused_and_change_nothing(expo):
    aru = await Shopper.join(expo, "Aru")
    status = await aru.order("HONEY-1", 1)
    body = (b'{"id":"evt_x","type":"payment_intent.succeeded","created":1,"data":{"object":{"id":"%s",'
            b'"metadata":{"order_id":"%s"}}}}' % (status.intent_id.encode(), status.order_id.encode()))
    url = f"http://127.0.0.1:{expo.config.webhook_port}/bank/webhook"
    async with httpx.AsyncClient() as http:
        forged = await http.post(url, content=body, headers={SIGNATURE_HEADER: f"t={int(time.time())},v1={'0' * 64}"})
        assert forged.status_code == 400 and forged.json()["result"] == "signature_invalid"
        stale = await http.post(url, content=body, headers={SIGNATURE_HEADER: sign(WEBHOOK_SECRET, body, int(time.time()) - 3600)})
        assert stale.status_code == 400 and stale.json()["result"] == "signature_stale"
        missing = await http.post(url, content=body)
        assert missing.status_code == 400
    order = expo.commerce.store.order(status.order_id)
    assert order.status == "pending_payment"  # a well-signed lie would still be checked: nothing was fulfilled
    await aru.close()


async def test_webhook_bodies_over_the_limit_are_refused_unread(expo):
    url = f"http://127.0.0.1:{expo.config.webhook_port}/bank/webhook"
    async with httpx.AsyncClient() as http:
        declared = await http.post(url, content=b"x" * (MAX_WEBHOOK_BODY + 1))
        assert declared.status_code == 413 and declared.json()["result"] == "body_too_large"

        async def chunks():  # no Content-Length: the receiver must stop reading at the limit
            for _ in range(64):
                yield b"y" * 65536

        streamed = await http.post(url, content=chunks())
        assert streamed.status_code == 413


async def test_store_work_runs_off_the_event_loop(expo):
    loop_thread = threading.current_thread()
    seen: set[threading.Thread] = set()
    store = expo.commerce.store
    original = store.place_order

    def place_order(*args, **kwargs):
        seen.add(threading.current_thread())
        return original(*args, **kwargs)

    store.place_order = place_order
    aru = await Shopper.join(expo, "Aru")
    assert (await aru.order("HONEY-1", 1)).status == "pending_payment"
    assert seen and loop_thread not in seen
    await aru.close()


async def test_a_second_visitor_under_a_departed_visitors_name_sees_nothing_of_theirs(expo):
    bob = await Shopper.join(expo, "Bob")
    await bob.buy("HONEY-1", 1)
    open_order = await bob.order("HONEY-1", 1)
    assert open_order.status == "pending_payment"
    await bob.send(p.Bye())
    await bob.close()
    impostor = await Shopper.join(expo, "BOB")
    assert impostor.welcome.visitor_id != bob.welcome.visitor_id
    await impostor.send(p.QueryInventory())
    assert (await impostor.expect(p.Inventory)).items == ()
    await impostor.send(p.CancelOrder(open_order.order_id))
    assert (await impostor.expect(p.Error)).code == "not_allowed"
    await impostor.send(p.OrderPaid(open_order.order_id))
    assert (await impostor.expect(p.Error)).code == "not_allowed"
    assert (await impostor.order("HONEY-1", 2)).status == "pending_payment"  # Bob's limit is Bob's
    assert expo.commerce.store.order(open_order.order_id).status == "pending_payment"
    await impostor.close()


async def test_a_file_written_before_visitor_ids_gives_nothing_to_whoever_takes_the_old_name(bank_process, tmp_path):
    """An older server keyed orders, inventory and limits on the case-folded name. At start
    those rows move to legacy ids no visitor can prove: a new "Bob" gets none of Bob's
    inventory, cannot touch his order and has the whole limit; the interrupted legacy order
    is released (no account was ever linked to pay it), its stock back on the shelf."""
    from test_store import version_1_file

    version_1_file(tmp_path / "server" / "commerce.sqlite3", now=time.time())
    srv = ExpoServer(small_expo(), server_config(bank_process, tmp_path))
    await srv.start()
    try:
        bob = await Shopper.join(srv, "Bob")
        await bob.send(p.QueryInventory())
        assert (await bob.expect(p.Inventory)).items == ()
        await bob.send(p.CancelOrder("ord_old_2"))
        assert (await bob.expect(p.Error)).code == "not_allowed"
        assert await stock(bob) == {"CARPET-1": 0, "HONEY-1": 8}  # 7 + the released reservation
        assert srv.commerce.store.order("ord_old_2").status == "failed"
        assert srv.commerce.store.order("ord_old_2").intent_id is None  # no intent anybody could pay
        await bob.buy("HONEY-1", 2)  # the old Bob's 2 do not count against the new one's limit of 2
        await bob.send(p.QueryInventory())
        assert (await bob.expect(p.Inventory)).items == (("kz-honey", "HONEY-1", "Mountain honey", 2),)
        assert srv.commerce.store.inventory("legacy:bob") == [("kz-honey", "HONEY-1", 2)]
        await bob.close()
    finally:
        await srv.stop()


async def test_a_visitor_who_comes_back_with_the_token_is_the_same_visitor(expo):
    aru = await Shopper.join(expo, "Aru")
    await aru.buy("HONEY-1", 1)
    token, bank_token = aru.welcome.visitor_token, aru.bank.token
    await aru.ws.close()  # a crash: no Bye
    again = await Shopper.join(expo, "Aru", visitor_token=token, bank_token=bank_token, link=False)
    assert again.welcome.visitor_id == aru.welcome.visitor_id
    assert again.welcome.session_id == aru.welcome.session_id  # the detached avatar, taken over
    await again.send(p.QueryInventory())
    assert (await again.expect(p.Inventory)).items == (("kz-honey", "HONEY-1", "Mountain honey", 1),)
    await again.close()


async def test_after_a_server_restart_the_token_is_still_the_same_visitor_with_the_same_inventory(bank_process, tmp_path):
    """Another day: the server was stopped and started again on its data directory (its
    visitor secret kept there); the client's token still proves the same visitor."""
    srv = ExpoServer(small_expo(), server_config(bank_process, tmp_path))
    await srv.start()
    aru = await Shopper.join(srv, "Aru")
    await aru.buy("HONEY-1", 1)
    token, bank_token, visitor = aru.welcome.visitor_token, aru.bank.token, aru.welcome.visitor_id
    await aru.send(p.Bye())
    await aru.close()
    await srv.stop()
    again_srv = ExpoServer(small_expo(), server_config(bank_process, tmp_path))
    await again_srv.start()
    try:
        again = await Shopper.join(again_srv, "Aru", visitor_token=token, bank_token=bank_token, link=False)
        assert again.welcome.visitor_id == visitor
        await again.send(p.QueryInventory())
        assert (await again.expect(p.Inventory)).items == (("kz-honey", "HONEY-1", "Mountain honey", 1),)
        stranger = await Shopper.join(again_srv, "Aru", link=False)  # no token: someone else, whatever the name
        assert stranger.welcome.visitor_id != visitor
        await stranger.send(p.QueryInventory())
        assert (await stranger.expect(p.Inventory)).items == ()
        await stranger.close()
        await again.close()
    finally:
        await again_srv.stop()


async def test_an_intent_is_payable_only_from_the_ordering_visitors_account(expo):
    aru = await Shopper.join(expo, "Aru")
    bea = await Shopper.join(expo, "Bea")
    status = await aru.order("HONEY-1", 1)
    with pytest.raises(BankAPIError) as refused:
        await bea.bank.confirm_intent(status.intent_id)
    assert refused.value.code == "not_your_intent"
    with pytest.raises(BankAPIError):
        await bea.bank.get_intent(status.intent_id)  # nor may Bea read it
    await aru.bank.confirm_intent(status.intent_id)
    await aru.send(p.OrderPaid(status.order_id))
    assert (await aru.expect(p.Receipt)).order_id == status.order_id
    await aru.close()
    await bea.close()


async def test_orders_need_the_visitors_own_linked_account(expo):
    aru = await Shopper.join(expo, "Aru", link=False)
    await aru.send(p.Order("kz-honey", "HONEY-1", 1, "k1"))
    assert (await aru.expect(p.Error)).code == "not_allowed"
    bea = await Shopper.join(expo, "Bea", link=False)
    beas_proof = await bea.bank.account_proof(bea.welcome.visitor_id)
    await aru.send(p.LinkAccount(beas_proof.proof))  # Bea's proof is for Bea only
    error = await aru.expect(p.Error)
    assert (error.code, error.ref) == ("not_allowed", p.LinkAccount.TYPE) and "proof_invalid" in error.message
    await aru.send(p.LinkAccount("ap1.acct_x.99999999999.00"))
    assert (await aru.expect(p.Error)).code == "not_allowed"
    assert expo.commerce.store.payer(aru.welcome.visitor_id) is None
    linked = await aru.link()
    assert linked.account_id == (await aru.bank.me()).id
    assert (await aru.order("HONEY-1", 1)).status == "pending_payment"
    await aru.close()
    await bea.close()


async def test_at_most_three_orders_await_payment_per_visitor(bank_process, tmp_path):
    srv = ExpoServer(small_expo(), server_config(bank_process, tmp_path, max_open_orders=3))
    await srv.start()
    aru = await Shopper.join(srv, "Aru")
    for _ in range(2):
        assert (await aru.order("HONEY-1", 1)).status == "pending_payment"
    assert (await aru.order("CARPET-1", 1)).status == "pending_payment"
    fourth = await aru.order("HONEY-1", 1)
    assert fourth.status == "failed" and "at most 3" in fourth.message
    await aru.close()
    await srv.stop()


async def test_a_full_bank_queue_answers_busy_and_loses_nothing(bank_process, tmp_path):
    srv = ExpoServer(small_expo(), server_config(bank_process, tmp_path, bank_concurrency=1, bank_queue=1))
    await srv.start()
    shoppers = [await Shopper.join(srv, f"V{i}") for i in range(4)]
    for i, shopper in enumerate(shoppers):  # all at once: one is taken, the rest find the queue full
        await shopper.send(p.Order("kz-honey", "HONEY-1", 1, f"burst-{i}"))
    answers = [await s.expect((p.OrderStatus, p.Error)) for s in shoppers]
    busy = [a for a in answers if isinstance(a, p.Error)]
    placed = [a for a in answers if isinstance(a, p.OrderStatus)]
    assert busy and all(a.code == "busy" and a.ref == p.Order.TYPE for a in busy)
    assert placed and all(a.status == "pending_payment" for a in placed)
    assert (await stock(shoppers[0]))["HONEY-1"] == 10 - len(placed)  # the refused reserved nothing
    retry = await shoppers[answers.index(busy[0])].order("HONEY-1", 1, key="after")
    assert retry.status == "pending_payment"  # once the queue drains
    for shopper in shoppers:
        await shopper.close()
    await srv.stop()


async def test_an_order_fulfilled_elsewhere_while_its_buyer_asks_still_gets_the_receipt(bank_process, tmp_path):  # noqa: F811
    """In a cluster another hall process (its sweep, or the bank's webhook it heard) may fulfil
    the order between this process reading it open and fulfilling it. The buyer who sent
    ``OrderPaid`` still gets the Receipt; before, the question went unanswered."""
    url, _, _ = bank_process
    srv = ExpoServer(small_expo(), ServerConfig(port=0, bank_url=url, bank_platform_key=PLATFORM_KEY,  # no webhooks here
                                                data_dir=tmp_path / "server"))
    await srv.start()
    try:
        aru = await Shopper.join(srv, "Aru", "KZT")
        status = await aru.order("HONEY-1")
        await aru.bank.confirm_intent(status.intent_id)
        commerce = srv.commerce
        assert commerce is not None
        ask_the_bank = commerce.bank.get_intent

        async def another_process_fulfils_meanwhile(intent_id: str):
            intent = await ask_the_bank(intent_id)
            assert await commerce.db.run(commerce.store.fulfil, status.order_id, intent_id, time.time()) is not None
            return intent

        commerce.bank.get_intent = another_process_fulfils_meanwhile  # type: ignore[method-assign]
        await aru.send(p.OrderPaid(status.order_id))
        receipt = await aru.expect(p.Receipt, lambda m: m.order_id == status.order_id)
        assert (receipt.sku, receipt.qty) == ("HONEY-1", 1)
        assert (await aru.expect(p.OrderStatus, lambda m: m.order_id == status.order_id)).status == "fulfilled"
        await aru.close()
    finally:
        await srv.stop()
