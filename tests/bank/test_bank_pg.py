"""The bank on a real PostgreSQL: `expo-bank serve --db postgresql://...` keeps the same rules and
the same hash chain, `expo-bank verify --db postgresql://...` checks it and catches tampering, and
a kill -9 of the bank loses no acknowledged payment."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import psycopg
import pytest
from processes import BIN, free_port, start, stop
from test_bank_crash import run_crash_scenario
from test_bank_crash_deals import run_scenario as run_deals_scenario

from bank.client import BankAPIError, PlatformClient, VisitorClient
from bank.pg_store import PgStorage
from server.cluster.local import PostgresServer

KEY = "pg-test-platform-key-0123456789"


def verify(dsn: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "expo-bank"), "verify", "--db", dsn], capture_output=True, text=True, timeout=60)


async def test_the_bank_on_postgresql_keeps_its_rules_and_its_chain(fresh_database: str, tmp_path: Path) -> None:
    dsn = fresh_database
    with psycopg.connect(dsn, autocommit=True) as db:  # the world server's table of the same name, as in make cluster
        db.execute("CREATE TABLE editions (edition_id TEXT PRIMARY KEY, product_id TEXT NOT NULL)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start([str(BIN / "expo-bank"), "serve", "--db", dsn, "--port", str(port), "--platform-key", KEY],
                 f"{url}/healthz", log=tmp_path / "bank.log")
    platform = PlatformClient(url, KEY, retries=0)
    people = [VisitorClient(url, retries=0) for _ in range(12)]
    try:
        for n, v in enumerate(people):
            await v.open_account(f"visitor {n}", "MYR")
        kzt = await platform.create_merchant("Almaty Apples", "KZT", reference="booth-3")
        assert (await platform.create_merchant("Almaty Apples", "KZT", reference="booth-3")).id == kzt.id

        # a cross-currency payment, its replay, and the metadata search (JSON in PostgreSQL)
        intent = await platform.create_intent(kzt.id, 5_000_00, "KZT", metadata={"order_id": "o-1"})
        paid = await people[0].confirm_intent(intent.id, idempotency_key="pay-o-1")
        again = await people[0].confirm_intent(intent.id, idempotency_key="pay-o-1")
        assert paid.status == again.status == "succeeded" and again.payment == paid.payment
        assert [i.id for i in await platform.list_intents(metadata={"order_id": "o-1"})] == [intent.id]
        with pytest.raises(BankAPIError) as refused:
            await people[1].confirm_intent(intent.id)
        assert refused.value.code == "intent_already_succeeded"
        big = await platform.create_intent(kzt.id, 10**12, "KZT")
        with pytest.raises(BankAPIError) as refused:
            await people[1].confirm_intent(big.id)
        assert refused.value.code == "insufficient_funds"

        # escrow: one posted, one voided, each exactly once
        held = await people[2].create_escrow(kzt.id, 1_000_00, "KZT", "PO-1")
        assert (await platform.post_escrow(held.id)).status == "posted"
        with pytest.raises(BankAPIError) as refused:
            await platform.void_escrow(held.id)
        assert refused.value.code == "escrow_already_posted"
        back = await people[3].create_escrow(kzt.id, 1_000_00, "KZT", "PO-2")
        before_void = (await people[3].me()).balance
        await platform.void_escrow(back.id)
        assert (await people[3].me()).balance == before_void + back.debit_amount

        # a collectible in the same chain
        edition = await platform.create_edition(kzt.id, issuer_kind="exhibitor", kind="attendance",
                                                title="Visited the apple booth", size=2, currency="KZT", event="b3")
        item = await platform.issue_item(edition.id, (await people[4].me()).id)
        assert (await platform.get_item(item.serial)).holder_account_id == (await people[4].me()).id
        assert [i.serial for i in (await platform.items_of((await people[4].me()).id)).data] == [item.serial]
        for other in (6, 5):
            await platform.add_contact((await people[other].me()).id, (await people[4].me()).id)
        assert {c.display_name for c in (await people[4].contacts()).data} == {"visitor 6", "visitor 5"}

        # many payments at once: the group commit on PostgreSQL
        shop = await platform.create_merchant("Penang Batik", "MYR")
        intents = [[(await platform.create_intent(shop.id, 100, "MYR")).id for _ in range(4)] for _ in people]

        async def pay(v: VisitorClient, ids: list[str]) -> None:
            for i in ids:
                await v.confirm_intent(i)

        await asyncio.gather(*(pay(v, ids) for v, ids in zip(people, intents, strict=True)))
        assert (await platform.get_account(shop.id)).balance == 100 * 4 * len(people)
    finally:
        for c in (platform, *people):
            await c.aclose()
        stop(proc)

    checked = verify(dsn)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK" in checked.stdout

    with psycopg.connect(dsn, autocommit=True) as db:  # entries are immutable in PostgreSQL too
        with pytest.raises(psycopg.errors.RaiseException, match="immutable"):
            db.execute("UPDATE bank.entries SET amount = amount + 1 WHERE seq = 1")
        db.execute("UPDATE bank.accounts SET balance = balance + 100 WHERE kind = 'visitor'")
    tampered = verify(dsn)
    assert tampered.returncode == 1 and "stored balance" in tampered.stdout, tampered.stdout


def test_a_bad_postgresql_url_is_a_clear_error(postgres: PostgresServer) -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        PgStorage("mysql://localhost/expo")
    wrong = postgres.dsn.rsplit("/", 1)[0] + "/no_such_database"
    run = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", wrong], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1 and "cannot use PostgreSQL" in run.stderr and "no_such_database" in run.stderr
    assert "Traceback" not in run.stderr


async def test_kill_9_on_postgresql_loses_no_acknowledged_payment(fresh_database: str, tmp_path: Path) -> None:
    dsn = fresh_database
    await run_crash_scenario(tmp_path, kills=2, visitors=6, seed=7, db=dsn)


@pytest.mark.slow
async def test_kill_9_on_postgresql_during_deals_and_gifts(fresh_database: str, tmp_path: Path) -> None:
    """Every escrow ends exactly once, every item has one holder, verify clean."""
    await run_deals_scenario(tmp_path, kills=2, people=4, seed=11, db=fresh_database)




async def test_a_postgresql_restart_loses_nothing_and_the_bank_carries_on(postgres: PostgresServer,
                                                                          fresh_database: str, tmp_path: Path) -> None:
    dsn = fresh_database
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start([str(BIN / "expo-bank"), "serve", "--db", dsn, "--port", str(port), "--platform-key", KEY],
                 f"{url}/healthz", log=tmp_path / "bank.log")
    platform = PlatformClient(url, KEY, retries=0)
    visitor = VisitorClient(url, retries=0)
    try:
        await visitor.open_account("Aigerim", "KZT")
        shop = await platform.create_merchant("Almaty Apples", "KZT")
        first = await platform.create_intent(shop.id, 1_000_00, "KZT")
        second = await platform.create_intent(shop.id, 2_000_00, "KZT")
        assert (await visitor.confirm_intent(first.id)).status == "succeeded"
        balance = (await visitor.me()).balance

        postgres.stop()
        with pytest.raises(BankAPIError) as down:  # refused while PostgreSQL is away, and nothing happens
            await visitor.confirm_intent(second.id, idempotency_key="pay-second")
        assert down.value.status == 503
        postgres.start()

        # the very next requests work (dropped connections are replaced), the retry pays once
        paid = await visitor.confirm_intent(second.id, idempotency_key="pay-second")
        again = await visitor.confirm_intent(second.id, idempotency_key="pay-second")
        assert paid.status == "succeeded" and again.payment == paid.payment
        assert (await visitor.me()).balance == balance - paid.payment.debit_amount
        assert (await platform.get_account(shop.id)).balance == 3_000_00
    finally:
        await platform.aclose()
        await visitor.aclose()
        stop(proc)
    assert "database unavailable" in (tmp_path / "bank.log").read_text()
    checked = verify(dsn)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_database_from_before_schema_3_loses_the_hash_index(fresh_database: str) -> None:
    """Schema 3 dropped ``entries.hash``'s UNIQUE index (no query reads it, and it cost half of
    each entry's insert); a database made before carries it under PostgreSQL's default name."""
    PgStorage(fresh_database).close()
    with psycopg.connect(fresh_database, autocommit=True) as db:  # as version 2 made it
        db.execute("ALTER TABLE bank.entries ADD CONSTRAINT entries_hash_key UNIQUE (hash)")
    PgStorage(fresh_database).close()
    with psycopg.connect(fresh_database, autocommit=True) as db:
        left = db.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'bank.entries'::regclass "
                          "AND contype = 'u'").fetchall()
    assert left == []
