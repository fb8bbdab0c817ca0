"""The writer's account cache (sqlite_store.AccountCache): within one group-commit batch each
account row is read once and the changed balances are written at the commit, so these check
what that must not change: a request refused inside a batch leaves no trace in it, a failed
commit leaves nothing, every read inside the batch sees the batch's balances, and what reaches
the disk passes ``expo-bank verify``'s audit (each balance the sum of its entries). The first and
the last also run on PostgreSQL, whose writer keeps the same cache."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bank import kyc
from bank.audit import audit
from bank.errors import BankError
from bank.group_commit import BatchFailed
from bank.pg_store import PgStorage
from bank.service import Bank, Idem, Principal, Role, token_hash
from bank.sqlite_store import SQLiteStorage, Statements
from bank.storage import Storage

PLATFORM = Principal(Role.PLATFORM)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Storage]:
    """Opens a storage on one scratch database, each call with connections of its own."""
    if request.param == "sqlite":
        return lambda: SQLiteStorage(tmp_path / "bank.sqlite3")
    dsn = request.getfixturevalue("fresh_database")
    return lambda: PgStorage(dsn)


def _balances(database: Callable[[], Storage]) -> dict[str, int]:
    """Every account's balance as committed, read through connections of another storage."""
    other = database()
    try:
        with other.reading() as tx:
            return {a.id: a.balance for a in tx.accounts()}
    finally:
        other.close()


def _in_one_batch(storage: Storage, call: Callable[[], Any]) -> Any:
    """Run ``call`` as one round of the writer thread: its writing blocks are savepoints of one batch."""
    async def main() -> Any:
        return await storage.group.submit(call)
    return asyncio.run(main())


def _intent(bank: Bank, merchant: str, amount: int, currency: str = "MYR") -> str:
    return bank.create_intent(PLATFORM, merchant_account_id=merchant, amount=amount, currency=currency, metadata={},
                              expires_in_seconds=None, payer_account_id=None, idem=None).body["id"]


def _on_disk(path: Path) -> dict[str, int]:
    """Every account's balance as another connection reads it from the file."""
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT id, balance FROM accounts"))


def _visitor(bank: Bank, name: str) -> Principal:
    return Principal(Role.VISITOR, bank.open_account(name, "MYR", None).body["account"]["id"])


def test_a_refused_request_inside_a_batch_leaves_no_trace_in_it(database: Callable[[], Storage]) -> None:
    storage = database()
    bank = Bank(storage)
    merchant = bank.create_merchant(PLATFORM, "Penang Batik", "MYR", None, None).body["id"]
    payer = _visitor(bank, "Aigerim")
    assert payer.account_id is not None
    first, second = _intent(bank, merchant, 100), _intent(bank, merchant, 250)
    start = bank.get_account(payer)["balance"]
    seen: dict[str, Any] = {}
    opened: list[str] = []

    def batch() -> None:
        bank.confirm_intent(payer, first, None)
        with pytest.raises(ValueError):
            with storage.writing():  # a request that changed balances and opened an account, then failed
                bank.grant(payer.account_id, 7)  # type: ignore[arg-type]
                bank.confirm_intent(payer, second, None)
                opened.append(bank.open_account("Ghost", "MYR", None).body["account"]["id"])
                raise ValueError("refused after writing")
        with storage.writing() as tx:
            payer_row, merchant_row = tx.account(payer.account_id), tx.account(merchant)  # type: ignore[arg-type]
            assert payer_row is not None and merchant_row is not None
            seen.update(payer=payer_row.balance, merchant=merchant_row.balance, ghost=tx.account(opened[0]))
        bank.confirm_intent(payer, second, None)

    _in_one_batch(storage, batch)
    assert seen == {"payer": start - 100, "merchant": 100, "ghost": None}
    balances = _balances(database)
    assert balances[payer.account_id] == start - 350
    assert balances[merchant] == 350
    assert opened[0] not in balances
    report = audit(storage)
    assert report.ok, report.problems
    storage.close()


def test_a_failed_commit_leaves_nothing_and_the_next_batch_reads_the_disk(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bank.sqlite3"
    storage = SQLiteStorage(path)
    bank = Bank(storage)
    merchant = bank.create_merchant(PLATFORM, "Penang Batik", "MYR", None, None).body["id"]
    payer = _visitor(bank, "Aigerim")
    intent = _intent(bank, merchant, 100)
    before = _on_disk(path)
    commit = Statements.commit
    failures = [sqlite3.OperationalError("database or disk is full")]

    def failing_commit(self: Statements) -> None:
        if failures:  # the balances are written, then COMMIT fails: all of it must go
            self.accounts.flush(self._c)
            raise failures.pop()
        commit(self)

    monkeypatch.setattr(Statements, "commit", failing_commit)
    key = Idem(payer.scope, "pay-once", "fp")
    with pytest.raises(BatchFailed):
        _in_one_batch(storage, lambda: (bank.confirm_intent(payer, intent, key),
                                        bank.grant(payer.account_id, 5)))  # type: ignore[arg-type]
    assert _on_disk(path) == before
    assert bank.get_intent(PLATFORM, intent)["status"] == "created"
    # the retry with the same key pays once, from the balance on disk
    paid = _in_one_batch(storage, lambda: bank.confirm_intent(payer, intent, key))
    assert paid.status == 200 and not paid.replayed
    assert _on_disk(path)[payer.account_id] == before[payer.account_id] - 100  # type: ignore[index]
    report = audit(storage)
    assert report.ok, report.problems
    storage.close()


def test_reads_inside_a_batch_see_its_balances(tmp_path: Path) -> None:
    """By id, by token, by reference and in the list: the rows the batch changed are its own,
    not the disk's (whose balance is written only at the commit)."""
    storage = SQLiteStorage(tmp_path / "bank.sqlite3")
    bank = Bank(storage)
    merchant = bank.create_merchant(PLATFORM, "Penang Batik", "MYR", "booth-7", None).body["id"]
    opened = bank.open_account("Aigerim", "MYR", None).body
    payer, token = Principal(Role.VISITOR, opened["account"]["id"]), opened["token"]
    intent = _intent(bank, merchant, 100)
    start = opened["account"]["balance"]
    seen: dict[str, Any] = {}

    def batch() -> None:
        bank.confirm_intent(payer, intent, None)
        seen["by_reference"] = bank.create_merchant(PLATFORM, "Penang Batik", "MYR", "booth-7", None).body["balance"]
        with storage.writing() as tx:
            by_token = tx.account_by_token(token_hash(token))
            assert by_token is not None
            seen["by_token"] = by_token.balance
            seen["listed"] = {a.id: a.balance for a in tx.accounts()}
        seen["kyc"] = bank.submit_kyc(payer, _kyc(), None).body["kyc"]

    _in_one_batch(storage, batch)
    assert seen["by_reference"] == 100
    assert seen["by_token"] == start - 100
    assert seen["listed"][payer.account_id] == start - 100 and seen["listed"][merchant] == 100
    assert seen["kyc"] == "verified"
    assert bank.get_account(payer)["kyc"] == "verified"
    storage.close()


def _kyc() -> kyc.Submission:
    return kyc.Submission(legal_name="Aigerim Nurlanovna", date_of_birth="1990-04-02", country="KZ",
                          document_number="N12345678")


def test_balances_after_mixed_batches_are_the_sums_of_their_entries(database: Callable[[], Storage]) -> None:
    """Payments with and without FX, escrow holds, posts and voids, grants and refusals, many per
    batch: as committed every balance is the sum of its entries, the chain is whole, and each
    visitor paid exactly what was accepted."""
    storage = database()
    bank = Bank(storage)
    myr = bank.create_merchant(PLATFORM, "Penang Batik", "MYR", None, None).body["id"]
    kzt = bank.create_merchant(PLATFORM, "Almaty Felt", "KZT", None, None).body["id"]
    visitors = [_visitor(bank, f"v{n}") for n in range(6)]
    plans = [(v, _intent(bank, myr, 100), _intent(bank, kzt, 5000, "KZT"), _intent(bank, myr, 10**12))
             for v in visitors]
    refused: list[str] = []

    def batch() -> None:
        for n, (v, same, fx_paid, huge) in enumerate(plans):
            bank.confirm_intent(v, same, None)
            bank.confirm_intent(v, fx_paid, None)
            try:
                bank.confirm_intent(v, huge, None)
            except BankError as exc:
                refused.append(exc.code)
            held = bank.create_escrow(v, payee_account_id=kzt, amount=700, currency="KZT", end_to_end_id=f"PO-{n}",
                                      expires_in_seconds=None, fx_lock_id=None, metadata={}, idem=None).body
            if n % 2:
                bank.post_escrow(PLATFORM, held["id"], None)
            else:
                bank.void_escrow(PLATFORM, held["id"], None)
            bank.grant(v.account_id, 3)  # type: ignore[arg-type]

    batches = storage.group.batches
    _in_one_batch(storage, batch)
    assert refused == ["insufficient_funds"] * len(plans)
    assert storage.group.batches - batches == 1
    storage.close()
    reopened = database()  # what was committed, from new connections
    report = audit(reopened)
    assert report.ok, report.problems
    with reopened.reading() as tx:
        sums: dict[str, int] = {}
        for entry in tx.entries():
            sums[entry.account_id] = sums.get(entry.account_id, 0) + entry.amount
        for account in tx.accounts():
            assert account.balance == sums.get(account.id, 0), account.id
    reopened.close()
