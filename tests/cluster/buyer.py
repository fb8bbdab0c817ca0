"""A process of buyers for test_pg_store: N threads, each with its own PgCommerceStore (its
own connection), wait for a shared instant, order one unit each, print the outcomes as JSON.

usage: buyer.py DSN BOOTH SKU PREFIX N START_AT
"""

from __future__ import annotations

import json
import sys
import threading
import time

from server.pg_store import PgCommerceStore
from server.store import OrderConflict, OrderRecord


def main() -> None:
    dsn, booth, sku, prefix, n, start_at = sys.argv[1:7]
    stores = [PgCommerceStore(dsn) for _ in range(int(n))]
    results: list[dict] = []

    def buy(i: int, store: PgCommerceStore) -> None:
        visitor = f"{prefix}-{i}"
        now = time.time()
        record = OrderRecord(id=f"{visitor}-order", visitor=visitor, key="k", booth=booth, sku=sku, qty=1,
                             amount_minor=100, currency="AED", status="reserving", intent_id=None, message="",
                             created_at=now, expires_at=now + 600, updated_at=now)
        time.sleep(max(0.0, float(start_at) - time.time()))
        try:
            store.place_order(record, limit_per_visitor=2)
            results.append({"visitor": visitor, "outcome": "placed"})
        except OrderConflict as exc:
            results.append({"visitor": visitor, "outcome": str(exc)})

    threads = [threading.Thread(target=buy, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
