"""kill -9 of a hall process while its visitors buy: they go on at the other process, and
after the survivor settles, money, orders and stock in PostgreSQL and the bank reconcile
exactly (every succeeded intent fulfilled once, merchants paid what was fulfilled, stock
plus what orders hold equals the world's stock, never below zero)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
from collections import Counter

import psycopg
import pytest
from processes import BIN, free_port, stop, wait_http
from reading import next_of
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

import protocol as p
from bank.client import BankAPIError, PlatformClient, VisitorClient
from server.cluster.local import NatsServer
from world.loader import load_expo

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
PLATFORM_KEY = "cluster-fault-test-platform-key"


def hall(port: int, nats_url: str, dsn: str, bank_url: str, data, log):
    return subprocess.Popen([str(BIN / "expo-server"), "--port", str(port), "--cluster", nats_url, "--db", dsn,
                             "--bank-url", bank_url, "--data-dir", str(data), "--no-watch"],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            env={**os.environ, "EXPO_BANK_PLATFORM_KEY": PLATFORM_KEY})


async def test_kill_9_of_a_hall_process_during_purchases_reconciles(nats_server: NatsServer, fresh_database, tmp_path,
                                                                   request):
    bank_port = free_port()
    bank_url = f"http://127.0.0.1:{bank_port}"
    bank = subprocess.Popen([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", str(tmp_path / "bank.sqlite3"),
                             "--platform-key", PLATFORM_KEY], stdout=open(tmp_path / "bank.log", "wb"), stderr=subprocess.STDOUT)
    wait_http(f"{bank_url}/healthz", timeout=60, proc=bank)
    ports = [free_port(), free_port()]
    procs = [hall(port, nats_server.url, fresh_database, bank_url, tmp_path / f"h{i}", tmp_path / f"h{i}.log")
             for i, port in enumerate(ports)]
    request.addfinalizer(lambda: stop(bank, *procs))  # whatever fails below: no process outlives the test
    for proc, port in zip(procs, ports):
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=180, proc=proc)
    expo = load_expo()
    skus = [(b.id, pr.sku) for b in expo.booths for pr in b.catalogue if pr.stock > 20][:6]
    stats: Counter = Counter()
    rng = random.Random(15)

    async def buyer(index: int) -> None:
        """Starts on process index % 2; whenever its connection fails, it goes to the other."""
        target = index % 2
        for attempt in range(60):
            name = f"Buyer{index}-{attempt}"
            try:
                async with connect(f"ws://127.0.0.1:{ports[target]}/", compression=None, open_timeout=2) as ws:
                    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0)))
                    welcome = await next_of(ws, (p.Welcome, p.Refused))
                    if not isinstance(welcome, p.Welcome):
                        raise ConnectionError(welcome)
                    stats[f"joined on {target}"] += 1
                    async with VisitorClient(welcome.bank_url, timeout=3) as account:
                        await account.open_account(name, "EUR")
                        # orders are payable only from the account the visitor linked (since ec2f6aa)
                        await ws.send(p.encode(p.LinkAccount((await account.account_proof(welcome.visitor_id)).proof)))
                        await next_of(ws, p.AccountLinked)
                        for i in range(100):
                            booth, sku = rng.choice(skus)
                            key = f"{attempt}-{i}"
                            await ws.send(p.encode(p.Order(booth, sku, 1, key)))
                            status = await next_of(ws, p.OrderStatus, lambda m, key=key: m.key == key)
                            if status.status != "pending_payment":
                                continue
                            await account.confirm_intent(status.intent_id)
                            await ws.send(p.encode(p.OrderPaid(status.order_id)))
                            stats["paid"] += 1
            except (OSError, ConnectionError, ConnectionClosed, InvalidHandshake, BankAPIError, TimeoutError):
                target = 1 if procs[0].poll() is not None else 1 - target  # a and b alternate until a dies
                await asyncio.sleep(0.3)

    buyers = [asyncio.create_task(buyer(i)) for i in range(4)]
    try:
        await asyncio.sleep(4.0)
        paid_before_kill = stats["paid"]
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        await asyncio.sleep(5.0)
    finally:
        for task in buyers:
            task.cancel()
        await asyncio.gather(*buyers, return_exceptions=True)
    assert paid_before_kill > 0 and stats["paid"] > paid_before_kill, stats  # they went on buying at b
    # the survivor's restart reconciles whatever was paid at a but never fulfilled there
    stop(procs[1])
    procs[1] = hall(ports[1], nats_server.url, fresh_database, bank_url, tmp_path / "h1", tmp_path / "h1.log")
    wait_http(f"http://127.0.0.1:{ports[1]}/healthz", timeout=180, proc=procs[1])
    stop(procs[1])
    try:
        with psycopg.connect(fresh_database) as db:
            orders = {r[0]: r for r in db.execute(
                "SELECT id, status, intent_id, amount_minor, currency, booth, sku, qty FROM orders")}
            fulfilments = db.execute("SELECT order_id, intent_id FROM fulfilments").fetchall()
            stock = {(b, s): n for b, s, n in db.execute("SELECT booth, sku, available FROM stock")}
        async with PlatformClient(bank_url, PLATFORM_KEY) as platform:
            succeeded = [i for i in await platform.list_intents(status="succeeded")
                         if i.metadata.get("order_id") in orders]
        assert {(i.metadata["order_id"], i.id) for i in succeeded} == set(fulfilments)  # each paid one fulfilled
        assert len({o for o, _ in fulfilments}) == len(fulfilments)  # ... exactly once
        assert {o for o, r in orders.items() if r[1] == "fulfilled"} == {o for o, _ in fulfilments}
        paid, fulfilled = Counter(), Counter()
        for intent in succeeded:
            paid[intent.currency] += intent.amount
        for order_id, _ in fulfilments:
            fulfilled[orders[order_id][4]] += orders[order_id][3]
        assert paid == fulfilled
        held = Counter()
        for r in orders.values():
            if r[1] in ("fulfilled", "reserving", "pending_payment"):
                held[(r[5], r[6])] += r[7]
        for b in expo.booths:
            for pr in b.catalogue:
                assert 0 <= stock[(b.id, pr.sku)] and stock[(b.id, pr.sku)] + held[(b.id, pr.sku)] == pr.stock
        assert len(fulfilments) > 0
        verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", str(tmp_path / "bank.sqlite3")],
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        print("stats", dict(stats), "fulfilled", len(fulfilments), "orders", Counter(r[1] for r in orders.values()))
    finally:
        stop(bank)
