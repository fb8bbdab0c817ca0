"""Re-check a whole bank from its records: the ledger rules plus "each intent paid at most once".

Used by ``expo-bank verify`` and by the tests after every scenario.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from . import ledger
from .intents import Intent, IntentStatus
from .ledger import Entry, TransactionKind
from .storage import Storage


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


def audit(storage: Storage) -> ledger.Audit:
    """One consistent snapshot: chain, balances, conservation per currency, intents vs payments."""
    payments: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))

    def tee(entries: Iterable[Entry]) -> Iterator[Entry]:
        for e in entries:
            if e.kind is TransactionKind.PAYMENT:
                payments[e.intent_id or "?"][e.transaction_id][e.account_id] = e.amount
            yield e

    with storage.reading() as tx:
        result = ledger.audit(list(tx.accounts()), tee(tx.entries()))
        result.problems += check_payments(tx.all_intents(), payments)
    return result
