"""Capacity of one server process on this machine: how many moving visitors one hall holds.

Starts ``expo-server`` on a free loopback port, then steps up the number of bots (all
wandering in the first hall) and for each step reports, over the steady part of the step
(after the ramp): the server's tick time percentiles (from its Prometheus histogram
``expo_tick_seconds``, buckets diffed between the start and the end of the window), the
tick rate it really held, the bots' delivery latency p99 and bytes per bot per second,
and the CPU the server and the bots used. A second case measures bytes per second per
bot with ~50 moving avatars in view (a crowd at the keynote stage).

Server and bots share this machine's cores, so the figures are for the pair, not for the
server alone; the CPU columns say who used what (both over the measured window, not the
ramp). The bots run as two processes (``--procs``) at nice 10 (``--bots-nice``) below this
run's: they are the load generator, and as the server's equals on two cores the step would
measure the scheduler's turns more than the server. A run niced so far that the bots'
level would pass 19 (``nice -n 19``: they would be the server's equals) puts the bots under
SCHED_IDLE instead, below every nice level; the first line says which. Their delivery
latency still counts, so bots starved of CPU fail the step. The targets are printed with
PASS/FAIL, not asserted. Results go to benchmarks/results/capacity.json.

The server's CPU per visitor-tick is printed beside its peer measured in the same run, the
loopback send floor (``send_floor``: the CPU of one ``send`` of a tick message to one of as
many sockets, which another process reads): on loopback the kernel does the receiving
end's TCP work inside the sender's call, so that much of every visitor-tick is the sockets'.
``--ab ARG`` compares two servers instead (A as configured, B with ARG), alternating.

    python benchmarks/capacity.py            # 100 .. 1250 bots
    python benchmarks/capacity.py --quick    # 100, 250 bots, shorter steps
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

TICK_RATE = 20
TARGET_TICK_P99_MS = 25.0
TARGET_DELIVERY_P99_MS = 100.0
TARGET_BOTS = 1000
TARGET_BYTES_PER_BOT = 7_600  # B/s with 50 moving avatars in view (protocol 2 measured 7,630)
TARGET_SERVER_CPU = 0.30  # cores at TARGET_BOTS
HELD_RATE = 0.97  # a step holds 20 Hz when at least this share of the ticks happened


@dataclass(frozen=True, slots=True)
class Step:
    bots: int
    joined: int
    tick_rate: float
    tick_p50_ms: float
    tick_p99_ms: float
    tick_max_bucket_ms: float
    delivery_p99_ms: float | None
    rtt_p99_ms: float | None
    bytes_in_per_bot: float | None
    server_cpu: float  # cores
    server_sys: float  # of which in the kernel (on loopback a send also runs the receiver's TCP work)
    bots_cpu: float  # cores, over the window as server_cpu
    errors: int
    holds: bool


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 30.0) -> str:
    """A server whose loop is saturated answers late; it is waited for, not given up on."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def start_server(port: int, max_clients: int, data_dir: Path, extra: Sequence[str] = ()) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(BIN / "expo-server"), "--port", str(port), "--max-clients", str(max_clients),
         # every bot comes from 127.0.0.1: the per-address cap is lifted to the visitor cap
         "--max-connections-per-address", str(max_clients + 100), "--max-connections", str(max_clients + 100),
         "--data-dir", str(data_dir), "--log-level", "warning", *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(data_dir / "server.log", "wb"),
    )
    deadline = time.monotonic() + 180  # a first start compiles the kernels: over 30 s on two busy cores
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"expo-server exited with {proc.returncode}; see {data_dir / 'server.log'}")
        try:
            http_get(f"http://127.0.0.1:{port}/healthz")
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("expo-server did not come up")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _stat(proc: Path) -> list[str]:
    """The fields of /proc/PID/stat after the command's name (field 3 on; psutil is not a
    dependency)."""
    return (proc / "stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system CPU of a process, and system CPU alone."""
    fields = _stat(Path(f"/proc/{pid}"))
    user, system = int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime (fields 14, 15)
    return user + system, system


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def group_cpu(pgid: int) -> float:
    """User + system CPU of the live processes of a process group (the swarm and its
    workers), so the bots' CPU can be read over a window, as the server's is."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(entry)
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:  # pgrp (field 5)
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


@dataclass(frozen=True, slots=True)
class Scrape:
    at: float
    tick: int
    cpu: float
    sys: float
    buckets: dict[float, float]  # upper bound -> cumulative count
    bots_cpu: float = 0.0  # of the process group given to scrape, read just after the server's


_BUCKET = re.compile(r'^expo_tick_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)


def scrape(port: int, pid: int, bots_pgid: int | None = None) -> Scrape:
    metrics = http_get(f"http://127.0.0.1:{port}/metrics")
    health = json.loads(http_get(f"http://127.0.0.1:{port}/healthz"))
    buckets = {float(le): float(n) for le, n in _BUCKET.findall(metrics)}
    bots = group_cpu(bots_pgid) if bots_pgid is not None else 0.0
    return Scrape(time.monotonic(), int(health["tick"]), *cpu_seconds(pid), buckets, bots)


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """The q-quantile of the observations between two scrapes of a cumulative histogram,
    interpolated linearly inside its bucket (as Prometheus' histogram_quantile does)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(cumulative - below, 1e-12)
        lower, below = bound, cumulative
    return bounds[-2]


def highest_bucket(before: dict[float, float], after: dict[float, float]) -> float:
    """The upper bound of the bucket holding the slowest tick of the window."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    return next((b for b, n in zip(bounds, counts, strict=True) if n >= counts[-1] > 0), float("nan"))


# --------------------------------------------------------------------------- the send floor

_READER = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
for _ in range(int(sys.argv[2])):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
sys.stdout.write("ready\\n"); sys.stdout.flush()
while True:
    for key, _ in sel.select(1.0):
        try:
            if not key.fileobj.recv(65536):
                sys.exit(0)
        except BlockingIOError:
            pass
"""


def send_floor(count: int, size: int = 380, ticks: int = 40) -> float:
    """The CPU one ``send`` of ``size`` bytes costs this process on loopback, in
    microseconds: ``count`` TCP sockets read by another process, each sent one message a
    tick at 20 Hz. The peer of the server's CPU per visitor-tick: on loopback the kernel
    runs the receiving end's TCP work inside the sender's call, so this much of each
    visitor-tick is the sockets', whatever the server does."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(count)
        reader = subprocess.Popen([sys.executable, "-c", _READER, str(listener.getsockname()[1]), str(count)],
                                  stdout=subprocess.PIPE)
        try:
            conns = [listener.accept()[0] for _ in range(count)]
            assert reader.stdout is not None and reader.stdout.readline() == b"ready\n"
            for conn in conns:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setblocking(False)
            message = b"x" * size
            spent = 0.0
            for _ in range(ticks):
                started = time.thread_time()
                for conn in conns:
                    with contextlib.suppress(BlockingIOError):
                        conn.send(message)
                spent += time.thread_time() - started
                time.sleep(1 / TICK_RATE)
            for conn in conns:
                conn.close()
            reader.wait(10)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
    return spent / (ticks * count) * 1e6


# --------------------------------------------------------------------------- a step


@dataclass(frozen=True, slots=True)
class Priorities:
    """The server runs at this run's nice level; the bots ``nice`` below it, or, where
    that would pass 19 and make them the server's equals, under SCHED_IDLE."""

    server_nice: int
    nice: int  # the increment given to ``nice -n``
    idle: bool

    @classmethod
    def for_bots(cls, bots_nice: int, base: int | None = None) -> Priorities:
        """``base``: the server's nice level, by default this process's (the server inherits it)."""
        base = os.getpriority(os.PRIO_PROCESS, 0) if base is None else base
        return cls(base, bots_nice, bots_nice > 0 and base + bots_nice > 19)

    def describe(self) -> str:
        level = min(19, self.server_nice + self.nice)
        if self.idle:
            return (f"server at nice {self.server_nice}, bots at nice {level} under SCHED_IDLE "
                    f"(nice {self.server_nice} + {self.nice} passes 19, where they would be the server's equals)")
        return f"server at nice {self.server_nice}, bots at nice {level}"


def _idle() -> None:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # inherited by the swarm's workers


def run_bots(url: str, count: int, duration: float, spawn_rate: float, warmup: float, mix: str, procs: int,
             out: Path, seed: int, nice: int = 0, idle: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [*(("nice", "-n", str(nice)) if nice else ()), str(BIN / "expo-bots"), "--server", url, "--count", str(count), "--duration", str(duration),
         "--spawn-rate", str(spawn_rate), "--warmup", str(warmup), "--mix", mix, "--procs", str(procs),
         "--seed", str(seed), "--name-prefix", f"cap{count}", "--json", str(out), "--quiet"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,  # its worker processes are killed with it (kill_bots), not orphaned
        preexec_fn=_idle if idle else None,  # noqa: PLW1509  # this process runs no threads
    )


def kill_bots(bots: subprocess.Popen) -> None:
    """The swarm and its worker processes: a worker left behind keeps the stderr pipe open,
    and the step waited for it forever."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(bots.pid, signal.SIGKILL)


def step(port: int, server: subprocess.Popen, count: int, window: float, spawn_rate: float, procs: int,
         workdir: Path, priorities: Priorities, mix: str = "wander", seed: int = 1) -> tuple[Step, dict]:
    ramp = count / spawn_rate + 2.0
    duration = ramp + window + 1.0
    report_file = workdir / f"bots-{mix}-{count}.json"
    started = time.monotonic()
    bots = run_bots(f"ws://127.0.0.1:{port}/", count, duration, spawn_rate, ramp, mix, procs, report_file, seed,
                    priorities.nice, priorities.idle)
    try:
        time.sleep(ramp)
        first = scrape(port, server.pid, bots.pid)  # the swarm leads its own session: its pid is the group's
        time.sleep(max(0.0, started + ramp + window - time.monotonic()))
        last = scrape(port, server.pid, bots.pid)
        try:
            _, stderr = bots.communicate(timeout=duration + 60)
        except subprocess.TimeoutExpired:  # a swarm that cannot leave an overloaded server
            os.kill(bots.pid, signal.SIGUSR1)  # its tasks' stacks go to stderr, for the record
            time.sleep(1.0)
            kill_bots(bots)
            _, stderr = bots.communicate()
            (workdir / f"bots-{mix}-{count}.stuck.txt").write_bytes(stderr)
    finally:
        if bots.poll() is None:
            kill_bots(bots)
            bots.wait()
    if not report_file.exists():
        print(f"  {count} bots: expo-bots wrote no report (exit {bots.returncode}): {stderr.decode()[-300:]}", flush=True)
        report: dict[str, Any] = {"bots": {"joined": 0}, "error_total": -1,
                  "metrics": {k: {"p50": None, "p99": None, "mean": None} for k in ("delivery", "rtt", "bytes_in_per_bot", "snapshot_bytes")}}
    else:
        report = json.loads(report_file.read_text())
    elapsed = last.at - first.at
    m = report["metrics"]
    tick_rate = (last.tick - first.tick) / elapsed
    tick_p99 = histogram_quantile(0.99, first.buckets, last.buckets) * 1e3
    delivery_p99 = m["delivery"]["p99"]
    result = Step(
        bots=count,
        joined=report["bots"]["joined"],
        tick_rate=tick_rate,
        tick_p50_ms=histogram_quantile(0.50, first.buckets, last.buckets) * 1e3,
        tick_p99_ms=tick_p99,
        tick_max_bucket_ms=highest_bucket(first.buckets, last.buckets) * 1e3,
        delivery_p99_ms=delivery_p99,
        rtt_p99_ms=m["rtt"]["p99"],
        bytes_in_per_bot=m["bytes_in_per_bot"]["mean"],
        server_cpu=(last.cpu - first.cpu) / elapsed,
        server_sys=(last.sys - first.sys) / elapsed,
        bots_cpu=(last.bots_cpu - first.bots_cpu) / elapsed,
        errors=report["error_total"],
        holds=(report["bots"]["joined"] == count and tick_rate >= HELD_RATE * TICK_RATE
               and tick_p99 < TARGET_TICK_P99_MS and delivery_p99 is not None
               and delivery_p99 < TARGET_DELIVERY_P99_MS),
    )
    return result, report


# --------------------------------------------------------------------------- report


def us_per_visitor_tick(s: Step, cores: float | None = None) -> float:
    """The server's CPU time (or ``cores`` of it) per joined visitor per tick it really
    made, in microseconds (a server that fell behind made fewer than 20 a second)."""
    return (s.server_cpu if cores is None else cores) / max(1, s.joined) / max(s.tick_rate, 1e-9) * 1e6


def us_per_bot_tick(s: Step) -> float:
    """The bots' CPU per joined bot per tick the server made: what one bot costs the load
    generator (a snapshot to read each tick, an input now and then)."""
    return us_per_visitor_tick(s, s.bots_cpu)


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None or value != value else format(value, spec)


def table(steps: list[Step]) -> str:
    head = (f"{'bots':>6} {'joined':>6} {'tick Hz':>7} {'tick p50':>8} {'tick p99':>8} {'deliv p99':>9} "
            f"{'rtt p99':>8} {'B/s/bot':>8} {'srv CPU':>7} {'bots CPU':>8} {'errors':>6}  holds")
    head += f" {'srv us/vt':>9} {'of it sys':>9} {'bots us/bt':>10}"
    lines = [head, "-" * len(head)]
    for s in steps:
        lines.append(
            f"{s.bots:>6} {s.joined:>6} {fmt(s.tick_rate):>7} {fmt(s.tick_p50_ms, '.2f'):>8} {fmt(s.tick_p99_ms, '.2f'):>8} "
            f"{fmt(s.delivery_p99_ms):>9} {fmt(s.rtt_p99_ms):>8} {fmt(s.bytes_in_per_bot, '.0f'):>8} "
            f"{fmt(s.server_cpu, '.2f'):>7} {fmt(s.bots_cpu, '.2f'):>8} {s.errors:>6}  {'yes' if s.holds else 'NO ':<5}"
            f" {fmt(us_per_visitor_tick(s)):>9} {fmt(us_per_visitor_tick(s, s.server_sys)):>9} {fmt(us_per_bot_tick(s)):>10}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two small steps and a short crowd case")
    parser.add_argument("--steps", default=None, help="comma-separated bot counts (default 100,250,500,750,1000,1250)")
    parser.add_argument("--window", type=float, default=None, help="seconds measured per step after the ramp")
    parser.add_argument("--spawn-rate", type=float, default=100.0)
    parser.add_argument("--procs", type=int, default=2,
                        help=f"bot processes (this machine has {os.cpu_count()} cores); at nice 10 two take what the server leaves "
                        "on both cores, where one saturates a core of its own at 1,000 bots")
    parser.add_argument("--bots-nice", type=int, default=10,
                        help="the bots' nice level: they take the CPU the server leaves (0: the server's equals)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="pass ARG to expo-server (repeatable), e.g. --server-arg=--tick-rate=30")
    parser.add_argument("--keep-going", action="store_true", help="run every step even after one does not hold")
    parser.add_argument("--ab", metavar="ARG", action="append", default=None,
                        help="A/B instead of the targets: every step against two servers in turn, A as configured and B "
                        "with ARG too (repeatable), --rounds times; prints each side's runs and the B/A ratios of "
                        "their medians, e.g. --ab=--send-thread")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of an --ab comparison")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "capacity.json")
    args = parser.parse_args(argv)
    counts = [int(c) for c in (args.steps or ("100,250" if args.quick else "100,250,500,750,1000,1250")).split(",")]
    window = args.window or (5.0 if args.quick else 10.0)

    priorities = Priorities.for_bots(args.bots_nice)
    print(f"capacity: one server process, bots wandering in one hall, {TICK_RATE} Hz; "
          f"{os.cpu_count()} cores shared by the server and the bots ({args.procs} process(es)); "
          f"{priorities.describe()}", flush=True)
    if args.ab:
        return compare(args, counts, window, priorities)
    floor = send_floor(max(counts))
    print(f"loopback send floor: {floor:.1f} us of CPU per send of 380 bytes to one of {max(counts)} sockets "
          f"(so {floor * max(counts) * TICK_RATE / 1e6:.2f} of a core for one message a tick to each)", flush=True)
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="expo-capacity-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        server = start_server(port, max(counts) + 100, workdir, args.server_arg)
        try:
            for count in counts:
                result, _ = step(port, server, count, window, args.spawn_rate, args.procs, workdir, priorities)
                steps.append(result)
                print(table(steps).splitlines()[-1], flush=True)
                if not result.holds and not args.keep_going:
                    break
            crowd, crowd_report = step(port, server, 51, window, args.spawn_rate, 1, workdir, priorities, mix="crowd",
                                       seed=2)
        finally:
            stop_server(server)

    held = [s.bots for s in steps if s.holds]
    largest = max(held) if held else 0
    crowd_bytes = crowd.bytes_in_per_bot or float("nan")
    visible = crowd_report["metrics"]["snapshot_bytes"]
    print("\n" + table(steps))
    print(f"\nserver us per visitor-tick against the loopback send floor ({floor:.1f} us): "
          + ", ".join(f"{s.bots} bots {us_per_visitor_tick(s) / floor:.1f}x" for s in steps))
    print(f"\nlargest step holding {TICK_RATE} Hz with tick p99 < {TARGET_TICK_P99_MS:g} ms "
          f"and delivery p99 < {TARGET_DELIVERY_P99_MS:g} ms: {largest} bots")
    print(f"crowd of 51 moving bots (50 moving avatars in view): {crowd_bytes:.0f} B/s per bot "
          f"(snapshot p50 {fmt(visible['p50'], '.0f')} B), tick p99 {fmt(crowd.tick_p99_ms, '.2f')} ms")
    targets = [
        (f"{TARGET_BOTS} moving bots in one hall held at {TICK_RATE} Hz within the limits", largest >= TARGET_BOTS),
        (f"at most {TARGET_BYTES_PER_BOT / 1000:g} KB/s per bot with 50 moving avatars in view",
         crowd_bytes <= TARGET_BYTES_PER_BOT),
        # only where the step was served whole: a starved server uses little CPU by doing little
        (f"server CPU at most {TARGET_SERVER_CPU:g} of a core at {TARGET_BOTS} bots, all joined at {TICK_RATE} Hz",
         any(s.bots == TARGET_BOTS and s.joined == s.bots and s.tick_rate >= HELD_RATE * TICK_RATE
             and s.server_cpu <= TARGET_SERVER_CPU for s in steps)),
    ]
    for text, ok in targets:
        print(f"target: {text}: {'PASS' if ok else 'FAIL'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "window_seconds": window, "spawn_rate": args.spawn_rate, "bot_procs": args.procs, "bots_nice": args.bots_nice,
        "priorities": asdict(priorities),
        "send_floor_us": floor,
        "steps": [asdict(s) for s in steps],
        "largest_holding": largest,
        "crowd": asdict(crowd),
        "targets": [{"target": t, "pass": ok} for t, ok in targets],
    }, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


def run_side(args: argparse.Namespace, counts: list[int], window: float, extra: list[str],
             priorities: Priorities) -> list[Step]:
    """The steps against one fresh server with ``extra`` flags."""
    with tempfile.TemporaryDirectory(prefix="expo-capacity-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        server = start_server(port, max(counts) + 100, workdir, extra)
        try:
            return [step(port, server, count, window, args.spawn_rate, args.procs, workdir, priorities)[0]
                    for count in counts]
        finally:
            stop_server(server)


def median(values: list[float]) -> float:
    ordered = sorted(v for v in values if v is not None and v == v)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def compare(args: argparse.Namespace, counts: list[int], window: float, priorities: Priorities) -> int:
    """Same-run A/B: the sides alternate (A, B, A, B, ...), so that a machine whose load
    drifts weighs on both alike; the ratios of medians are the result, not either side's
    figures alone."""
    sides = {"A": list(args.server_arg), "B": [*args.server_arg, *args.ab]}
    runs: dict[str, list[Step]] = {"A": [], "B": []}
    for round_ in range(args.rounds):
        for name, extra in sides.items():
            steps = run_side(args, counts, window, extra, priorities)
            runs[name] += steps
            for s in steps:
                print(f"round {round_ + 1} {name}: {table([s]).splitlines()[-1]}", flush=True)
    print(f"\nA: expo-server {' '.join(sides['A']) or '(defaults)'}; B: expo-server {' '.join(sides['B'])}")
    for name in sides:
        print(f"\n{name}\n{table(runs[name])}")
    figures: list[tuple[str, Any]] = [
        ("tick p50", lambda s: s.tick_p50_ms), ("tick p99", lambda s: s.tick_p99_ms),
        ("deliv p99", lambda s: s.delivery_p99_ms), ("srv CPU", lambda s: s.server_cpu),
        ("srv us/vt", us_per_visitor_tick), ("holds", lambda s: float(s.holds)),
    ]
    print(f"\n{'bots':>6} " + " ".join(f"{label + ' B/A':>14}" for label, _ in figures))
    result = []
    for count in counts:
        a = [s for s in runs["A"] if s.bots == count]
        b = [s for s in runs["B"] if s.bots == count]
        ratios = {}
        for label, get in figures:
            ma, mb = median([get(s) for s in a]), median([get(s) for s in b])
            ratios[label] = {"A": ma, "B": mb, "ratio": mb / ma if ma else float("nan")}
        print(f"{count:>6} " + " ".join(f"{fmt(r['B'], '.2f')}/{fmt(r['A'], '.2f')}".rjust(14) for r in ratios.values()))
        result.append({"bots": count, **ratios})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = args.out.with_name(args.out.stem + "-ab.json")
    out.write_text(json.dumps({"a": sides["A"], "b": sides["B"], "rounds": args.rounds, "window_seconds": window,
                               "runs": {k: [asdict(s) for s in v] for k, v in runs.items()}, "medians": result},
                              indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
