"""A hall process for the admission tests, without a simulation: joins the cluster at NATS_URL,
waits for a shared instant, asks for N seats in HALL at once, prints where each went (JSON),
then stays in the directory until its standard input closes.

usage: admitter.py NATS_URL PROCESS_ID HALL CAP N START_AT [OPEN_FIRST]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from server.cluster.node import ClusterNode


async def main() -> None:
    nats_url, process_id, hall, cap, n, start_at = sys.argv[1:7]
    open_first = len(sys.argv) > 7 and sys.argv[7] == "open"
    # Nobody arrives to confirm these seats: a long seat TTL keeps a burst slowed by load past the
    # default 15 s from seeing its first grants expire and be granted again.
    node = await ClusterNode(nats_url, f"ws://{process_id}.test/", capacity=10_000, process_id=process_id,
                             seat_ttl=300.0).start()
    if open_first:
        await node.open_instance(hall, int(cap))
    await asyncio.sleep(max(0.0, float(start_at) - time.time()))
    began = time.perf_counter()
    admissions = await asyncio.gather(*(node.admit(hall, int(cap)) for _ in range(int(n))))
    took = time.perf_counter() - began
    print(json.dumps({"took": took, "admitted": [None if a is None else {"instance": a.instance.id, "process": a.instance.process,
                                                                         "token": a.token} for a in admissions]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await node.stop()


if __name__ == "__main__":
    asyncio.run(main())
