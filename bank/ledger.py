"""The ledger's rules, in one place, over plain records (sans-I/O).

Storage calls :func:`post` to turn a proposed transaction into hash-chained entries and new
balances, and :func:`audit` to re-check a whole ledger. The rules:

* double entry: a transaction's postings sum to zero in every currency;
* money enters only through a funding account, the one kind allowed below zero;
* no other account is overdrawn (:class:`InsufficientFunds` is a business outcome, not a bug);
* entries are immutable and each carries ``sha256`` of its canonical encoding, which includes
  the previous entry's hash, so changing or dropping any entry breaks every later hash;
* each entry records the account's balance after it, so balances are recomputable and checkable;
* a collectible item is a unit of its own (its serial) in the same chain: issuing moves it from
  its edition's mint (the one account that may hold -1 of an item) to a holder, a gift moves it
  between holders, never in parts; so every item has exactly one holder at every entry;
* escrow is a two-phase pending transfer: the hold moves money from the payer into the bank's
  escrow account for the currency (spendable by nobody), then exactly one post (to the payee)
  or void (back to the payer) takes it out again, so pending money is counted in the totals.

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

import msgspec

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
    ESCROW = "escrow"  # money held for pending transfers, per currency
    MINT = "mint"  # one per collectible edition: where its items come from (unit XXX, no money)

    @property
    def internal(self) -> bool:
        return self in (AccountKind.FUNDING, AccountKind.FX, AccountKind.FEES, AccountKind.ESCROW, AccountKind.MINT)


class TransactionKind(StrEnum):
    GRANT = "grant"  # funding -> account (welcome balance, FX float, admin top-up)
    PAYMENT = "payment"  # visitor -> merchant, possibly through FX
    ESCROW_HOLD = "escrow_hold"  # payer -> escrow: phase one of a pending transfer
    ESCROW_POST = "escrow_post"  # escrow -> payee (through FX at the locked rate)
    ESCROW_VOID = "escrow_void"  # escrow -> payer: canceled or expired
    ISSUE = "issue"  # an edition's mint -> the first holder of an item
    GIFT = "gift"  # holder -> holder of an item

    @property
    def moves_items(self) -> bool:
        return self in (TransactionKind.ISSUE, TransactionKind.GIFT)


class KycLevel(StrEnum):
    BASIC = "basic"  # on opening
    VERIFIED = "verified"  # after the mock real-name check (bank.kyc)


#: The ISO 4217 code for "no currency": the unit of accounts that hold only items.
NO_CURRENCY = "XXX"


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    kind: AccountKind
    currency: str
    display_name: str
    balance: int
    created_at: int
    reference: str | None = None  # the platform's own id for a merchant, unique
    kyc: KycLevel = KycLevel.BASIC

    @property
    def may_go_negative(self) -> bool:
        return self.kind is AccountKind.FUNDING


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a proposed transaction: money in the account's currency, or one item (``unit``)."""

    account_id: str
    amount: int  # positive credits the account, negative debits it; an item moves by exactly 1
    unit: str | None = None  # an item's serial; None for money


@dataclass(frozen=True, slots=True)
class Remittance:
    """ISO 20022 style identifiers recorded on every entry of a transaction (pacs.008's names)."""

    uetr: str  # unique end-to-end transaction reference: a UUIDv4, made by the bank
    end_to_end_id: str  # the originator's own reference (e.g. the purchase order)


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
    ref: str | None = None  # the pending transfer or the edition this entry belongs to
    uetr: str | None = None
    end_to_end_id: str | None = None

    def canonical(self) -> bytes:
        return canonical_encoding(self)


class LedgerBug(AssertionError):
    """An invariant that correct callers never break; raised instead of writing a wrong ledger."""


class NotHolder(Exception):
    """The account does not hold the item it would give (a business outcome)."""

    def __init__(self, account_id: str, unit: str) -> None:
        super().__init__(f"account {account_id} does not hold item {unit}")
        self.account_id = account_id
        self.unit = unit


class InsufficientFunds(Exception):
    def __init__(self, account: Account, needed: int) -> None:
        super().__init__(
            f"account {account.id} has {account.balance} {account.currency} minor units, needs {needed}"
        )
        self.account = account
        self.needed = needed


def canonical_encoding(entry: Entry) -> bytes:
    """Sorted-key compact JSON of every field but the hash; the input of the hash chain."""
    return _canonical(entry.seq, entry.transaction_id, entry.kind, entry.account_id, entry.currency, entry.amount,
                      entry.balance_after, entry.intent_id, entry.created_at, entry.prev_hash, entry.ref, entry.uetr,
                      entry.end_to_end_id)


_sorted_json = msgspec.json.Encoder(order="sorted").encode


def _canonical(seq: int, transaction_id: str, kind: str, account_id: str, currency: str, amount: int,
               balance_after: int, intent_id: str | None, created_at: int, prev_hash: str, ref: str | None,
               uetr: str | None, end_to_end_id: str | None) -> bytes:
    fields = {
        "seq": seq,
        "transaction_id": transaction_id,
        "kind": str(kind),
        "account_id": account_id,
        "currency": currency,
        "amount": amount,
        "balance_after": balance_after,
        "intent_id": intent_id,
        "created_at": created_at,
        "prev_hash": prev_hash,
    }
    if ref is not None:  # the optional fields are absent when unset: older entries hash as they did
        fields["ref"] = ref
    if uetr is not None:
        fields["uetr"] = uetr
    if end_to_end_id is not None:
        fields["end_to_end_id"] = end_to_end_id
    # msgspec writes the same bytes as json.dumps(sort_keys, compact, ensure_ascii) when nothing needs
    # escaping (printable ASCII only), at a tenth of the cost; anything else takes json's own escaping
    try:
        fast = _sorted_json(fields)
    except (UnicodeEncodeError, msgspec.EncodeError):  # a lone surrogate: json escapes it
        fast = b"\\"
    if fast.isascii() and b"\\" not in fast and b"\x7f" not in fast:
        return fast
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
    holdings: Mapping[tuple[str, str], int] | None = None,
    ref: str | None = None,
    remittance: Remittance | None = None,
) -> tuple[list[Entry], list[Account]]:
    """Check a transaction against the rules and return its entries and the updated accounts.

    ``accounts`` must hold every account the postings touch, as currently stored; ``last`` is
    the ledger's latest entry (``None`` for an empty ledger), whose hash the first entry chains to.
    Item postings (``unit`` set) need ``holdings[(account_id, unit)]``, what the account holds of
    that item now (0 or 1; -1 for a mint that issued it); they change no money balance.
    Raises :class:`InsufficientFunds` when a non-funding account would go below zero, and
    :class:`NotHolder` when an account would give an item it does not hold.
    """
    # the messages are made only when a rule is broken: a posting's repr costs more than its checks
    if len(postings) < 2:
        raise LedgerBug("a transaction needs at least two postings")
    keys = [(p.account_id, p.unit) for p in postings]
    if len(set(keys)) != len(keys):
        raise LedgerBug("a transaction touches each account at most once per unit")
    moves_items = kind.moves_items
    if not (all(p.unit is not None for p in postings) == moves_items
            and all(p.unit is None for p in postings) != moves_items):
        raise LedgerBug(f"{kind} transactions move {'only items' if moves_items else 'only money'}")
    sums: dict[str, int] = defaultdict(int)
    updated: dict[str, Account] = {}
    lines: list[tuple[Posting, Account, str, int]] = []  # posting, account, unit, balance after
    for p in postings:
        if type(p.amount) is not int or p.amount == 0:
            raise LedgerBug(f"posting amount must be a non-zero int: {p!r}")
        if abs(p.amount) > INT64_MAX:
            raise LedgerBug(f"posting amount out of range: {p!r}")
        account = accounts.get(p.account_id)
        if account is None:
            raise LedgerBug(f"unknown account {p.account_id}")
        if p.unit is None:
            if account.kind is AccountKind.MINT:
                raise LedgerBug(f"mint {account.id} holds no money")
            sums[account.currency] += p.amount
            balance = account.balance + p.amount
            if balance < 0 and not account.may_go_negative:
                raise InsufficientFunds(account, -p.amount)
            if abs(balance) > INT64_MAX:
                raise LedgerBug(f"balance of {account.id} would overflow int64")
            updated[account.id] = replace(account, balance=balance)
            lines.append((p, account, account.currency, balance))
        else:
            if abs(p.amount) != 1:
                raise LedgerBug(f"an item moves whole, never in parts: {p!r}")
            held = (holdings or {}).get((account.id, p.unit), 0)
            after = held + p.amount
            floor = -1 if account.kind is AccountKind.MINT else 0
            if after < floor:
                raise NotHolder(account.id, p.unit)
            if after > (0 if account.kind is AccountKind.MINT else 1):
                raise LedgerBug(f"{account.id} would hold {p.unit} twice")
            sums[p.unit] += p.amount
            lines.append((p, account, p.unit, after))
    if any(total != 0 for total in sums.values()):
        raise LedgerBug(f"postings must sum to zero per currency or item: {dict(sums)}")

    seq = last.seq if last else 0
    prev_hash = last.hash if last else GENESIS_HASH
    uetr = remittance.uetr if remittance else None
    end_to_end_id = remittance.end_to_end_id if remittance else None
    entries: list[Entry] = []
    for p, account, unit, after in lines:
        seq += 1
        digest = hashlib.sha256(_canonical(seq, transaction_id, kind, account.id, unit, p.amount, after, intent_id,
                                           created_at, prev_hash, ref, uetr, end_to_end_id)).hexdigest()
        entries.append(Entry(seq, transaction_id, kind, account.id, unit, p.amount, after, intent_id, created_at,
                             prev_hash, digest, ref, uetr, end_to_end_id))
        prev_hash = digest
    return entries, list(updated.values())


@dataclass(slots=True)
class Audit:
    """The result of re-checking a ledger from scratch."""

    entries: int = 0
    transactions: int = 0
    accounts: int = 0
    totals: dict[str, int] = field(default_factory=dict)  # per currency; zero in a sound ledger
    holders: dict[str, str] = field(default_factory=dict)  # item serial -> the one account holding it
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
    running: dict[tuple[str, str], int] = defaultdict(int)  # (account, unit) -> balance or holding
    items: set[str] = set()
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
        key = (e.account_id, e.currency)
        running[key] += e.amount
        if running[key] != e.balance_after:
            problem(f"entry {e.seq}: balance_after {e.balance_after}, recomputed {running[key]}")
        if e.kind.moves_items:
            items.add(e.currency)
            floor, ceiling = (-1, 0) if account.kind is AccountKind.MINT else (0, 1)
            if abs(e.amount) != 1 or not floor <= running[key] <= ceiling:
                problem(f"entry {e.seq}: item {e.currency} moved by {e.amount}, {account.id} now holds {running[key]}")
            continue
        if e.currency != account.currency:
            problem(f"entry {e.seq}: currency {e.currency} but account {account.id} is {account.currency}")
        if running[key] < 0 and not account.may_go_negative:
            problem(f"entry {e.seq}: account {account.id} ({account.kind}) overdrawn")
    close_transaction()

    totals: dict[str, int] = defaultdict(int)
    for account in known.values():
        recomputed = running.get((account.id, account.currency), 0)
        totals[account.currency] += account.balance
        if recomputed != account.balance:
            problem(f"account {account.id}: stored balance {account.balance}, recomputed from entries {recomputed}")
    result.totals = dict(totals)
    for currency, total in totals.items():
        if total:
            problem(f"{currency}: balances sum to {total}, not zero (money created or destroyed)")
    held: dict[str, list[str]] = defaultdict(list)
    for (account_id, unit), amount in running.items():
        if unit in items and amount == 1:
            held[unit].append(account_id)
    for unit in sorted(items):
        if len(held[unit]) != 1:
            problem(f"item {unit} has {len(held[unit])} holders, not exactly one: {held[unit]}")
        else:
            result.holders[unit] = held[unit][0]
    return result
