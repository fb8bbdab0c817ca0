"""Schema migrations of an existing SQLite database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bank import audit
from bank.service import Bank, Principal, Role
from bank.sqlite_store import _ENTRIES_TABLE, _ENTRY_COLUMNS, _LATE_INDEXES, SCHEMA, SQLiteStorage


def _unique_indexes(conn: sqlite3.Connection) -> list[str]:
    return [name for _, name, _, origin, _ in conn.execute("PRAGMA index_list(entries)") if origin == "u"]


def _as_version_2(path: Path) -> None:
    """Make the entries table what schema version 2 made: ``hash`` UNIQUE."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    old = _ENTRIES_TABLE.replace("IF NOT EXISTS entries", "entries_v2", 1).replace(
        "hash TEXT NOT NULL,", "hash TEXT NOT NULL UNIQUE,")
    conn.execute(old.rstrip().rstrip(";"))
    conn.execute(f"INSERT INTO entries_v2 ({_ENTRY_COLUMNS}) SELECT {_ENTRY_COLUMNS} FROM entries")
    conn.execute("DROP TABLE entries")
    conn.execute("ALTER TABLE entries_v2 RENAME TO entries")
    for statement in (SCHEMA + _LATE_INDEXES).split(";\n"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("COMMIT")
    assert _unique_indexes(conn)
    conn.close()


def test_version_2_loses_the_entries_hash_index_and_keeps_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "bank.sqlite3"
    storage = SQLiteStorage(path)
    bank = Bank(storage)
    platform = Principal(Role.PLATFORM)
    merchant = bank.create_merchant(platform, "m", "MYR", None, None).body["id"]
    visitor = Principal(Role.VISITOR, bank.open_account("v", "MYR", None).body["account"]["id"])
    intent = bank.create_intent(platform, merchant_account_id=merchant, amount=100, currency="MYR", metadata={},
                                expires_in_seconds=None, payer_account_id=None, idem=None).body["id"]
    bank.confirm_intent(visitor, intent, None)
    with storage.reading() as tx:
        before = list(tx.entries())
    storage.close()
    _as_version_2(path)

    storage = SQLiteStorage(path)
    conn = sqlite3.connect(path)
    assert _unique_indexes(conn) == []
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'entries'")}
    assert {"entries_by_account", "entries_by_unit", "entries_no_update", "entries_no_delete"} <= names
    conn.close()
    with storage.reading() as tx:
        assert list(tx.entries()) == before
    with storage.writing() as tx, pytest.raises(sqlite3.IntegrityError, match="immutable"):
        tx._c.execute("DELETE FROM entries")
    bank = Bank(storage)
    intent = bank.create_intent(platform, merchant_account_id=merchant, amount=100, currency="MYR", metadata={},
                                expires_in_seconds=None, payer_account_id=None, idem=None).body["id"]
    bank.confirm_intent(visitor, intent, None)
    report = audit.audit(storage)
    assert report.ok, report.problems
    assert report.entries == len(before) + 2
    storage.close()
