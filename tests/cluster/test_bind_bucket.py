"""Hall processes starting together all bind the directory's buckets (a real nats-server)."""

from __future__ import annotations

import asyncio

import nats
from nats.js.api import KeyValueConfig, StorageType

from server.cluster.node import bind_bucket


async def test_processes_creating_a_bucket_at_once_all_bind_it(nats_server):
    clients = [await nats.connect(nats_server.url) for _ in range(8)]
    try:
        for round_ in range(5):
            config = KeyValueConfig(bucket=f"race-{round_}", history=1, storage=StorageType.FILE)
            buckets = await asyncio.gather(*(bind_bucket(nc.jetstream(timeout=5), config) for nc in clients))
            await buckets[0].put("seat", b"taken")
            assert [(await kv.get("seat")).value for kv in buckets] == [b"taken"] * len(clients)
    finally:
        for nc in clients:
            await nc.close()
