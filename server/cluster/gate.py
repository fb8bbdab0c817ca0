"""A hall process's door to the cluster: every fresh Hello takes a seat in an instance of the
spawn hall before the simulation sees it, and every session that ends gives its seat back.

The process runs one instance of each hall of the expo (its simulation holds every hall
once), opened at start. Visitors who connect here are seated here while this instance has
room; when it is full the directory names another instance with room (or opens an overflow
instance on a process that has none of this hall yet) and the visitor is refused with that
process's URL in the message: the client follows it by hand until the protocol's Transfer
message carries the seat's token across (issue 15, hand-off).

Resumes keep the seat they had (the session never left); seats of sessions that end, for
any reason, are found by a reconciliation every second against the simulation's sessions,
so no path out of the simulation can leak a seat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import protocol as p

from .chat import ChatRelay
from .directory import InstanceRecord
from .node import Admission, ClusterNode, ClusterUnavailable

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..simulation import Peer, Simulation

log = logging.getLogger("expo.cluster")

RECONCILE_INTERVAL = 1.0


class ClusterGate:
    def __init__(self, node: ClusterNode, sim: Simulation, instance_cap: int) -> None:
        self.node = node
        self.sim = sim
        self.instance_cap = instance_cap
        self.seated: dict[str, tuple[InstanceRecord, str]] = {}  # session id -> (instance, visitor key)
        self.ready = False  # joined, with our instances open
        self.chat = ChatRelay(node, sim)
        self._task: asyncio.Task | None = None

    @classmethod
    def for_config(cls, sim: Simulation, config: ServerConfig) -> ClusterGate:
        assert config.cluster_url is not None
        node = ClusterNode(config.cluster_url, url="", capacity=config.max_clients, prefer_local=True)
        return cls(node, sim, config.instance_cap or config.max_clients)

    @property
    def spawn_hall(self) -> str:
        return self.sim.expo.halls[0].id

    async def start(self, url: str) -> None:
        """Join with ``url`` as where visitors reach us, and open an instance of every hall."""
        self.node.url = url
        await self.node.start()
        for hall in self.sim.expo.halls:
            record = await self.node.open_instance(hall.id, self.instance_cap)
            log.info("instance open", extra={"instance": record.id, "cap": record.cap, "url": url})
        await self.chat.start()
        self.ready = True
        self._task = asyncio.create_task(self._reconcile_forever(), name="cluster-seats")

    def health(self) -> dict:
        """For /healthz: whether we can seat visitors, and whether NATS is connected now."""
        nc = self.node.nc
        return {"ready": self.ready, "process": self.node.id, "nats_connected": bool(nc and nc.is_connected),
                "instances": sorted(self.node.instances), "seated": len(self.seated),
                "chat_relayed": {"sent": self.chat.sent, "received": self.chat.received}}

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.chat.stop()
        await self.node.stop()

    async def on_frame(self, peer: Peer, data: bytes) -> None:
        """Hand ``data`` to the simulation, seating a fresh Hello first."""
        if peer.session is not None or not _is_fresh_hello(data):
            self.sim.on_frame(peer, data)
            return
        if not self.ready:
            _refuse(peer, "this process is still joining the cluster; try again in a second")
            return
        try:
            admission = await self.node.admit(self.spawn_hall, self.instance_cap)
        except ClusterUnavailable as exc:
            log.warning("no seat: the cluster does not answer", extra={"error": str(exc)})
            _refuse(peer, "the expo's directory does not answer; try again in a few seconds")
            return
        if admission is None:
            _refuse(peer, f"every instance of the hall {self.spawn_hall!r} is full")
            return
        if admission.instance.process != self.node.id:
            _refuse(peer, f"this process is full; {admission.url} has room")
            await self.node.cancel(admission)
            return
        self.sim.on_frame(peer, data)
        await self._seated(peer, admission)

    async def _seated(self, peer: Peer, admission: Admission) -> None:
        session = peer.session
        if session is None:  # the simulation refused the Hello (name taken, bad version...)
            await self.node.cancel(admission)
            return
        visitor = session.name.casefold()
        if await self.node.confirm(admission, visitor, session.name):
            self.seated[session.id] = (admission.instance, visitor)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_INTERVAL)
            try:
                await self.reconcile()
            except Exception as exc:  # NATS away: the heartbeat's rebuild and the next round retry
                log.warning("seat reconciliation failed", extra={"error": repr(exc)})

    async def reconcile(self) -> None:
        """Give back the seats of sessions that ended; report our load."""
        for session_id, (instance, visitor) in list(self.seated.items()):
            if session_id not in self.sim.sessions:
                del self.seated[session_id]
                await self.node.leave(instance, visitor)
        self.node.load = self.sim.connected


def _is_fresh_hello(data: bytes) -> bool:
    """A Hello that joins afresh (not a resume: a resumed session keeps its seat)."""
    if not isinstance(data, (bytes, bytearray)) or p.peek_type(data) != p.Hello.TYPE:
        return False
    try:
        hello = p.decode_client(data)
    except p.ProtocolError:
        return False  # the simulation answers the bad frame
    return isinstance(hello, p.Hello) and hello.resume_token is None


def _refuse(peer: Peer, message: str) -> None:
    peer.send(p.Refused(p.ErrorCode.SERVER_FULL.value, message))
    peer.close_request = (p.ErrorCode.SERVER_FULL, message)
