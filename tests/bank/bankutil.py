"""Helpers shared by the bank tests (a uniquely named module: tests/ directories have no __init__.py)."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from bank.audit import audit
from bank.sqlite_store import SQLiteStorage

PLATFORM_KEY = "test-platform-key-0123456789"
BASE = "http://bank.test"


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def platform_headers(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {PLATFORM_KEY}", **key(), **extra}


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Snapshot:
    """Everything the bank has stored, read straight from the file: what must not change on a bad request."""

    tables: dict[str, int]
    balances: dict[str, int]
    intents: dict[str, str]


def snapshot(db_path: Path) -> Snapshot:
    conn = sqlite3.connect(db_path)
    try:
        tables = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("accounts", "entries", "payment_intents", "idempotency", "outbox")}
        balances = dict(conn.execute("SELECT id, balance FROM accounts"))
        intents = dict(conn.execute("SELECT id, status FROM payment_intents"))
        return Snapshot(tables, balances, intents)
    finally:
        conn.close()


def assert_sound(storage: SQLiteStorage) -> None:
    report = audit(storage)
    assert report.ok, report.problems
