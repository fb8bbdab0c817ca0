"""The ledger's rules, in one place, over plain records (sans-I/O).

Storage calls :func:`post` to turn a proposed transaction into hash-chained entries and new
balances, and :func:`audit` to re-check a whole ledger. The rules:

* double entry: a transaction's postings sum to zero in every currency;
* money enters only through a funding account, the one kind allowed below zero;
* no other account is overdrawn (:class:`InsufficientFunds` is a business outcome, not a bug);
* entries are immutable and each carries ``sha256`` of its canonical encoding, which includes
  the previous entry's hash, so changing or dropping any entry breaks every later hash;
* each entry records the account's balance after it, so balances are recomputable and checkable.

Violations that only a bug can cause raise :class:`LedgerBug` (asserted invariants, in the
spirit of TigerBeetle): better to stop than to write a wrong ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

GENESIS_HASH = "0" * 64
INT64_MAX = 2**63 - 1
#: The largest single movement, in minor units: far below int64, far above any expo purchase.
MAX_AMOUNT = 10**12


class AccountKind(StrEnum):
    VISITOR = "visitor"
    MERCHANT = "merchant"
    FUNDING = "funding"  # the only source of new money; may go negative
    FX = "fx"  # the bank's position in a currency, through which conversions pass
    FEES = "fees"  # FX spread income

    @property
    def internal(self) -> bool:
        return self in (AccountKind.FUNDING, AccountKind.FX, AccountKind.FEES)


class TransactionKind(StrEnum):
    GRANT = "grant"  # funding -> account (welcome balance, FX float, admin top-up)
    PAYMENT = "payment"  # visitor -> merchant, possibly through FX


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    kind: AccountKind
    currency: str
    display_name: str
    balance: int
    created_at: int
    reference: str | None = None  # the platform's own id for a merchant, unique

    @property
    def may_go_negative(self) -> bool:
        return self.kind is AccountKind.FUNDING


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a proposed transaction; the currency is the account's."""

    account_id: str
    amount: int  # positive credits the account, negative debits it


@dataclass(frozen=True, slots=True)
class Entry:
    """A written, immutable, hash-chained ledger line."""

    seq: int
    transaction_id: str
    kind: TransactionKind
    account_id: str
    currency: str
    amount: int
    balance_after: int
    intent_id: str | None
    created_at: int
    prev_hash: str
    hash: str

    def canonical(self) -> bytes:
        return canonical_encoding(self)


class LedgerBug(AssertionError):
    """An invariant that correct callers never break; raised instead of writing a wrong ledger."""


class InsufficientFunds(Exception):
    def __init__(self, account: Account, needed: int) -> None:
        super().__init__(
            f"account {account.id} has {account.balance} {account.currency} minor units, needs {needed}"
        )
        self.account = account
        self.needed = needed


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise LedgerBug(message)


def canonical_encoding(entry: Entry) -> bytes:
    """Sorted-key compact JSON of every field but the hash; the input of the hash chain."""
    fields = {
        "seq": entry.seq,
        "transaction_id": entry.transaction_id,
        "kind": str(entry.kind),
        "account_id": entry.account_id,
        "currency": entry.currency,
        "amount": entry.amount,
        "balance_after": entry.balance_after,
        "intent_id": entry.intent_id,
        "created_at": entry.created_at,
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(entry: Entry) -> str:
    return hashlib.sha256(entry.canonical()).hexdigest()


def post(
    *,
    transaction_id: str,
    kind: TransactionKind,
    postings: Sequence[Posting],
    accounts: Mapping[str, Account],
    last: Entry | None,
    created_at: int,
    intent_id: str | None = None,
) -> tuple[list[Entry], list[Account]]:
    """Check a transaction against the rules and return its entries and the updated accounts.

    ``accounts`` must hold every account the postings touch, as currently stored; ``last`` is
    the ledger's latest entry (``None`` for an empty ledger), whose hash the first entry chains to.
    Raises :class:`InsufficientFunds` when a non-funding account would go below zero.
    """
    _require(len(postings) >= 2, "a transaction needs at least two postings")
    ids = [p.account_id for p in postings]
    _require(len(set(ids)) == len(ids), "a transaction touches each account at most once")
    sums: dict[str, int] = defaultdict(int)
    updated: list[Account] = []
    for p in postings:
        _require(type(p.amount) is int and p.amount != 0, f"posting amount must be a non-zero int: {p!r}")
        _require(abs(p.amount) <= INT64_MAX, f"posting amount out of range: {p!r}")
        account = accounts.get(p.account_id)
        _require(account is not None, f"unknown account {p.account_id}")
        assert account is not None
        sums[account.currency] += p.amount
        balance = account.balance + p.amount
        if balance < 0 and not account.may_go_negative:
            raise InsufficientFunds(account, -p.amount)
        _require(abs(balance) <= INT64_MAX, f"balance of {account.id} would overflow int64")
        updated.append(replace(account, balance=balance))
    _require(all(total == 0 for total in sums.values()), f"postings must sum to zero per currency: {dict(sums)}")

    seq = last.seq if last else 0
    prev_hash = last.hash if last else GENESIS_HASH
    entries: list[Entry] = []
    for account in updated:
        amount = account.balance - accounts[account.id].balance
        seq += 1
        draft = Entry(
            seq, transaction_id, kind, account.id, account.currency, amount,
            account.balance, intent_id, created_at, prev_hash, "",
        )
        entry = replace(draft, hash=entry_hash(draft))
        entries.append(entry)
        prev_hash = entry.hash
    return entries, updated


@dataclass(slots=True)
class Audit:
    """The result of re-checking a ledger from scratch."""

    entries: int = 0
    transactions: int = 0
    accounts: int = 0
    totals: dict[str, int] = field(default_factory=dict)  # per currency; zero in a sound ledger
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(accounts: Iterable[Account], entries: Iterable[Entry], max_problems: int = 100) -> Audit:
    """Re-check the hash chain, every transaction's balance, and every account's balance.

    ``entries`` must come in ``seq`` order; it is consumed once, so a ledger of any size fits.
    """
    result = Audit()
    known = {a.id: a for a in accounts}
    result.accounts = len(known)
    running: dict[str, int] = defaultdict(int)
    prev_hash = GENESIS_HASH
    expected_seq = 1
    current_txn: str | None = None
    seen_txns: set[str] = set()
    txn_sums: dict[str, int] = defaultdict(int)

    def problem(text: str) -> None:
        if len(result.problems) < max_problems:
            result.problems.append(text)

    def close_transaction() -> None:
        unbalanced = {c: s for c, s in txn_sums.items() if s}
        if current_txn is not None and unbalanced:
            problem(f"transaction {current_txn} does not sum to zero: {unbalanced}")
        txn_sums.clear()

    for e in entries:
        result.entries += 1
        if e.seq != expected_seq:
            problem(f"entry seq {e.seq}: expected {expected_seq} (entry missing or reordered)")
        expected_seq = e.seq + 1
        if e.prev_hash != prev_hash:
            problem(f"entry {e.seq}: prev_hash does not match the previous entry's hash")
        if entry_hash(e) != e.hash:
            problem(f"entry {e.seq}: hash does not match its contents (entry altered)")
        prev_hash = e.hash
        if e.transaction_id != current_txn:
            close_transaction()
            if e.transaction_id in seen_txns:
                problem(f"entry {e.seq}: transaction {e.transaction_id} is split")
            current_txn = e.transaction_id
            seen_txns.add(e.transaction_id)
            result.transactions += 1
        txn_sums[e.currency] += e.amount
        account = known.get(e.account_id)
        if account is None:
            problem(f"entry {e.seq}: unknown account {e.account_id}")
            continue
        if e.currency != account.currency:
            problem(f"entry {e.seq}: currency {e.currency} but account {account.id} is {account.currency}")
        running[e.account_id] += e.amount
        if running[e.account_id] != e.balance_after:
            problem(f"entry {e.seq}: balance_after {e.balance_after}, recomputed {running[e.account_id]}")
        if running[e.account_id] < 0 and not account.may_go_negative:
            problem(f"entry {e.seq}: account {account.id} ({account.kind}) overdrawn")
    close_transaction()

    totals: dict[str, int] = defaultdict(int)
    for account in known.values():
        recomputed = running.get(account.id, 0)
        totals[account.currency] += account.balance
        if recomputed != account.balance:
            problem(f"account {account.id}: stored balance {account.balance}, recomputed from entries {recomputed}")
    result.totals = dict(totals)
    for currency, total in totals.items():
        if total:
            problem(f"{currency}: balances sum to {total}, not zero (money created or destroyed)")
    return result
