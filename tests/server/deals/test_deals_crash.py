"""Deals survive SIGKILL of the world server: buyers run RFQ -> quotation -> deposit in
escrow -> purchase order -> shipment -> balance -> delivery (or cancel) against real expo-server
and expo-bank processes while the server is killed at random moments and restarted on the
same data. After a last restart (whose sweep reads every ordered deal's escrow back), each
deal's deposit is in the state its deal says, no deal has two deposits, every delivered
deal's balance is paid, and ``expo-bank verify`` is clean."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from processes import BIN, free_port, start, stop
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

import protocol as p
from bank.client import BankAPIError, PlatformClient, VisitorClient
from server.deals.machine import DealState
from server.deals.store import SqliteDealStore
from server.staff import issue_pass

PLATFORM_KEY = "deals-crash-platform-key"
SECRET = "deals-crash-staff-secret"
BOOTH, SKU = "kz-altai-honey", "KZ-HONEY-500"  # a standing price list in the default expo: quoted at once
ESCROW_OF_STATE = {"ordered": {"pending"}, "shipped": {"posted"}, "delivered": {"posted"},
                   "canceled": {"voided"}, "expired": {"voided"}}
DROPPED = (OSError, ConnectionError, ConnectionClosed, InvalidHandshake, BankAPIError, TimeoutError)


async def deal_status(ws, where, timeout: float = 5.0) -> p.DealStatus:
    async def wait() -> p.DealStatus:
        while True:
            m = p.decode_server(await ws.recv())
            if isinstance(m, p.DealStatus) and where(m):
                return m
    return await asyncio.wait_for(wait(), timeout)


async def buyer(port: int, index: int, stats: Counter) -> None:
    """One buyer after another (a new visitor after each drop); a deal in flight at a kill is
    left where it stands, as a person whose client died would leave it."""
    for attempt in range(60):
        try:
            async with connect(f"ws://127.0.0.1:{port}/", compression=None, open_timeout=2, max_queue=None) as ws:
                await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, f"Buyer{index}-{attempt}", 0, 0)))
                welcome = p.decode_server(await ws.recv())
                if not isinstance(welcome, p.Welcome) or not welcome.bank_url:
                    raise ConnectionError(welcome)
                async with VisitorClient(welcome.bank_url, timeout=3) as bank:
                    await bank.open_account(f"Buyer{index}-{attempt}", "KZT")
                    await ws.send(p.encode(p.LinkAccount((await bank.account_proof(welcome.visitor_id)).proof)))
                    for n in range(100):
                        key = f"b{index}-{attempt}-{n}"
                        await ws.send(p.encode(p.RequestQuote(BOOTH, SKU, 1 + n % 3, "FOB", "CN", key)))
                        quoted = await deal_status(ws, lambda m, k=key: m.key == k and m.state == "quoted")
                        assert quoted.payee_account and quoted.currency and quoted.deposit_minor is not None
                        escrow = await bank.create_escrow(quoted.payee_account, quoted.deposit_minor, quoted.currency,
                                                          quoted.deal_id, idempotency_key=f"escrow-{quoted.deal_id}")
                        await asyncio.sleep(0.5)  # within the server's deal messages a second
                        await ws.send(p.encode(p.PlacePurchaseOrder(quoted.deal_id, escrow.id)))
                        await deal_status(ws, lambda m, d=quoted.deal_id: m.deal_id == d and m.state == "ordered")
                        stats["ordered"] += 1
                        try:
                            shipped = await deal_status(ws, lambda m, d=quoted.deal_id: m.deal_id == d and m.state == "shipped", 3.0)
                        except TimeoutError:
                            await ws.send(p.encode(p.CancelDeal(quoted.deal_id)))
                            await deal_status(ws, lambda m, d=quoted.deal_id: m.deal_id == d and m.state == "canceled")
                            stats["canceled"] += 1
                            continue
                        if shipped.balance_intent_id:
                            await bank.confirm_intent(shipped.balance_intent_id, idempotency_key=f"balance-{quoted.deal_id}")
                        await asyncio.sleep(0.5)
                        await ws.send(p.encode(p.ConfirmDelivery(quoted.deal_id)))
                        await deal_status(ws, lambda m, d=quoted.deal_id: m.deal_id == d and m.state == "delivered")
                        stats["delivered"] += 1
                        await asyncio.sleep(0.5)
        except DROPPED:
            stats["dropped"] += 1
            await asyncio.sleep(0.3)


async def staff(port: int, rng: random.Random, stats: Counter) -> None:
    """The booth's staff ship most purchase orders at once (some never: the buyer cancels)."""
    while True:
        try:
            async with connect(f"ws://127.0.0.1:{port}/", compression=None, open_timeout=2, max_queue=None) as ws:
                await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Aigerim Staff", 0, 0, None, issue_pass(SECRET, BOOTH))))
                while True:
                    m = p.decode_server(await ws.recv())
                    if isinstance(m, p.DealStatus) and m.state == "ordered" and rng.random() < 0.75:
                        await ws.send(p.encode(p.ConfirmShipment(m.deal_id)))
                        stats["ship_sent"] += 1
        except DROPPED:
            await asyncio.sleep(0.3)


@pytest.mark.slow
async def test_sigkill_of_the_server_during_deals_loses_and_doubles_no_deposit(tmp_path: Path):
    bank_port, port = free_port(), free_port()
    bank_url, bank_db = f"http://127.0.0.1:{bank_port}", tmp_path / "bank.sqlite3"
    bank_proc = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", str(bank_db),
                       "--platform-key", PLATFORM_KEY], f"{bank_url}/healthz", log=tmp_path / "bank.log")
    server_cmd = [str(BIN / "expo-server"), "--port", str(port), "--bank-url", bank_url, "--no-watch",
                  "--data-dir", str(tmp_path / "server")]
    env = {"EXPO_BANK_PLATFORM_KEY": PLATFORM_KEY, "EXPO_STAFF_SECRET": SECRET}
    health = f"http://127.0.0.1:{port}/healthz"
    server = start(server_cmd, health, env=env, log=tmp_path / "server.log")
    rng, stats = random.Random(18), Counter()
    tasks = [asyncio.create_task(buyer(port, i, stats)) for i in range(3)] + [asyncio.create_task(staff(port, rng, stats))]
    try:
        for _kill in range(3):
            await asyncio.sleep(rng.uniform(2.0, 5.0))
            server.send_signal(signal.SIGKILL)
            server.wait()
            stats["kills"] += 1
            await asyncio.sleep(rng.uniform(0.1, 0.8))
            server = await asyncio.to_thread(start, server_cmd, health, env, tmp_path / "server.log")
        await asyncio.sleep(3.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    try:
        stop(server)  # a last start: its first sweep reads every ordered deal's escrow back
        server = await asyncio.to_thread(start, server_cmd, health, env, tmp_path / "server.log")
        await asyncio.sleep(3.0)
        stop(server)
        deals = SqliteDealStore(tmp_path / "server" / "deals.sqlite3").in_states(tuple(DealState))
        states = Counter(d.state.value for d in deals)
        assert stats["delivered"] > 0 and stats["kills"] == 3, (stats, states)
        async with PlatformClient(bank_url, PLATFORM_KEY) as platform:
            escrows = await platform.list_escrows()
            by_deal = Counter(e.end_to_end_id for e in escrows)
            assert all(n == 1 for n in by_deal.values()), by_deal  # no deal has two deposits
            for deal in deals:
                if deal.escrow_id is None:
                    continue
                escrow = await platform.get_escrow(deal.escrow_id)
                assert escrow.end_to_end_id == deal.id
                assert escrow.status in ESCROW_OF_STATE[deal.state.value], (deal.id, deal.state, escrow.status)
                if deal.state is DealState.DELIVERED and deal.balance_intent_id:
                    assert (await platform.get_intent(deal.balance_intent_id)).status == "succeeded"
            ordered_ids = {d.id for d in deals if d.escrow_id}
            for escrow in escrows:  # a deposit made just before a kill, its order never placed: still the buyer's
                if escrow.end_to_end_id not in ordered_ids:
                    assert escrow.status in ("pending", "voided"), escrow
        verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", str(bank_db)], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        print(dict(stats), dict(states))
    finally:
        stop(bank_proc)
