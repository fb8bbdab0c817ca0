"""What the analytics writer costs per second at N visitors, split by what it writes.

    python benchmarks/analytics_writer.py [--avatars 1000] [--seconds 30]

The packaged expo's simulation with N joined avatars walking (the real recorder), its
``ActivityWriter`` on a real ``DatabaseThread`` and a SQLite event log in a temporary
directory, flushed every 0.25 simulated seconds as the server does. Per simulated second:
the database thread's CPU (``time.thread_time`` inside each call) and the whole process's
CPU (``time.process_time``, the tick included). Then the same second's writes split: the
position samples alone, the events alone, an empty transaction (the commit and fsync); and
the samples' pages on disk (SQLite's ``dbstat``) per sample and per visitor-hour.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analytics import build, run  # the script's own folder

from server.analytics.store import SQLiteEventLog
from server.analytics.writer import ActivityWriter
from server.dbthread import DatabaseThread
from server.sqlite import transaction


class TimedThread:
    """The database thread, with each call's CPU time on it summed."""

    def __init__(self, db: DatabaseThread) -> None:
        self.db = db
        self.spent = 0.0

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        def timed() -> Any:
            started = time.thread_time()
            try:
                return fn(*args)
            finally:
                self.spent += time.thread_time() - started

        return await self.db.run(timed)


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.2f} ms (min {min(values) * 1e3:.2f}, max {max(values) * 1e3:.2f})"


async def measure(avatars: int, seconds: int) -> None:
    sim, clock, peers = build(avatars, 1)
    run(sim, clock, peers, 40, 7)  # warm the kernels
    sim.activity.drain()
    db = DatabaseThread("bench-db")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.sqlite3"
        log = SQLiteEventLog(path)
        timed = TimedThread(db)
        writer = ActivityWriter(sim.activity, log, timed, wall=clock.wall)  # type: ignore[arg-type]
        writer_cpu, process_cpu, events, samples = [], [], 0, 0
        kept: list[tuple[list, list]] = []
        for second in range(seconds):
            timed.spent = 0.0
            started = time.process_time()
            for _ in range(4):
                run(sim, clock, peers, 5, second)
                pending_events, pending_samples = list(sim.activity.events), list(sim.activity.samples)
                await writer.flush()
                kept.append((pending_events, pending_samples))
                events += len(pending_events)
                samples += sum(len(b.pos) for b in pending_samples)  # main's batches too
            process_cpu.append(time.process_time() - started)
            writer_cpu.append(timed.spent)
        stored = log.db.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'position%'").fetchone()[0]
        print(f"{avatars} avatars walking, {seconds} simulated s: {events / seconds:.0f} events/s, "
              f"{samples / seconds:.0f} position samples/s; the samples' tables and indexes "
              f"{stored / samples:.1f} bytes a sample, {stored / samples * 3600 / 1e3:.0f} kB per visitor-hour")
        print(f"per second: database thread {median_ms(writer_cpu)}, whole process {median_ms(process_cpu)}")

        hall_ids = sim.activity.hall_ids
        split: dict[str, list[float]] = {"samples alone": [], "events alone": [], "empty transaction": []}
        for second in range(0, len(kept) - 3, 4):
            quarter = kept[second:second + 4]
            for name in split:
                started = time.thread_time()
                for ev, batches in quarter:
                    if name == "samples alone":
                        writer._write([], batches, hall_ids)
                    elif name == "events alone":
                        writer._write(ev, [], hall_ids)
                    else:
                        with transaction(log.db):
                            pass
                split[name].append(time.thread_time() - started)
        for name, values in split.items():
            print(f"  {name}, 4 flushes: {median_ms(values)}")
        log.close()
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--avatars", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(measure(args.avatars, args.seconds))


if __name__ == "__main__":
    main()
