"""Cancelling a task in a chosen turn of the loop, for shutdown tests."""

from __future__ import annotations

import asyncio


async def ends_when_cancelled(task: asyncio.Task, turns: int, within: float = 2.0) -> bool:
    """Cancel `task` after `turns` turns of the loop; whether it ended within `within` s.
    On Python 3.11 asyncio.wait_for swallows a cancel that lands in the same turn as the thing
    it awaits completes: a loop around it then never ends. Cleans up either way."""
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=within)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return task in done
