"""What booth analytics cost the server, against the tick they ride on.

    python benchmarks/analytics.py [--avatars 1000] [--ticks 200]

* tick: ``Simulation.tick`` of the packaged expo with N joined avatars walking, and within
  each of those ticks the time spent in the analytics recorder's ``observe`` (booth
  presence every tick, positions every second): the ratio is analytics' share of the tick,
  measured in the same ticks. Times are the thread's CPU time (``time.thread_time``): on
  a machine shared with other work, wall time mostly measures the scheduler.
* writer: one second's batch as the writer hands it to SQLite on the database thread (N
  position samples and the events of the second, one transaction with ``synchronous=FULL``),
  against the second it has to do it in.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import protocol as p
from server.analytics.events import Event, EventKind
from server.analytics.store import SQLiteEventLog
from server.clock import ManualClock
from server.config import ServerConfig
from server.simulation import Peer, Simulation
from world.loader import default_expo_path, load_expo


def build(avatars: int, seed: int) -> tuple[Simulation, ManualClock, list[Peer]]:
    clock = ManualClock(1_000_000.0, 1_000_000.0)
    sim = Simulation(load_expo(default_expo_path()), ServerConfig(max_clients=avatars), clock)
    rng = random.Random(seed)
    hall = sim.expo.halls[0]
    peers = []
    for i in range(avatars):
        peer = Peer()
        sim.open_peer(peer)
        sim.on_frame(peer, p.encode(p.Hello(p.PROTOCOL_VERSION, f"v{i}", 0, 0, None, None)))
        assert peer.session is not None, "joined"
        sim.avatars.pos[peer.session.slot] = (rng.uniform(2, hall.width - 2), rng.uniform(2, hall.depth - 2))
        peers.append(peer)
    return sim, clock, peers


def run(sim: Simulation, clock: ManualClock, peers: list[Peer], ticks: int, seed: int, walking: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    times = []
    walkers = int(len(peers) * walking)
    for t in range(ticks):
        for i, peer in enumerate(peers):
            if i < walkers and (i + t) % 20 == 0:  # each walker changes course once a second
                angle = rng.uniform(-np.pi, np.pi)
                sim.on_frame(peer, p.encode(p.Input(t + 1, float(np.cos(angle)), float(np.sin(angle)), angle, False, 20)))
            peer.outbox.clear()
        clock.advance(0.05)
        started = time.thread_time()
        sim.tick()
        times.append(time.thread_time() - started)
    return times


def world_arguments(doc: str) -> argparse.Namespace:
    """The command line of a benchmark on this world (also benchmarks/tick_phases.py)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--avatars", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--walking", type=float, default=1.0, help="share of the avatars walking; the rest stand")
    return parser.parse_args()


def main() -> None:
    args = world_arguments(__doc__ or "")
    sim, clock, peers = build(args.avatars, 1)
    run(sim, clock, peers, 40, 7)  # warm the kernels and the caches
    sim.activity.drain()
    observe = sim.activity.observe
    spent: list[float] = []

    def timed(slots: np.ndarray, pos: np.ndarray, halls: np.ndarray, moved: np.ndarray | None = None) -> None:
        started = time.thread_time()
        observe(slots, pos, halls, moved)
        spent.append(time.thread_time() - started)

    sim.activity.observe = timed  # type: ignore[method-assign]
    for peer in peers[int(len(peers) * args.walking):]:  # the standers stop
        assert peer.session is not None
        sim.on_frame(peer, p.encode(p.Input(10_000, 0.0, 0.0, 0.0, False, 1)))
    ticks = run(sim, clock, peers, args.ticks, 2, args.walking)
    events, batches, _ = sim.activity.drain()
    tick, share = statistics.median(ticks), statistics.median(spent)
    print(f"{args.avatars} avatars ({args.walking:.0%} walking), {args.ticks} ticks")
    print(f"tick median {tick * 1e3:.2f} ms, of which analytics (observe) median {share * 1e3:.2f} ms, "
          f"p99 {np.percentile(spent, 99) * 1e3:.2f} ms: ratio {share / tick:.3f}")
    print(f"recorded in {args.ticks * 0.05:.0f} s: {len(events)} events, {sum(map(len, batches))} position samples")

    with tempfile.TemporaryDirectory() as tmp:
        log = SQLiteEventLog(Path(tmp) / "events.sqlite3")
        hall_ids = sim.activity.hall_ids
        second = [Event(1.0 + i, EventKind.BOOTH_PASSED, f"v{i}", "b1", "h") for i in range(max(1, len(events) // max(1, args.ticks // 20)))]
        costs = []
        for batch in batches:
            started = time.thread_time()
            log.append(second, batch.rows(hall_ids))  # as the writer does: rows made, then stored
            costs.append(time.thread_time() - started)
        log.close()
    cost = statistics.median(costs)
    print(f"writer, one second's batch ({len(batches[0])} samples + {len(second)} events, synchronous=FULL): "
          f"median {cost * 1e3:.1f} ms, {cost:.4f} of the second it has (ratio)")


if __name__ == "__main__":
    main()
