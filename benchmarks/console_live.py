"""What the console's live map costs the world server's event loop, against a tick.

The console reads the simulation on the server's own loop: each frame of its event stream
(every avatar's position, four a second per open console) and the once-a-second extras
(visitors per hall and booth, alerts) run between ticks. Printed as a share of the tick
they sit beside, measured in the same run with the same avatars.

    .venv/bin/python benchmarks/console_live.py --avatars 1000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import numpy as np

import protocol as p
from server.admin import Admin
from server.app import ExpoServer
from server.config import ServerConfig
from server.moderation import Moderation
from server.simulation import Peer
from world import default_expo_path, load_expo


def timed(fn, repeat: int) -> float:
    """Median seconds of ``fn`` over ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--avatars", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=60)
    args = ap.parse_args()

    expo = load_expo(default_expo_path())
    server = ExpoServer(expo, ServerConfig(port=0, max_clients=args.avatars + 8))
    sim = server.sim
    admin = Admin(server, Moderation(":memory:", time.time), time.time)
    rng = random.Random(1)
    for n in range(args.avatars):
        peer = Peer()
        sim.open_peer(peer)
        sim.on_frame(peer, p.encode(p.Hello(p.PROTOCOL_VERSION, f"visitor-{n}", 0x336699, 0)))
    live = np.flatnonzero(sim.avatars.active)
    for slot in live.tolist():
        hall = expo.halls[rng.randrange(len(expo.halls))]
        sim.avatars.hall[slot] = sim.hall_index[hall.id]
        sim.avatars.pos[slot] = (rng.uniform(1, hall.width - 1), rng.uniform(1, hall.depth - 1))

    def tick() -> None:
        sim.tick()
        for peer in sim.peers:
            peer.outbox.clear()

    def frame() -> None:
        json.dumps({"halls": admin.live().positions, "names": {}}, separators=(",", ":"))  # as the stream builds it

    def extras() -> None:
        admin.alerts(census=admin.census())

    tick()  # the kernels compile on first use
    t_tick = timed(tick, args.repeat)
    t_frame = timed(frame, args.repeat)
    t_extras = timed(extras, args.repeat)
    size = len(json.dumps({"halls": admin.live().positions}, separators=(",", ":")))
    per_second = 4 * t_frame + t_extras  # one open console
    print(f"{args.avatars} avatars, median of {args.repeat}")
    print(f"  tick                        {t_tick * 1e3:8.3f} ms")
    print(f"  live frame (admin.live+json) {t_frame * 1e3:8.3f} ms  = {t_frame / t_tick:5.2f} x a tick, {size / 1024:.1f} KiB")
    print(f"  counts and alerts           {t_extras * 1e3:8.3f} ms  = {t_extras / t_tick:5.2f} x a tick")
    print(f"  one console, per second     {per_second * 1e3:8.3f} ms  = {per_second / (20 * t_tick):5.3f} x the 20 ticks of that second")


if __name__ == "__main__":
    main()
