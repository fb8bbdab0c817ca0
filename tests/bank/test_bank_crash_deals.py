"""Kill -9 the real `expo-bank serve` at random points while buyers put deposits in escrow that
the platform posts or voids, and holders give collectibles to their contacts; restart it on the
same database, retry what was in flight with the same keys, and check: every escrow ended
exactly once as decided, balances are what those endings say, every item has exactly one
holder (the last one it was given to), and `expo-bank verify` passes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_bank_crash import KEY, REPO, BankProcess, EventSink, free_port

from bank import fx
from bank.client import BankAPIError, BankUnavailable, PlatformClient, VisitorClient


@dataclass
class Deal:
    buyer: int
    merchant: int
    amount: int
    post: bool  # the deal's fate: shipped (post) or canceled (void)
    hold_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    end_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    escrow_id: str | None = None
    debit: int = 0
    outcome: str | None = None  # "posted" | "voided" | "insufficient_funds"; None while unknown


@dataclass
class Gift:
    serial: str
    giver: int
    to: int
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    done: bool = False


async def run_scenario(tmp_path: Path, kills: int, people: int, seed: int, db: str | None = None) -> None:
    """``db``: a postgresql:// URL, or by default a SQLite file in ``tmp_path``."""
    rng = random.Random(seed)
    sink = EventSink()
    db = db or str(tmp_path / "bank.sqlite3")
    bank = BankProcess(db, free_port(), sink.url, tmp_path / "bank.log")
    bank.args += ["--holding-days", "0"]
    await bank.start()
    platform = PlatformClient(bank.url, KEY, retries=0, timeout=5)
    buyers = [VisitorClient(bank.url, retries=0, timeout=5) for _ in range(people)]
    try:
        currencies = ["MYR", "KZT", "EUR"]
        ids = []
        for n, v in enumerate(buyers):
            ids.append((await v.open_account(f"buyer {n}", currencies[n % 3])).account.id)
            await v.submit_kyc("Li Wei Chen", "1988-03-02", "CN", f"E{n:07d}1")
        for a in range(people):
            for b in range(a + 1, people):
                await platform.add_contact(ids[a], ids[b])
        start = {n: (await v.me()).balance for n, v in enumerate(buyers)}
        merchants = [await platform.create_merchant(f"exhibitor {c}", c, reference=f"x-{c}") for c in currencies]
        edition = await platform.create_edition(merchants[0].id, issuer_kind="exhibitor", kind="attendance",
                                                title="Visited the booth", size=people * 2, currency="MYR",
                                                event="booth-1")
        holder: dict[str, int] = {}
        for n in range(people * 2):
            item = await platform.issue_item(edition.id, ids[n % people])
            holder[item.serial] = n % people
        deals: list[Deal] = []
        gifts: list[Gift] = []

        async def settle(d: Deal) -> None:
            """Hold, then post or void, each with the deal's own key; stops (unknown) if the bank dies."""
            if d.escrow_id is None:
                m = merchants[d.merchant]
                try:
                    held = await buyers[d.buyer].create_escrow(m.id, d.amount, m.currency, f"PO-{d.hold_key[:8]}",
                                                               idempotency_key=d.hold_key)
                except BankAPIError as exc:
                    if isinstance(exc, BankUnavailable):
                        raise
                    d.outcome = exc.code
                    return
                d.escrow_id, d.debit = held.id, held.debit_amount
            end = platform.post_escrow if d.post else platform.void_escrow
            d.outcome = (await end(d.escrow_id, idempotency_key=d.end_key)).status

        async def give(g: Gift) -> None:
            await buyers[g.giver].gift_item(g.serial, ids[g.to], idempotency_key=g.key)
            g.done = True
            holder[g.serial] = g.to

        async def person(n: int) -> None:
            while True:
                mine = [s for s, h in holder.items() if h == n]
                if mine and rng.random() < 0.4:
                    g = Gift(rng.choice(mine), n, rng.choice([p for p in range(people) if p != n]))
                    gifts.append(g)
                    await give(g)
                else:
                    m = rng.randrange(len(merchants))
                    d = Deal(n, m, fx.usd_equivalent(rng.randint(20, 90), merchants[m].currency), rng.random() < 0.6)
                    deals.append(d)
                    await settle(d)

        in_flight = 0
        for _ in range(kills):
            await bank.kill_during([person(n) for n in range(people)], rng.uniform(0.3, 1.0))
            # each person retries what it had in flight, with the same keys, before going on
            unknown_deals = [d for d in deals if d.outcome is None]
            unknown_gifts = [g for g in gifts if not g.done]
            in_flight += len(unknown_deals) + len(unknown_gifts)
            for d in unknown_deals:  # each escrow ends exactly once
                await settle(d)
            for g in unknown_gifts:
                await give(g)
        assert in_flight, "the kills should catch something in flight"

        assert {d.outcome for d in deals} <= {"posted", "voided", "insufficient_funds"}
        spent: dict[int, int] = defaultdict(int)
        received: dict[int, int] = defaultdict(int)
        for d in deals:
            if d.escrow_id is not None:
                escrow = await platform.get_escrow(d.escrow_id)
                assert escrow.status == ("posted" if d.post else "voided") == d.outcome
                if d.post:
                    spent[d.buyer] += d.debit
                    received[d.merchant] += d.amount
        for n, v in enumerate(buyers):
            assert (await v.me()).balance == start[n] - spent[n]
        for m, merchant in enumerate(merchants):
            assert (await platform.get_account(merchant.id)).balance == received[m]
        for serial, n in holder.items():
            assert (await platform.get_item(serial)).holder_account_id == ids[n]
        held = [len((await v.items()).data) for v in buyers]
        assert sum(held) == people * 2
    finally:
        for client in (platform, *buyers):
            await client.aclose()
        bank.stop()
        sink.server.shutdown()

    verify = subprocess.run([sys.executable, "-m", "bank", "verify", "--db", str(db)], cwd=REPO,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"{people * 2} collectible items, each with one holder" in verify.stdout


async def test_kills_during_deals_and_gifts_short(tmp_path: Path) -> None:
    await run_scenario(tmp_path, kills=2, people=5, seed=11)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [12, 13, 14])
async def test_kills_during_deals_and_gifts_many(tmp_path: Path, seed: int) -> None:
    await run_scenario(tmp_path, kills=6, people=10, seed=seed)
