"""`expo-report`: an exhibitor's report from a server's data directory.

    expo-report --booth cn-yunnan-tea --out report/ [--data-dir var] [--world DIR]

Writes ``<booth>-figures.csv``, ``<booth>-leads.csv``, ``<booth>-heatmap.png`` and
``<booth>-charts.png`` into ``--out``. Safe while the server runs (SQLite readers do not
block its writers). Exit status 0 written, 1 the world does not load, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="expo-report",
        description="Write one exhibitor's report (figures and leads as CSV, heatmap and charts as PNG) "
        "from the event log and the people store in a server's data directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--booth", required=True, help="the exhibitor's booth id")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the report into")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("EXPO_DATA_DIR", "var")),
                        help="the server's data directory (EXPO_DATA_DIR)")
    parser.add_argument("--db", default=os.environ.get("EXPO_DB"), metavar="postgresql://...",
                        help="read a cluster's PostgreSQL instead of --data-dir (EXPO_DB)")
    parser.add_argument("--world", type=Path, default=os.environ.get("EXPO_WORLD"),
                        help="expo directory (default: the packaged Silk Road expo)")
    parser.add_argument("--cell", type=float, default=1.0, help="heatmap cell size, metres")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from server.exhibitors import EVENTS_FILE, open_stores
    from world.loader import WorldError, default_expo_path, load_expo

    from .report import write_report

    try:
        expo = load_expo(args.world or default_expo_path())
    except WorldError as exc:
        print(f"expo-report: the world does not load:\n{exc}", file=sys.stderr)
        return 1
    if args.db and not args.db.startswith(("postgresql://", "postgres://")):
        print(f"expo-report: --db takes a postgresql:// URL, not {args.db.split(':', 1)[0]!r}", file=sys.stderr)
        return 2
    if not args.db and not (args.data_dir / EVENTS_FILE).exists():
        print(f"expo-report: no event log in {args.data_dir} (expected {EVENTS_FILE}); "
              "give the server's --data-dir", file=sys.stderr)
        return 2
    if not args.cell > 0:
        print(f"expo-report: --cell must be a positive number of metres, not {args.cell}", file=sys.stderr)
        return 2
    events, people = open_stores(args.db, args.data_dir)
    try:
        report = write_report(expo, args.booth, events, people, args.out, args.cell)
    except LookupError as exc:
        print(f"expo-report: {exc.args[0]}", file=sys.stderr)
        return 2
    finally:
        events.close()
        people.close()
    f = report.figures
    print(f"{args.booth}: {f.visits} visits by {f.unique_visitors} visitors, dwell p50 {f.dwell_p50} s "
          f"p90 {f.dwell_p90} s, funnel {'/'.join(map(str, f.funnel.as_tuple()))}, {report.leads} leads, "
          f"{f.cards_exchanged} cards exchanged, {f.meetings_booked} meetings booked, {f.quotes_requested} quotes requested")
    for path in report.files:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
