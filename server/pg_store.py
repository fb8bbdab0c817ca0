"""Commerce state on PostgreSQL, for the cluster: the interface of server/store.py, shared by
every hall process, so several processes can sell the same product at once.

Why it cannot oversell: placing an order first locks the product's stock row
(``SELECT ... FOR UPDATE``), so every order of one product, from any process, runs one after
another; the visitor's limit is read under that lock, and the stock update keeps
``available >= qty`` in its WHERE clause with a CHECK constraint behind it. Exactly-once
fulfilment is the same UNIQUE constraint as in SQLite.

psycopg 3 with one connection per store, used under a lock (``server.pg.PgDatabase``): the
interface is synchronous like the SQLite store's, so the caller runs it on a thread (commerce
does, off the event loop) and both implementations plug into the same seam.

PostgreSQL restarting: a call whose connection broke waits for the database (reconnecting
every half second, up to ``wait_for_database`` seconds) and runs again, so orders wait and
complete. Running again is safe for every operation here: reads are reads; ``set_pending``,
``release`` and ``fulfil`` check the order's status first (a retried ``fulfil`` whose first
COMMIT went through answers None, as for an order fulfilled by someone else); and a
``place_order`` whose COMMIT happened before its answer was lost finds its own order by
(visitor, key) on the retry and returns it instead of reserving twice. Past the wait the
call raises ``StoreUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import psycopg
from psycopg.rows import DictRow

from world.model import Expo

from .pg import PgDatabase, StoreUnavailable
from .store import HOLDING_STATUSES, OPEN_STATUSES, SCHEMA_VERSION, OrderConflict, OrderRecord, _row, migrate_names

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (
    booth TEXT NOT NULL, sku TEXT NOT NULL, available INTEGER NOT NULL CHECK (available >= 0),
    PRIMARY KEY (booth, sku));
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, visitor TEXT NOT NULL, key TEXT NOT NULL,
    booth TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL CHECK (qty > 0),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0), currency TEXT NOT NULL,
    status TEXT NOT NULL, intent_id TEXT, message TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    UNIQUE (visitor, key));
CREATE INDEX IF NOT EXISTS orders_open ON orders (status) WHERE status IN ('reserving', 'pending_payment');
CREATE INDEX IF NOT EXISTS orders_holding ON orders (visitor, booth, sku);
CREATE TABLE IF NOT EXISTS fulfilments (
    order_id TEXT PRIMARY KEY REFERENCES orders (id), intent_id TEXT NOT NULL UNIQUE,
    fulfilled_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS inventory (
    visitor TEXT NOT NULL, booth TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL CHECK (qty > 0),
    PRIMARY KEY (visitor, booth, sku));
CREATE TABLE IF NOT EXISTS merchants (
    booth TEXT NOT NULL, currency TEXT NOT NULL, account_id TEXT NOT NULL, PRIMARY KEY (booth, currency));
CREATE TABLE IF NOT EXISTS payers (
    visitor TEXT PRIMARY KEY, account_id TEXT NOT NULL, linked_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS orders_visitor_open ON orders (visitor) WHERE status IN ('reserving', 'pending_payment');
CREATE INDEX IF NOT EXISTS payers_account ON payers (account_id);
"""

T = TypeVar("T")
SCHEMA_LOCK = 0x6578706F  # 'expo': processes starting together create the schema one at a time

__all__ = ["PgCommerceStore", "StoreUnavailable"]


class PgCommerceStore:
    """The CommerceStore interface on PostgreSQL. ``dsn``: postgresql://user:password@host:port/db."""

    def __init__(self, dsn: str, connect_timeout: float = 5.0, wait_for_database: float = 30.0) -> None:
        self.pg = PgDatabase(dsn, SCHEMA, SCHEMA_LOCK, connect_timeout)
        self.dsn = dsn
        self.wait_for_database = wait_for_database
        with self.transaction() as db:  # version 1 (name-keyed) to 2, once, as in server.store
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS commerce_schema (version INTEGER NOT NULL)")
            row = db.execute("SELECT max(version) AS version FROM commerce_schema").fetchone()
            self.legacy_rows = 0
            if row is None or (row["version"] or 1) < SCHEMA_VERSION:
                self.legacy_rows = migrate_names(db, "%s")
                db.execute("INSERT INTO commerce_schema VALUES (%s)", (SCHEMA_VERSION,))

    def close(self) -> None:
        self.pg.close()

    def stop_waiting(self) -> None:
        self.pg.stop_waiting()

    def transaction(self) -> AbstractContextManager[psycopg.Connection[DictRow]]:
        """One transaction on the store's connection; the store is held for its length."""
        return self.pg.transaction()

    def _retrying(self, operation: Callable[[], T]) -> T:
        return self.pg.retrying(operation, self.wait_for_database)

    def _one(self, sql: str, params: tuple) -> dict | None:
        def run() -> dict | None:
            with self.transaction() as db:
                return db.execute(sql, params).fetchone()
        return self._retrying(run)

    def _all(self, sql: str, params: tuple) -> list[dict]:
        def run() -> list[dict]:
            with self.transaction() as db:
                return db.execute(sql, params).fetchall()
        return self._retrying(run)

    # ------------------------------------------------------------------ stock

    def seed_stock(self, expo: Expo) -> None:
        """Products new to the store start at their world-file stock; known ones keep theirs."""
        rows = [(b.id, p.sku, p.stock) for b in expo.booths for p in b.catalogue]

        def run() -> None:
            with self.transaction() as db, db.cursor() as cur:
                cur.executemany("INSERT INTO stock (booth, sku, available) VALUES (%s, %s, %s) "
                                "ON CONFLICT (booth, sku) DO NOTHING", rows)
        self._retrying(run)

    def stock_of(self, booth: str) -> dict[str, int]:
        rows = self._all("SELECT sku, available FROM stock WHERE booth = %s ORDER BY sku", (booth,))
        return {r["sku"]: r["available"] for r in rows}

    # ------------------------------------------------------------------ orders

    def find_order(self, visitor: str, key: str) -> OrderRecord | None:
        row = self._one("SELECT * FROM orders WHERE visitor = %s AND key = %s", (visitor, key))
        return OrderRecord(**row) if row else None

    def order(self, order_id: str) -> OrderRecord | None:
        row = self._one("SELECT * FROM orders WHERE id = %s", (order_id,))
        return OrderRecord(**row) if row else None

    def open_orders(self) -> list[OrderRecord]:
        rows = self._all("SELECT * FROM orders WHERE status = ANY(%s) ORDER BY created_at", (list(OPEN_STATUSES),))
        return [OrderRecord(**r) for r in rows]

    def open_orders_of(self, visitor: str) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM orders WHERE visitor = %s AND status = ANY(%s)",
                        (visitor, list(OPEN_STATUSES)))
        return row["n"] if row else 0

    def place_order(self, record: OrderRecord, limit_per_visitor: int) -> OrderRecord:
        """Reserve stock and record the order in one transaction, or raise OrderConflict."""
        attempts = 0

        def run() -> OrderRecord:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and (mine := self.find_order(record.visitor, record.key)) is not None and mine.id == record.id:
                return mine  # the first attempt committed; its answer was lost with the connection
            return self._place(record, limit_per_visitor)
        return self._retrying(run)

    def _place(self, record: OrderRecord, limit_per_visitor: int) -> OrderRecord:
        with self.transaction() as db:
            stock = db.execute("SELECT available FROM stock WHERE booth = %s AND sku = %s FOR UPDATE",
                               (record.booth, record.sku)).fetchone()
            sums = db.execute(
                "SELECT COALESCE(SUM(qty), 0) AS held FROM orders WHERE visitor = %s AND booth = %s AND sku = %s "
                "AND status = ANY(%s)",
                (record.visitor, record.booth, record.sku, list(HOLDING_STATUSES)),
            ).fetchone()
            assert sums is not None, "an aggregate without GROUP BY returns one row"
            held = sums["held"]
            if held + record.qty > limit_per_visitor:
                raise OrderConflict(
                    f"the limit is {limit_per_visitor} per visitor and you have {held} bought or reserved"
                )
            if stock is None or stock["available"] < record.qty:
                left = stock["available"] if stock else 0
                raise OrderConflict("sold out" if left == 0 else f"only {left} left")
            taken = db.execute(
                "UPDATE stock SET available = available - %s WHERE booth = %s AND sku = %s AND available >= %s",
                (record.qty, record.booth, record.sku, record.qty),
            ).rowcount
            assert taken == 1, "the stock row is locked by this transaction and had enough"
            db.execute(
                "INSERT INTO orders VALUES (%(id)s, %(visitor)s, %(key)s, %(booth)s, %(sku)s, %(qty)s, %(amount_minor)s, "
                "%(currency)s, %(status)s, %(intent_id)s, %(message)s, %(created_at)s, %(expires_at)s, %(updated_at)s)",
                _row(record),
            )
        return record

    def set_pending(self, order_id: str, intent_id: str, expires_at: float, now: float) -> OrderRecord:
        def run() -> None:
            with self.transaction() as db:
                db.execute(
                    "UPDATE orders SET status = 'pending_payment', intent_id = %s, expires_at = %s, updated_at = %s "
                    "WHERE id = %s AND status = 'reserving'",
                    (intent_id, expires_at, now, order_id),
                )
        self._retrying(run)
        record = self.order(order_id)
        assert record is not None, f"order {order_id} is gone: orders are never deleted"
        return record

    def release(self, order_id: str, status: str, message: str, now: float) -> OrderRecord | None:
        """End an open order without a sale and give its stock back. None if it was not open."""
        def run() -> bool:
            with self.transaction() as db:
                row = db.execute("SELECT * FROM orders WHERE id = %s FOR UPDATE", (order_id,)).fetchone()
                if row is None or row["status"] not in OPEN_STATUSES:
                    return False
                db.execute("UPDATE orders SET status = %s, message = %s, updated_at = %s WHERE id = %s",
                           (status, message, now, order_id))
                db.execute("UPDATE stock SET available = available + %s WHERE booth = %s AND sku = %s",
                           (row["qty"], row["booth"], row["sku"]))
            return True
        return self.order(order_id) if self._retrying(run) else None

    def fulfil(self, order_id: str, intent_id: str, now: float) -> OrderRecord | None:
        """Mark a paid order fulfilled and put the goods in the visitor's inventory, once (see
        CommerceStore.fulfil). The order row is locked, so two processes told of the same
        payment at once fulfil it once: the second sees 'fulfilled' and gets None."""
        def run() -> bool:
            with self.transaction() as db:
                row = db.execute("SELECT * FROM orders WHERE id = %s FOR UPDATE", (order_id,)).fetchone()
                if row is None or row["status"] == "fulfilled":
                    return False
                if row["status"] not in OPEN_STATUSES or row["intent_id"] not in (None, intent_id):
                    raise AssertionError(f"order {order_id} ({row['status']}, intent {row['intent_id']}) was paid by {intent_id}")
                db.execute("INSERT INTO fulfilments VALUES (%s, %s, %s)", (order_id, intent_id, now))
                db.execute("UPDATE orders SET status = 'fulfilled', intent_id = %s, message = '', updated_at = %s WHERE id = %s",
                           (intent_id, now, order_id))
                db.execute(
                    "INSERT INTO inventory VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (visitor, booth, sku) DO UPDATE SET qty = inventory.qty + excluded.qty",
                    (row["visitor"], row["booth"], row["sku"], row["qty"]),
                )
            return True
        return self.order(order_id) if self._retrying(run) else None

    def inventory(self, visitor: str) -> list[tuple[str, str, int]]:
        rows = self._all("SELECT booth, sku, qty FROM inventory WHERE visitor = %s ORDER BY booth, sku", (visitor,))
        return [(r["booth"], r["sku"], r["qty"]) for r in rows]

    # ------------------------------------------------------------------ for the console (server.admin)

    def sales(self) -> list[tuple[str, str, int, int, int]]:
        """(booth, currency, orders, units, amount in minor units) of the fulfilled orders."""
        rows = self._all("SELECT booth, currency, COUNT(*) AS n, SUM(qty) AS units, SUM(amount_minor) AS amount FROM orders "
                         "WHERE status = 'fulfilled' GROUP BY booth, currency ORDER BY booth, currency", ())
        return [(r["booth"], r["currency"], int(r["n"]), int(r["units"]), int(r["amount"])) for r in rows]

    def fulfilled_orders(self, booth: str, sku: str) -> list[tuple[str, str, float]]:
        """(order id, visitor, fulfilled at) of a product's fulfilled orders, oldest first."""
        rows = self._all("SELECT o.id, o.visitor, f.fulfilled_at FROM orders o JOIN fulfilments f ON f.order_id = o.id "
                         "WHERE o.booth = %s AND o.sku = %s ORDER BY f.fulfilled_at", (booth, sku))
        return [(r["id"], r["visitor"], float(r["fulfilled_at"])) for r in rows]

    def booth_orders(self, booth: str, limit: int) -> list[OrderRecord]:
        rows = self._all("SELECT * FROM orders WHERE booth = %s ORDER BY created_at DESC LIMIT %s", (booth, limit))
        return [OrderRecord(**r) for r in rows]

    def set_stock(self, booth: str, sku: str, available: int) -> None:
        """The exhibitor restocked: the units left to sell are now ``available``."""
        def run() -> None:
            with self.transaction() as db:
                db.execute("INSERT INTO stock (booth, sku, available) VALUES (%s, %s, %s) "
                           "ON CONFLICT (booth, sku) DO UPDATE SET available = excluded.available", (booth, sku, available))
        self._retrying(run)

    # ------------------------------------------------------------------ payers

    def payer(self, visitor: str) -> str | None:
        row = self._one("SELECT account_id FROM payers WHERE visitor = %s", (visitor,))
        return row["account_id"] if row else None

    def visitors_of(self, account_id: str) -> list[str]:
        return [row["visitor"] for row in self._all("SELECT visitor FROM payers WHERE account_id = %s ORDER BY visitor",
                                                    (account_id,))]

    def save_payer(self, visitor: str, account_id: str, now: float) -> None:
        def run() -> None:
            with self.transaction() as db:
                db.execute("INSERT INTO payers VALUES (%s, %s, %s) ON CONFLICT (visitor) DO UPDATE "
                           "SET account_id = excluded.account_id, linked_at = excluded.linked_at",
                           (visitor, account_id, now))

        self._retrying(run)

    # ------------------------------------------------------------------ merchants

    def merchant(self, booth: str, currency: str) -> str | None:
        row = self._one("SELECT account_id FROM merchants WHERE booth = %s AND currency = %s", (booth, currency))
        return row["account_id"] if row else None

    def save_merchant(self, booth: str, currency: str, account_id: str) -> None:
        def run() -> None:
            with self.transaction() as db:
                db.execute("INSERT INTO merchants VALUES (%s, %s, %s) ON CONFLICT (booth, currency) "
                           "DO UPDATE SET account_id = excluded.account_id", (booth, currency, account_id))

        self._retrying(run)
