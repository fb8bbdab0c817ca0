"""Deal news across the hall processes, on a NATS subject.

| subject                  | payload (JSON)                                             |
| ------------------------ | ---------------------------------------------------------- |
| ``expo.booth.<booth>.deals`` | ``{"origin", "buyer", "booth", "status"}``             |

A deal lives in PostgreSQL, shared by every process, but the one that moved it knows only
its own sessions: a buyer at one process and the booth's staff at another would never hear
of each other's steps. So every process publishes each ``DealStatus`` it sends (``status``:
the protocol's own encoding of it, base64) and every other process hands it to its sessions
of that buyer and of that booth's staff, as if the deal had moved there. ``origin`` is the
publishing process's id (it told its own sessions already). Core NATS, at most once: a
status lost while NATS restarts is what ``QueryDeals`` answers again, from the store.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import protocol as p

from .relay import SubjectRelay

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from ..deals.machine import Deal
    from ..deals.service import DealService
    from .node import ClusterNode

log = logging.getLogger("expo.cluster")

SUBJECT = "expo.booth.{booth}.deals"


class DealRelay(SubjectRelay):
    def __init__(self, node: ClusterNode, deals: DealService, flush: Callable[[Any], None]) -> None:
        super().__init__(node, SUBJECT.format(booth="*"))
        self.deals = deals
        self.flush = flush

    async def start(self) -> None:
        await self.subscribe()
        self.deals.relay = self.publish

    async def stop(self) -> None:
        self.deals.relay = None
        await self.unsubscribe()

    def publish(self, deal: Deal, status: p.DealStatus) -> None:
        """Called by the deal service each time it tells a deal's parties here."""
        self.send(SUBJECT.format(booth=deal.booth), {"buyer": deal.buyer, "booth": deal.booth,
                                                     "status": base64.b64encode(p.encode(status)).decode()})

    async def _on_message(self, msg: Msg) -> None:
        try:
            raw = json.loads(msg.data)
            if raw["origin"] == self.node.id:
                return
            status = p.decode_server(base64.b64decode(raw["status"], validate=True))
            buyer, booth = str(raw["buyer"]), str(raw["booth"])
            if not isinstance(status, p.DealStatus) or status.booth != booth:
                raise ValueError(f"not a DealStatus of booth {booth}")
        except (ValueError, KeyError, TypeError, p.ProtocolError) as exc:  # another version or a stray publisher
            log.warning("bad relayed deal status", extra={"subject": msg.subject, "error": repr(exc)})
            return
        self.received += 1
        for session in self.deals.tell_here(buyer, booth, status):
            self.flush(session.peer)
