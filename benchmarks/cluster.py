"""The cluster on this machine: what NATS and a second hall process cost and buy.

Starts a real nats-server (with its monitoring port) and PostgreSQL, then measures, each
against a peer measured in the same run:

1. **Admission**: one visitor's seat by compare-and-set on NATS KV, one at a time (p50/p99),
   against the same rule in memory (``Seats.grant``); and a burst of 500 joins from five
   processes at once at a cap of 100 (time to seat all, seats per second).
2. **Cross-process chat**: a staff announcement from hall process A heard by a visitor on
   process B (NATS relay) against one heard by a visitor on A itself (p50/p99).
3. **Capacity, one process against two**: the same number of wandering bots on one cluster
   process, then split over two; server CPU per visitor-tick, tick p99 and delivery p99 of
   each, and NATS messages per visitor per second while the two run.

Servers and bots share this machine's two cores, so the two-process case cannot show more
cores' worth of capacity: the ratio that matters is CPU per visitor-tick (what a machine of
its own would give each process), and the CPU columns say who used what.

4. **Portal hand-off**: two more hall processes, one per hall (``--halls``), on a copy of
   the expo whose portal is beside the spawn; client cores (as the bots and the desktop
   client use them) walk back and forth through the portals, each crossing a Transfer to
   the other process. Latency from the portal entered (the first snapshot showing the own
   avatar in the portal's circle, or the Transfer if it comes first) to the first snapshot
   in the new hall, on the client's clock (p50/p99); lost and doubled visitors counted from
   the seats in the directory and the processes' /healthz.
5. **kill -9**: half as many client cores cross into the second process's hall, it is
   killed, and each one's Welcome at the survivor is timed from the kill.

    python benchmarks/cluster.py            # 400 bots in the capacity part
    python benchmarks/cluster.py --quick    # 150 bots, shorter windows
Results go to benchmarks/results/cluster.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity import children_cpu, histogram_quantile, run_bots, scrape, stop_server  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

import protocol as p  # noqa: E402
from client import events as ev  # noqa: E402
from client.core import ClientCore  # noqa: E402
from client.transport import Transport  # noqa: E402
from server.cluster.local import (  # noqa: E402
    NEAR_PORTAL,
    NatsServer,
    PostgresServer,
    free_port,
    near_portals_world,
)
from server.cluster.node import ClusterNode  # noqa: E402
from server.cluster.seats import Seats  # noqa: E402
from server.devrun import _wait  # noqa: E402

BIN = Path(sys.executable).parent
STAFF_SECRET = secrets.token_urlsafe(24)
VISITOR_SECRET = secrets.token_urlsafe(24)  # a cluster's processes share it: a visitor is one visitor everywhere
BOOTH = "az-caspian-carpets"  # a booth of the spawn hall


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --------------------------------------------------------------------------- 1. admission


async def admission_latency(nats_url: str, joins: int) -> dict:
    node = await ClusterNode(nats_url, "ws://bench/", capacity=joins, process_id="bench-seq").start()
    try:
        await node.open_instance("bench-hall", joins)
        cas: list[float] = []
        for _ in range(joins):
            t0 = time.perf_counter()
            assert await node.admit("bench-hall", joins) is not None
            cas.append(time.perf_counter() - t0)
    finally:
        await node.stop()
    seats = Seats(joins)
    memory: list[float] = []
    for i in range(joins):
        t0 = time.perf_counter()
        seats, granted = seats.grant([f"t{i}"], expires_at=1e12, now=0.0)
        memory.append(time.perf_counter() - t0)
        assert granted
    return {"joins": joins, "nats_p50_ms": pct(cas, 0.5) * 1e3, "nats_p99_ms": pct(cas, 0.99) * 1e3,
            "memory_p50_us": pct(memory, 0.5) * 1e6, "memory_p99_us": pct(memory, 0.99) * 1e6}


def admission_burst(nats_url: str, procs: int = 5, each: int = 100, cap: int = 100) -> dict:
    start_at = time.time() + 4.0
    workers = [subprocess.Popen([sys.executable, __file__, "--admit-worker", nats_url, f"burst{i}", str(cap), str(each),
                                 str(start_at)], stdout=subprocess.PIPE, text=True) for i in range(procs)]
    results = [json.loads(w.communicate(timeout=120)[0]) for w in workers]
    per_instance: dict[str, int] = {}
    for r in results:
        for instance in r["instances"]:
            per_instance[instance] = per_instance.get(instance, 0) + 1
    slowest = max(r["took"] for r in results)
    return {"joins": procs * each, "processes": procs, "cap": cap, "seated": sum(per_instance.values()),
            "max_per_instance": max(per_instance.values()), "instances": len(per_instance),
            "slowest_process_s": slowest, "seats_per_s": sum(per_instance.values()) / slowest}


async def _admit_worker(nats_url: str, pid: str, cap: int, count: int, start_at: float) -> None:
    node = await ClusterNode(nats_url, f"ws://{pid}/", capacity=10_000, process_id=pid).start()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    t0 = time.perf_counter()
    seated = await asyncio.gather(*(node.admit("burst-hall", cap) for _ in range(count)))
    took = time.perf_counter() - t0
    print(json.dumps({"took": took, "instances": [a.instance.id for a in seated if a is not None]}), flush=True)
    await asyncio.sleep(2.0)  # stay in the directory until every worker has seated its share
    await node.stop()


# --------------------------------------------------------------------------- hall processes


def start_hall(port: int, nats_url: str, dsn: str, data: Path, max_clients: int, *extra: str) -> subprocess.Popen:
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(BIN / "expo-server"), "--port", str(port), "--cluster", nats_url, "--db", dsn, "--data-dir", str(data),
         "--max-clients", str(max_clients), "--max-connections", str(max_clients + 100),
         "--max-connections-per-address", str(max_clients + 100), "--log-level", "warning", "--no-watch", *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(data / "server.log", "wb"),
        env={**os.environ, "EXPO_STAFF_SECRET": STAFF_SECRET, "EXPO_VISITOR_SECRET": VISITOR_SECRET})
    return proc


# --------------------------------------------------------------------------- 2. chat


async def chat_latency(url_a: str, url_b: str, lines: int) -> dict:
    staff_pass = subprocess.run([str(BIN / "expo-server"), "--staff-pass", BOOTH], capture_output=True, text=True,
                                env={**os.environ, "EXPO_STAFF_SECRET": STAFF_SECRET}, check=True).stdout.strip()

    async def join(url: str, name: str, staff: str | None = None):
        ws = await connect(url, compression=None, max_size=None)
        await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0, staff_pass=staff)))
        assert isinstance(p.decode_server(await ws.recv(decode=False)), p.Welcome)
        return ws

    staff = await join(url_a, "BenchStaff", staff_pass)
    near = await join(url_a, "BenchNear")
    far = await join(url_b, "BenchFar")
    sent: dict[str, float] = {}
    heard: dict[str, dict[str, float]] = {"local": {}, "cross": {}}

    async def listen(ws, kind: str) -> None:
        while len(heard[kind]) < lines:
            message = p.decode_server(await ws.recv(decode=False))
            if isinstance(message, p.ChatLine) and message.text in sent:
                heard[kind][message.text] = time.perf_counter()

    async def drain(ws) -> None:  # a client that stops reading is dropped as stuck
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass

    listeners = [asyncio.create_task(listen(near, "local")), asyncio.create_task(listen(far, "cross"))]
    drainer = asyncio.create_task(drain(staff))
    for i in range(lines):
        text = f"bench line {i}"
        sent[text] = time.perf_counter()
        await staff.send(p.encode(p.Chat(p.Channel.ANNOUNCEMENT, text)))
        await asyncio.sleep(1.05)  # the chat rate limit: one line a second
    await asyncio.wait_for(asyncio.gather(*listeners), 30)
    drainer.cancel()
    for ws in (staff, near, far):
        await ws.send(p.encode(p.Bye()))
        await ws.close()
    out = {}
    for kind in ("local", "cross"):
        delays = [heard[kind][t] - sent[t] for t in sent]
        out[f"{kind}_p50_ms"], out[f"{kind}_p99_ms"] = pct(delays, 0.5) * 1e3, pct(delays, 0.99) * 1e3
    out["lines"] = lines
    return out


# --------------------------------------------------------------------------- 3. capacity


def nats_messages(monitor_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor_port}/varz", timeout=5) as r:
        varz = json.load(r)
    return float(varz["in_msgs"] + varz["out_msgs"])


def capacity(ports: list[int], procs: list[subprocess.Popen], bots: int, window: float, workdir: Path,
             monitor_port: int, label: str) -> dict:
    """``bots`` wandering bots split evenly over ``ports``; the window's figures per server."""
    spawn_rate = 50.0
    share = bots // len(ports)
    ramp = share / spawn_rate * len(ports) + 3.0
    duration = ramp + window + 1.0
    cpu_before = children_cpu()
    started = time.monotonic()
    swarms = [run_bots(f"ws://127.0.0.1:{port}/", share, duration, spawn_rate, ramp, "wander", 1,
                       workdir / f"{label}-{port}.json", seed=i + 1, nice=10) for i, port in enumerate(ports)]
    time.sleep(ramp)
    first = [scrape(port, proc.pid) for port, proc in zip(ports, procs)]
    msgs_first = nats_messages(monitor_port)
    time.sleep(window)
    last = [scrape(port, proc.pid) for port, proc in zip(ports, procs)]
    msgs_last = nats_messages(monitor_port)
    for swarm in swarms:
        try:
            swarm.communicate(timeout=duration + 60)
        except subprocess.TimeoutExpired:  # a swarm that cannot leave an overloaded machine: its report may be missing
            swarm.kill()
            swarm.communicate()
    bots_cpu = (children_cpu() - cpu_before) / (time.monotonic() - started)
    servers = []
    for port, a, b in zip(ports, first, last):
        report_file = workdir / f"{label}-{port}.json"
        if not report_file.exists():
            servers.append({"port": port, "joined": 0, "error": "expo-bots wrote no report (killed after its duration)"})
            continue
        report = json.loads(report_file.read_text())
        elapsed = b.at - a.at
        ticks = b.tick - a.tick
        joined = report["bots"]["joined"]
        cpu = (b.cpu - a.cpu) / elapsed
        servers.append({"port": port, "joined": joined, "tick_rate": ticks / elapsed,
                        "tick_p99_ms": histogram_quantile(0.99, a.buckets, b.buckets) * 1e3,
                        "delivery_p99_ms": report["metrics"]["delivery"]["p99"], "server_cpu": cpu,
                        "cpu_us_per_visitor_tick": cpu * 1e6 / max(1, joined) / max(1e-9, ticks / elapsed)})
    joined = sum(s["joined"] for s in servers)
    elapsed = last[0].at - first[0].at
    return {"bots": bots, "processes": len(ports), "servers": servers, "bots_cpu": bots_cpu,
            "nats_msgs_per_visitor_s": (msgs_last - msgs_first) / elapsed / max(1, joined)}


# --------------------------------------------------------------------------- main


# --------------------------------------------------------------------------- 4. hand-off

MARITIME_PORTAL = (4.0, 22.0)  # maritime -> silk-road, radius 2 (the test world keeps it)
PORTAL_RADIUS = 2.0


class Crosser:
    """One client core walking through the portals, timing each crossing."""

    def __init__(self, name: str, url: str) -> None:
        self.core = ClientCore(name, view=False, predict=False)
        self.transport = Transport(self.core, url, on_event=self._on_event)
        self.entered_at: float | None = None  # portal entered (client clock), this crossing
        self.awaiting_snapshot = False
        self.samples: list[float] = []
        self.errors: list[str] = []
        self.crossings = 0
        self.visitor_ids: set[str] = set()
        self.hall_changed = asyncio.Event()
        self.done = False  # crossed all it had to: closing is no error
        self.rng = random.Random(name)
        self.joined_at: list[float] = []  # every Welcome, perf_counter

    def _on_event(self, event: ev.Event) -> None:
        now = time.perf_counter()
        match event:
            case ev.SnapshotReceived():
                if self.awaiting_snapshot and self.entered_at is not None:
                    self.samples.append(now - self.entered_at)
                    self.awaiting_snapshot, self.entered_at = False, None
                    self.hall_changed.set()
                elif self.entered_at is None and self._in_portal():
                    self.entered_at = now
            case ev.Transferring() if not event.at_hello:
                self.entered_at = self.entered_at or now
            case ev.Joined():
                self.joined_at.append(now)
                self.visitor_ids.add(event.welcome.visitor_id)
                if event.transferred and self.entered_at is not None:
                    self.crossings += 1
                    self.awaiting_snapshot = True
            case ev.Refused() | ev.Disconnected() | ev.ProtocolViolation() if not self.done:
                self.errors.append(f"{type(event).__name__}: {event}")

    def _in_portal(self) -> bool:
        own = self.core.own
        if own is None:
            return False
        x, y = own.x / 100, own.y / 100
        px, py = NEAR_PORTAL if own.hall == 0 else MARITIME_PORTAL
        return (x - px) ** 2 + (y - py) ** 2 <= PORTAL_RADIUS ** 2

    async def cross(self, times: int, timeout: float = 20.0) -> None:
        for _ in range(times):
            await asyncio.sleep(1.6 + self.rng.uniform(0.0, 1.0))  # portals rest 1.5 s after an arrival; people
            # do not walk in step (crossings in lockstep queue behind each other at both processes)
            own = self.core.own
            assert own is not None
            hall = own.hall
            tx, ty = (NEAR_PORTAL[0], NEAR_PORTAL[1] - 0.5) if hall == 0 else (MARITIME_PORTAL[0] - 1, MARITIME_PORTAL[1])
            self.hall_changed.clear()
            deadline = time.monotonic() + timeout
            while not self.hall_changed.is_set():
                own = self.core.own
                if own is not None and self.core.joined:
                    dx, dy = tx - own.x / 100, ty - own.y / 100
                    d = max(1e-6, (dx * dx + dy * dy) ** 0.5)
                    self.transport.set_controls(dx / d, dy / d, 0.0, False)
                if time.monotonic() > deadline:
                    self.errors.append("crossing timed out")
                    return
                await asyncio.sleep(0.02)
            self.transport.set_controls()
        self.done = True


async def hand_off(url_a: str, walkers: int, crossings: int, nats_url: str) -> dict:
    crossers = [Crosser(f"crosser{i}", url_a) for i in range(walkers)]
    tasks = [asyncio.create_task(c.transport.run()) for c in crossers]
    try:
        await asyncio.gather(*(c.transport.wait_joined(60) for c in crossers))
        await asyncio.gather(*(c.cross(crossings) for c in crossers))
        await asyncio.sleep(2.0)  # a reconciliation round gives back the seats left
        seats = await held_seats(nats_url)
    finally:
        for c in crossers:
            await c.transport.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    samples = [s for c in crossers for s in c.samples]
    errors = [e for c in crossers for e in c.errors if "after the kill" not in e]
    if errors:
        print("   errors:", *sorted(set(errors))[:5], sep="\n     ")
    print("   slowest (ms):", [round(x * 1e3) for x in sorted(samples)[-8:]])
    return {"walkers": walkers, "crossings": sum(c.crossings for c in crossers), "samples": len(samples),
            "p50_ms": pct(samples, 0.5) * 1e3, "p99_ms": pct(samples, 0.99) * 1e3, "max_ms": max(samples) * 1e3,
            "errors": len(errors), "seats_held": seats,
            "one_identity_each": all(len(c.visitor_ids) == 1 for c in crossers), "load_average": os.getloadavg()[0]}


async def readmission(url_a: str, walkers: int, victim: subprocess.Popen) -> dict:
    """Client cores cross into the second process's hall, then that process is killed
    (SIGKILL): seconds from the kill to each one's Welcome at the survivor."""
    crossers = [Crosser(f"survivor{i}", url_a) for i in range(walkers)]
    tasks = [asyncio.create_task(c.transport.run()) for c in crossers]
    try:
        await asyncio.gather(*(c.transport.wait_joined(60) for c in crossers))
        await asyncio.gather(*(c.cross(1) for c in crossers))
        await asyncio.sleep(3.0)  # each has the Servers list of its new process
        victim.kill()
        killed = time.perf_counter()

        async def back(c: Crosser) -> float:
            deadline = killed + 30
            while not any(t > killed for t in c.joined_at) and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            return min(t for t in c.joined_at if t > killed) - killed
        took = await asyncio.gather(*(back(c) for c in crossers), return_exceptions=True)
    finally:
        for c in crossers:
            c.done = True
            await c.transport.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    ok = [t for t in took if isinstance(t, float)]
    return {"walkers": walkers, "readmitted": len(ok), "p50_s": pct(ok, 0.5) if ok else None,
            "max_s": max(ok) if ok else None, "same_visitor": all(len(c.visitor_ids) == 1 for c in crossers)}


async def held_seats(nats_url: str) -> int:
    probe = await ClusterNode(nats_url, "ws://probe/", 0, process_id="bench-probe", instances_per_hall=0).start()
    try:
        total = 0
        for hall in ("silk-road", "maritime"):
            for instance in (await probe.hall(hall)).instances:
                if instance.process in await probe.processes():
                    seats = await probe.seats(instance.id)
                    total += sum(seats.held.values()) if seats else 0
        return total
    finally:
        await probe.stop()


_fixed_ports: list[int] = []  # --first-port: the ports still to hand out, in order


def next_port() -> int:
    return _fixed_ports.pop(0) if _fixed_ports else free_port()


def handoff_part(nats_url: str, dsn: str, root: Path, quick: bool, procs: list[subprocess.Popen]) -> dict:
    walkers, crossings = (10, 6) if quick else (20, 10)
    print(f"4. portal hand-off: {walkers} client cores crossing {crossings} times each between a process "
          "serving the Silk Road hall and one serving the Maritime hall", flush=True)
    world = near_portals_world(root)
    ports = [next_port(), next_port()]
    for i, (port, hall) in enumerate(zip(ports, ("silk-road", "maritime"), strict=True)):
        procs.append(start_hall(port, nats_url, dsn, root / f"hand{i}", 200, "--world", str(world), "--halls", hall))
    for port, proc in zip(ports, procs[-2:], strict=True):
        _wait(f"http://127.0.0.1:{port}/healthz", proc, timeout=240)
    result = asyncio.run(hand_off(f"ws://127.0.0.1:{ports[0]}/", walkers, crossings, nats_url))
    result["servers"] = [json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5))["cluster"]
                         ["transfer_ms"] for port in ports]
    print(f"   at the processes (ms): {result['servers']}")
    print(f"5. kill -9 of the Maritime hall's process under {walkers // 2} client cores standing in it", flush=True)
    result["readmission"] = again = asyncio.run(readmission(f"ws://127.0.0.1:{ports[0]}/", walkers // 2, procs[-1]))
    print(f"   {again['readmitted']} of {again['walkers']} re-admitted at the other process: after p50 "
          f"{again['p50_s']:.2f} s, max {again['max_s']:.2f} s of the kill; the same visitor each: "
          f"{again['same_visitor']}", flush=True)
    print(f"   {result['crossings']} crossings: portal entered -> first snapshot in the new hall "
          f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, max {result['max_ms']:.0f} ms; "
          f"{result['errors']} errors; seats held with everyone connected {result['seats_held']} "
          f"(walkers {walkers}); one visitor id each: {result['one_identity_each']}; "
          f"load average {result['load_average']:.1f} on {os.cpu_count()} cores", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bots", type=int, default=None)
    parser.add_argument("--handoff-only", action="store_true", help="only part 4, the portal hand-off")
    parser.add_argument("--first-port", type=int, default=0, metavar="PORT",
                        help="every port this run listens on from PORT up (20 at most; default: free ports)")
    parser.add_argument("--admit-worker", nargs=5, metavar=("NATS", "ID", "CAP", "N", "START_AT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.admit_worker:
        nats_url, pid, cap, n, start_at = args.admit_worker
        asyncio.run(_admit_worker(nats_url, pid, int(cap), int(n), float(start_at)))
        return 0
    bots = args.bots or (150 if args.quick else 400)
    window = 10.0 if args.quick else 20.0
    root = Path(tempfile.mkdtemp(prefix="expo-bench-cluster-"))
    root.chmod(0o755)  # the postgres user goes through it
    if args.first_port:
        _fixed_ports[:] = range(args.first_port, args.first_port + 20)
    monitor = next_port()
    nats = NatsServer(root / "nats", port=next_port(), monitor_port=monitor).start()
    pg = PostgresServer(root / "pg", port=next_port()).start()
    procs: list[subprocess.Popen] = []
    results: dict = {}
    try:
        if args.handoff_only:
            results["hand_off"] = handoff_part(nats.url, pg.dsn, root, args.quick, procs)
            return 0
        print("1. admission", flush=True)
        results["admission_latency"] = asyncio.run(admission_latency(nats.url, 200))
        results["admission_burst"] = admission_burst(nats.url)
        lat, burst = results["admission_latency"], results["admission_burst"]
        print(f"   one seat at a time: NATS CAS p50 {lat['nats_p50_ms']:.2f} ms, p99 {lat['nats_p99_ms']:.2f} ms; "
              f"in memory p50 {lat['memory_p50_us']:.1f} us (ratio {lat['nats_p50_ms'] * 1e3 / lat['memory_p50_us']:.0f}x)")
        print(f"   burst: {burst['joins']} joins from {burst['processes']} processes at cap {burst['cap']}: "
              f"{burst['seated']} seated in {burst['instances']} instances (at most {burst['max_per_instance']} each) "
              f"in {burst['slowest_process_s']:.2f} s ({burst['seats_per_s']:.0f} seats/s)", flush=True)

        ports = [next_port(), next_port()]
        procs = [start_hall(port, nats.url, pg.dsn, root / f"hall{i}", bots + 50) for i, port in enumerate(ports)]
        for port, proc in zip(ports, procs):
            _wait(f"http://127.0.0.1:{port}/healthz", proc, timeout=240)
        print("2. chat across processes", flush=True)
        url_a, url_b = (f"ws://127.0.0.1:{port}/" for port in ports)
        results["chat"] = chat = asyncio.run(chat_latency(url_a, url_b, 10 if args.quick else 30))
        print(f"   announcement heard on the same process p50 {chat['local_p50_ms']:.1f} ms p99 {chat['local_p99_ms']:.1f} ms; "
              f"on the other process p50 {chat['cross_p50_ms']:.1f} ms p99 {chat['cross_p99_ms']:.1f} ms", flush=True)

        print(f"3. capacity: {bots} wandering bots on one process, then split over two", flush=True)
        one = capacity(ports[:1], procs[:1], bots, window, root, monitor, "one")
        two = capacity(ports, procs, bots, window, root, monitor, "two")
        results["capacity"] = {"one": one, "two": two}
        for case in (one, two):
            for s in case["servers"]:
                if "error" in s:
                    print(f"   {case['processes']} process(es), :{s['port']}: {s['error']}")
                    continue
                print(f"   {case['processes']} process(es), :{s['port']}: {s['joined']} joined, {s['tick_rate']:.1f} Hz, "
                      f"tick p99 {s['tick_p99_ms']:.1f} ms, delivery p99 {s['delivery_p99_ms']} ms, "
                      f"server CPU {s['server_cpu']:.2f}, {s['cpu_us_per_visitor_tick']:.1f} us per visitor-tick")
            print(f"   bots CPU {case['bots_cpu']:.2f}; NATS {case['nats_msgs_per_visitor_s']:.3f} messages per visitor per s")
        if all("error" not in s for s in one["servers"] + two["servers"]):
            one_cost = one["servers"][0]["cpu_us_per_visitor_tick"]
            two_cost = statistics.mean(s["cpu_us_per_visitor_tick"] for s in two["servers"])
            total_one = one["servers"][0]["server_cpu"]
            total_two = sum(s["server_cpu"] for s in two["servers"])
            print(f"   ratio: CPU per visitor-tick two/one {two_cost / one_cost:.2f}; "
                  f"server CPU for the same bots two/one {total_two / total_one:.2f}")
        for proc in procs:
            stop_server(proc)
        procs.clear()
        results["hand_off"] = handoff_part(nats.url, pg.dsn, root, args.quick, procs)
        return 0
    finally:
        out = ROOT / "benchmarks" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "cluster.json").write_text(json.dumps(results, indent=2))
        for proc in procs:
            stop_server(proc)
        pg.stop()
        nats.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
