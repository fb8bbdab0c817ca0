"""The organiser's live view across the hall processes, on NATS subjects.

| subject                 | payload (JSON)                                                  |
| ----------------------- | --------------------------------------------------------------- |
| ``expo.live.<process>`` | ``{"origin", "positions", "names", "per_hall", "per_booth", "cells"}`` |

The console runs at one process, which simulates only its own visitors: its map showed no
one and its counts 0 while the hall was full at another process. So every hall process
publishes its live frame (``server.live``) once a second, and the console's process adds
the latest frame of each other process to its own. Core NATS, at most once: a lost frame is
replaced a second later, and a frame older than ``STALE`` seconds is left out (its process
stopped, or NATS is away), so a stopped process's visitors leave the map."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..live import Census, LiveFrame
from .node import cancel_and_wait
from .relay import SubjectRelay

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from .node import ClusterNode

log = logging.getLogger("expo.cluster")

SUBJECT = "expo.live.{process}"
PUBLISH_INTERVAL = 1.0  # seconds
STALE = 3.5  # seconds after which a process's last frame is no longer shown


def encode(frame: LiveFrame) -> dict:
    c = frame.census
    return {"positions": frame.positions, "names": {str(e): n for e, n in frame.names.items()},
            "per_hall": c.per_hall, "per_booth": c.per_booth, "cells": c.cells}


def decode(raw: dict) -> LiveFrame:
    """A frame as another process sent it; raises ValueError, KeyError or TypeError on
    anything else (another version, a stray publisher)."""
    positions = {str(hall): [[int(e), int(x), int(y), int(staff)] for e, x, y, staff in rows]
                 for hall, rows in raw["positions"].items()}
    names: dict[int | str, str] = {int(e): str(n) for e, n in raw["names"].items()}
    census = Census({str(h): int(n) for h, n in raw["per_hall"].items()},
                    {str(b): int(n) for b, n in raw["per_booth"].items()},
                    [(str(h), int(x), int(y), int(n)) for h, x, y, n in raw["cells"]])
    return LiveFrame(positions, names, census)


class LiveRelay(SubjectRelay):
    def __init__(self, node: ClusterNode, own: Callable[[], LiveFrame],
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(node, SUBJECT.format(process="*"))
        self.own = own
        self.clock = clock
        self._latest: dict[str, tuple[float, LiveFrame]] = {}  # process -> (when received, its frame)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.subscribe()
        self._task = asyncio.create_task(self._publish_forever(), name="cluster-live")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await self.unsubscribe()

    async def _publish_forever(self) -> None:
        while True:
            try:
                self.send(SUBJECT.format(process=self.node.id), encode(self.own()))
            except Exception:  # one bad frame must not end the view
                log.exception("the live frame could not be published")
            await asyncio.sleep(PUBLISH_INTERVAL)

    def others(self) -> list[tuple[str, LiveFrame]]:
        """The other processes' latest frames, each no older than ``STALE`` seconds."""
        now = self.clock()
        for process in [p for p, (at, _) in self._latest.items() if now - at > STALE]:
            del self._latest[process]
        return [(process, frame) for process, (_, frame) in sorted(self._latest.items())]

    async def _on_message(self, msg: Msg) -> None:
        try:
            raw = json.loads(msg.data)
            origin = str(raw["origin"])
            if origin == self.node.id:
                return
            frame = decode(raw)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("bad live frame", extra={"subject": msg.subject, "error": repr(exc)})
            return
        self.received += 1
        self._latest[origin] = (self.clock(), frame)
