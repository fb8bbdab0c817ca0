"""SQLite implementation of ``bank.storage``: WAL, synchronous=FULL, BEGIN IMMEDIATE.

Readers get a connection per thread (FastAPI runs handlers in a thread pool). Writers share one
connection through a group commit (``bank.group_commit``): concurrent write transactions run one
after another, each in its own savepoint, and commit together with one fsync. Each batch starts
with ``BEGIN IMMEDIATE``, so another process on the same file (an admin command next to a
running server) is serialized too. Within a batch the writer reads each account row once and
writes the changed balances at the commit (:class:`AccountCache`). ``synchronous=FULL`` makes
every commit durable before the API answers. Triggers make ledger entries immutable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from .collectibles import Edition, EditionKind, IssuerKind, Item
from .escrow import PendingStatus, PendingTransfer, VoidReason
from .fx import FxLock
from .group_commit import GroupCommit
from .intents import Intent, IntentStatus, Payment
from .ledger import Account, AccountKind, Entry, KycLevel, TransactionKind
from .storage import Delivery, IdempotencyRecord, IntentQuery

SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    display_name TEXT NOT NULL,
    balance INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    reference TEXT UNIQUE,
    token_hash TEXT UNIQUE,
    kyc TEXT NOT NULL DEFAULT 'basic',
    kyc_verified_at INTEGER
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
    hash TEXT NOT NULL,
    ref TEXT,
    uetr TEXT,
    end_to_end_id TEXT
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
CREATE TABLE IF NOT EXISTS editions (
    id TEXT PRIMARY KEY,
    issuer_account_id TEXT NOT NULL REFERENCES accounts(id),
    issuer_kind TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    size INTEGER NOT NULL,
    price INTEGER NOT NULL,
    currency TEXT NOT NULL,
    product TEXT, batch TEXT, origin TEXT, event TEXT,
    created_at INTEGER NOT NULL,
    issued INTEGER NOT NULL DEFAULT 0 CHECK (issued <= size)
);
CREATE TABLE IF NOT EXISTS items (
    serial TEXT PRIMARY KEY,
    edition_id TEXT NOT NULL REFERENCES editions(id),
    number INTEGER NOT NULL,
    holder_account_id TEXT NOT NULL REFERENCES accounts(id),
    order_id TEXT,
    payment_intent_id TEXT UNIQUE,  -- a paid intent buys one item
    issued_at INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    UNIQUE (edition_id, number)
);
CREATE INDEX IF NOT EXISTS items_by_holder ON items(holder_account_id);
CREATE TABLE IF NOT EXISTS contacts (  -- one row per pair, a < b
    a TEXT NOT NULL REFERENCES accounts(id),
    b TEXT NOT NULL REFERENCES accounts(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (a, b),
    CHECK (a < b)
);
CREATE TABLE IF NOT EXISTS fx_locks (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    source TEXT NOT NULL, target TEXT NOT NULL,
    target_amount INTEGER NOT NULL, fx_amount INTEGER NOT NULL, fee INTEGER NOT NULL,
    mid_rate TEXT NOT NULL,  -- an exact fraction, "numerator/denominator"
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    used_by TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS pending_transfers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    payer_account_id TEXT NOT NULL REFERENCES accounts(id),
    payee_account_id TEXT NOT NULL REFERENCES accounts(id),
    amount INTEGER NOT NULL, currency TEXT NOT NULL,
    debit_amount INTEGER NOT NULL, debit_currency TEXT NOT NULL, fx_amount INTEGER NOT NULL, fee INTEGER NOT NULL,
    fx_lock_id TEXT UNIQUE,
    uetr TEXT NOT NULL UNIQUE,
    end_to_end_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    hold_transaction_id TEXT NOT NULL UNIQUE,
    final_transaction_id TEXT UNIQUE,
    void_reason TEXT,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_by_status ON pending_transfers(status, expires_at);
CREATE TABLE IF NOT EXISTS tallies (  -- running totals kept in the same transaction as their rows
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

#: Columns a version-1 database lacks, added on open (entries' new columns are NULL for old rows,
#: which hash as before: unset optional fields are left out of the canonical encoding).
_ADDED_COLUMNS = {
    "accounts": ("kyc TEXT NOT NULL DEFAULT 'basic'", "kyc_verified_at INTEGER"),
    "entries": ("ref TEXT", "uetr TEXT", "end_to_end_id TEXT"),
}
_ENTRIES_TABLE = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS entries"):SCHEMA.index("CREATE INDEX IF NOT EXISTS entries_by_account")]
_LATE_INDEXES = "CREATE INDEX IF NOT EXISTS entries_by_unit ON entries(currency, seq);"
_ACCOUNT_COLUMNS = "id, kind, currency, display_name, balance, created_at, reference, kyc"
_ENTRY_COLUMNS = (
    "seq, transaction_id, kind, account_id, currency, amount, balance_after, intent_id, created_at, prev_hash, hash,"
    " ref, uetr, end_to_end_id"
)
_EDITION_COLUMNS = (
    "id, issuer_account_id, issuer_kind, kind, title, size, price, currency, product, batch, origin, event,"
    " created_at, issued"
)
_ITEM_COLUMNS = "serial, edition_id, number, holder_account_id, order_id, payment_intent_id, issued_at, acquired_at"
_LOCK_COLUMNS = (
    "id, account_id, source, target, target_amount, fx_amount, fee, mid_rate, created_at, expires_at, used_by"
)
_PENDING_COLUMNS = (
    "id, payer_account_id, payee_account_id, amount, currency, debit_amount, debit_currency, fx_amount, fee,"
    " fx_lock_id, uetr, end_to_end_id, status, created_at, updated_at, expires_at, hold_transaction_id,"
    " final_transaction_id, void_reason, metadata"
)
_INTENT_COLUMNS = (
    "seq, id, merchant_account_id, amount, currency, status, metadata, created_at, updated_at, expires_at,"
    " payer_account_id, paid_by, transaction_id, debit_amount, debit_currency, fee"
)
_DELIVERY_COLUMNS = "id, event_id, url, body, attempts, next_attempt_at, created_at"


def _account(row: tuple) -> Account:
    id_, kind, currency, name, balance, created_at, reference, kyc = row
    return Account(id_, AccountKind(kind), currency, name, balance, created_at, reference, KycLevel(kyc))


def _entry(row: tuple) -> Entry:
    seq, txn, kind, account, currency, amount, after, intent, created_at, prev, hash_, ref, uetr, e2e = row
    return Entry(seq, txn, TransactionKind(kind), account, currency, amount, after, intent, created_at, prev, hash_,
                 ref, uetr, e2e)


def _edition(row: tuple) -> Edition:
    (id_, issuer, issuer_kind, kind, title, size, price, currency, product, batch, origin, event, created_at,
     issued) = row
    return Edition(id_, issuer, IssuerKind(issuer_kind), EditionKind(kind), title, size, price, currency, product,
                   batch, origin, event, created_at, issued)


def _lock(row: tuple) -> FxLock:
    id_, account, source, target, target_amount, fx_amount, fee, mid, created_at, expires_at, used_by = row
    return FxLock(id_, account, source, target, target_amount, fx_amount, fee, Fraction(mid), created_at,
                  expires_at, used_by)


def _pending(row: tuple) -> PendingTransfer:
    (id_, payer, payee, amount, currency, debit_amount, debit_currency, fx_amount, fee, lock, uetr, e2e, status,
     created_at, updated_at, expires_at, hold, final, reason, metadata) = row
    return PendingTransfer(id_, payer, payee, amount, currency, debit_amount, debit_currency, fx_amount, fee, lock,
                           uetr, e2e, PendingStatus(status), created_at, updated_at, expires_at, hold, final,
                           VoidReason(reason) if reason else None, json.loads(metadata))


def _intent(row: tuple) -> Intent:
    (seq, id_, merchant, amount, currency, status, metadata, created_at, updated_at, expires_at,
     payer, paid_by, txn, debit_amount, debit_currency, fee) = row
    payment = Payment(paid_by, txn, debit_amount, debit_currency, fee) if txn else None
    return Intent(
        id_, merchant, amount, currency, IntentStatus(status), json.loads(metadata),
        created_at, updated_at, expires_at, payer, payment, seq,
    )


class Connection(Protocol):
    """What the SQL below needs of a DB-API connection (sqlite3's; ``bank.pg_store`` adapts psycopg's)."""

    def execute(self, sql: str, params: Sequence = ..., /) -> Any: ...
    def executemany(self, sql: str, rows: Iterable[Sequence], /) -> Any: ...


class Tail:
    """The ledger's last entry as the open write transaction sees it, once read or written.

    Every posting chains to the last entry, and while a batch holds the write lock nobody else
    can append, so the batch needs to read it only once (a query and a row decoded per call
    saved). The writer's statements forget it whenever the transaction may have changed under
    it: at each begin (another process may have written since) and at each rollback."""

    __slots__ = ("known", "entry")

    def __init__(self) -> None:
        self.known = False
        self.entry: Entry | None = None

    def forget(self) -> None:
        self.known = False
        self.entry = None


class AccountCache:
    """The writer's account rows for one batch: each read from SQLite once, the changed balances
    written once, at commit, by one ``executemany``.

    A confirmation read its payer and merchant and updated both balances, and the FX, fee and
    escrow accounts are in nearly every call of a batch: most of those statements were the same
    rows again. While a batch holds the write lock nobody else can change a row, so the cache is
    exact from its first read to the commit. Every change is journalled, so a request's savepoint
    undone (``rollback_to_savepoint``) undoes its changes here too; a begin or a rollback drops
    everything (another process may write between batches)."""

    __slots__ = ("rows", "dirty", "_journal", "_marks")

    def __init__(self) -> None:
        self.rows: dict[str, Account] = {}
        self.dirty: set[str] = set()  # ids whose balance the database does not have yet
        self._journal: list[tuple[str, Account | None, bool]] = []  # (id, row before, dirty before)
        self._marks: list[int] = []  # journal lengths at each open savepoint

    def forget(self) -> None:
        self.rows.clear()
        self.dirty.clear()
        self._journal.clear()
        self._marks.clear()

    def put(self, account: Account, *, dirty: bool = False) -> Account:
        """Keep ``account`` as the row (``dirty``: its balance is not in the database yet)."""
        id_ = account.id
        if self._marks:
            self._journal.append((id_, self.rows.get(id_), id_ in self.dirty))
        self.rows[id_] = account
        if dirty:
            self.dirty.add(id_)
        return account

    def known(self, account: Account) -> Account:
        """``account`` as read from the database, or the batch's own row for it if it has one."""
        cached = self.rows.get(account.id)
        return cached if cached is not None else self.put(account)

    def savepoint(self) -> None:
        self._marks.append(len(self._journal))

    def release(self) -> None:
        self._marks.pop()
        if not self._marks:
            self._journal.clear()  # now only the batch's rollback undoes it, and that forgets all

    def rollback_to_savepoint(self) -> None:
        mark = self._marks[-1]
        while len(self._journal) > mark:
            id_, before, was_dirty = self._journal.pop()
            if before is None:
                del self.rows[id_]
            else:
                self.rows[id_] = before
            if not was_dirty:
                self.dirty.discard(id_)

    def flush(self, conn: Connection) -> None:
        """Write the batch's changed balances (before its commit)."""
        if self.dirty:
            conn.executemany("UPDATE accounts SET balance = ? WHERE id = ?",
                             [(self.rows[id_].balance, id_) for id_ in self.dirty])
            self.dirty.clear()


class Transaction:
    """Reads and writes on one connection inside one transaction (implements Reader and Writer).

    Plain SQL with ``?`` placeholders that SQLite and PostgreSQL both run; the one difference, how
    to look into a JSON column, is :meth:`_metadata_match`. With ``tail`` and ``cache`` (the
    writer's), the last entry and each account are read once per batch."""

    def __init__(self, conn: Connection, tail: Tail | None = None, cache: AccountCache | None = None) -> None:
        self._c = conn
        self._tail = tail
        self._cache = cache

    @staticmethod
    def _metadata_match(key: str) -> tuple[str, str]:
        """A condition that the intent's metadata has ``key``, with the key's parameter."""
        return "json_extract(metadata, ?) = ?", f'$."{key}"'

    def _one(self, sql: str, params: Sequence = ()) -> tuple | None:
        return self._c.execute(sql, params).fetchone()

    # -- reads
    def _read_account(self, row: tuple | None) -> Account | None:
        """A row read from the database, as the batch sees it (its cache has the latest balance)."""
        if row is None:
            return None
        return _account(row) if self._cache is None else self._cache.known(_account(row))

    def account(self, account_id: str) -> Account | None:
        if self._cache is not None and (cached := self._cache.rows.get(account_id)) is not None:
            return cached
        return self._read_account(self._one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)))

    def account_by_token(self, token_hash: str) -> Account | None:
        return self._read_account(self._one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE token_hash = ?",
                                            (token_hash,)))

    def account_by_reference(self, reference: str) -> Account | None:
        return self._read_account(self._one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE reference = ?",
                                            (reference,)))

    def accounts(self) -> Iterator[Account]:
        for row in self._c.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id"):
            yield self._read_account(row)  # type: ignore[misc]

    def last_entry(self) -> Entry | None:
        tail = self._tail
        if tail is not None and tail.known:
            return tail.entry
        row = self._one(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY seq DESC LIMIT 1")
        last = _entry(row) if row else None
        if tail is not None:
            tail.entry, tail.known = last, True
        return last

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
            condition, parameter = self._metadata_match(key)
            where.append(condition)
            params += [parameter, value]
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

    def unit_entries(self, unit: str) -> list[Entry]:
        rows = self._c.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE currency = ? ORDER BY seq", (unit,))
        return [_entry(r) for r in rows]

    def edition(self, edition_id: str) -> Edition | None:
        row = self._one(f"SELECT {_EDITION_COLUMNS} FROM editions WHERE id = ?", (edition_id,))
        return _edition(row) if row else None

    def item(self, serial: str) -> Item | None:
        row = self._one(f"SELECT {_ITEM_COLUMNS} FROM items WHERE serial = ?", (serial,))
        return Item(*row) if row else None

    def item_paid_by(self, intent_id: str) -> Item | None:
        row = self._one(f"SELECT {_ITEM_COLUMNS} FROM items WHERE payment_intent_id = ?", (intent_id,))
        return Item(*row) if row else None

    def items_held_by(self, account_id: str) -> list[Item]:
        rows = self._c.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE holder_account_id = ? ORDER BY serial",
                               (account_id,))
        return [Item(*r) for r in rows]

    def all_items(self) -> Iterator[Item]:
        for row in self._c.execute(f"SELECT {_ITEM_COLUMNS} FROM items ORDER BY serial"):
            yield Item(*row)

    def all_editions(self) -> Iterator[Edition]:
        for row in self._c.execute(f"SELECT {_EDITION_COLUMNS} FROM editions ORDER BY id"):
            yield _edition(row)

    def are_contacts(self, a: str, b: str) -> bool:
        lo, hi = sorted((a, b))
        return self._one("SELECT 1 FROM contacts WHERE a = ? AND b = ?", (lo, hi)) is not None

    def contacts_of(self, account_id: str) -> list[str]:
        rows = self._c.execute("SELECT b AS other, created_at FROM contacts WHERE a = ? UNION ALL "
                               "SELECT a AS other, created_at FROM contacts WHERE b = ? ORDER BY created_at, other",
                               (account_id, account_id))
        return [row[0] for row in rows]

    def fx_lock(self, lock_id: str) -> FxLock | None:
        row = self._one(f"SELECT {_LOCK_COLUMNS} FROM fx_locks WHERE id = ?", (lock_id,))
        return _lock(row) if row else None

    def pending(self, pending_id: str) -> PendingTransfer | None:
        row = self._one(f"SELECT {_PENDING_COLUMNS} FROM pending_transfers WHERE id = ?", (pending_id,))
        return _pending(row) if row else None

    def all_pending(self) -> Iterator[PendingTransfer]:
        for row in self._c.execute(f"SELECT {_PENDING_COLUMNS} FROM pending_transfers ORDER BY seq"):
            yield _pending(row)

    def pending_page(self, status: str | None, payee_account_id: str | None, after_seq: int,
                     limit: int) -> list[tuple[int, PendingTransfer]]:
        where, params = ["seq > ?"], list[object]([after_seq])
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if payee_account_id is not None:
            where.append("payee_account_id = ?")
            params.append(payee_account_id)
        rows = self._c.execute(f"SELECT seq, {_PENDING_COLUMNS} FROM pending_transfers WHERE {' AND '.join(where)}"
                               " ORDER BY seq LIMIT ?", (*params, limit))
        return [(r[0], _pending(r[1:])) for r in rows]

    def expirable_pending(self, now: int, limit: int) -> list[PendingTransfer]:
        rows = self._c.execute(
            f"SELECT {_PENDING_COLUMNS} FROM pending_transfers WHERE status = 'pending' AND expires_at <= ?"
            " ORDER BY expires_at LIMIT ?", (now, limit))
        return [_pending(r) for r in rows]

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
            f"INSERT INTO accounts ({_ACCOUNT_COLUMNS}, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (account.id, str(account.kind), account.currency, account.display_name, account.balance,
             account.created_at, account.reference, str(account.kyc), token_hash),
        )
        if self._cache is not None:
            self._cache.put(account)

    def set_kyc(self, account_id: str, level: KycLevel, now: int) -> None:
        cur = self._c.execute("UPDATE accounts SET kyc = ?, kyc_verified_at = ? WHERE id = ?",
                              (str(level), now, account_id))
        assert cur.rowcount == 1, f"no account {account_id}"
        if self._cache is not None and (cached := self._cache.rows.get(account_id)) is not None:
            self._cache.put(replace(cached, kyc=level))

    def append(self, entries: Sequence[Entry], accounts: Sequence[Account]) -> None:
        self._c.executemany(
            f"INSERT INTO entries ({_ENTRY_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            [(e.seq, e.transaction_id, str(e.kind), e.account_id, e.currency, e.amount, e.balance_after,
              e.intent_id, e.created_at, e.prev_hash, e.hash, e.ref, e.uetr, e.end_to_end_id) for e in entries],
        )
        if self._cache is None:
            self._c.executemany("UPDATE accounts SET balance = ? WHERE id = ?", [(a.balance, a.id) for a in accounts])
        else:  # written at the batch's commit
            for a in accounts:
                self._cache.put(a, dirty=True)
        if self._tail is not None and entries:
            self._tail.entry, self._tail.known = entries[-1], True

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
        """Only what a state change moves (``bank.intents``: status, payment, updated_at): setting
        every column cost SQLite four times as much (the merchant's foreign key checked again,
        every index on a set column rewritten), a twentieth of a confirmation's writer time."""
        p = intent.payment
        cur = self._c.execute(
            "UPDATE payment_intents SET status = ?, updated_at = ?, paid_by = ?, transaction_id = ?,"
            " debit_amount = ?, debit_currency = ?, fee = ? WHERE id = ?",
            (str(intent.status), intent.updated_at, p and p.payer_account_id, p and p.transaction_id,
             p and p.debit_amount, p and p.debit_currency, p and p.fee, intent.id),
        )
        assert cur.rowcount == 1, f"no intent {intent.id} to update"

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        self._c.execute(
            "INSERT INTO idempotency (scope, key_hash, fingerprint, status, body, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (record.scope, record.key_hash, record.fingerprint, record.status, record.body, record.created_at),
        )

    def insert_edition(self, e: Edition) -> None:
        self._c.execute(
            f"INSERT INTO editions ({_EDITION_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            (e.id, e.issuer_account_id, str(e.issuer_kind), str(e.kind), e.title, e.size, e.price, e.currency,
             e.product, e.batch, e.origin, e.event, e.created_at, e.issued),
        )

    def set_issued(self, edition_id: str, issued: int) -> None:
        cur = self._c.execute("UPDATE editions SET issued = ? WHERE id = ? AND issued = ?",
                              (issued, edition_id, issued - 1))
        assert cur.rowcount == 1, f"edition {edition_id} did not have {issued - 1} issued"

    def insert_item(self, i: Item) -> None:
        self._c.execute(f"INSERT INTO items ({_ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (i.serial, i.edition_id, i.number, i.holder_account_id, i.order_id, i.payment_intent_id,
                         i.issued_at, i.acquired_at))

    def move_item(self, serial: str, from_account: str, to_account: str, now: int) -> None:
        cur = self._c.execute(
            "UPDATE items SET holder_account_id = ?, acquired_at = ? WHERE serial = ? AND holder_account_id = ?",
            (to_account, now, serial, from_account))
        assert cur.rowcount == 1, f"{from_account} did not hold {serial}"

    def add_contact(self, a: str, b: str, now: int) -> bool:
        lo, hi = sorted((a, b))
        cur = self._c.execute("INSERT INTO contacts (a, b, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                              (lo, hi, now))
        return cur.rowcount == 1

    def insert_fx_lock(self, lock: FxLock) -> None:
        self._c.execute(
            f"INSERT INTO fx_locks ({_LOCK_COLUMNS}) VALUES ({', '.join('?' * 11)})",
            (lock.id, lock.account_id, lock.source, lock.target, lock.target_amount, lock.fx_amount, lock.fee,
             f"{lock.mid_rate.numerator}/{lock.mid_rate.denominator}", lock.created_at, lock.expires_at,
             lock.used_by),
        )

    def use_fx_lock(self, lock_id: str, pending_id: str) -> None:
        cur = self._c.execute("UPDATE fx_locks SET used_by = ? WHERE id = ? AND used_by IS NULL", (pending_id, lock_id))
        assert cur.rowcount == 1, f"fx lock {lock_id} already used"

    def _pending_values(self, p: PendingTransfer) -> tuple:
        return (p.id, p.payer_account_id, p.payee_account_id, p.amount, p.currency, p.debit_amount,
                p.debit_currency, p.fx_amount, p.fee, p.fx_lock_id, p.uetr, p.end_to_end_id, str(p.status),
                p.created_at, p.updated_at, p.expires_at, p.hold_transaction_id, p.final_transaction_id,
                p.void_reason and str(p.void_reason), json.dumps(dict(p.metadata), sort_keys=True))

    def insert_pending(self, p: PendingTransfer) -> None:
        self._c.execute(f"INSERT INTO pending_transfers ({_PENDING_COLUMNS}) VALUES ({', '.join('?' * 20)})",
                        self._pending_values(p))

    def finish_pending(self, p: PendingTransfer) -> None:
        """Write a pending transfer's one final state; a second finish of the same one fails (exactly once)."""
        cur = self._c.execute(
            "UPDATE pending_transfers SET status = ?, updated_at = ?, final_transaction_id = ?, void_reason = ?"
            " WHERE id = ? AND status = 'pending'",
            (str(p.status), p.updated_at, p.final_transaction_id, p.void_reason and str(p.void_reason), p.id))
        assert cur.rowcount == 1, f"pending transfer {p.id} was not pending"

    def record_welcome(self, account_id: str, usd: int, now: int) -> None:
        self._c.execute("INSERT INTO welcome_grants (account_id, usd, created_at) VALUES (?, ?, ?)",
                        (account_id, usd, now))
        self._c.execute("INSERT INTO tallies (name, value) VALUES ('welcome_usd', ?)"
                        " ON CONFLICT (name) DO UPDATE SET value = tallies.value + excluded.value", (usd,))

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


class WriterStatements(ABC):
    """The group commit's transaction statements on a writer connection, keeping the batch's caches
    true: ``tail`` and ``accounts`` are forgotten at each begin and rollback, a request's account
    changes are undone with its savepoint, and the cached balances are written before each commit.
    Each database says how it begins, rolls back and which connection is the writer's now."""

    def __init__(self) -> None:
        self.tail = Tail()
        self.accounts = AccountCache()

    @abstractmethod
    def connection(self) -> Connection:
        """The writer's connection (PostgreSQL's may be replaced at a begin)."""

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _rollback(self) -> None: ...

    def begin(self) -> None:
        self.tail.forget()
        self.accounts.forget()
        self._begin()

    def commit(self) -> None:
        conn = self.connection()
        self.accounts.flush(conn)
        conn.execute("COMMIT")

    def rollback(self) -> None:
        self.tail.forget()
        self.accounts.forget()
        self._rollback()

    def savepoint(self) -> None:
        self.connection().execute("SAVEPOINT request")
        self.accounts.savepoint()

    def release(self) -> None:
        self.connection().execute("RELEASE SAVEPOINT request")
        self.accounts.release()

    def rollback_to_savepoint(self) -> None:
        self.tail.forget()
        self.connection().execute("ROLLBACK TO SAVEPOINT request")
        self.accounts.rollback_to_savepoint()


class Statements(WriterStatements):
    """SQLite's writer statements: ``BEGIN IMMEDIATE`` takes the file's write lock for the batch."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self._c = conn

    def connection(self) -> Connection:
        return self._c

    def _begin(self) -> None:
        self._c.execute("BEGIN IMMEDIATE")

    def _rollback(self) -> None:
        if self._c.in_transaction:
            self._c.execute("ROLLBACK")


def _drop_hash_index(conn: sqlite3.Connection) -> None:
    """Up to schema version 2, ``entries.hash`` was UNIQUE: an index no query reads (every hash
    covers its entry's own ``seq``, the primary key, and the chain is checked by ``verify``), and
    its random keys cost each entry an insert into a random page, about half of an entry's
    insert. SQLite drops an inline constraint only with the table, so the table is copied
    (rows, order and ``seq`` unchanged); its indexes and triggers are made again by the schema
    that runs next. Dropping the old table fires no triggers (SQLite's implicit delete does not)."""
    if not any(origin == "u" for _, _, _, origin, _ in conn.execute("PRAGMA index_list(entries)")):
        return
    conn.execute(_ENTRIES_TABLE.replace("IF NOT EXISTS entries", "entries_copy", 1).rstrip().rstrip(";"))
    conn.execute(f"INSERT INTO entries_copy ({_ENTRY_COLUMNS}) SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY seq")
    conn.execute("DROP TABLE entries")
    conn.execute("ALTER TABLE entries_copy RENAME TO entries")


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
        self._writer = self._connect()
        # Each request's savepoint journals every page it changes (about 70 KB a confirmation);
        # past 64 KiB SQLite spills that sub-journal to a temporary file, so each call paid for
        # ~17 pwrite()s of a file that is never read unless the request is refused. In memory, it
        # costs a copy. Durability is the WAL's: the sub-journal only undoes a savepoint.
        self._writer.execute("PRAGMA temp_store = MEMORY")
        self._statements = Statements(self._writer)
        self._group = GroupCommit(self._statements)
        conn = self._conn()
        conn.execute("PRAGMA journal_mode = WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} has schema version {version}; this bank knows {SCHEMA_VERSION}")
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table, columns in _ADDED_COLUMNS.items():
                    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                    for column in columns:
                        if have and column.split()[0] not in have:
                            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
                _drop_hash_index(conn)
                for statement in (SCHEMA + _LATE_INDEXES).split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @property
    def group(self) -> GroupCommit:
        """The writers' group commit (its counters say how many requests shared each fsync)."""
        return self._group

    @contextmanager
    def reading(self) -> Iterator[Transaction]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield Transaction(conn)
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def writing(self) -> Iterator[Transaction]:
        with self._group.transaction():
            yield Transaction(self._writer, self._statements.tail, self._statements.accounts)

    def close(self) -> None:
        self._group.close()
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
