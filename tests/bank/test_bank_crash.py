"""Kill -9 the real `expo-bank serve` mid-purchase, restart it on the same database, and check
that every purchase settles exactly once, money is conserved, no webhook is lost, and
`expo-bank verify` passes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from bank import fx
from bank.client import BankAPIError, BankUnavailable, PlatformClient, VisitorClient
from bank.intents import IntentStatus
from bank.webhooks import WebhookError, WebhookReceiver

REPO = Path(__file__).resolve().parents[2]
KEY = "crash-test-platform-key"
SECRET = "crash-test-webhook-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EventSink:
    """The world server's webhook endpoint, on a real socket: verifies and records every event."""

    def __init__(self) -> None:
        self.events: dict[str, dict] = {}
        self.lock = threading.Lock()
        receiver = WebhookReceiver(SECRET)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    with sink.lock:
                        event = receiver.receive(self.headers.get("Expo-Signature"), body, time.time())
                        sink.events[event.id] = json.loads(body)
                    self.send_response(200)
                except WebhookError:
                    self.send_response(400)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def succeeded(self) -> set[str]:
        with self.lock:
            return {e["data"]["object"]["id"] for e in self.events.values() if e["type"] == "payment_intent.succeeded"}


class BankProcess:
    def __init__(self, db: Path | str, port: int, webhook_url: str, log: Path) -> None:
        self.args = [sys.executable, "-m", "bank", "serve", "--db", str(db), "--port", str(port),
                     "--platform-key", KEY, "--webhook-url", webhook_url, "--webhook-secret", SECRET,
                     "--log-level", "info"]
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert self.proc.poll() is None, self.log.read_text()
                await asyncio.sleep(0.05)
        raise AssertionError(f"bank did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    async def kill_during(self, workers: list[Coroutine[Any, Any, None]], seconds: float) -> None:
        """Run the workers, kill -9 the bank after ``seconds`` and start it again: every worker
        must have stopped on the bank's disappearance (and nothing else)."""
        tasks = [asyncio.create_task(w) for w in workers]
        await asyncio.sleep(seconds)
        self.kill()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, BankUnavailable) for r in results), results
        await self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # graceful: uvicorn finishes requests, runs the lifespan shutdown
            assert self.proc.wait(timeout=20) in (0, -signal.SIGTERM)
            assert "Application shutdown complete" in self.log.read_text()


@dataclass
class Purchase:
    visitor: int
    merchant: int
    amount: int
    intent_key: str
    confirm_key: str
    intent_id: str | None = None
    outcome: str | None = None  # "succeeded" or an error code; None while unknown


async def run_crash_scenario(tmp_path: Path, kills: int, visitors: int, seed: int, db: str | None = None) -> None:
    """``db``: a postgresql:// URL, or by default a SQLite file in ``tmp_path``."""
    rng = random.Random(seed)
    sink = EventSink()
    db = db or str(tmp_path / "bank.sqlite3")
    bank = BankProcess(db, free_port(), sink.url, tmp_path / "bank.log")
    await bank.start()
    currencies = ["MYR", "KZT", "VND", "USD", "EUR", "NGN"]
    platform = PlatformClient(bank.url, KEY, retries=0, timeout=5)
    people = [VisitorClient(bank.url, retries=0, timeout=5) for _ in range(visitors)]
    try:
        for n, v in enumerate(people):
            await v.open_account(f"visitor {n}", currencies[n % len(currencies)])
        start = {n: (await v.me()).balance for n, v in enumerate(people)}
        merchants = [await platform.create_merchant(f"m {c}", c, reference=f"m-{c}") for c in currencies]
        purchases: list[Purchase] = []

        async def settle(p: Purchase) -> None:
            """Create and confirm with the purchase's own keys; stops (outcome unknown) if the bank dies."""
            m = merchants[p.merchant]
            if p.intent_id is None:
                intent = await platform.create_intent(m.id, p.amount, m.currency, idempotency_key=p.intent_key,
                                                      metadata={"order_id": p.intent_key})
                p.intent_id = intent.id
            try:
                paid = await people[p.visitor].confirm_intent(p.intent_id, idempotency_key=p.confirm_key)
                p.outcome = paid.status
            except BankUnavailable:
                raise
            except BankAPIError as exc:
                p.outcome = exc.code

        async def shopper(n: int) -> None:
            while True:
                m = rng.randrange(len(merchants))
                p = Purchase(n, m, fx.usd_equivalent(120, merchants[m].currency) + rng.randint(1, 99),
                             str(uuid.uuid4()), str(uuid.uuid4()))
                purchases.append(p)
                await settle(p)

        for _ in range(kills):
            await bank.kill_during([shopper(n) for n in range(visitors)], rng.uniform(0.2, 0.8))

        unknown = [p for p in purchases if p.outcome is None]
        assert unknown, "the kills should have caught purchases in flight"
        for p in unknown:  # retry with the same keys: each settles exactly once
            await settle(p)

        async def spend_down(n: int) -> None:  # on a loaded machine the kills may come before anyone is broke
            while not any(p.visitor == n and p.outcome == "insufficient_funds" for p in purchases):
                m = rng.randrange(len(merchants))
                p = Purchase(n, m, fx.usd_equivalent(120, merchants[m].currency), str(uuid.uuid4()), str(uuid.uuid4()))
                purchases.append(p)
                await settle(p)

        await spend_down(0)
        assert all(p.outcome in ("succeeded", "insufficient_funds") for p in purchases), \
            {p.outcome for p in purchases}
        assert any(p.outcome == "insufficient_funds" for p in purchases)

        paid = {i.id: i for i in await platform.list_intents(status="succeeded")}
        mine = {p.intent_id: p for p in purchases}
        assert set(paid) == {p.intent_id for p in purchases if p.outcome == "succeeded"}
        assert {i.id for i in await platform.list_intents()} == set(mine)  # no duplicate intents
        spent: dict[int, int] = defaultdict(int)
        received: dict[str, int] = defaultdict(int)
        for intent in paid.values():
            spent[mine[intent.id].visitor] += intent.payment.debit_amount
            received[intent.merchant_account_id] += intent.amount
        for n, v in enumerate(people):
            assert (await v.me()).balance == start[n] - spent[n]
        for m in merchants:
            assert (await platform.get_account(m.id)).balance == received[m.id]

        async with httpx.AsyncClient() as client:  # the outbox drains: no event lost to a crash
            for _ in range(400):
                if (await client.get(f"{bank.url}/healthz")).json()["webhook_outbox_pending"] == 0:
                    break
                await asyncio.sleep(0.05)
        assert sink.succeeded() == set(paid)
        assert {i.status for i in await platform.list_intents()} <= {IntentStatus.SUCCEEDED, IntentStatus.CREATED}
    finally:
        for client in (platform, *people):
            await client.aclose()
        bank.stop()
        sink.server.shutdown()

    verify = subprocess.run([sys.executable, "-m", "bank", "verify", "--db", str(db)], cwd=REPO,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "OK" in verify.stdout


async def test_crash_and_restart_short(tmp_path: Path) -> None:
    await run_crash_scenario(tmp_path, kills=2, visitors=6, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3])
async def test_crash_and_restart_many_times(tmp_path: Path, seed: int) -> None:
    await run_crash_scenario(tmp_path, kills=6, visitors=16, seed=seed)
