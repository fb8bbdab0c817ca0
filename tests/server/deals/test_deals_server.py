"""B2B deals through a real world server and a real bank process: an RFQ runs to delivery
with the deposit held in escrow, cancel voids it, every bad request gets a clear error,
retries change nothing, and ``expo-bank verify`` is clean after."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time

import pytest
from processes import BIN, free_port, start, stop
from support import small_expo
from websockets.asyncio.client import connect

import protocol as p
from bank.client import PlatformClient, VisitorClient
from server.app import ExpoServer
from server.config import ServerConfig
from server.staff import issue_pass

PLATFORM_KEY = "deals-test-platform-key"
STAFF_SECRET = secrets.token_urlsafe(16)
BOOTH = "kz-honey"
TIERS = ((1, "5000"), (100, "4200.50"), (1000, "3900"))  # KZT a jar


@pytest.fixture
def bank(tmp_path):
    port = free_port()
    db = tmp_path / "bank.sqlite3"
    proc = start([str(BIN / "expo-bank"), "serve", "--port", str(port), "--db", str(db), "--platform-key", PLATFORM_KEY],
                 f"http://127.0.0.1:{port}/healthz", log=tmp_path / "bank.log")
    yield f"http://127.0.0.1:{port}", db
    stop(proc)


@pytest.fixture
async def expo(bank, tmp_path):
    url, _ = bank
    srv = ExpoServer(small_expo(), ServerConfig(port=0, bank_url=url, bank_platform_key=PLATFORM_KEY,
                                                staff_secret=STAFF_SECRET, data_dir=tmp_path / "server"))
    await srv.start()
    yield srv
    await srv.stop()


class Party:
    """A visitor (or staff member) on a real socket, with its own bank account."""

    def __init__(self, ws, bank: VisitorClient) -> None:
        self.ws, self.bank = ws, bank
        self.inbox: list[p.Message] = []

    @classmethod
    async def join(cls, srv: ExpoServer, name: str, currency: str = "KZT", staff_of: str | None = None,
                   link: bool = True) -> Party:
        # max_queue=None: reads on while the test looks away (a full queue stops reading; close() then waits 10 s)
        ws = await connect(f"ws://127.0.0.1:{srv.port}/", compression=None, max_queue=None)
        await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0, None,
                                       issue_pass(STAFF_SECRET, staff_of) if staff_of else None)))
        welcome = p.decode_server(await ws.recv())
        assert isinstance(welcome, p.Welcome), welcome
        bank = VisitorClient(welcome.bank_url)
        await bank.open_account(name, currency)
        party = cls(ws, bank)
        if link:  # the bank's proof that the account is this visitor's, as retail orders need too
            await party.send(p.LinkAccount((await bank.account_proof(welcome.visitor_id)).proof))
            await party.expect(p.AccountLinked)
        return party

    async def send(self, message: p.Message) -> None:
        await self.ws.send(p.encode(message))

    async def expect(self, kind, where=lambda m: True, timeout: float = 10.0):
        for m in self.inbox:
            if isinstance(m, kind) and where(m):
                self.inbox.remove(m)
                return m
        try:
            return await asyncio.wait_for(self._receive(kind, where), timeout)
        except TimeoutError:
            raise AssertionError(f"no {kind.__name__} in {timeout} s; got {self.inbox[-5:]}") from None

    async def _receive(self, kind, where):
        while True:
            m = p.decode_server(await self.ws.recv())
            if isinstance(m, kind) and where(m):
                return m
            if not isinstance(m, p.Snapshot):
                self.inbox.append(m)

    async def status(self, deal_id: str, state: str) -> p.DealStatus:
        return await self.expect(p.DealStatus, lambda m: m.deal_id == deal_id and m.state == state)

    async def status_any(self) -> p.DealStatus:
        return await self.expect(p.DealStatus)

    async def error(self, ref: type) -> p.Error:
        return await self.expect(p.Error, lambda m: m.ref == ref.TYPE)

    async def close(self) -> None:
        await self.bank.aclose()
        await self.ws.close()


async def rfq_quoted(buyer: Party, staff: Party, qty: int = 120, key: str | None = None) -> p.DealStatus:
    await buyer.send(p.RequestQuote(BOOTH, "HONEY-1", qty, "FOB", "CN", key or f"rfq-{time.monotonic_ns()}"))
    asked = await buyer.status_any()
    seen = await staff.expect(p.DealStatus, lambda m: m.deal_id == asked.deal_id)
    assert (seen.state, seen.sku, seen.qty, seen.incoterm, seen.destination) == ("requested", "HONEY-1", qty, "FOB", "CN")
    await staff.send(p.SendQuotation(asked.deal_id, TIERS, "KZT", 3600.0, 21, 30))
    return await buyer.status(asked.deal_id, "quoted")


async def deposit(buyer: Party, quoted: p.DealStatus) -> str:
    """The buyer locks FX (it pays from MYR) and holds the deposit in escrow, as a client does."""
    assert quoted.deposit_minor is not None and quoted.payee_account is not None and quoted.currency is not None
    lock = await buyer.bank.lock_fx(quoted.currency, quoted.deposit_minor)
    escrow = await buyer.bank.create_escrow(quoted.payee_account, quoted.deposit_minor, quoted.currency,
                                            quoted.deal_id, fx_lock_id=lock.id)
    return escrow.id


async def test_an_rfq_runs_to_delivery_with_the_deposit_in_escrow(expo, bank):
    url, db = bank
    buyer = await Party.join(expo, "Mei", "MYR")
    staff = await Party.join(expo, "Aigerim", staff_of=BOOTH)
    quoted = await rfq_quoted(buyer, staff, qty=120)
    assert (quoted.unit_price, quoted.total, quoted.deposit, quoted.deposit_minor) == ("4200.50", "504060.00", "151218.00", 15121800)
    assert quoted.lead_days == 21 and quoted.valid_until > time.time() + 3500

    before = (await buyer.bank.me()).balance
    escrow_id = await deposit(buyer, quoted)
    await buyer.send(p.PlacePurchaseOrder(quoted.deal_id, escrow_id))
    ordered = await buyer.status(quoted.deal_id, "ordered")
    assert ordered.escrow_id == escrow_id and ordered.uetr
    await staff.status(quoted.deal_id, "ordered")
    await buyer.send(p.PlacePurchaseOrder(quoted.deal_id, escrow_id))  # a retry: the same deal, nothing new
    assert (await buyer.status(quoted.deal_id, "ordered")).uetr == ordered.uetr
    platform = PlatformClient(url, PLATFORM_KEY)
    held = await platform.get_escrow(escrow_id)
    assert (held.status, held.end_to_end_id, held.fx_lock_id is not None) == ("pending", quoted.deal_id, True)
    assert (await buyer.bank.me()).balance == before - held.debit_amount
    payee_before = (await platform.get_account(quoted.payee_account)).balance

    await buyer.send(p.ConfirmShipment(quoted.deal_id))  # the buyer is no staff
    assert (await buyer.error(p.ConfirmShipment)).code == "not_allowed"
    await staff.send(p.ConfirmShipment(quoted.deal_id))
    shipped = await buyer.status(quoted.deal_id, "shipped")
    await staff.send(p.ConfirmShipment(quoted.deal_id))  # again: still shipped, posted once
    await staff.status(quoted.deal_id, "shipped")
    assert (await platform.get_escrow(escrow_id)).status == "posted"
    assert (await platform.get_account(quoted.payee_account)).balance == payee_before + 15121800
    assert shipped.balance_intent_id is not None

    await buyer.send(p.ConfirmDelivery(quoted.deal_id))  # the balance is not paid yet
    assert (await buyer.error(p.ConfirmDelivery)).code == "wrong_state"
    await buyer.bank.confirm_intent(shipped.balance_intent_id)
    await buyer.send(p.ConfirmDelivery(quoted.deal_id))
    done = await buyer.status(quoted.deal_id, "delivered")
    await staff.status(quoted.deal_id, "delivered")
    assert (await platform.get_account(quoted.payee_account)).balance == payee_before + 50406000
    await buyer.send(p.CancelDeal(quoted.deal_id))
    assert (await buyer.error(p.CancelDeal)).code == "wrong_state"
    await buyer.send(p.QueryDeals())
    assert (await buyer.status(done.deal_id, "delivered")).escrow_id == escrow_id
    await platform.aclose()
    for party in (buyer, staff):
        await party.close()
    verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", str(db)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_cancel_voids_the_deposit_back_to_the_buyer(expo, bank):
    url, db = bank
    buyer = await Party.join(expo, "Mei", "KZT")
    staff = await Party.join(expo, "Aigerim", staff_of=BOOTH)
    quoted = await rfq_quoted(buyer, staff, qty=10)
    before = (await buyer.bank.me()).balance
    escrow_id = await deposit(buyer, quoted)
    await buyer.send(p.PlacePurchaseOrder(quoted.deal_id, escrow_id))
    await buyer.status(quoted.deal_id, "ordered")
    assert (await buyer.bank.me()).balance < before
    await staff.send(p.CancelDeal(quoted.deal_id))
    await buyer.status(quoted.deal_id, "canceled")
    await buyer.send(p.CancelDeal(quoted.deal_id))  # a retry: still canceled
    await buyer.status(quoted.deal_id, "canceled")
    escrow = await buyer.bank.get_escrow(escrow_id)
    assert (escrow.status, escrow.void_reason) == ("voided", "canceled")
    assert (await buyer.bank.me()).balance == before
    await staff.send(p.ConfirmShipment(quoted.deal_id))
    assert (await staff.error(p.ConfirmShipment)).code == "wrong_state"
    for party in (buyer, staff):
        await party.close()
    verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", str(db)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_a_deposit_no_purchase_order_can_use_goes_back_to_the_buyer_at_once(expo, bank):
    buyer = await Party.join(expo, "Mei", "KZT")
    staff = await Party.join(expo, "Aigerim", staff_of=BOOTH)
    quoted = await rfq_quoted(buyer, staff, qty=10)
    first = await deposit(buyer, quoted)
    await buyer.send(p.PlacePurchaseOrder(quoted.deal_id, first))
    await buyer.status(quoted.deal_id, "ordered")
    held_once = (await buyer.bank.me()).balance
    second = await deposit(buyer, quoted)  # a second escrow for the same deal (a client retrying with a new one)
    assert (await buyer.bank.me()).balance < held_once
    await buyer.send(p.PlacePurchaseOrder(quoted.deal_id, second))
    assert (await buyer.error(p.PlacePurchaseOrder)).code == "wrong_state"
    deadline = time.monotonic() + 10
    while (await buyer.bank.get_escrow(second)).status != "voided":
        assert time.monotonic() < deadline, "the unused deposit is still held"
        await asyncio.sleep(0.05)
    assert (await buyer.bank.me()).balance == held_once
    assert (await buyer.bank.get_escrow(first)).status == "pending"  # the purchase order's deposit stays held
    for party in (buyer, staff):
        await party.close()


async def test_bad_requests_get_clear_errors_and_change_nothing(expo, bank):
    buyer = await Party.join(expo, "Mei", "KZT")
    other = await Party.join(expo, "Cy", "KZT")
    staff = await Party.join(expo, "Aigerim", staff_of=BOOTH)
    await buyer.send(p.RequestQuote("nowhere", "HONEY-1", 5, "FOB", "CN", "k1"))
    assert (await buyer.error(p.RequestQuote)).code == "unknown_booth"
    await buyer.send(p.RequestQuote(BOOTH, "NOPE", 5, "FOB", "CN", "k2"))
    assert (await buyer.error(p.RequestQuote)).code == "unknown_product"
    await buyer.send(p.RequestQuote(BOOTH, "HONEY-1", 5, "FOX", "CN", "k3"))
    error = await buyer.error(p.RequestQuote)
    assert error.code == "bad_incoterm" and "FOB" in error.message
    await buyer.send(p.RequestQuote(BOOTH, "HONEY-1", 5, "FOB", "XX", "k4"))
    assert (await buyer.error(p.RequestQuote)).code == "bad_field"

    await buyer.send(p.RequestQuote(BOOTH, "HONEY-1", 5, "DAP", "KZ", "k5"))
    asked = await buyer.status_any()
    await buyer.send(p.RequestQuote(BOOTH, "HONEY-1", 5, "DAP", "KZ", "k5"))  # a retry: the same deal
    assert (await buyer.status_any()).deal_id == asked.deal_id
    await buyer.send(p.RequestQuote(BOOTH, "HONEY-1", 6, "DAP", "KZ", "k5"))
    assert (await buyer.error(p.RequestQuote)).code == "bad_field"
    await buyer.send(p.SendQuotation(asked.deal_id, TIERS, "KZT", 60.0, 5, 30))  # not staff
    assert (await buyer.error(p.SendQuotation)).code == "not_allowed"
    await staff.send(p.SendQuotation(asked.deal_id, ((10, "1"),), "KZT", 60.0, 5, 30))  # no tier for 5 units
    assert (await staff.error(p.SendQuotation)).code == "bad_field"
    await staff.send(p.SendQuotation(asked.deal_id, TIERS, "BTC", 60.0, 5, 30))
    assert (await staff.error(p.SendQuotation)).code == "bad_field"
    await staff.send(p.SendQuotation("po_nope", TIERS, "KZT", 60.0, 5, 30))
    assert (await staff.error(p.SendQuotation)).code == "unknown"
    await staff.send(p.PlacePurchaseOrder(asked.deal_id, "esc_x"))
    assert (await staff.error(p.PlacePurchaseOrder)).code == "not_allowed"
    await buyer.send(p.PlacePurchaseOrder(asked.deal_id, "esc_x"))  # not quoted yet
    assert (await buyer.error(p.PlacePurchaseOrder)).code == "wrong_state"

    await staff.send(p.SendQuotation(asked.deal_id, TIERS, "KZT", 2.0, 5, 30))
    quoted = await buyer.status(asked.deal_id, "quoted")
    wrong = await buyer.bank.create_escrow(quoted.payee_account, quoted.deposit_minor - 1, "KZT", quoted.deal_id)
    await buyer.send(p.PlacePurchaseOrder(asked.deal_id, wrong.id))
    assert (await buyer.error(p.PlacePurchaseOrder)).code == "bad_deposit"
    others = await other.bank.create_escrow(quoted.payee_account, quoted.deposit_minor, "KZT", quoted.deal_id)
    await buyer.send(p.PlacePurchaseOrder(asked.deal_id, others.id))  # the right deposit, from another's account
    error = await buyer.error(p.PlacePurchaseOrder)
    assert error.code == "bad_deposit" and "linked" in error.message
    await other.send(p.CancelDeal(asked.deal_id))
    assert (await other.error(p.CancelDeal)).code == "not_allowed"
    await asyncio.sleep(2.1)  # the quotation's validity runs out
    escrow_id = await deposit(buyer, quoted)
    await buyer.send(p.PlacePurchaseOrder(asked.deal_id, escrow_id))
    error = await buyer.expect(p.Error, lambda m: m.ref == p.PlacePurchaseOrder.TYPE and m.code in ("expired", "wrong_state"))
    assert "expired" in error.message
    await buyer.status(asked.deal_id, "expired")  # the sweep expired it
    loner = await Party.join(expo, "Lo", "KZT", link=False)  # a bank account the server was never shown
    await loner.send(p.RequestQuote(BOOTH, "HONEY-1", 5, "EXW", "KZ", "k6"))
    asked = await loner.status_any()
    await staff.send(p.SendQuotation(asked.deal_id, TIERS, "KZT", 60.0, 5, 30))
    quoted = await loner.status(asked.deal_id, "quoted")
    await loner.send(p.PlacePurchaseOrder(asked.deal_id, await deposit(loner, quoted)))
    error = await loner.error(p.PlacePurchaseOrder)
    assert error.code == "not_allowed" and "link" in error.message
    for party in (buyer, other, staff, loner):
        await party.close()


async def test_a_shipment_or_cancel_the_server_died_in_the_middle_of_is_finished_by_the_sweep(expo, bank):
    """The server posted (or voided) the deposit at the bank and died before it recorded the
    deal's new state: the sweep reads the escrow and finishes the move, once; the buyer is
    told, the balance is billed once, and nothing else moves."""
    url, db = bank
    buyer = await Party.join(expo, "Mei", "KZT")
    staff = await Party.join(expo, "Aigerim", staff_of=BOOTH)
    platform = PlatformClient(url, PLATFORM_KEY)
    deals = []
    for _ in range(2):
        quoted = await rfq_quoted(buyer, staff, qty=10)
        escrow_id = await deposit(buyer, quoted)
        await buyer.send(p.PlacePurchaseOrder(quoted.deal_id, escrow_id))
        await buyer.status(quoted.deal_id, "ordered")
        deals.append((quoted.deal_id, escrow_id))
    (shipped_id, posted), (canceled_id, voided) = deals
    # what the dead server had done at the bank with the keys it uses, and not yet recorded
    await platform.post_escrow(posted, idempotency_key=f"post-{shipped_id}")
    await platform.void_escrow(voided, idempotency_key=f"void-{canceled_id}")
    assert expo.deals is not None
    for _sweep in range(2):  # a second sweep finds nothing more to do
        await expo.deals.sweep(check_escrows=True)
    shipped = await buyer.status(shipped_id, "shipped")
    assert shipped.balance_intent_id is not None
    await buyer.status(canceled_id, "canceled")
    balance_intents = [i for i in await platform.list_intents() if i.metadata.get("deal") == shipped_id]
    assert [i.id for i in balance_intents] == [shipped.balance_intent_id]
    await buyer.bank.confirm_intent(shipped.balance_intent_id)
    await buyer.send(p.ConfirmDelivery(shipped_id))
    await buyer.status(shipped_id, "delivered")
    assert (await platform.get_escrow(posted)).status == "posted" and (await platform.get_escrow(voided)).status == "voided"
    await platform.aclose()
    for party in (buyer, staff):
        await party.close()
    verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", str(db)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
