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

import json
import logging
from typing import TYPE_CHECKING

import protocol as p

from .relay import SubjectRelay

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from ..simulation import Simulation
    from .node import ClusterNode

log = logging.getLogger("expo.cluster")

SUBJECT = "expo.hall.{hall}.chat"


class ChatRelay(SubjectRelay):
    def __init__(self, node: ClusterNode, sim: Simulation) -> None:
        super().__init__(node, SUBJECT.format(hall="*"))
        self.sim = sim

    async def start(self) -> None:
        await self.subscribe()
        self.sim.chat_relay = self.publish

    async def stop(self) -> None:
        self.sim.chat_relay = None
        await self.unsubscribe()

    def publish(self, hall: str, line: p.ChatLine) -> None:
        """Called by the simulation (synchronously, in its tick or frame handling)."""
        self.send(SUBJECT.format(hall=hall), {"hall": hall, "channel": line.channel, "name": line.name,
                                              "text": line.text, "booth": line.booth})

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
