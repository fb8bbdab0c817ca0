"""Where a tick's CPU goes, phase by phase, in-process (no sockets).

    python benchmarks/tick_phases.py [--avatars 1000] [--ticks 200] [--walking 1.0]

The world of ``benchmarks/analytics.py`` (the packaged expo, N joined avatars, each walker
changing course once a second with a 20-tick hold), ticked with a manual clock. Each phase
of ``Simulation.tick`` is timed with the thread's CPU time (``time.thread_time``: on a
shared machine wall time mostly measures the scheduler) by wrapping the instance's methods;
the figures are medians over the ticks, in milliseconds, with the means beside them (a
phase that runs every other tick, as the interest rule does, has a median that says little),
and the tick's microseconds per visitor (median, mean). Input handling (``on_frame`` for a
tick's Inputs, outside the tick in the server too) is timed apart.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from analytics import build, run, world_arguments  # the script's own folder

from server.simulation import Simulation


def _timed(spent: dict[str, dict[int, float]], sim: Simulation, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            times = spent[name]
            times[sim.tick_count] = times.get(sim.tick_count, 0.0) + time.thread_time() - started

    return wrapper


PHASES = ("tick", "expire", "move", "analytics", "interest", "snapshots", "diff", "encode", "inputs")


def instrument(sim: Simulation) -> dict[str, dict[int, float]]:
    """Wrap the phases of ``sim``'s tick: CPU seconds per phase by tick count (inputs count
    to the tick before them)."""
    spent: dict[str, dict[int, float]] = {name: {} for name in PHASES}
    owners = {"tick": sim, "expire": sim, "move": sim, "analytics": sim.activity, "interest": sim.interest,
              "snapshots": sim, "diff": sim.sent, "encode": sim.frames, "inputs": sim}
    methods = {"tick": "tick", "expire": "_expire", "move": "_move", "analytics": "observe", "interest": "visible_pairs",
               "snapshots": "_send_snapshots", "diff": "diff", "encode": "encode", "inputs": "on_frame"}
    for name in PHASES:
        owner, method = owners[name], methods[name]
        setattr(owner, method, _timed(spent, sim, name, getattr(owner, method)))
    return spent


def main() -> None:
    args = world_arguments(__doc__ or "")
    sim, clock, peers = build(args.avatars, 1)
    run(sim, clock, peers, 40, 7, args.walking)  # warm the kernels and the caches
    spent = instrument(sim)
    first = sim.tick_count + 1
    run(sim, clock, peers, args.ticks, 8, args.walking)
    sim.activity.drain()
    ticks = range(first, sim.tick_count + 1)
    print(f"{args.avatars} avatars, {int(args.avatars * args.walking)} walking, medians of {args.ticks} ticks (thread CPU time)")
    for name in PHASES:
        each = [spent[name].get(t, 0.0) for t in ticks]
        print(f"  {name:10s} {statistics.median(each) * 1e3:7.3f} ms (mean {statistics.fmean(each) * 1e3:7.3f})")
    tick = [spent["tick"][t] for t in ticks]
    print(f"  tick per visitor: {statistics.median(tick) / args.avatars * 1e6:.2f} us "
          f"(mean {statistics.fmean(tick) / args.avatars * 1e6:.2f})")


if __name__ == "__main__":
    main()
