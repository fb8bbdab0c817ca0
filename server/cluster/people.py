"""Direct messages and "find a person" across the cluster's processes.

Find a person is a ``get`` of ``expo_presence`` by the casefolded display name. A direct
message to someone at another process is a NATS request to it,
``expo.process.<id>.dm`` with ``{"to", "from", "text"}``; it delivers the line to its
session of that name and answers ``{"delivered": bool}``, and only a delivered line is
echoed to the sender (as in one process), otherwise the sender gets ``Error(unknown)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

import protocol as p

from .node import ClusterNode

if TYPE_CHECKING:
    from ..simulation import Session, Simulation

log = logging.getLogger("expo.cluster")
DM_TIMEOUT = 2.0


def dm_subject(process: str) -> str:
    return f"expo.process.{process}.dm"


class ClusterPeople:
    """The simulation's ``direct.remote`` in a cluster."""

    def __init__(self, node: ClusterNode, sim: Simulation, flush: Callable[[Any], None]) -> None:
        self.node = node
        self.sim = sim
        self.flush = flush
        self.delivered = 0
        self._sub: Subscription | None = None
        self._pending: set[asyncio.Task] = set()

    async def start(self) -> None:
        assert self.node.nc is not None
        self._sub = await self.node.nc.subscribe(dm_subject(self.node.id), cb=self._on_dm)
        self.sim.direct.remote = self

    async def stop(self) -> None:
        self.sim.direct.remote = None
        for task in list(self._pending):
            task.cancel()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _answer(self, session: Session, message: p.Message) -> None:
        if session.peer is not None:
            session.send(message)
            self.flush(session.peer)

    def direct(self, sender: Session, to: str, text: str) -> None:
        self._spawn(self._direct(sender, to, text))

    async def _direct(self, sender: Session, to: str, text: str) -> None:
        presence = await self._where(to)
        delivered = False
        if presence is not None and presence.process != self.node.id and self.node.nc is not None:
            payload = json.dumps({"to": to.casefold(), "from": sender.name, "text": text}).encode()
            try:
                reply = await self.node.nc.request(dm_subject(presence.process), payload, timeout=DM_TIMEOUT)
                delivered = bool(json.loads(reply.data).get("delivered"))
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ValueError):
                delivered = False
        if delivered and presence is not None:
            self._answer(sender, p.DirectLine(presence.name, text, False, self.sim.clock.monotonic()))
        else:
            self._answer(sender, p.Error(p.ErrorCode.UNKNOWN.value, f"nobody called {to!r} is online",
                                         p.DirectMessage.TYPE))

    def find(self, asker: Session, name: str) -> None:
        self._spawn(self._find(asker, name))

    async def _find(self, asker: Session, name: str) -> None:
        presence = await self._where(name)
        if presence is None:
            self._answer(asker, p.PersonFound(name, False, None))
        else:
            self._answer(asker, p.PersonFound(presence.name, True, presence.hall))

    async def _where(self, name: str):
        try:
            return await self.node.find(name.casefold())
        except Exception as exc:  # NATS away: as good as not found, and said so in the log
            log.warning("presence look-up failed", extra={"error": repr(exc)})
            return None

    async def _on_dm(self, msg: Msg) -> None:
        try:
            raw = json.loads(msg.data)
            to, sender, text = str(raw["to"]), str(raw["from"]), str(raw["text"])
        except (ValueError, KeyError, TypeError):
            return
        session = self.sim.direct.here(to)
        if session is not None and session.peer is not None:
            self.sim.direct.deliver(session, sender, text)
            self.flush(session.peer)
            self.delivered += 1
        with contextlib.suppress(Exception):
            await msg.respond(json.dumps({"delivered": session is not None}).encode())
