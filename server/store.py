"""Durable commerce state of the world server: stock, orders, inventories, merchant accounts.

SQLite in WAL mode: every state change is one transaction, so a SIGKILL at any point leaves
either the old state or the new one. Exactly-once fulfilment is a UNIQUE constraint
(``fulfilments.order_id``), not a hope. Stock counts the units neither sold nor reserved.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from world.model import Expo

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (
    booth TEXT NOT NULL, sku TEXT NOT NULL, available INTEGER NOT NULL CHECK (available >= 0),
    PRIMARY KEY (booth, sku));
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, visitor TEXT NOT NULL, key TEXT NOT NULL,
    booth TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL CHECK (qty > 0),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0), currency TEXT NOT NULL,
    status TEXT NOT NULL, intent_id TEXT, message TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL, expires_at REAL NOT NULL, updated_at REAL NOT NULL,
    UNIQUE (visitor, key));
CREATE INDEX IF NOT EXISTS orders_open ON orders (status) WHERE status IN ('reserving', 'pending_payment');
CREATE TABLE IF NOT EXISTS fulfilments (
    order_id TEXT PRIMARY KEY REFERENCES orders (id), intent_id TEXT NOT NULL UNIQUE, fulfilled_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS inventory (
    visitor TEXT NOT NULL, booth TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL CHECK (qty > 0),
    PRIMARY KEY (visitor, booth, sku));
CREATE TABLE IF NOT EXISTS merchants (
    booth TEXT NOT NULL, currency TEXT NOT NULL, account_id TEXT NOT NULL, PRIMARY KEY (booth, currency));
CREATE TABLE IF NOT EXISTS payers (
    visitor TEXT PRIMARY KEY, account_id TEXT NOT NULL, linked_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS orders_visitor_open ON orders (visitor) WHERE status IN ('reserving', 'pending_payment');
CREATE INDEX IF NOT EXISTS payers_account ON payers (account_id);
"""

SCHEMA_VERSION = 2  # 1: keyed on the case-folded display name; 2: on the visitor id
LEGACY_PREFIX = "legacy:"  # + the old name: no token ever proves such an id (see below)
VISITOR_ID_PREFIXES = ("vis_", "tkt_")  # what server.identity makes; anything else is a name
LEGACY_TABLES = ("orders", "inventory", "payers")
OPEN_STATUSES = ("reserving", "pending_payment")
HOLDING_STATUSES = OPEN_STATUSES + ("fulfilled",)  # orders that count against stock and limits


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: str
    visitor: str
    key: str
    booth: str
    sku: str
    qty: int
    amount_minor: int
    currency: str
    status: str
    intent_id: str | None
    message: str
    created_at: float
    expires_at: float
    updated_at: float

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class OrderConflict(Exception):
    """The order cannot be placed: sold out or over the visitor's limit."""


class CommerceStore:
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        if self.db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            with self.transaction() as db:
                self.legacy_rows = migrate_names(db, "?")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        else:
            self.legacy_rows = 0

    def close(self) -> None:
        self.db.close()

    def stop_waiting(self) -> None:
        """Nothing to do: SQLite is in this process, so no call waits for a server to return."""

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ stock

    def seed_stock(self, expo: Expo) -> None:
        """Products new to the store start at their world-file stock; known ones keep theirs."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO stock (booth, sku, available) VALUES (?, ?, ?)",
                [(b.id, p.sku, p.stock) for b in expo.booths for p in b.catalogue],
            )

    def stock_of(self, booth: str) -> dict[str, int]:
        rows = self.db.execute("SELECT sku, available FROM stock WHERE booth = ? ORDER BY sku", (booth,))
        return {r["sku"]: r["available"] for r in rows}

    # ------------------------------------------------------------------ orders

    def find_order(self, visitor: str, key: str) -> OrderRecord | None:
        row = self.db.execute("SELECT * FROM orders WHERE visitor = ? AND key = ?", (visitor, key)).fetchone()
        return OrderRecord(**row) if row else None

    def order(self, order_id: str) -> OrderRecord | None:
        row = self.db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        return OrderRecord(**row) if row else None

    def open_orders(self) -> list[OrderRecord]:
        rows = self.db.execute("SELECT * FROM orders WHERE status IN (?, ?) ORDER BY created_at", OPEN_STATUSES)
        return [OrderRecord(**r) for r in rows]

    def open_orders_of(self, visitor: str) -> int:
        """How many of the visitor's orders are open (reserving or awaiting payment)."""
        return self.db.execute("SELECT COUNT(*) FROM orders WHERE visitor = ? AND status IN (?, ?)",
                               (visitor, *OPEN_STATUSES)).fetchone()[0]

    def place_order(self, record: OrderRecord, limit_per_visitor: int) -> OrderRecord:
        """Reserve stock and record the order in one transaction, or raise OrderConflict."""
        with self.transaction() as db:
            held = db.execute(
                f"SELECT COALESCE(SUM(qty), 0) FROM orders WHERE visitor = ? AND booth = ? AND sku = ? "
                f"AND status IN ({','.join('?' * len(HOLDING_STATUSES))})",
                (record.visitor, record.booth, record.sku, *HOLDING_STATUSES),
            ).fetchone()[0]
            if held + record.qty > limit_per_visitor:
                raise OrderConflict(
                    f"the limit is {limit_per_visitor} per visitor and you have {held} bought or reserved"
                )
            taken = db.execute(
                "UPDATE stock SET available = available - ? WHERE booth = ? AND sku = ? AND available >= ?",
                (record.qty, record.booth, record.sku, record.qty),
            ).rowcount
            if not taken:
                left = db.execute("SELECT available FROM stock WHERE booth = ? AND sku = ?", (record.booth, record.sku)).fetchone()
                raise OrderConflict("sold out" if not left or left[0] == 0 else f"only {left[0]} left")
            db.execute(
                "INSERT INTO orders VALUES (:id, :visitor, :key, :booth, :sku, :qty, :amount_minor, :currency, "
                ":status, :intent_id, :message, :created_at, :expires_at, :updated_at)",
                _row(record),
            )
        return record

    def set_pending(self, order_id: str, intent_id: str, expires_at: float, now: float) -> OrderRecord:
        with self.transaction() as db:
            db.execute(
                "UPDATE orders SET status = 'pending_payment', intent_id = ?, expires_at = ?, updated_at = ? "
                "WHERE id = ? AND status = 'reserving'",
                (intent_id, expires_at, now, order_id),
            )
        record = self.order(order_id)
        assert record is not None, f"order {order_id} is gone: orders are never deleted"
        return record

    def release(self, order_id: str, status: str, message: str, now: float) -> OrderRecord | None:
        """End an open order without a sale and give its stock back. None if it was not open."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
            if row is None or row["status"] not in OPEN_STATUSES:
                return None
            db.execute("UPDATE orders SET status = ?, message = ?, updated_at = ? WHERE id = ?", (status, message, now, order_id))
            db.execute("UPDATE stock SET available = available + ? WHERE booth = ? AND sku = ?", (row["qty"], row["booth"], row["sku"]))
        return self.order(order_id)

    def fulfil(self, order_id: str, intent_id: str, now: float) -> OrderRecord | None:
        """Mark a paid order fulfilled and put the goods in the visitor's inventory, once.
        None when it was fulfilled already (or is unknown). Orders are released only after the
        bank confirmed their intent can no longer be paid, so a paid released order is a broken
        invariant, and raises."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
            if row is None or row["status"] == "fulfilled":
                return None
            if row["status"] not in OPEN_STATUSES or row["intent_id"] not in (None, intent_id):
                raise AssertionError(f"order {order_id} ({row['status']}, intent {row['intent_id']}) was paid by {intent_id}")
            db.execute("INSERT INTO fulfilments VALUES (?, ?, ?)", (order_id, intent_id, now))
            db.execute("UPDATE orders SET status = 'fulfilled', intent_id = ?, message = '', updated_at = ? WHERE id = ?",
                       (intent_id, now, order_id))
            db.execute(
                "INSERT INTO inventory VALUES (?, ?, ?, ?) ON CONFLICT (visitor, booth, sku) DO UPDATE SET qty = qty + excluded.qty",
                (row["visitor"], row["booth"], row["sku"], row["qty"]),
            )
        return self.order(order_id)

    def inventory(self, visitor: str) -> list[tuple[str, str, int]]:
        rows = self.db.execute("SELECT booth, sku, qty FROM inventory WHERE visitor = ? ORDER BY booth, sku", (visitor,))
        return [(r["booth"], r["sku"], r["qty"]) for r in rows]

    # ------------------------------------------------------------------ for the console (server.admin)

    def sales(self) -> list[tuple[str, str, int, int, int]]:
        """(booth, currency, orders, units, amount in minor units) of the fulfilled orders."""
        rows = self.db.execute("SELECT booth, currency, COUNT(*), SUM(qty), SUM(amount_minor) FROM orders "
                               "WHERE status = 'fulfilled' GROUP BY booth, currency ORDER BY booth, currency")
        return [tuple(r) for r in rows]

    def fulfilled_orders(self, booth: str, sku: str) -> list[tuple[str, str, float]]:
        """(order id, visitor, fulfilled at) of a product's fulfilled orders, oldest first: the
        certificates owed for them are caught up on at start (server.collectibles)."""
        rows = self.db.execute("SELECT o.id, o.visitor, f.fulfilled_at FROM orders o JOIN fulfilments f ON f.order_id = o.id "
                               "WHERE o.booth = ? AND o.sku = ? ORDER BY f.fulfilled_at", (booth, sku))
        return [(r[0], r[1], float(r[2])) for r in rows]

    def booth_orders(self, booth: str, limit: int) -> list[OrderRecord]:
        rows = self.db.execute("SELECT * FROM orders WHERE booth = ? ORDER BY created_at DESC LIMIT ?", (booth, limit))
        return [OrderRecord(**r) for r in rows]

    def set_stock(self, booth: str, sku: str, available: int) -> None:
        """The exhibitor restocked: the units left to sell are now ``available``."""
        with self.transaction() as db:
            db.execute("INSERT INTO stock (booth, sku, available) VALUES (?, ?, ?) "
                       "ON CONFLICT (booth, sku) DO UPDATE SET available = excluded.available", (booth, sku, available))
    # ------------------------------------------------------------------ payers

    def payer(self, visitor: str) -> str | None:
        """The bank account the visitor proved is theirs, the only one their orders take."""
        row = self.db.execute("SELECT account_id FROM payers WHERE visitor = ?", (visitor,)).fetchone()
        return row[0] if row else None

    def visitors_of(self, account_id: str) -> list[str]:
        """The visitors who linked this bank account (a bank event names accounts, the hall visitors)."""
        return [row[0] for row in self.db.execute("SELECT visitor FROM payers WHERE account_id = ? ORDER BY visitor",
                                                  (account_id,))]

    def save_payer(self, visitor: str, account_id: str, now: float) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO payers VALUES (?, ?, ?) ON CONFLICT (visitor) DO UPDATE "
                       "SET account_id = excluded.account_id, linked_at = excluded.linked_at", (visitor, account_id, now))

    # ------------------------------------------------------------------ merchants

    def merchant(self, booth: str, currency: str) -> str | None:
        row = self.db.execute("SELECT account_id FROM merchants WHERE booth = ? AND currency = ?", (booth, currency)).fetchone()
        return row[0] if row else None

    def save_merchant(self, booth: str, currency: str, account_id: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO merchants VALUES (?, ?, ?)", (booth, currency, account_id))


def migrate_names(db: Any, mark: str) -> int:
    """Version 1 to 2, in the caller's transaction (``mark``: the driver's placeholder).

    Why not map a name to a visitor id: the name proves nothing, and whoever joins as
    "Bob" now is anybody. So a row keyed on a name moves to ``legacy:<name>``, an id that
    no visitor can prove (tokens are issued only for ids the server makes, ``vis_`` and
    ``tkt_``): nobody inherits Bob's inventory, open orders or limits by taking his name.
    The rows are kept (sales, stock and the console's order lists stay right); open orders
    run to their expiry as any unpaid order does and give their stock back; a paid one
    still fulfils, into the legacy inventory. Returns the number of rows moved."""
    moved = 0
    not_an_id = f"substr(visitor, 1, 4) NOT IN ({mark}, {mark}) AND substr(visitor, 1, {len(LEGACY_PREFIX)}) <> {mark}"
    for table in LEGACY_TABLES:
        moved += db.execute(f"UPDATE {table} SET visitor = {mark} || visitor WHERE {not_an_id}",
                            (LEGACY_PREFIX, *VISITOR_ID_PREFIXES, LEGACY_PREFIX)).rowcount
    return moved


def _row(record: OrderRecord) -> dict:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}
