"""Booth channels and hall announcements across the instances of a hall, on NATS subjects.

| subject                     | payload (JSON)                                              |
| --------------------------- | ----------------------------------------------------------- |
| ``expo.hall.<hall>.chat``   | ``{"origin", "hall", "channel", "name", "text", "booth"}``  |

``origin`` is the publishing process's id (it delivered the line to its own listeners
already and skips its own echo); ``channel`` is the protocol's (1 booth, 2 announcement);
``booth`` the booth of a booth line, or the staff's booth for an announcement. Each
process delivers a relayed line to its listeners exactly as if it had been said there, with
entity 0 (the speaker is in another instance). Core NATS, at most once: a chat line lost
while NATS restarts is lost, as one said to a visitor who is reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

import protocol as p

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from ..simulation import Simulation
    from .node import ClusterNode

log = logging.getLogger("expo.cluster")

SUBJECT = "expo.hall.{hall}.chat"


class ChatRelay:
    def __init__(self, node: ClusterNode, sim: Simulation) -> None:
        self.node = node
        self.sim = sim
        self.sent = 0
        self.received = 0
        self._subscription: Subscription | None = None
        self._pending: set[asyncio.Task] = set()

    async def start(self) -> None:
        assert self.node.nc is not None
        self._subscription = await self.node.nc.subscribe(SUBJECT.format(hall="*"), cb=self._on_message)
        self.sim.chat_relay = self.publish

    async def stop(self) -> None:
        self.sim.chat_relay = None
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        if self._pending:
            await asyncio.wait(self._pending, timeout=2)

    def publish(self, hall: str, line: p.ChatLine) -> None:
        """Called by the simulation (synchronously, in its tick or frame handling)."""
        nc = self.node.nc
        if nc is None or nc.is_closed:
            return
        payload = json.dumps({"origin": self.node.id, "hall": hall, "channel": line.channel, "name": line.name,
                              "text": line.text, "booth": line.booth}, separators=(",", ":")).encode()
        task = asyncio.get_running_loop().create_task(nc.publish(SUBJECT.format(hall=hall), payload))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        self.sent += 1

    async def _on_message(self, msg: Msg) -> None:
        try:
            raw = json.loads(msg.data)
            if raw["origin"] == self.node.id:
                return
            line = p.ChatLine(int(raw["channel"]), 0, str(raw["name"]), str(raw["text"]), raw["booth"], 0.0)
            hall = str(raw["hall"])
        except (ValueError, KeyError, TypeError) as exc:  # another version or a stray publisher: say it, go on
            log.warning("bad relayed chat line", extra={"subject": msg.subject, "error": repr(exc)})
            return
        if line.channel not in (p.Channel.BOOTH, p.Channel.ANNOUNCEMENT):
            return
        self.received += 1
        self.sim.relayed_chat(hall, line)
