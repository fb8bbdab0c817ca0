"""Where a cluster process's extra CPU goes: one process, three ways, the same bots.

``cluster.py`` step 3 measured a cluster process (NATS + PostgreSQL) at about twice the
standalone server's CPU per visitor-tick. This takes the difference apart, each case
measured in the same run against the same number of wandering bots, one after the other,
``--rounds`` times round-robin (so a change in the machine's load falls on every case):

- ``sqlite``: ``expo-server`` alone (SQLite, no broker), as ``capacity.py`` runs it;
- ``pg``: the same with ``--db postgresql://...`` (commerce, people and analytics on
  PostgreSQL, no broker);
- ``cluster``: ``--cluster nats://... --db postgresql://...``, as ``cluster.py`` runs it.

CPU per visitor-tick is the server's utime + stime (/proc) over the window / (bots joined x
ticks). ``--py-spy SECONDS`` also records each case's process with py-spy (when it is in
the venv) for that long during its last window, into ``--out``/<case>.speedscope.json.

    python benchmarks/cluster_cost.py --bots 300 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity import kill_bots, run_bots, scrape, start_server, stop_server  # noqa: E402
from cluster import STAFF_SECRET, VISITOR_SECRET  # noqa: E402

from server.cluster.local import NatsServer, PostgresServer, free_port  # noqa: E402

BIN = Path(sys.executable).parent
CASES = ("sqlite", "pg", "cluster")


def start(case: str, port: int, data: Path, bots: int, nats_url: str, dsn: str) -> subprocess.Popen:
    data.mkdir(parents=True, exist_ok=True)
    extra = {"sqlite": [], "pg": ["--db", dsn], "cluster": ["--cluster", nats_url, "--db", dsn, "--no-watch"]}[case]
    os.environ.update(EXPO_STAFF_SECRET=STAFF_SECRET, EXPO_VISITOR_SECRET=VISITOR_SECRET)
    return start_server(port, bots + 50, data, extra)


def window(port: int, proc: subprocess.Popen, bots: int, seconds: float, workdir: Path, label: str,
           spy: float, out: Path, settle: float) -> dict:
    spawn_rate = 50.0
    ramp = bots / spawn_rate + 3.0 + settle
    report_file = workdir / f"{label}.json"
    swarm = run_bots(f"ws://127.0.0.1:{port}/", bots, ramp + seconds + 1.0, spawn_rate, ramp, "wander", 1,
                     report_file, seed=1, nice=10)
    time.sleep(ramp)
    first = scrape(port, proc.pid)
    spying = None
    if spy and (BIN / "py-spy").exists():
        spying = subprocess.Popen([str(BIN / "py-spy"), "record", "--pid", str(proc.pid), "--duration", str(int(spy)),
                                   "--rate", "200", "--format", "speedscope", "--output", str(out / f"{label}.speedscope.json"),
                                   "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    last = scrape(port, proc.pid)
    try:
        swarm.communicate(timeout=seconds + ramp + 60)
    except subprocess.TimeoutExpired:  # a swarm that cannot leave a saturated machine: its report may be missing
        kill_bots(swarm)
        swarm.communicate()
    if spying is not None:
        spying.wait(timeout=60)
    if not report_file.exists():
        return {"joined": 0, "tick_rate": 0.0, "server_cpu": 0.0, "sys_cpu": 0.0, "us_per_visitor_tick": float("nan")}
    joined = json.loads(report_file.read_text())["bots"]["joined"]
    elapsed = last.at - first.at
    ticks = last.tick - first.tick
    cpu = (last.cpu - first.cpu) / elapsed
    return {"joined": joined, "tick_rate": ticks / elapsed, "server_cpu": cpu, "sys_cpu": (last.sys - first.sys) / elapsed,
            "us_per_visitor_tick": cpu * 1e6 / max(1, joined) / max(1e-9, ticks / elapsed)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bots", type=int, default=300)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds between the last bot's join (spawn time + 3 s) and the window")
    parser.add_argument("--cases", default=",".join(CASES), help=f"a comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--py-spy", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the servers' data and logs (the path is printed)")
    parser.add_argument("--first-port", type=int, default=0, metavar="PORT",
                        help="NATS on PORT, PostgreSQL on PORT+1, the cases' servers from PORT+2 (default: free ports)")
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    if unknown := set(cases) - set(CASES):
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="expo-bench-cost-"))
    root.chmod(0o755)  # the postgres user goes through it
    first = args.first_port
    nats = NatsServer(root / "nats", port=first).start()
    pg = PostgresServer(root / "pg", port=first + 1 if first else 0).start()
    procs: dict[str, subprocess.Popen] = {}
    ports = {case: first + 2 + i if first else free_port() for i, case in enumerate(cases)}
    results: dict[str, list[dict]] = {case: [] for case in cases}
    try:
        for case in cases:
            procs[case] = start(case, ports[case], root / case, args.bots, nats.url, pg.dsn)
        for r in range(args.rounds):
            for case in cases:
                w = window(ports[case], procs[case], args.bots, args.window, root, f"{case}-{r}",
                           args.py_spy if r == args.rounds - 1 else 0.0, args.out, args.settle)
                results[case].append(w)
                print(f"round {r + 1} {case:>7}: {w['joined']} bots, {w['tick_rate']:.1f} ticks/s, server CPU "
                      f"{w['server_cpu']:.2f} (sys {w['sys_cpu']:.2f}), {w['us_per_visitor_tick']:.1f} us per visitor-tick",
                      flush=True)
        base = statistics.median(w["us_per_visitor_tick"] for w in results[cases[0]])
        for case in cases:
            cost = statistics.median(w["us_per_visitor_tick"] for w in results[case])
            print(f"{case:>7}: median {cost:.1f} us per visitor-tick, {cost / base:.2f}x {cases[0]}")
        (args.out / "cluster_cost.json").write_text(json.dumps({"bots": args.bots, "load_average": os.getloadavg(),
                                                                "cases": results}, indent=2))
    finally:
        for proc in procs.values():
            stop_server(proc)
        nats.stop()
        pg.stop()
        if args.keep:
            print(f"servers' data and logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
