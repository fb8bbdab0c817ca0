"""Re-check a whole bank from its records: the ledger rules, "each intent paid at most once",
"each escrow held once and ended (posted or voided) at most once, exactly once if it is final",
"escrowed money is exactly what is pending", and "each item's holder on record is its holder in
the chain".

Used by ``expo-bank verify`` and by the tests after every scenario.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from . import ledger
from .collectibles import Edition, Item
from .escrow import PendingStatus, PendingTransfer
from .intents import Intent, IntentStatus
from .ledger import Account, AccountKind, Entry, TransactionKind
from .storage import Storage

ESCROW_KINDS = (TransactionKind.ESCROW_HOLD, TransactionKind.ESCROW_POST, TransactionKind.ESCROW_VOID)


def check_payments(intents: Iterable[Intent], payments: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    """``payments`` maps intent id -> transaction id -> account id -> amount, for payment entries."""
    problems = []
    seen: set[str] = set()
    for intent in intents:
        seen.add(intent.id)
        txns = payments.get(intent.id, {})
        if intent.status is not IntentStatus.SUCCEEDED:
            if txns or intent.payment:
                problems.append(f"intent {intent.id} is {intent.status} but has a payment")
            continue
        p = intent.payment
        if p is None or list(txns) != [p.transaction_id]:
            problems.append(f"intent {intent.id} succeeded with payment transactions {list(txns)}, expected one")
            continue
        legs = txns[p.transaction_id]
        if legs.get(intent.merchant_account_id) != intent.amount:
            problems.append(f"intent {intent.id}: merchant credited {legs.get(intent.merchant_account_id)}, "
                            f"not {intent.amount}")
        if legs.get(p.payer_account_id) != -p.debit_amount:
            problems.append(f"intent {intent.id}: payer debited {legs.get(p.payer_account_id)}, not {-p.debit_amount}")
    for orphan in set(payments) - seen:
        problems.append(f"payment entries for unknown intent {orphan}")
    return problems


def check_escrows(pendings: Iterable[PendingTransfer], accounts: Iterable[Account],
                  txns: dict[str, dict[TransactionKind, set[str]]], uetrs: dict[str, set[str | None]]) -> list[str]:
    """``txns`` maps escrow id -> transaction kind -> transaction ids, from the chain."""
    problems = []
    held: dict[str, int] = defaultdict(int)
    seen = set()
    for p in pendings:
        seen.add(p.id)
        got = txns.get(p.id, {})
        if got.get(TransactionKind.ESCROW_HOLD) != {p.hold_transaction_id}:
            problems.append(f"escrow {p.id}: hold transactions {got.get(TransactionKind.ESCROW_HOLD)}, "
                            f"expected {p.hold_transaction_id}")
        posts, voids = got.get(TransactionKind.ESCROW_POST, set()), got.get(TransactionKind.ESCROW_VOID, set())
        expected = {PendingStatus.PENDING: (set(), set()),
                    PendingStatus.POSTED: ({p.final_transaction_id}, set()),
                    PendingStatus.VOIDED: (set(), {p.final_transaction_id})}[p.status]
        if (posts, voids) != expected:
            problems.append(f"escrow {p.id} is {p.status} with posts {posts} and voids {voids}: "
                            "a pending transfer ends exactly once")
        if uetrs.get(p.id, {p.uetr}) != {p.uetr}:
            problems.append(f"escrow {p.id}: entries carry UETRs {uetrs[p.id]}, not {p.uetr}")
        if p.status is PendingStatus.PENDING:
            held[p.debit_currency] += p.debit_amount
    for orphan in set(txns) - seen:
        problems.append(f"escrow entries for unknown escrow {orphan}")
    for a in accounts:
        if a.kind is AccountKind.ESCROW and a.balance != held.get(a.currency, 0):
            problems.append(f"{a.id} holds {a.balance}, but pending escrows in {a.currency} add up to "
                            f"{held.get(a.currency, 0)}")
    return problems


def check_items(items: Iterable[Item], editions: Iterable[Edition], holders: dict[str, str]) -> list[str]:
    problems = []
    issued: dict[str, int] = defaultdict(int)
    on_record = set()
    for item in items:
        on_record.add(item.serial)
        issued[item.edition_id] += 1
        if holders.get(item.serial) != item.holder_account_id:
            problems.append(f"item {item.serial}: held by {item.holder_account_id} on record, "
                            f"by {holders.get(item.serial)} in the chain")
    for edition in editions:
        if issued[edition.id] != edition.issued or edition.issued > edition.size:
            problems.append(f"edition {edition.id}: {edition.issued} issued on record, {issued[edition.id]} items, "
                            f"size {edition.size}")
    for serial in set(holders) - on_record:
        problems.append(f"item {serial} is in the chain but not on record")
    return problems


def audit(storage: Storage) -> ledger.Audit:
    """One consistent snapshot: chain, balances, conservation per currency, intents vs payments."""
    payments: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    escrows: dict[str, dict[TransactionKind, set[str]]] = defaultdict(lambda: defaultdict(set))
    uetrs: dict[str, set[str | None]] = defaultdict(set)

    def tee(entries: Iterable[Entry]) -> Iterator[Entry]:
        for e in entries:
            if e.kind is TransactionKind.PAYMENT:
                payments[e.intent_id or "?"][e.transaction_id][e.account_id] = e.amount
            elif e.kind in ESCROW_KINDS:
                escrows[e.ref or "?"][e.kind].add(e.transaction_id)
                uetrs[e.ref or "?"].add(e.uetr)
            yield e

    with storage.reading() as tx:
        accounts = list(tx.accounts())
        result = ledger.audit(accounts, tee(tx.entries()))
        result.problems += check_payments(tx.all_intents(), payments)
        result.problems += check_escrows(tx.all_pending(), accounts, escrows, uetrs)
        result.problems += check_items(tx.all_items(), tx.all_editions(), result.holders)
    return result
