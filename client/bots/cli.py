"""`expo-bots`: a swarm of headless visitors over the real protocol, for load tests.

Bots join at ``--spawn-rate`` per second, each doing weighted behaviours (``--mix``) for
``--duration`` seconds, split over ``--procs`` processes with one event loop each. Progress
is printed every ``--progress`` seconds; at the end a table of latencies and sizes, counts
of messages and errors by kind, and purchases. ``--threshold`` (repeatable) sets the exit
code: 0 when every threshold holds, 1 when one is broken, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import queue as queue_module
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .behaviours import BEHAVIOURS, DEFAULT_MIX, parse_mix
from .stats import THRESHOLD_HELP, Recorder, Summary, Threshold, check, format_table, summarise
from .swarm import Progress, Swarm, SwarmConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="expo-bots", description=__doc__, epilog=THRESHOLD_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--server", default="ws://127.0.0.1:8765/", help="the expo server's WebSocket URL")
    parser.add_argument("--count", "-n", type=int, default=100, help="bots in all")
    parser.add_argument("--spawn-rate", type=float, default=50.0, help="bots started per second, in all")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds from the first bot to the end, ramp included")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds at the start whose latency and rate samples are not kept (counts are)")
    parser.add_argument("--procs", type=int, default=1, help="processes to spread the bots over (one event loop each)")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"behaviour weights; behaviours: {', '.join(BEHAVIOURS)}")
    parser.add_argument("--seed", type=int, default=1, help="makes a run reproducible (per-bot streams from seed and index)")
    parser.add_argument("--staff", action="append", default=[], metavar="BOOTH=PASS",
                        help="also run a staff bot for BOOTH with its staff pass (`expo-server --staff-pass BOOTH`; "
                        "repeatable): it ships the booth's purchase orders, so `deals` bots reach delivery")
    parser.add_argument("--name-prefix", default="bot", help="bots are called PREFIX-SEED-INDEX")
    parser.add_argument("--threshold", action="append", default=[], metavar="EXPR", help="e.g. 'rtt_p99<100' (see below)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the full report as JSON")
    parser.add_argument("--progress", type=float, default=2.0, help="seconds between progress lines (0: none)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--script", type=Path, metavar="FILE",
                        help="run the bots of a JSON script instead of a swarm (see client/bots/script.py); "
                        "--count, --mix and --duration are then unused")
    parser.add_argument("--tracks", type=Path, metavar="FILE",
                        help="with --script: write each bot's positions as the server reported them "
                        "(JSON: name -> [[server_time, hall, x, y], ...])")
    return parser


# --------------------------------------------------------------------------- processes


def _run_loop(coro) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it exists
        return asyncio.run(coro)
    return uvloop.run(coro)


def _end_with_parent() -> None:
    """A worker whose parent is gone (killed, even by SIGKILL) has nobody to report to: it
    ends too, at once, instead of keeping its bots connected to the server for good (a
    killed swarm's workers were found still walking twelve minutes later)."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        mp_connection.wait([parent.sentinel])
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker(number: int, config: SwarmConfig, queue: Any, go: Any, every: float) -> None:
    """One process's swarm; reports progress and then its recorder through ``queue``."""
    _end_with_parent()
    queue.put(("ready", number, None))
    go.wait()
    try:
        recorder = _run_loop(Swarm(config).run(lambda pr: queue.put(("progress", number, pr)), every))
    except BaseException as exc:  # the parent must hear of it rather than wait forever
        recorder = Recorder()
        recorder.error(f"worker_{type(exc).__name__}")
    queue.put(("result", number, recorder))


def run_swarms(configs: list[SwarmConfig], on_progress: Callable[[Progress], None], every: float) -> Recorder:
    """Run each config in a process of its own (in this one when there is one config)."""
    if len(configs) == 1:
        return _run_loop(Swarm(configs[0]).run(on_progress, every))
    ctx = mp.get_context("spawn")
    queue, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_worker, args=(i, c, queue, go, every), daemon=True) for i, c in enumerate(configs)]
    for proc in procs:
        proc.start()
    latest: dict[int, Progress] = {}
    merged = Recorder()
    ready = results = 0
    reported: set[int] = set()
    while results < len(procs):
        try:
            kind, number, payload = queue.get(timeout=1.0)
        except queue_module.Empty:
            # a worker killed outright (a signal, a crash) reports nothing: the parent waited
            # for it forever (capacity.py found swarms hung with a defunct worker)
            for i, proc in enumerate(procs):
                if i not in reported and proc.exitcode not in (None, 0):
                    reported.add(i)
                    merged.error(f"worker_died_{proc.exitcode}")
                    results += 1
            continue
        if kind == "ready":
            ready += 1
            if ready == len(procs):
                go.set()
        elif kind == "progress":
            latest[number] = payload
            on_progress(_sum_progress(latest.values()))
        elif number not in reported:
            reported.add(number)
            merged.merge(payload)
            results += 1
    for proc in procs:
        proc.join(10)
    return merged


def _sum_progress(parts) -> Progress:
    parts = list(parts)
    sums = {name: sum(getattr(p, name) for p in parts) for name in Progress.__dataclass_fields__ if name != "elapsed"}
    return Progress(max(p.elapsed for p in parts), **sums)


class ProgressPrinter:
    """A line every so often: bots, messages per second each way, errors, purchases."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out, self.total = out, total
        self.last: Progress | None = None

    def __call__(self, pr: Progress) -> None:
        last, self.last = self.last, pr
        dt = pr.elapsed - last.elapsed if last else pr.elapsed
        if last is not None and dt < 0.5:
            self.last = last  # several processes report at nearly the same time: wait for a fair interval
            return
        base = last or Progress(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

        def rate(a: float, b: float) -> float:
            return (a - b) / dt if dt > 0 else 0.0

        print(
            f"[{pr.elapsed:6.1f}s] bots {pr.connected}/{self.total} connected ({pr.spawned} started)"
            f" | in {rate(pr.frames_in, base.frames_in):7.0f} msg/s {rate(pr.bytes_in, base.bytes_in) / 1e3:8.1f} kB/s"
            f" | out {rate(pr.frames_out, base.frames_out):6.0f} msg/s"
            f" | errors {pr.errors} | purchases {pr.settled} ok {pr.failed} failed",
            file=self.out, flush=True,
        )


# --------------------------------------------------------------------------- report


def figures_of(recorder: Recorder, count: int) -> dict[str, float]:
    c = recorder.counts
    figures = {
        "errors": float(sum(recorder.errors().values())),
        "bots_joined": float(c["bots.joined"]),
        "bots_failed": float(max(0, count - c["bots.joined"])),
        "purchases_settled": float(c["purchases.settled"]),
        "purchases_failed": float(sum(v for k, v in c.items() if k.startswith("purchases.failed"))),
        "portal_crossings": float(c["portal.crossings"]),
        "portal_failed": float(c["error.portal_failed"]),
        "bots_unconnected": float(c["bots.unconnected"]),
        "bots_identity_changed": float(c["error.identity_changed"]),
    }
    figures.update({f"error_{k}": float(v) for k, v in recorder.errors().items()})
    return figures


def build_report(args: argparse.Namespace, recorder: Recorder, summaries: dict[str, Summary], wall: float,
                 thresholds: list[tuple[Threshold, float, bool]]) -> dict[str, Any]:
    c = recorder.counts
    def clean(v: object) -> object:
        return None if isinstance(v, float) and math.isnan(v) else v
    return {
        "config": {"server": args.server, "count": args.count, "spawn_rate": args.spawn_rate, "duration": args.duration,
                   "procs": args.procs, "mix": parse_mix(args.mix), "seed": args.seed, "warmup": args.warmup},
        "wall_seconds": wall,
        "bots": {"joined": c["bots.joined"], "resumed": c["bots.resumed"], "failed": max(0, args.count - c["bots.joined"])},
        "metrics": {name: {k: clean(v) for k, v in s.as_dict().items()} for name, s in summaries.items()},
        "messages_in": recorder.with_prefix("in."),
        "messages_out": recorder.with_prefix("out."),
        "errors": recorder.errors(),
        "error_total": sum(recorder.errors().values()),
        "purchases": {"settled": c["purchases.settled"],
                      "failed": sum(v for k, v in c.items() if k.startswith("purchases.failed")),
                      "failed_by_reason": recorder.with_prefix("purchases.failed."),
                      "sold_out": c["purchases.sold_out"], "skipped_no_bank": c["skipped.buy"]},
        "deals": recorder.with_prefix("deals."),  # delivered, unquoted, canceled_unshipped, failed.*
        "staff": recorder.with_prefix("staff."),  # shipped (by --staff bots)
        "portals": {"crossings": c["portal.crossings"], "transferred": c["portal.transferred"],
                    "in_process": c["portal.in_process"], "failed": c["error.portal_failed"],
                    "bots_unconnected": c["bots.unconnected"], "bots_identity_changed": c["error.identity_changed"]},
        "behaviours": recorder.with_prefix("behaviour."),
        "skipped": recorder.with_prefix("skipped."),
        "navigation_gave_up": c["nav.gave_up"],
        "thresholds": [{"threshold": t.text, "value": clean(v), "ok": ok} for t, v, ok in thresholds],
        "passed": all(ok for _, _, ok in thresholds),
    }


def print_report(report: dict[str, Any], table: str, out: TextIO) -> None:
    def kinds(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "none"

    b, pu = report["bots"], report["purchases"]
    print(f"\nbots: {b['joined']} joined, {b['failed']} failed, {b['resumed']} resumed "
          f"in {report['wall_seconds']:.1f} s", file=out)
    print(f"messages in:  {kinds(report['messages_in'])}", file=out)
    print(f"messages out: {kinds(report['messages_out'])}", file=out)
    print(f"behaviours:   {kinds(report['behaviours'])}", file=out)
    print(f"errors:       {kinds(report['errors'])}", file=out)
    print(f"purchases:    {pu['settled']} settled, {pu['failed']} failed ({kinds(pu['failed_by_reason'])}), "
          f"{pu['sold_out']} sold out, {pu['skipped_no_bank']} skipped (no bank)", file=out)
    if report["deals"] or report["staff"]:
        print(f"deals:        {kinds(report['deals'])}; staff {kinds(report['staff'])}", file=out)
    po = report["portals"]
    print(f"portals:      {po['crossings']} crossings ({po['transferred']} to another process, {po['in_process']} "
          f"within one), {po['failed']} failed; bots without a live connection at the end {po['bots_unconnected']}, "
          f"come out as another visitor {po['bots_identity_changed']}", file=out)
    print("\n" + table, file=out)
    for t in report["thresholds"]:
        print(f"threshold {t['threshold']}: {t['value']} {'ok' if t['ok'] else 'BROKEN'}", file=out)


# --------------------------------------------------------------------------- main


def run_script_file(server: str, path: Path, tracks_file: Path | None, out: TextIO) -> int:
    """Scripted bots: 0 when every step was done, 1 when one failed, 2 for a bad script."""
    from .script import ScriptError, parse_script, run_script

    try:
        bots = parse_script(path.read_text(encoding="utf-8"))
    except (OSError, ScriptError) as exc:
        print(f"expo-bots: {exc}", file=out)
        return 2
    print(f"expo-bots: {len(bots)} scripted bot(s) -> {server}", file=out, flush=True)
    recorder = Recorder()
    tracks = _run_loop(run_script(server, bots, recorder))
    if tracks_file is not None:
        tracks_file.write_text(json.dumps(tracks))
    errors = recorder.errors()
    print(f"steps: {', '.join(f'{k} {v}' for k, v in sorted(recorder.with_prefix('script.').items()))}", file=out)
    print(f"errors: {', '.join(f'{k} {v}' for k, v in sorted(errors.items())) or 'none'}", file=out)
    print("\n" + format_table(summarise(recorder)), file=out)
    return 1 if errors else 0



def parse_staff(items: list[str]) -> tuple[tuple[str, str], ...]:
    """``BOOTH=PASS`` each, as --staff takes them."""
    out = []
    for item in items:
        booth, _, staff_pass = item.partition("=")
        if not booth.strip() or not staff_pass.strip():
            raise ValueError(f"--staff takes BOOTH=PASS (a pass from `expo-server --staff-pass BOOTH`), not {item!r}")
        out.append((booth.strip(), staff_pass.strip()))
    return tuple(out)


def configs_for(args: argparse.Namespace) -> list[SwarmConfig]:
    mix = parse_mix(args.mix)
    staff = parse_staff(args.staff)
    procs = max(1, min(args.procs, args.count))
    run_id = secrets.token_hex(4)
    return [
        SwarmConfig(url=args.server, indices=tuple(range(w, args.count, procs)), spawn_rate=args.spawn_rate / procs,
                    duration=args.duration, seed=args.seed, mix=mix, name_prefix=args.name_prefix,
                    warmup=args.warmup, run_id=run_id, staff=staff if w == 0 else ())
        for w in range(procs)
    ]


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.script is not None:
        return run_script_file(args.server, args.script, args.tracks, out)
    try:
        thresholds = [Threshold.parse(t) for t in args.threshold]
        configs = configs_for(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.count < 1 or args.spawn_rate <= 0 or args.duration <= 0:
        parser.error("--count, --spawn-rate and --duration must be positive")

    print(f"expo-bots: {args.count} bots -> {args.server}, {args.spawn_rate:g}/s for {args.duration:g} s, "
          f"{len(configs)} process(es), seed {args.seed}, mix {args.mix}", file=out, flush=True)
    printer = ProgressPrinter(out, args.count) if args.progress > 0 and not args.quiet else (lambda pr: None)
    started = time.monotonic()
    recorder = run_swarms(configs, printer, args.progress or 1.0)
    wall = time.monotonic() - started

    summaries = summarise(recorder)
    figures = figures_of(recorder, args.count)
    checked = [(t, *check(t, summaries, figures)) for t in thresholds]
    report = build_report(args, recorder, summaries, wall, checked)
    print_report(report, format_table(summaries), out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1
