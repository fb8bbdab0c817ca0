"""B2B deals across a cluster, as `make cluster` runs it: two expo-server hall processes on a
real nats-server and PostgreSQL, the bank serving from the same PostgreSQL, a buyer's client
core at one process and the booth's staff (a client core with its pass) at the other.

A first deal runs RFQ -> quotation by the staff -> deposit in escrow -> purchase order ->
shipment -> balance paid -> delivered, each side told of every step although the other is
at another process. A second deal's purchase order is sent and the buyer's process killed
with SIGKILL at once: the client core goes to the other process by itself, the buyer retries
the order there (idempotent), and the deal runs to delivery. Then each deal's deposit is in
the state its deal says, no deal has two, and ``expo-bank verify`` is clean."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from processes import BIN, free_port, start, stop, wait_http

import protocol as p
from bank.client import PlatformClient, VisitorClient
from client import events as ev
from client.core import ClientCore
from client.transport import Transport
from server.cluster.local import NatsServer
from server.deals.machine import PRICE_LIST, DealState
from server.deals.pg_store import PgDealStore
from server.staff import issue_pass

pytestmark = pytest.mark.e2e
PLATFORM_KEY = "cluster-deals-platform-key"
STAFF_SECRET = secrets.token_urlsafe(16)
BOOTH, SKU = "cn-yunnan-tea", "CN-PUER-357"  # no standing price list: its staff quote
TIERS = ((1, "18"), (50, "15.05"))  # CNY a sample cake
LISTED = ("kz-altai-honey", "KZ-HONEY-500")  # a standing price list in the default expo
ESCROW_OF_STATE = {"ordered": {"pending"}, "shipped": {"posted"}, "delivered": {"posted"},
                   "canceled": {"voided"}, "expired": {"voided"}}


@pytest.fixture
def cluster(nats_server: NatsServer, fresh_database: str, tmp_path: Path) -> Iterator[tuple[str, list[str], list]]:
    """The bank on PostgreSQL and two hall processes, as `make cluster` starts them."""
    bank_port = free_port()
    bank_url = f"http://127.0.0.1:{bank_port}"
    bank = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", fresh_database,
                  "--secrets-dir", str(tmp_path / "bank"), "--platform-key", PLATFORM_KEY],
                 f"{bank_url}/healthz", log=tmp_path / "bank.log")
    env = {**os.environ, "EXPO_BANK_PLATFORM_KEY": PLATFORM_KEY, "EXPO_STAFF_SECRET": STAFF_SECRET,
           "EXPO_VISITOR_SECRET": secrets.token_urlsafe(24)}
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([str(BIN / "expo-server"), "--port", str(port), "--cluster", nats_server.url,
                               "--db", fresh_database, "--bank-url", bank_url, "--data-dir", str(tmp_path / name),
                               "--no-watch"], stdout=open(tmp_path / f"{name}.log", "wb"), stderr=subprocess.STDOUT,
                              env=env) for name, port in zip("ab", ports, strict=True)]
    try:
        for proc, port in zip(procs, ports, strict=True):
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=240, proc=proc)
        yield bank_url, [f"ws://127.0.0.1:{port}/" for port in ports], procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
        stop(bank)


class Party:
    """A client core over its transport (as the desktop client and the bots use it)."""

    def __init__(self, name: str, url: str, staff_of: str | None = None) -> None:
        self.core = ClientCore(name, staff_pass=issue_pass(STAFF_SECRET, staff_of) if staff_of else None, view=False)
        self.events: list[ev.Event] = []
        self.transport = Transport(self.core, url, on_event=self.events.append)
        self.task = asyncio.create_task(self.transport.run())

    async def until(self, test: Callable[[ev.Event], bool], timeout: float = 15.0, since: int = 0) -> ev.Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events[since:]:
                if test(event):
                    return event
            await asyncio.sleep(0.01)
        raise AssertionError(f"not within {timeout} s; last events: {self.events[-8:]}")

    async def deal(self, state: str, deal_id: str | None = None, key: str | None = None,
                   timeout: float = 15.0) -> p.DealStatus:
        def test(e: ev.Event) -> bool:
            return (isinstance(e, ev.DealUpdated) and e.message.state == state
                    and (deal_id is None or e.message.deal_id == deal_id) and (key is None or e.message.key == key))
        found = await self.until(test, timeout)
        assert isinstance(found, ev.DealUpdated)
        return found.message

    async def do(self, command: Callable[[ClientCore], object]) -> None:
        await self.transport.command(command)

    async def close(self) -> None:
        await self.transport.close()
        await asyncio.wait_for(self.task, 10)


async def buyer_joins(url: str) -> tuple[Party, VisitorClient]:
    buyer = Party("Mei Buyer", url)
    joined = await buyer.until(lambda e: isinstance(e, ev.Joined))
    assert isinstance(joined, ev.Joined)
    bank = VisitorClient(joined.welcome.bank_url)
    await bank.open_account("Mei Buyer", "MYR")  # pays from ringgit: FX locked at the quote
    proof = (await bank.account_proof(joined.welcome.visitor_id)).proof
    await buyer.do(lambda core: core.link_account(proof))
    await buyer.until(lambda e: isinstance(e, ev.AccountLinked))
    return buyer, bank


async def quoted(buyer: Party, staff: Party, key: str, qty: int) -> p.DealStatus:
    await buyer.do(lambda core: core.request_quote(BOOTH, SKU, qty, "FOB", "CN", key))
    asked = await staff.deal("requested", key=key)  # the staff are at the other process
    await staff.do(lambda core: core.send_quotation(asked.deal_id, TIERS, "CNY", 3600.0, 14, 30))
    return await buyer.deal("quoted", asked.deal_id)


async def escrow_for(bank: VisitorClient, deal: p.DealStatus) -> str:
    assert deal.currency and deal.payee_account and deal.deposit_minor is not None
    lock = await bank.lock_fx(deal.currency, deal.deposit_minor)
    escrow = await bank.create_escrow(deal.payee_account, deal.deposit_minor, deal.currency, deal.deal_id,
                                      fx_lock_id=lock.id, idempotency_key=f"escrow-{deal.deal_id}")
    return escrow.id


async def ship_and_deliver(buyer: Party, staff: Party, bank: VisitorClient, deal_id: str) -> None:
    await staff.deal("ordered", deal_id)
    await staff.do(lambda core: core.confirm_shipment(deal_id))
    shipped = await buyer.deal("shipped", deal_id)
    assert shipped.balance_intent_id is not None
    await bank.confirm_intent(shipped.balance_intent_id, idempotency_key=f"balance-{deal_id}")
    await buyer.do(lambda core: core.confirm_delivery(deal_id))
    await buyer.deal("delivered", deal_id)
    await staff.deal("delivered", deal_id)


async def test_deals_across_two_hall_processes_survive_a_kill_9(cluster, fresh_database) -> None:
    bank_url, (url_a, url_b), procs = cluster
    buyer, bank = await buyer_joins(url_a)
    staff = Party("Li Staff", url_b, staff_of=BOOTH)
    platform = PlatformClient(bank_url, PLATFORM_KEY)
    try:
        await staff.until(lambda e: isinstance(e, ev.Joined))
        assert buyer.transport.url == url_a and staff.transport.url == url_b

        # a product with a standing price list is quoted at once by the list, on PostgreSQL too
        await buyer.do(lambda core: core.request_quote(*LISTED, 2, "FOB", "CN", "listed"))
        listed = await buyer.deal("quoted", key="listed", timeout=5)
        assert listed.unit_price is not None
        await buyer.do(lambda core: core.cancel_deal(listed.deal_id))
        await buyer.deal("canceled", listed.deal_id)

        # a whole deal, the buyer at a and the staff at b
        first = await quoted(buyer, staff, "first", 60)
        assert (first.unit_price, first.total, first.deposit) == ("15.05", "903.00", "270.90")
        escrow = await escrow_for(bank, first)
        await buyer.do(lambda core: core.place_purchase_order(first.deal_id, escrow))
        assert (await buyer.deal("ordered", first.deal_id)).escrow_id == escrow
        assert (await platform.get_escrow(escrow)).status == "pending"  # held: neither side can spend it
        await ship_and_deliver(buyer, staff, bank, first.deal_id)

        # a second deal: its purchase order in flight when the buyer's process is killed
        second = await quoted(buyer, staff, "second", 10)
        escrow2 = await escrow_for(bank, second)
        deadline = time.monotonic() + 8  # where to go should a die: Servers, from a's look at the directory
        while buyer.core.servers != (url_b,):
            assert time.monotonic() < deadline, f"Servers said {buyer.core.servers}"
            await asyncio.sleep(0.05)
        await buyer.do(lambda core: core.place_purchase_order(second.deal_id, escrow2))
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        mark = len(buyer.events)
        again = await buyer.until(lambda e: isinstance(e, ev.Joined), timeout=15, since=mark)
        assert buyer.transport.url == url_b and isinstance(again, ev.Joined)
        await buyer.do(lambda core: core.place_purchase_order(second.deal_id, escrow2))  # a retry: once only
        assert (await buyer.deal("ordered", second.deal_id)).escrow_id == escrow2
        await ship_and_deliver(buyer, staff, bank, second.deal_id)
    finally:
        await buyer.close()
        await staff.close()
        await bank.aclose()

    store = PgDealStore(fresh_database)
    try:
        deals = store.in_states(tuple(DealState))
    finally:
        store.close()
    assert Counter(d.state.value for d in deals) == {"delivered": 2, "canceled": 1}
    escrows = await platform.list_escrows()
    assert Counter(e.end_to_end_id for e in escrows) == {first.deal_id: 1, second.deal_id: 1}  # none doubled
    for deal in deals:
        if deal.id == listed.deal_id:
            assert deal.quoted_by == PRICE_LIST and deal.escrow_id is None  # canceled before any deposit
            continue
        assert deal.escrow_id is not None
        held = await platform.get_escrow(deal.escrow_id)
        assert held.end_to_end_id == deal.id and held.status in ESCROW_OF_STATE[deal.state.value]
        assert deal.balance_intent_id and (await platform.get_intent(deal.balance_intent_id)).status == "succeeded"
    await platform.aclose()
    verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", fresh_database], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
