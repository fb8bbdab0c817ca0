"""The bank's service alone: CPU per call of confirmations and of escrow hold/post through the
writer's group commit, without HTTP, from many coroutines at once. The sharper A/B of a
change to the bank's Python (benchmarks/bank.py's end-to-end runs cannot resolve a few
microseconds on a shared machine): run it on two trees, alternated, and compare.

The writer runs with ``synchronous=OFF``: the fsync is the storage's, the same on both sides
of an A/B, and would only add noise. Prints CPU microseconds per call (this process's CPU,
the writer thread included).

    PYTHONPATH=<tree> python benchmarks/bank_service.py --clients 20 --per-client 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

from bank.service import Bank, Idem, Principal, Role  # through benchmarks/bank.py, which gives the package
from bank.sqlite_store import SQLiteStorage

PLATFORM = Principal(Role.PLATFORM)


async def measure(bank: Bank, storage: SQLiteStorage, clients: int, per_client: int, currency: str) -> tuple[float, float]:
    merchant = bank.create_merchant(PLATFORM, "merchant", currency, None, None).body["id"]
    visitors = [Principal(Role.VISITOR, bank.open_account(f"v{n}", "MYR", None).body["account"]["id"])
                for n in range(clients)]
    intents = [[bank.create_intent(PLATFORM, merchant_account_id=merchant, amount=100, currency=currency, metadata={},
                                   expires_in_seconds=None, payer_account_id=None, idem=None).body["id"]
                for _ in range(per_client)] for _ in visitors]

    def key(who: Principal) -> Idem:
        return Idem(who.scope, uuid.uuid4().hex, "fp")

    async def pay(visitor: Principal, ids: list[str]) -> None:
        for i in ids:
            await storage.group.submit(partial(bank.confirm_intent, visitor, i, key(visitor)))

    async def cycle(visitor: Principal, c: int) -> None:
        for i in range(per_client):
            held = await storage.group.submit(partial(
                bank.create_escrow, visitor, payee_account_id=merchant, amount=100, currency=currency,
                end_to_end_id=f"PO-{c}-{i}", expires_in_seconds=None, fx_lock_id=None, metadata={}, idem=key(visitor)))
            await storage.group.submit(partial(bank.post_escrow, PLATFORM, held.body["id"], key(PLATFORM)))

    start = time.process_time()
    await asyncio.gather(*(pay(v, ids) for v, ids in zip(visitors, intents, strict=True)))
    paid = time.process_time()
    await asyncio.gather(*(cycle(v, c) for c, v in enumerate(visitors)))
    done = time.process_time()
    calls = clients * per_client
    return (paid - start) * 1e6 / calls, (done - paid) * 1e6 / (2 * calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--per-client", type=int, default=300)
    parser.add_argument("--currency", default="MYR", help="the merchant's (MYR: no FX; e.g. KZT: with FX)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        storage = SQLiteStorage(Path(tmp) / "bank.sqlite3")
        storage._writer.execute("PRAGMA synchronous = OFF")  # the fsync is the disk's, not the A/B's
        try:
            confirm, hold_post = asyncio.run(measure(Bank(storage), storage, args.clients, args.per_client, args.currency))
        finally:
            storage.close()
    print(f"confirm {confirm:.0f} us/call, escrow hold/post {hold_post:.0f} us/call, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
