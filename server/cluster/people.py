"""Direct messages and "find a person" across the cluster's processes.

A name that names a session of this process is answered here (server.direct, as in one
process). Otherwise ``expo_presence`` lists everyone online under that display name at the
other processes (server.cluster.node: one record per visitor id, so namesakes at different
processes never overwrite each other). Several visitors may show the same name there (each
process tags namesakes only among its own), so a name may name several people:

- ``FindPerson`` answers one ``PersonFound`` per visitor of that name, ordered by visitor id;
  with more than one, each carries the name with that visitor's tag (``Li Wei #K3F9``).
- ``DirectMessage`` to a name several visitors show is refused, ``Error(unknown)`` naming
  their tagged names; the tagged name reaches exactly one of them.

A direct message to someone at another process is a NATS request to it,
``expo.process.<id>.dm`` with ``{"to": visitor id, "from", "text"}``; it delivers the line
to that visitor's session and answers ``{"delivered": bool}``, and only a delivered line is
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

from ..identity import tag_of, tagged
from .node import ClusterNode, Presence

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
        found = await self._where(to)
        if len(found) > 1:
            names = ", ".join(_tagged(presence) for presence in found)
            self._answer(sender, p.Error(p.ErrorCode.UNKNOWN.value, f"{len(found)} visitors called {to!r} are online "
                                         f"({names}): write to one by that name", p.DirectMessage.TYPE))
            return
        delivered = False
        if found and self.node.nc is not None:
            payload = json.dumps({"to": found[0].visitor, "from": sender.name, "text": text}).encode()
            try:
                reply = await self.node.nc.request(dm_subject(found[0].process), payload, timeout=DM_TIMEOUT)
                delivered = bool(json.loads(reply.data).get("delivered"))
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ValueError):
                delivered = False
        if delivered:
            self._answer(sender, p.DirectLine(found[0].name, text, False, self.sim.clock.monotonic()))
        else:
            self._answer(sender, p.Error(p.ErrorCode.UNKNOWN.value, f"nobody called {to!r} is online",
                                         p.DirectMessage.TYPE))

    def find(self, asker: Session, name: str) -> None:
        self._spawn(self._find(asker, name))

    async def _find(self, asker: Session, name: str) -> None:
        found = await self._where(name)
        if not found:
            self._answer(asker, p.PersonFound(name, False, None))
        for presence in found:
            self._answer(asker, p.PersonFound(_tagged(presence) if len(found) > 1 else presence.name, True,
                                              presence.hall))

    async def _where(self, name: str) -> list[Presence]:
        """The visitors at other processes ``name`` names: those shown so, else (``Li Wei
        #K3F9``) the one of that tag among those shown as the rest."""
        try:
            found = await self.node.find_named(name)
            base, _, tag = name.rpartition(" #")
            if not found and base:
                found = [pr for pr in await self.node.find_named(base) if tag_of(pr.visitor) == tag.upper()]
                if not found:  # a long name, cut to fit its tag (identity.tagged): what starts so
                    found = await self.node.find_cut(base, tag.upper(), tag_of)
        except Exception as exc:  # NATS away: as good as not found, and said so in the log
            log.warning("presence look-up failed", extra={"error": repr(exc)})
            return []
        return [presence for presence in found if presence.process != self.node.id]  # ours would be in the sim

    async def _on_dm(self, msg: Msg) -> None:
        try:
            raw = json.loads(msg.data)
            to, sender, text = str(raw["to"]), str(raw["from"]), str(raw["text"])
        except (ValueError, KeyError, TypeError):
            return
        session = self.sim.by_visitor.get(to)
        if session is not None and session.peer is not None:
            self.sim.direct.deliver(session, sender, text)
            self.flush(session.peer)
            self.delivered += 1
        with contextlib.suppress(Exception):
            await msg.respond(json.dumps({"delivered": session is not None}).encode())


def _tagged(presence: Presence) -> str:
    """The visitor's name with its tag (already so if its process tagged it for a namesake there)."""
    tag = f" #{tag_of(presence.visitor)}"
    return presence.name if presence.name.endswith(tag) else tagged(presence.name, presence.visitor)
