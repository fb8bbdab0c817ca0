"""`expo-bank`: admin commands, and `verify` catching a tampered database."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bank.cli import main
from bank.service import Bank, Principal, Role
from bank.sqlite_store import SQLiteStorage


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def populated(tmp_path: Path, capsys) -> tuple[Path, str, str]:
    db = tmp_path / "cli.sqlite3"
    code, out, _ = run(capsys, "open-merchant", "--db", str(db), "--name", "Tashkent Tiles", "--currency", "UZS",
                       "--reference", "booth-3")
    assert code == 0
    merchant = json.loads(out)
    assert merchant["kind"] == "merchant" and merchant["currency"] == "UZS" and merchant["reference"] == "booth-3"
    code, out, _ = run(capsys, "open-account", "--db", str(db), "--name", "Aziz", "--currency", "UZS")
    visitor = json.loads(out)
    assert code == 0 and visitor["token"].startswith("ebt_")
    return db, merchant["id"], visitor["account"]["id"]


def test_help_and_usage_errors(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "serve" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["open-merchant", "--name", "x", "--currency", "XYZ"])
    assert exit_.value.code == 2


def test_admin_commands_and_verify(populated, capsys) -> None:
    db, merchant, visitor = populated
    code, out, _ = run(capsys, "open-merchant", "--db", str(db), "--name", "Again", "--currency", "UZS",
                       "--reference", "booth-3")
    assert code == 0 and json.loads(out)["id"] == merchant
    code, out, _ = run(capsys, "fund", "--db", str(db), "--account", merchant, "--amount", "5000")
    assert code == 0 and out.startswith("txn_")
    code, out, err = run(capsys, "fund", "--db", str(db), "--account", "acct_missing", "--amount", "5")
    assert code == 1 and "account_not_found" in err
    code, out, _ = run(capsys, "accounts", "--db", str(db))
    assert merchant in out and visitor in out and "bank:" not in out
    code, out, _ = run(capsys, "verify", "--db", str(db))
    assert code == 0 and "OK" in out
    code, out, _ = run(capsys, "verify", "--db", str(db), "--json")
    report = json.loads(out)
    assert report["ok"] and report["problems"] == [] and report["accounts"] == 4 * 24 + 2  # funding, FX, fees, escrow per currency


def tamper(db: Path, *sql: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER entries_no_update")
    conn.execute("DROP TRIGGER entries_no_delete")
    for statement in sql:
        conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize("sql, problem", [
    (["UPDATE entries SET amount = amount + 1 WHERE seq = (SELECT max(seq) FROM entries)"], "entry altered"),
    (["DELETE FROM entries WHERE seq = 3"], "missing or reordered"),
    (["UPDATE accounts SET balance = balance + 100 WHERE kind = 'visitor'"], "stored balance"),
    (["UPDATE payment_intents SET status = 'succeeded'"], "has a payment|succeeded with payment"),
])
def test_verify_reports_tampering(populated, capsys, sql, problem) -> None:
    db, merchant, visitor = populated
    storage = SQLiteStorage(db)
    bank = Bank(storage)
    bank.create_intent(Principal(Role.PLATFORM), merchant_account_id=merchant, amount=100, currency="UZS",
                       metadata={}, expires_in_seconds=None, payer_account_id=None, idem=None)
    storage.close()
    tamper(db, *sql)
    code, out, _ = run(capsys, "verify", "--db", str(db))
    assert code == 1 and "PROBLEMS" in out
    assert re.search(problem, out), out


def test_entries_cannot_be_changed_through_sqlite(populated) -> None:
    db, *_ = populated
    conn = sqlite3.connect(db)
    for sql in ("UPDATE entries SET amount = 0", "DELETE FROM entries"):
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute(sql)
    conn.close()


def test_verify_without_a_database(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "verify", "--db", str(tmp_path / "none.sqlite3"))
    assert code == 1 and "no database" in err


@pytest.mark.parametrize("how", [["bank/loadtest.py"], ["-m", "bank.loadtest"]])
def test_the_load_test_runs_as_a_file_and_as_a_module(how: list[str], tmp_path) -> None:
    script = [str(Path(__file__).resolve().parents[2] / how[0])] if how[0].endswith(".py") else how
    run = subprocess.run([sys.executable, *script, "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "confirm" in run.stdout or "--visitors" in run.stdout
