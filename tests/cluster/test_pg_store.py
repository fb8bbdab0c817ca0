"""The PostgreSQL commerce store keeps the SQLite store's contract (the same assertions run
against both), and two processes buying the last unit at once sell it once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from server.cluster.local import PostgresServer, free_port
from server.pg_store import PgCommerceStore, StoreUnavailable
from server.store import CommerceStore, OrderConflict, OrderRecord
from world.loader import load_expo

BOOTH, SKU = "ae-emirates-oud", "AE-OUD-OIL"  # stock 60, limit 2 per visitor in the default expo
BUYER = Path(__file__).with_name("buyer.py")


@pytest.fixture(scope="module")
def expo():
    return load_expo()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path, expo) -> Iterator[CommerceStore | PgCommerceStore]:
    if request.param == "sqlite":
        s = CommerceStore(tmp_path / "commerce.sqlite3")
    else:
        s = PgCommerceStore(request.getfixturevalue("fresh_database"))
    s.seed_stock(expo)
    yield s
    s.close()


def order(n: int, visitor: str = "ana", qty: int = 1, now: float = 1000.0) -> OrderRecord:
    return OrderRecord(id=f"o{n}", visitor=visitor, key=f"k{n}", booth=BOOTH, sku=SKU, qty=qty, amount_minor=500 * qty,
                       currency="AED", status="reserving", intent_id=None, message="", created_at=now + n,
                       expires_at=now + 600, updated_at=now + n)


def test_seed_keeps_known_stock(store, expo) -> None:
    assert store.stock_of(BOOTH)[SKU] == 60
    store.place_order(order(1), limit_per_visitor=2)
    store.seed_stock(expo)
    assert store.stock_of(BOOTH)[SKU] == 59


def test_order_lifecycle(store) -> None:
    placed = store.place_order(order(1), limit_per_visitor=2)
    assert store.find_order("ana", "k1") == placed == store.order("o1")
    assert [o.id for o in store.open_orders()] == ["o1"]
    pending = store.set_pending("o1", "pi_1", expires_at=2000.0, now=1001.0)
    assert (pending.status, pending.intent_id, pending.expires_at) == ("pending_payment", "pi_1", 2000.0)
    fulfilled = store.fulfil("o1", "pi_1", now=1002.0)
    assert fulfilled.status == "fulfilled"
    assert store.fulfil("o1", "pi_1", now=1003.0) is None  # exactly once
    assert store.inventory("ana") == [(BOOTH, SKU, 1)]
    assert store.open_orders() == []
    assert store.release("o1", "expired", "late", now=1004.0) is None  # not open: nothing given back
    assert store.stock_of(BOOTH)[SKU] == 59


def test_release_gives_stock_back(store) -> None:
    store.place_order(order(1, qty=2), limit_per_visitor=2)
    assert store.stock_of(BOOTH)[SKU] == 58
    released = store.release("o1", "cancelled", "changed my mind", now=1001.0)
    assert (released.status, released.message) == ("cancelled", "changed my mind")
    assert store.stock_of(BOOTH)[SKU] == 60


def test_limit_and_sold_out_are_conflicts_that_store_nothing(store) -> None:
    store.place_order(order(1, qty=2), limit_per_visitor=2)
    with pytest.raises(OrderConflict, match="the limit is 2 per visitor and you have 2"):
        store.place_order(order(2), limit_per_visitor=2)
    with pytest.raises(OrderConflict, match="only 58 left"):
        store.place_order(order(3, visitor="bo", qty=59), limit_per_visitor=100)
    store.place_order(order(4, visitor="bo", qty=58), limit_per_visitor=100)
    with pytest.raises(OrderConflict, match="sold out"):
        store.place_order(order(5, visitor="cy"), limit_per_visitor=2)
    assert store.order("o2") is store.order("o3") is store.order("o5") is None
    assert store.stock_of(BOOTH)[SKU] == 0


def test_paid_by_another_intent_is_a_broken_invariant(store) -> None:
    store.place_order(order(1), limit_per_visitor=2)
    store.set_pending("o1", "pi_1", expires_at=2000.0, now=1001.0)
    with pytest.raises(AssertionError, match="was paid by pi_2"):
        store.fulfil("o1", "pi_2", now=1002.0)
    assert store.order("o1").status == "pending_payment"


def test_the_consoles_sales_orders_and_restock(store) -> None:
    """server.admin's reads and the exhibitor's restock, alike in both stores."""
    for n in (1, 2):
        store.place_order(order(n, visitor=f"v{n}", qty=n), limit_per_visitor=2)
        store.set_pending(f"o{n}", f"pi_{n}", expires_at=2000.0, now=1001.0)
    store.fulfil("o2", "pi_2", now=1002.0)
    assert store.sales() == [(BOOTH, "AED", 1, 2, 1000)]  # paid orders only
    assert store.fulfilled_orders(BOOTH, SKU) == [("o2", "v2", 1002.0)]  # what certificates catch up on
    assert store.fulfilled_orders(BOOTH, "NO-SUCH-SKU") == []
    assert [o.id for o in store.booth_orders(BOOTH, limit=10)] == ["o2", "o1"]  # newest first
    assert [o.id for o in store.booth_orders(BOOTH, limit=1)] == ["o2"]
    store.set_stock(BOOTH, SKU, 200)
    assert store.stock_of(BOOTH)[SKU] == 200


def test_merchants(store) -> None:
    assert store.merchant(BOOTH, "AED") is None
    store.save_merchant(BOOTH, "AED", "acct_1")
    store.save_merchant(BOOTH, "AED", "acct_2")
    assert store.merchant(BOOTH, "AED") == "acct_2"


def test_a_url_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(ValueError, match="starts with postgresql://, not sqlite:"):
        PgCommerceStore("sqlite:///var/x.db")


def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreUnavailable, match="PostgreSQL is not reachable"):
        PgCommerceStore(f"postgresql://expo:x@127.0.0.1:{free_port()}/expo", connect_timeout=1)


def test_a_broken_connection_is_reconnected_within_the_call(fresh_database, postgres, expo) -> None:
    store = PgCommerceStore(fresh_database)
    store.seed_stock(expo)
    with psycopg.connect(postgres.dsn, autocommit=True) as admin:  # what a restart does to our connection
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                      (fresh_database.rsplit("/", 1)[1],))
    assert store.stock_of(BOOTH)[SKU] == 60
    store.close()


def test_a_database_that_stays_away_is_a_clear_error_after_the_wait(fresh_database, postgres, expo) -> None:
    store = PgCommerceStore(fresh_database, wait_for_database=1.0)
    store.seed_stock(expo)
    store.pg.dsn = store.pg.dsn.rsplit(":", 1)[0] + f":{free_port()}/x"  # as if the server had gone for good
    with psycopg.connect(postgres.dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                      (fresh_database.rsplit("/", 1)[1],))
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="not reachable"):
        store.stock_of(BOOTH)
    assert 1.0 <= time.monotonic() - started < 10


@pytest.mark.slow
def test_orders_wait_for_a_postgres_killed_with_sigkill_and_complete(expo) -> None:
    """kill -9 of PostgreSQL between orders: the next order waits for the restart and goes
    through once; an order whose COMMIT happened is not placed twice by the retry."""
    import threading

    root = Path(tempfile.mkdtemp(prefix="expo-pg-"))
    server = PostgresServer(root).start()
    try:
        store = PgCommerceStore(server.dsn, wait_for_database=60)
        store.seed_stock(expo)
        store.place_order(order(1), limit_per_visitor=2)
        server.kill()
        done: list[OrderRecord] = []
        waiting = threading.Thread(target=lambda: done.append(store.place_order(order(2, visitor="bo"), 2)))
        waiting.start()
        time.sleep(2.0)
        assert not done  # it waits
        server.start()
        waiting.join(60)
        assert done and store.order("o2") == done[0]
        assert store.stock_of(BOOTH)[SKU] == 58
        store.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_two_processes_sell_the_last_unit_once(fresh_database, expo) -> None:
    """40 buyers in two processes (20 threads each, one connection each) order the same
    product with one unit left at the same instant: exactly one order, stock 0, never below."""
    store = PgCommerceStore(fresh_database)
    store.seed_stock(expo)
    with store.transaction() as db:
        db.execute("UPDATE stock SET available = 1 WHERE booth = %s AND sku = %s", (BOOTH, SKU))
    start_at = time.time() + 3.0  # both processes are connected by then
    procs = [subprocess.Popen([sys.executable, str(BUYER), fresh_database, BOOTH, SKU, f"p{i}", "20", str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.extend(json.loads(out))
    assert len(results) == 40
    assert [r["outcome"] for r in results].count("placed") == 1
    assert {r["outcome"] for r in results} == {"placed", "sold out"}
    assert store.stock_of(BOOTH)[SKU] == 0
    with store.transaction() as db:
        assert db.execute("SELECT count(*) AS n FROM orders").fetchone()["n"] == 1
    store.close()


def test_payers_and_open_orders_per_visitor(store) -> None:
    assert store.payer("ana") is None
    store.save_payer("ana", "acct_1", now=1000.0)
    store.save_payer("ana", "acct_2", now=1001.0)  # a new proof replaces the link
    assert (store.payer("ana"), store.payer("bo")) == ("acct_2", None)
    store.place_order(order(1), limit_per_visitor=5)
    store.place_order(order(2), limit_per_visitor=5)
    store.place_order(order(3, visitor="bo"), limit_per_visitor=5)
    assert (store.open_orders_of("ana"), store.open_orders_of("bo"), store.open_orders_of("cy")) == (2, 1, 0)
    store.release("o1", "canceled", "", now=1002.0)
    assert store.open_orders_of("ana") == 1


def test_a_name_keyed_database_moves_to_legacy_ids_once(fresh_database) -> None:
    """As server.store does for SQLite: rows an older server keyed on the case-folded name
    move to legacy ids no visitor can prove; ids are left alone; the second start moves nothing."""
    with psycopg.connect(fresh_database, autocommit=True) as db:  # the pre-identity schema, no payers table
        db.execute("CREATE TABLE inventory (visitor TEXT NOT NULL, booth TEXT NOT NULL, sku TEXT NOT NULL, "
                   "qty INTEGER NOT NULL CHECK (qty > 0), PRIMARY KEY (visitor, booth, sku))")
        db.execute("INSERT INTO inventory VALUES ('bob', %s, %s, 2), ('vis_AbCdEfGhIjKlMnOp', %s, %s, 1)",
                   (BOOTH, SKU, BOOTH, SKU))
    first = PgCommerceStore(fresh_database)
    assert first.legacy_rows == 1
    assert first.inventory("bob") == [] and first.inventory("legacy:bob") == [(BOOTH, SKU, 2)]
    assert first.inventory("vis_AbCdEfGhIjKlMnOp") == [(BOOTH, SKU, 1)]
    first.close()
    again = PgCommerceStore(fresh_database)
    assert again.legacy_rows == 0 and again.inventory("legacy:bob") == [(BOOTH, SKU, 2)]
    again.close()
