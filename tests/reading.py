"""A test's reading of a real server's socket: the next message of a kind, Snapshots and
everything else read past."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import protocol as p


async def next_of(ws: Any, kind: type | tuple[type, ...], where: Callable[[Any], bool] = lambda m: True,
                  timeout: float = 10.0) -> Any:
    async def wait() -> Any:
        while True:
            m = p.decode_server(await ws.recv(decode=False))
            if isinstance(m, kind) and where(m):
                return m
    return await asyncio.wait_for(wait(), timeout)
