"""Live world files: exhibitors edit their booth file and the running expo picks it up.

The watcher polls the files' modification times (portable, no extra dependency, cheap at a
few dozen files), re-checks the whole expo when something changed, and applies it only when
it is valid; otherwise it logs every problem with file and line and keeps the current world.
Twice a second, so an edit reaches connected visitors within a second (protocol/README.md);
a file caught half-written fails the check and is picked up whole on the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from world import check_expo
from world.model import Expo

log = logging.getLogger("expo.world")

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(root: Path) -> Fingerprint:
    """Path, mtime and size of every world file and asset under the expo directory."""
    entries = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".toml", ".png", ".jpg", ".egg", ".bam", ".gltf", ".glb"):
            stat = path.stat()
            entries.append((str(path.relative_to(root)), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


class WorldWatcher:
    def __init__(self, root: Path, apply: Callable[[Expo], Awaitable[None]], interval: float = 0.5) -> None:
        self.root = root
        self.apply = apply
        self.interval = interval
        self._seen = fingerprint(root)

    async def check_once(self) -> bool:
        """Reload if the files changed; True when a new world was applied."""
        now = await asyncio.to_thread(fingerprint, self.root)
        if now == self._seen:
            return False
        self._seen = now
        expo, problems = await asyncio.to_thread(check_expo, self.root)
        if problems or expo is None:
            log.warning("world files changed but do not load; keeping the running world",
                        extra={"problems": [str(problem) for problem in problems]})
            return False
        await self.apply(expo)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_once()
            except Exception:  # a watcher failure must not take the server down
                log.exception("world watch failed")
