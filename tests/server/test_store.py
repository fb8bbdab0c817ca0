"""The commerce store's file across server versions: a file written before visitor ids (keyed
on the case-folded display name) is migrated at open so that no visitor owns its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from server.store import LEGACY_PREFIX, SCHEMA_VERSION, CommerceStore

# server/store.py's schema before visitor ids (commit ec2f6aa^): no payers, no user_version
VERSION_1_SCHEMA = """
CREATE TABLE stock (
    booth TEXT NOT NULL, sku TEXT NOT NULL, available INTEGER NOT NULL CHECK (available >= 0),
    PRIMARY KEY (booth, sku));
CREATE TABLE orders (
    id TEXT PRIMARY KEY, visitor TEXT NOT NULL, key TEXT NOT NULL,
    booth TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL CHECK (qty > 0),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0), currency TEXT NOT NULL,
    status TEXT NOT NULL, intent_id TEXT, message TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL, expires_at REAL NOT NULL, updated_at REAL NOT NULL,
    UNIQUE (visitor, key));
CREATE INDEX orders_open ON orders (status) WHERE status IN ('reserving', 'pending_payment');
CREATE TABLE fulfilments (
    order_id TEXT PRIMARY KEY REFERENCES orders (id), intent_id TEXT NOT NULL UNIQUE, fulfilled_at REAL NOT NULL);
CREATE TABLE inventory (
    visitor TEXT NOT NULL, booth TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL CHECK (qty > 0),
    PRIMARY KEY (visitor, booth, sku));
CREATE TABLE merchants (
    booth TEXT NOT NULL, currency TEXT NOT NULL, account_id TEXT NOT NULL, PRIMARY KEY (booth, currency));
"""


def version_1_file(path: Path, now: float) -> Path:
    """What the old server left after Bob bought 2 jars of honey (the limit) and crashed
    while reserving a third for him, and Wei bought a carpet: rows keyed on 'bob', 'wei'."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(VERSION_1_SCHEMA)
    db.executemany("INSERT INTO stock VALUES (?, ?, ?)", [("kz-honey", "HONEY-1", 7), ("kz-honey", "CARPET-1", 0)])
    orders = [
        ("ord_old_1", "bob", "k1", "kz-honey", "HONEY-1", 2, 900000, "KZT", "fulfilled", "pi_old_1", "", now - 900,
         now - 300, now - 880),
        ("ord_old_2", "bob", "k2", "kz-honey", "HONEY-1", 1, 450000, "KZT", "reserving", None, "", now - 60,
         now + 540, now - 60),
        ("ord_old_3", "wei", "k1", "kz-honey", "CARPET-1", 1, 999999900, "KZT", "fulfilled", "pi_old_3", "",
         now - 800, now - 200, now - 790),
    ]
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
    db.executemany("INSERT INTO fulfilments VALUES (?, ?, ?)", [("ord_old_1", "pi_old_1", now - 880),
                                                                 ("ord_old_3", "pi_old_3", now - 790)])
    db.executemany("INSERT INTO inventory VALUES (?, ?, ?, ?)", [("bob", "kz-honey", "HONEY-1", 2),
                                                                  ("wei", "kz-honey", "CARPET-1", 1)])
    db.commit()
    db.close()
    return path


def test_a_name_keyed_file_moves_to_legacy_ids_that_no_visitor_owns(tmp_path):
    store = CommerceStore(version_1_file(tmp_path / "commerce.sqlite3", now=1_000_000.0))
    assert store.legacy_rows == 5  # 3 orders, 2 inventory rows
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    for name in ("bob", "Bob", "BOB", "wei"):  # whatever a newcomer calls themselves
        assert store.inventory(name) == []
        assert store.open_orders_of(name) == 0
        assert store.find_order(name, "k1") is None
    assert store.inventory(LEGACY_PREFIX + "bob") == [("kz-honey", "HONEY-1", 2)]  # kept, for the record
    assert store.order("ord_old_2").visitor == LEGACY_PREFIX + "bob"
    assert store.stock_of("kz-honey") == {"CARPET-1": 0, "HONEY-1": 7}  # stock untouched
    assert store.sales() == [("kz-honey", "KZT", 2, 3, 999999900 + 900000)]  # sales figures too
    store.close()


def test_the_migration_runs_once_and_leaves_visitor_ids_alone(tmp_path):
    path = version_1_file(tmp_path / "commerce.sqlite3", now=1_000_000.0)
    db = sqlite3.connect(path)  # a file the identity-era server wrote before this version marker
    db.execute("INSERT INTO inventory VALUES ('vis_AbCdEfGhIjKlMnOp', 'kz-honey', 'HONEY-1', 1)")
    db.commit()
    db.close()
    CommerceStore(path).close()
    again = CommerceStore(path)
    assert again.legacy_rows == 0
    assert again.inventory(LEGACY_PREFIX + "bob") == [("kz-honey", "HONEY-1", 2)]  # not legacy:legacy:bob
    assert again.inventory("vis_AbCdEfGhIjKlMnOp") == [("kz-honey", "HONEY-1", 1)]
    again.close()


def test_a_new_file_starts_at_the_current_version(tmp_path):
    store = CommerceStore(tmp_path / "new.sqlite3")
    assert (store.legacy_rows, store.db.execute("PRAGMA user_version").fetchone()[0]) == (0, SCHEMA_VERSION)
    store.close()
