"""A quick load test of a running bank: ``python -m bank.loadtest --url http://127.0.0.1:8766 --key KEY``
(or ``python bank/loadtest.py ...``). For the bank against raw SQLite, see ``benchmarks/bank.py``.

Opens visitor accounts, has the platform create intents, then confirms them from many visitors
at once, and prints confirmations per second and latency percentiles. Used for the numbers in
the bank's report; it changes the target bank's data, so point it at a scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable, not bank/ itself
    sys.path[:] = [str(Path(__file__).resolve().parents[1])] + [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from bank.client import PlatformClient, VisitorClient  # noqa: E402


async def run(url: str, key: str, visitors: int, per_visitor: int, cross_currency: bool) -> dict[str, float]:
    platform = PlatformClient(url, key)
    people = [VisitorClient(url) for _ in range(visitors)]
    try:
        merchant = await platform.create_merchant("load-test merchant", "KZT" if cross_currency else "MYR",
                                                  reference=f"loadtest-{cross_currency}")
        for n, v in enumerate(people):
            await v.open_account(f"load {n}", "MYR")
        intents = [[(await platform.create_intent(merchant.id, 100, merchant.currency)).id
                    for _ in range(per_visitor)] for _ in people]
        latencies: list[float] = []

        async def pay(v: VisitorClient, ids: list[str]) -> None:
            for intent_id in ids:
                started = time.perf_counter()
                await v.confirm_intent(intent_id)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(pay(v, ids) for v, ids in zip(people, intents, strict=True)))
        elapsed = time.perf_counter() - started
    finally:
        for c in (platform, *people):
            await c.aclose()
    q = statistics.quantiles(latencies, n=100)
    return {"confirmations": len(latencies), "seconds": elapsed, "per_second": len(latencies) / elapsed,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bank.loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8766")
    parser.add_argument("--key", required=True, help="the bank's platform key")
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--per-visitor", type=int, default=25)
    parser.add_argument("--same-currency", action="store_true", help="skip FX (MYR to MYR)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.url, args.key, args.visitors, args.per_visitor, not args.same_currency))
    print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
