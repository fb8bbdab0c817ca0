"""SQLite implementation of ``bank.storage``: WAL, synchronous=FULL, BEGIN IMMEDIATE.

One connection per thread (FastAPI runs handlers in a thread pool); writers are serialized by
a process-wide lock *and* by ``BEGIN IMMEDIATE``, so another process on the same file (an
admin command next to a running server) is serialized too. ``synchronous=FULL`` makes every
commit durable before the API answers. Triggers make ledger entries immutable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .intents import Intent, IntentStatus, Payment
from .ledger import Account, AccountKind, Entry, TransactionKind
from .storage import Delivery, IdempotencyRecord, IntentQuery

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    display_name TEXT NOT NULL,
    balance INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    reference TEXT UNIQUE,
    token_hash TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    intent_id TEXT,
    created_at INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS entries_by_account ON entries(account_id, seq);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TABLE IF NOT EXISTS payment_intents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    merchant_account_id TEXT NOT NULL REFERENCES accounts(id),
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    payer_account_id TEXT,
    paid_by TEXT,
    transaction_id TEXT UNIQUE,
    debit_amount INTEGER,
    debit_currency TEXT,
    fee INTEGER
);
CREATE INDEX IF NOT EXISTS intents_by_status ON payment_intents(status, expires_at);
CREATE INDEX IF NOT EXISTS intents_by_update ON payment_intents(updated_at);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key_hash)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
    finished_at INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt_at);
CREATE TABLE IF NOT EXISTS welcome_grants (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    usd INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tallies (  -- running totals kept in the same transaction as their rows
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

_ACCOUNT_COLUMNS = "id, kind, currency, display_name, balance, created_at, reference"
_ENTRY_COLUMNS = (
    "seq, transaction_id, kind, account_id, currency, amount, balance_after, intent_id, created_at, prev_hash, hash"
)
_INTENT_COLUMNS = (
    "seq, id, merchant_account_id, amount, currency, status, metadata, created_at, updated_at, expires_at,"
    " payer_account_id, paid_by, transaction_id, debit_amount, debit_currency, fee"
)
_DELIVERY_COLUMNS = "id, event_id, url, body, attempts, next_attempt_at, created_at"


def _account(row: tuple) -> Account:
    id_, kind, currency, name, balance, created_at, reference = row
    return Account(id_, AccountKind(kind), currency, name, balance, created_at, reference)


def _entry(row: tuple) -> Entry:
    seq, txn, kind, account, currency, amount, after, intent, created_at, prev, hash_ = row
    return Entry(seq, txn, TransactionKind(kind), account, currency, amount, after, intent, created_at, prev, hash_)


def _intent(row: tuple) -> Intent:
    (seq, id_, merchant, amount, currency, status, metadata, created_at, updated_at, expires_at,
     payer, paid_by, txn, debit_amount, debit_currency, fee) = row
    payment = Payment(paid_by, txn, debit_amount, debit_currency, fee) if txn else None
    return Intent(
        id_, merchant, amount, currency, IntentStatus(status), json.loads(metadata),
        created_at, updated_at, expires_at, payer, payment, seq,
    )


class _Tx:
    """Reads and writes on one connection inside one transaction (implements Reader and Writer)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def _one(self, sql: str, params: Sequence = ()) -> tuple | None:
        return self._c.execute(sql, params).fetchone()

    # -- reads
    def account(self, account_id: str) -> Account | None:
        row = self._one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,))
        return _account(row) if row else None

    def account_by_token(self, token_hash: str) -> Account | None:
        row = self._one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE token_hash = ?", (token_hash,))
        return _account(row) if row else None

    def account_by_reference(self, reference: str) -> Account | None:
        row = self._one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE reference = ?", (reference,))
        return _account(row) if row else None

    def accounts(self) -> Iterator[Account]:
        for row in self._c.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id"):
            yield _account(row)

    def last_entry(self) -> Entry | None:
        row = self._one(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY seq DESC LIMIT 1")
        return _entry(row) if row else None

    def entries(self) -> Iterator[Entry]:
        for row in self._c.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY seq"):
            yield _entry(row)

    def account_entries(self, account_id: str, limit: int, before_seq: int | None) -> list[Entry]:
        rows = self._c.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE account_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (account_id, before_seq if before_seq is not None else 2**63 - 1, limit),
        )
        return [_entry(r) for r in rows]

    def entry_count(self) -> int:
        return self._one("SELECT count(*) FROM entries")[0]  # type: ignore[index]

    def intent(self, intent_id: str) -> Intent | None:
        row = self._one(f"SELECT {_INTENT_COLUMNS} FROM payment_intents WHERE id = ?", (intent_id,))
        return _intent(row) if row else None

    def intents(self, query: IntentQuery) -> list[Intent]:
        where, params = ["seq > ?"], list[object]([query.after_seq])
        if query.status is not None:
            where.append("status = ?")
            params.append(str(query.status))
        if query.updated_since is not None:
            where.append("updated_at >= ?")
            params.append(query.updated_since)
        if query.merchant_account_id is not None:
            where.append("merchant_account_id = ?")
            params.append(query.merchant_account_id)
        for key, value in query.metadata:
            where.append("json_extract(metadata, ?) = ?")
            params += [f'$."{key}"', value]
        sql = f"SELECT {_INTENT_COLUMNS} FROM payment_intents WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        return [_intent(r) for r in self._c.execute(sql, (*params, query.limit))]

    def all_intents(self) -> Iterator[Intent]:
        for row in self._c.execute(f"SELECT {_INTENT_COLUMNS} FROM payment_intents ORDER BY seq"):
            yield _intent(row)

    def expirable_intents(self, now: int, limit: int) -> list[Intent]:
        rows = self._c.execute(
            f"SELECT {_INTENT_COLUMNS} FROM payment_intents WHERE status = 'created' AND expires_at <= ?"
            " ORDER BY expires_at LIMIT ?",
            (now, limit),
        )
        return [_intent(r) for r in rows]

    def idempotency(self, scope: str, key_hash: str) -> IdempotencyRecord | None:
        row = self._one(
            "SELECT scope, key_hash, fingerprint, status, body, created_at FROM idempotency"
            " WHERE scope = ? AND key_hash = ?",
            (scope, key_hash),
        )
        return IdempotencyRecord(*row) if row else None

    def welcome_granted_usd(self) -> int:
        row = self._one("SELECT value FROM tallies WHERE name = 'welcome_usd'")
        return row[0] if row else 0

    def due_deliveries(self, now: int, limit: int) -> list[Delivery]:
        rows = self._c.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (now, limit),
        )
        return [Delivery(*r) for r in rows]

    def next_delivery_at(self) -> int | None:
        return self._one("SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'")[0]  # type: ignore[index]

    def pending_deliveries(self) -> int:
        return self._one("SELECT count(*) FROM outbox WHERE state = 'pending'")[0]  # type: ignore[index]

    # -- writes
    def insert_account(self, account: Account, token_hash: str | None = None) -> None:
        self._c.execute(
            f"INSERT INTO accounts ({_ACCOUNT_COLUMNS}, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (account.id, str(account.kind), account.currency, account.display_name, account.balance,
             account.created_at, account.reference, token_hash),
        )

    def append(self, entries: Sequence[Entry], accounts: Sequence[Account]) -> None:
        self._c.executemany(
            f"INSERT INTO entries ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.seq, e.transaction_id, str(e.kind), e.account_id, e.currency, e.amount, e.balance_after,
              e.intent_id, e.created_at, e.prev_hash, e.hash) for e in entries],
        )
        self._c.executemany("UPDATE accounts SET balance = ? WHERE id = ?", [(a.balance, a.id) for a in accounts])

    def _intent_values(self, i: Intent) -> tuple:
        p = i.payment
        return (
            i.id, i.merchant_account_id, i.amount, i.currency, str(i.status),
            json.dumps(dict(i.metadata), sort_keys=True), i.created_at, i.updated_at, i.expires_at,
            i.payer_account_id, p and p.payer_account_id, p and p.transaction_id, p and p.debit_amount,
            p and p.debit_currency, p and p.fee,
        )

    def insert_intent(self, intent: Intent) -> None:
        columns = _INTENT_COLUMNS.removeprefix("seq, ")
        self._c.execute(
            f"INSERT INTO payment_intents ({columns}) VALUES ({', '.join('?' * 15)})", self._intent_values(intent)
        )

    def update_intent(self, intent: Intent) -> None:
        (id_, *values) = self._intent_values(intent)
        columns = _INTENT_COLUMNS.removeprefix("seq, id, ").split(", ")
        cur = self._c.execute(
            f"UPDATE payment_intents SET {', '.join(c.strip() + ' = ?' for c in columns)} WHERE id = ?",
            (*values, id_),
        )
        assert cur.rowcount == 1, f"no intent {id_} to update"

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        self._c.execute(
            "INSERT INTO idempotency (scope, key_hash, fingerprint, status, body, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (record.scope, record.key_hash, record.fingerprint, record.status, record.body, record.created_at),
        )

    def record_welcome(self, account_id: str, usd: int, now: int) -> None:
        self._c.execute("INSERT INTO welcome_grants (account_id, usd, created_at) VALUES (?, ?, ?)",
                        (account_id, usd, now))
        self._c.execute("INSERT INTO tallies (name, value) VALUES ('welcome_usd', ?)"
                        " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (usd,))

    def enqueue(self, event_id: str, urls: Sequence[str], body: bytes, now: int) -> None:
        self._c.executemany(
            "INSERT INTO outbox (event_id, url, body, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
            [(event_id, url, body, now, now) for url in urls],
        )

    def delivered(self, delivery_id: int, attempts: int, now: int) -> None:
        self._c.execute(
            "UPDATE outbox SET state = 'delivered', attempts = ?, finished_at = ? WHERE id = ?",
            (attempts, now, delivery_id),
        )

    def reschedule(self, delivery_id: int, attempts: int, next_attempt_at: int, error: str) -> None:
        self._c.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
            (attempts, next_attempt_at, error, delivery_id),
        )

    def give_up(self, delivery_id: int, attempts: int, error: str) -> None:
        self._c.execute(
            "UPDATE outbox SET state = 'dead', attempts = ?, last_error = ? WHERE id = ?",
            (attempts, error, delivery_id),
        )


class SQLiteStorage:
    """``bank.storage.Storage`` on one SQLite file."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        conn = self._conn()
        conn.execute("PRAGMA journal_mode = WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} has schema version {version}; this bank knows {SCHEMA_VERSION}")
        with self._write_lock:
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def reading(self) -> Iterator[_Tx]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield _Tx(conn)
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def writing(self) -> Iterator[_Tx]:
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
