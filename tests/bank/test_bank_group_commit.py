"""Group commit on a real SQLite file: concurrent payments share commits, the chain stays whole,
a refused request inside a batch leaves the others alone, and a failed commit fails everyone in it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from bank.audit import audit
from bank.errors import BankError
from bank.group_commit import BatchFailed, GroupCommit, StorageClosed
from bank.service import Bank, Idem, Principal, Role
from bank.sqlite_store import SQLiteStorage, Statements

PLATFORM = Principal(Role.PLATFORM)


def _run_together(jobs: list) -> list[BaseException | None]:
    """Start every job at once (a barrier) on its own thread; what each raised, or None."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[BaseException | None] = [None] * len(jobs)

    def run(n: int) -> None:
        barrier.wait()
        try:
            jobs[n]()
        except BaseException as exc:  # noqa: BLE001 - recorded for the test to look at
            outcomes[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_payments_share_commits_and_keep_every_invariant(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "bank.sqlite3")
    bank = Bank(storage)
    merchant = bank.create_merchant(PLATFORM, "Penang Batik", "MYR", None, None).body["id"]
    visitors = [Principal(Role.VISITOR, bank.open_account(f"v{n}", "MYR", None).body["account"]["id"])
                for n in range(16)]
    # each visitor pays 5 small intents and one it cannot afford (refused inside somebody's batch)
    plans = []
    for v in visitors:
        small = [bank.create_intent(PLATFORM, merchant_account_id=merchant, amount=100, currency="MYR", metadata={},
                                    expires_in_seconds=None, payer_account_id=None, idem=None).body["id"]
                 for _ in range(5)]
        huge = bank.create_intent(PLATFORM, merchant_account_id=merchant, amount=10**12, currency="MYR", metadata={},
                                  expires_in_seconds=None, payer_account_id=None, idem=None).body["id"]
        plans.append((v, small[:3] + [huge] + small[3:]))
    start = {v.account_id: bank.get_account(v)["balance"] for v in visitors}
    before = storage.group.batches, storage.group.committed
    refused: list[str] = []

    def pay(v: Principal, ids: list[str]):
        def job() -> None:
            for intent_id in ids:
                try:
                    bank.confirm_intent(v, intent_id, Idem(v.scope, f"key-{intent_id}", "fp"))
                except BankError as exc:
                    refused.append(exc.code)
        return job

    assert _run_together([pay(v, ids) for v, ids in plans]) == [None] * len(plans)
    batches, requests = storage.group.batches - before[0], storage.group.committed - before[1]
    assert requests == 16 * 6  # the refused ones waited for their batch too
    assert batches < requests, "no two requests shared a commit"
    assert refused == ["insufficient_funds"] * 16
    storage.close()

    reopened = SQLiteStorage(tmp_path / "bank.sqlite3")  # what is on disk, from a new connection
    result = audit(reopened)
    assert result.ok, result.problems
    bank = Bank(reopened)
    for v in visitors:
        assert bank.get_account(v)["balance"] == start[v.account_id] - 5 * 100
    assert bank.get_account(PLATFORM, merchant)["balance"] == 16 * 5 * 100
    # a retry of an acknowledged payment replays it: its idempotency record committed with it
    intent_id = plans[0][1][0]
    replay = bank.confirm_intent(visitors[0], intent_id, Idem(visitors[0].scope, f"key-{intent_id}", "fp"))
    assert replay.replayed and replay.body["status"] == "succeeded"
    reopened.close()


class _FailingCommit(Statements):
    """SQLite's statements, except that the next commit fails (a full disk, say)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self.fail_next_commit = False

    def commit(self) -> None:
        if self.fail_next_commit:
            self.fail_next_commit = False
            raise sqlite3.OperationalError("database or disk is full")
        super().commit()


def _table(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "t.sqlite3", isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE rows (n INTEGER PRIMARY KEY)")
    return conn


def test_a_failed_request_rolls_back_alone(tmp_path: Path) -> None:
    conn = _table(tmp_path)
    group = GroupCommit(_FailingCommit(conn))
    with group.transaction():
        conn.execute("INSERT INTO rows VALUES (1)")
    with pytest.raises(ValueError):
        with group.transaction():
            conn.execute("INSERT INTO rows VALUES (2)")
            raise ValueError("refused")
    with group.transaction():
        conn.execute("INSERT INTO rows VALUES (3)")
    assert [r[0] for r in conn.execute("SELECT n FROM rows ORDER BY n")] == [1, 3]


def test_close_waits_for_a_writer_in_flight_and_refuses_later_ones(tmp_path: Path) -> None:
    """A background sweep still writing when the bank shuts down: close waits for it (closing
    the SQLite connection under it crashed the process: a segfault in `make test`), its row is
    committed, and a writer after close gets a clear error."""
    conn = _table(tmp_path)
    group = GroupCommit(Statements(conn))
    inside, outcome = threading.Event(), []

    def sweep() -> None:
        with group.transaction():
            inside.set()
            time.sleep(0.3)
            conn.execute("INSERT INTO rows VALUES (7)")
        outcome.append("committed")

    writer = threading.Thread(target=sweep)
    writer.start()
    inside.wait(5)
    group.close()
    assert outcome == ["committed"]  # close returned only after the writer's commit
    writer.join()
    with pytest.raises(StorageClosed):
        with group.transaction():
            conn.execute("INSERT INTO rows VALUES (8)")
    conn.close()
    assert [r[0] for r in sqlite3.connect(tmp_path / "t.sqlite3").execute("SELECT n FROM rows")] == [7]
    group.close()  # a second close is harmless


def test_a_failed_commit_fails_every_request_of_the_batch(tmp_path: Path) -> None:
    conn = _table(tmp_path)
    statements = _FailingCommit(conn)
    group = GroupCommit(statements)
    statements.fail_next_commit = True
    inside = threading.Event()
    release = threading.Event()

    def first() -> None:  # holds the connection until the others queue up behind it
        with group.transaction():
            conn.execute("INSERT INTO rows VALUES (0)")
            inside.set()
            release.wait(10)

    def later(n: int):
        def job() -> None:
            inside.wait(10)
            with group.transaction():
                conn.execute("INSERT INTO rows VALUES (?)", (n,))
        return job

    jobs = [first] + [later(n) for n in range(1, 6)]
    releaser = threading.Timer(0.5, release.set)
    releaser.start()
    outcomes = _run_together(jobs)
    releaser.join()
    assert all(isinstance(o, BatchFailed) for o in outcomes), outcomes
    assert conn.execute("SELECT count(*) FROM rows").fetchone()[0] == 0
    with group.transaction():  # the next batch works
        conn.execute("INSERT INTO rows VALUES (9)")
    assert conn.execute("SELECT n FROM rows").fetchall() == [(9,)]


def test_calls_submitted_from_the_event_loop_share_rounds_and_are_answered_once_durable(tmp_path: Path) -> None:
    conn = _table(tmp_path)
    group = GroupCommit(Statements(conn))
    on_disk = sqlite3.connect(tmp_path / "t.sqlite3")  # another connection sees committed rows only
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:  # a request of the routes owns the connection while the hot path's calls queue
        with group.transaction():
            conn.execute("INSERT INTO rows VALUES (0)")
            holding.set()
            release.wait(10)

    def insert(n: int):
        def call() -> int:
            with group.transaction():
                conn.execute("INSERT INTO rows VALUES (?)", (n,))
                if n == 7:
                    raise ValueError("refused")
            return n
        return call

    async def main() -> list[object]:
        futures = [group.submit(insert(n)) for n in range(1, 21)]
        await asyncio.sleep(0.2)
        assert not any(f.done() for f in futures)  # nobody answered while the batch is open
        release.set()
        answers: list[object] = []
        for f in futures:
            try:
                n = await f
            except ValueError as exc:
                answers.append(str(exc))
                continue
            assert on_disk.execute("SELECT 1 FROM rows WHERE n = ?", (n,)).fetchone() == (1,), n
            answers.append(n)
        return answers

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    answers = asyncio.run(main())
    holder.join()
    assert answers == [n if n != 7 else "refused" for n in range(1, 21)]
    assert [r[0] for r in on_disk.execute("SELECT n FROM rows ORDER BY n")] == [n for n in range(21) if n != 7]
    assert group.committed == 21 and group.batches <= 2  # one fsync or two for twenty-one requests
    group.close()
    on_disk.close()


def test_a_failed_commit_fails_every_submitted_call_of_its_round(tmp_path: Path) -> None:
    conn = _table(tmp_path)
    statements = _FailingCommit(conn)
    group = GroupCommit(statements)

    def insert(n: int):
        def call() -> int:
            with group.transaction():
                conn.execute("INSERT INTO rows VALUES (?)", (n,))
            return n
        return call

    async def main() -> tuple[list[BaseException | int], int]:
        statements.fail_next_commit = True
        failed = await asyncio.gather(*(group.submit(insert(n)) for n in range(1, 6)), return_exceptions=True)
        return failed, await group.submit(insert(9))  # the next round works

    failed, after = asyncio.run(main())
    # the first round may have taken only the first call: every call of a failed round fails, none else
    assert isinstance(failed[0], BatchFailed)
    assert all(isinstance(o, BatchFailed) or o == n for n, o in enumerate(failed, 1))
    committed = [o for o in failed if not isinstance(o, BaseException)] + [after]
    assert sorted(r[0] for r in conn.execute("SELECT n FROM rows")) == committed
    group.close()


def test_the_chain_tail_is_read_again_after_a_rollback_and_after_another_writer(tmp_path: Path) -> None:
    """The writer remembers the ledger's last entry within a batch (sqlite_store.Tail): a call that
    wrote entries and was then refused must not leave its rolled-back entry as the tail, and a
    batch after another process's writes (the CLI's ``fund`` beside a running bank) reads it again."""
    path = tmp_path / "bank.sqlite3"
    storage = SQLiteStorage(path)
    bank = Bank(storage)
    account = bank.open_account("Aigerim", "MYR", None).body["account"]
    start = account["balance"]

    def round_with_a_refusal() -> None:  # one call of a round: its writes are savepoints of one batch
        bank.grant(account["id"], 1)
        with pytest.raises(ValueError):
            with storage.writing():
                bank.grant(account["id"], 2)
                raise ValueError("refused after writing its entries")
        bank.grant(account["id"], 3)

    async def main() -> None:
        await storage.group.submit(round_with_a_refusal)
        other = SQLiteStorage(path)
        Bank(other).grant(account["id"], 5)
        other.close()
        await storage.group.submit(lambda: bank.grant(account["id"], 7))

    asyncio.run(main())
    report = audit(storage)
    assert report.ok, report.problems
    assert bank.get_account(Principal(Role.VISITOR, account["id"]))["balance"] == start + 1 + 3 + 5 + 7
    storage.close()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="lists the open files through /proc")
def test_a_savepoint_journals_its_pages_in_memory_and_still_undoes_them(tmp_path: Path) -> None:
    """Each request's savepoint journals every page it changes; past 64 KiB SQLite would spill that
    journal to a temporary file (``etilqs_*``, unlinked at once), a write per page per request."""
    storage = SQLiteStorage(tmp_path / "bank.sqlite3")
    rows = [(f"{n:05}-pad" * 8, n) for n in range(2000)]  # about a hundred pages of rows
    with storage.writing() as tx:
        tx._c.executemany("INSERT INTO tallies (name, value) VALUES (?, ?)", rows)
    open_files: list[str] = []

    class Refused(Exception):
        pass

    with pytest.raises(Refused):
        with storage.writing() as tx:
            tx._c.execute("UPDATE tallies SET value = value + 1")  # every page journalled: far past 64 KiB
            open_files = [str(p.readlink()) for p in Path("/proc/self/fd").iterdir() if p.is_symlink()]
            raise Refused
    with storage.reading() as tx:
        assert tx._c.execute("SELECT sum(value) FROM tallies").fetchone()[0] == sum(n for _, n in rows)
    storage.close()
    assert not [f for f in open_files if "etilqs" in f], open_files
