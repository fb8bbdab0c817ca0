"""The bank's throughput against the storage's own limit, measured in the same run.

Starts a real ``expo-bank serve`` on a scratch database and a free loopback port and measures
two operations end to end over HTTP, many clients at once:

* **confirmed payments**: a visitor confirms a payment intent (one durable commit each: the
  ledger entries, the balances, the intent, the idempotency record);
* **escrow cycles**: a buyer holds a deposit in escrow, the platform posts it (two durable
  commits: hold, then post, each with its entries, balances, escrow record and idempotency record).

The peer is a plain SQLite loop in this process on the same kind of file (WAL,
``synchronous=FULL``, ``BEGIN IMMEDIATE``) doing the same number of durable commits with the
same rows written per commit, and nothing else: no HTTP, no hashing, no checks. The ratio
bank / peer says how much of the machine's durable-commit rate the bank keeps (goal >= 0.5).
Latency percentiles are per HTTP call as the clients saw them. The load is ``bank.loadtest``'s (plain
keep-alive HTTP connections, so the clients' own CPU stays small). Results: benchmarks/results/bank.json.

    python benchmarks/bank.py                # 20 clients, 40 operations each
    python benchmarks/bank.py --quick        # 8 clients, 15 each

(``benchmarks/bank.py`` runs this module; the code lives here because a module named ``bank``
beside the ``bank`` package confuses the type checker.)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bank import loadtest

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results" / "bank.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_bank(db: Path, key: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bank", "serve", "--db", str(db), "--port", str(port), "--platform-key", key,
         "--log-level", "warning", "--open-limit", "100000/100000", "--open-limit-overall", "100000/100000"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):  # 30 s: at load 14 on two cores the bank once took more than 10 s to start
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the bank did not start")


def process_cpu(pid: int) -> Callable[[], float] | None:
    """The CPU seconds (user + system) process ``pid`` has used so far, from /proc (None elsewhere)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")

    def seconds() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime

    return seconds


def raw_sqlite(path: Path, commits: int, rows: tuple[int, int, int]) -> float:
    """Durable commits per second of a plain loop: each commit inserts ``rows[0]`` ledger-like rows,
    updates ``rows[1]`` balance rows and writes ``rows[2]`` other records, like one bank operation."""
    inserts, updates, others = rows
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.executescript(
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY, txn TEXT, account TEXT, amount INTEGER, hash TEXT UNIQUE);"
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER);"
        "CREATE TABLE records (id TEXT PRIMARY KEY, body BLOB);"
    )
    conn.executemany("INSERT INTO accounts VALUES (?, 0)", [(f"a{i}",) for i in range(updates)])
    t0 = time.perf_counter()
    for c in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO entries (txn, account, amount, hash) VALUES (?, ?, ?, ?)",
                         [(f"t{c}", f"a{i % max(updates, 1)}", 1, secrets.token_hex(32)) for i in range(inserts)])
        conn.executemany("UPDATE accounts SET balance = balance + 1 WHERE id = ?",
                         [(f"a{i}",) for i in range(updates)])
        conn.executemany("INSERT INTO records VALUES (?, ?)",
                         [(secrets.token_hex(12), os.urandom(300)) for _ in range(others)])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return commits / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--per-client", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="8 clients, 15 operations each")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.per_client = 8, 15
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="bank-bench-") as tmp:
        proc, url = start_bank(Path(tmp) / "bank.sqlite3", key)
        try:
            ours = loadtest.run_loop(loadtest.run(url, key, args.clients, args.per_client,
                                                  cpu_seconds=process_cpu(proc.pid)))
        finally:
            proc.terminate()
            proc.wait(20)
        n = args.clients * args.per_client
        # a same-currency payment: 2 entries, 2 balances, intent + idempotency record
        raw_commits = raw_sqlite(Path(tmp) / "raw-pay.sqlite3", n, (2, 2, 2))
        # an escrow cycle is two such commits (hold: 2 entries, 2 balances, escrow + idempotency; post: the same)
        raw_cycles = raw_sqlite(Path(tmp) / "raw-escrow.sqlite3", 2 * n, (2, 2, 2)) / 2
    result = {**ours, "raw_commits_per_s": raw_commits, "raw_escrow_cycles_per_s": raw_cycles,
              "payment_ratio": ours["payments_per_s"] / raw_commits,
              "escrow_ratio": ours["escrow_cycles_per_s"] / raw_cycles,
              "clients": args.clients, "per_client": args.per_client, "cpus": os.cpu_count(),
              "load_average": os.getloadavg()[0]}
    goal = 0.5
    print(f"bank on {os.cpu_count()} cores (load average {result['load_average']:.1f}), "
          f"{args.clients} clients x {args.per_client}")
    print(f"{'':22} {'bank /s':>9} {'raw SQLite /s':>14} {'ratio':>6}   latency p50 / p90 / p99 ms")
    c, h, p = ours["confirm"], ours["hold"], ours["post"]
    print(f"{'confirmed payments':22} {ours['payments_per_s']:9.1f} {raw_commits:14.1f} "
          f"{result['payment_ratio']:6.2f}   confirm {c['p50_ms']:.1f} / {c['p90_ms']:.1f} / {c['p99_ms']:.1f}"
          f"  {'PASS' if result['payment_ratio'] >= goal else 'FAIL'} (goal >= {goal})")
    print(f"{'escrow cycles':22} {ours['escrow_cycles_per_s']:9.1f} {raw_cycles:14.1f} "
          f"{result['escrow_ratio']:6.2f}   hold {h['p50_ms']:.1f} / {h['p90_ms']:.1f} / {h['p99_ms']:.1f}, "
          f"post {p['p50_ms']:.1f} / {p['p90_ms']:.1f} / {p['p99_ms']:.1f}"
          f"  {'PASS' if result['escrow_ratio'] >= goal else 'FAIL'} (goal >= {goal})")
    if "payment_cpu_ms" in ours:
        print(f"bank CPU per call: confirm {ours['payment_cpu_ms']:.2f} ms, "
              f"escrow hold/post {ours['escrow_cpu_ms_per_call']:.2f} ms")
    print(f"load generator CPU per call: confirm {ours['payment_client_cpu_ms']:.2f} ms, "
          f"escrow hold/post {ours['escrow_client_cpu_ms_per_call']:.2f} ms")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
