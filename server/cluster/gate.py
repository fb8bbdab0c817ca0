"""A hall process's door to the cluster: every fresh Hello takes a seat in an instance of the
spawn hall before the simulation sees it, every session that ends gives its seat back, and
visitors cross to other processes with the protocol's Transfer.

The process opens an instance of each hall it serves (``--halls``; default every hall of
the expo). Visitors who connect here are seated here while this instance has room; when it
is full (or this process serves no instance of the spawn hall) the directory names another
instance with room, or opens an overflow instance, and the visitor is sent a ``Transfer``
to the process that has the seat.

A portal into a hall this process has an instance of is a hop in the simulation, as in one
process. A portal into a hall served elsewhere is a hand-off: the avatar stays where it is
while a seat is reserved in an instance of that hall, the visitor gets a ``Transfer`` with
its one-use token, and the avatar goes only when the taking process, having taken the seat,
asks for it (``expo.process.<id>.handoff``). A transfer that is never taken gives its seat
back at its expiry and the visitor still has the avatar here.

Resumes keep the seat they had (the session never left); seats of sessions that end, for
any reason, are found by a reconciliation every second against the simulation's sessions,
so no path out of the simulation can leak a seat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import nats.errors
import numpy as np
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

import protocol as p

from ..live import frame as live_frame
from .chat import ChatRelay
from .deals import DealRelay
from .directory import InstanceRecord
from .handoff import HandOff, Release, release_subject
from .live import LiveRelay
from .node import Admission, ClusterNode, ClusterUnavailable, cancel_and_wait
from .people import ClusterPeople

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..simulation import Peer, Session, Simulation

log = logging.getLogger("expo.cluster")

RECONCILE_INTERVAL = 1.0
RELEASE_TIMEOUT = 1.0  # seconds the taking process waits for the giver to let go (a dead giver never answers)
# Seconds a fresh Hello may wait for a seat before it is refused with that reason. Below the
# simulation's hello_timeout (10 s), which does not run while the gate holds the Hello.
ADMIT_TIMEOUT = 8.0


class ClusterGate:
    def __init__(self, node: ClusterNode, sim: Simulation, instance_cap: int, halls: tuple[str, ...] | None = None) -> None:
        self.node = node
        self.sim = sim
        self.instance_cap = instance_cap
        self.halls = halls or tuple(h.id for h in sim.expo.halls)  # the halls this process opens an instance of
        self.seated: dict[str, tuple[InstanceRecord, str]] = {}  # session id -> (instance, visitor id)
        self._seats_lock = asyncio.Lock()  # a seat moving (a hop) and the reconciliation's give-backs
        self.leaving: dict[str, Admission | None] = {}  # session id -> its seat elsewhere (None: being reserved)
        self.ready = False  # joined, with our instances open
        self.chat = ChatRelay(node, sim)
        self.live = LiveRelay(node, lambda: live_frame(sim))  # the console's view of every process
        self.people: ClusterPeople | None = None  # direct messages and find a person across processes
        self.deal_relay: DealRelay | None = None  # deal news to the buyer and staff at other processes
        self.transfers = {"sent": 0, "taken": 0, "released": 0, "failed": 0}
        # seconds, the last few hundred: portal entered -> Transfer sent (giving), Hello -> Welcome (taking)
        self.timings: dict[str, deque[float]] = {"giving": deque(maxlen=500), "taking": deque(maxlen=500)}
        self._servers: tuple[str, ...] = ()  # what Servers said last
        self._task: asyncio.Task | None = None
        self._release_sub: Subscription | None = None
        self._pending: set[asyncio.Task] = set()
        self.flush: Callable[[Any], None] = lambda peer: None  # the shell's: write a peer's frames now, not at the tick

    @classmethod
    def for_config(cls, sim: Simulation, config: ServerConfig) -> ClusterGate:
        assert config.cluster_url is not None
        node = ClusterNode(config.cluster_url, url="", capacity=config.max_clients, prefer_local=True)
        return cls(node, sim, config.instance_cap or config.max_clients, config.halls)

    @property
    def spawn_hall(self) -> str:
        return self.sim.expo.halls[0].id

    async def start(self, url: str) -> None:
        """Join with ``url`` as where visitors reach us, and open an instance of our halls."""
        unknown = set(self.halls) - {h.id for h in self.sim.expo.halls}
        if unknown:
            raise ValueError(f"--halls names halls this expo has not: {', '.join(sorted(unknown))}")
        self.node.url = url
        await self.node.start()
        for hall in self.halls:
            record = await self.node.open_instance(hall, self.instance_cap)
            log.info("instance open", extra={"instance": record.id, "cap": record.cap, "url": url})
        await self.chat.start()
        await self.live.start()
        self.people = ClusterPeople(self.node, self.sim, self.flush)
        await self.people.start()
        from ..deals.service import DealService

        if isinstance(self.sim.deals, DealService):  # with a bank
            self.deal_relay = DealRelay(self.node, self.sim.deals, self.flush)
            await self.deal_relay.start()
        assert self.node.nc is not None
        self._release_sub = await self.node.nc.subscribe(release_subject(self.node.id), cb=self._on_release)
        self.sim.portal_gate = self.portal
        self.ready = True
        self._task = asyncio.create_task(self._reconcile_forever(), name="cluster-seats")

    def health(self) -> dict:
        """For /healthz: whether we can seat visitors, and whether NATS is connected now."""
        nc = self.node.nc
        return {"ready": self.ready, "process": self.node.id, "nats_connected": bool(nc and nc.is_connected),
                "instances": sorted(self.node.instances), "seated": len(self.seated),
                "chat_relayed": {"sent": self.chat.sent, "received": self.chat.received},
                "live_frames": {"sent": self.live.sent, "received": self.live.received},
                "deals_relayed": ({"sent": self.deal_relay.sent, "received": self.deal_relay.received}
                                  if self.deal_relay else None),
                "transfers": dict(self.transfers),
                "transfer_ms": {k: _quantiles(v) for k, v in self.timings.items()}}

    async def stop(self) -> None:
        self.sim.portal_gate = None
        await cancel_and_wait(self._task)
        for task in list(self._pending):
            task.cancel()
        if self._release_sub is not None:
            with contextlib.suppress(Exception):
                await self._release_sub.unsubscribe()
        await self.chat.stop()
        await self.live.stop()
        if self.people is not None:
            await self.people.stop()
        if self.deal_relay is not None:
            await self.deal_relay.stop()
        await self.node.stop()

    def _spawn(self, coro, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ------------------------------------------------------------------ joining

    async def on_frame(self, peer: Peer, data: bytes | str) -> None:
        """Hand ``data`` to the simulation, seating a fresh Hello first (a text frame is
        no Hello: the simulation answers it)."""
        hello = _fresh_hello(data) if peer.session is None else None
        if hello is None:
            self.sim.on_frame(peer, data)
            return
        if not self.ready:
            _refuse(peer, "this process is still joining the cluster; try again in a second")
            return
        assert isinstance(data, bytes), "a Hello is a binary frame"
        peer.hello_held = True  # the Hello came: the hello deadline is met, the wait for a seat has its own
        try:
            if hello.transfer is not None:
                await self._arrive(peer, data, hello, hello.transfer)
            else:
                await self._join(peer, data, hello)
        finally:
            peer.hello_held = False

    async def _join(self, peer: Peer, data: bytes, hello: p.Hello) -> None:
        try:
            async with asyncio.timeout(ADMIT_TIMEOUT):  # not wait_for: it can swallow a cancel on 3.11
                admission = await self.node.admit(self.spawn_hall, self.instance_cap)
        except ClusterUnavailable as exc:
            log.warning("no seat: the cluster does not answer", extra={"error": str(exc)})
            _refuse(peer, "the expo's directory does not answer; try again in a few seconds")
            return
        except TimeoutError:  # the request was withdrawn: it takes no seat
            log.warning("no seat: the directory is slow", extra={"waited": ADMIT_TIMEOUT})
            _refuse(peer, f"no seat could be found within {ADMIT_TIMEOUT:g} s (the expo's directory is slow); "
                          "try again in a few seconds")
            return
        if admission is None:
            _refuse(peer, f"every instance of the hall {self.spawn_hall!r} is full")
            return
        if admission.instance.process != self.node.id:  # the seat is at another process: go there
            visitor = self.sim.passes.verify(hello.visitor_token) if hello.visitor_token else None
            spawn = self.sim.expo.halls[0].spawn
            await self.node.put_handoff(HandOff(admission.token, admission.instance, spawn.x, spawn.y, 0.0,
                                                visitor or "", "", "", admission.expires_at))
            if peer.closing:  # the visitor went meanwhile: nobody will take the seat
                await self.node.cancel(admission)
                return
            peer.send(self._transfer(admission))
            peer.begin_close(None, "transferred")
            return
        self.sim.on_frame(peer, data)
        await self._seated(peer, admission)

    def _transfer(self, admission: Admission) -> p.Transfer:
        self.transfers["sent"] += 1
        return p.Transfer(admission.url, admission.token, max(0.0, admission.expires_at - self.node.clock()),
                          admission.instance.hall)

    async def _arrive(self, peer: Peer, data: bytes, hello: p.Hello, token: str) -> None:
        """A visitor sent here by another process's Transfer: take the seat (one use), have
        the giver let go of the avatar, then make it here where it walked in."""
        started = time.perf_counter()
        visitor = self.sim.passes.verify(hello.visitor_token) if hello.visitor_token else None
        handoff = await self.node.handoff(token)
        now = self.node.clock()
        if handoff is None or not handoff.usable_by(visitor, now) or handoff.instance.process != self.node.id \
                or handoff.instance.hall not in self.sim.hall_index:
            self.transfers["failed"] += 1
            _refuse(peer, "that transfer is unknown, used or expired: go back, or join afresh",
                    p.ErrorCode.TRANSFER_FAILED)
            return
        admission = Admission(handoff.instance, self.node.url, token, handoff.expires_at)
        if not await self.node.confirm(admission):  # someone presented it first
            self.transfers["failed"] += 1
            _refuse(peer, "that transfer was used already or expired", p.ErrorCode.TRANSFER_FAILED)
            return
        self._spawn(self.node.forget_handoff(token), "forget-handoff")
        if handoff.source and handoff.session:
            await self._ask_release(handoff)
        self.sim.arrivals[peer] = (self.sim.hall_index[handoff.instance.hall], handoff.x, handoff.y, handoff.yaw)
        try:
            self.sim.on_frame(peer, data)
        finally:
            self.sim.arrivals.pop(peer, None)
        session = peer.session
        if session is None:  # refused after all (banned, bad name...): the seat goes back
            await self.node.leave(admission.instance, visitor or "")
            return
        await self.node.present(session.visitor_id, session.name, admission.instance)
        self.transfers["taken"] += 1
        self.timings["taking"].append(time.perf_counter() - started)
        self.seated[session.id] = (admission.instance, session.visitor_id)
        self._tell_servers(peer)

    async def _ask_release(self, handoff: HandOff) -> None:
        assert self.node.nc is not None
        request = Release(handoff.session, handoff.visitor, handoff.token).encode()
        try:
            await self.node.nc.request(release_subject(handoff.source), request, timeout=RELEASE_TIMEOUT)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:  # the giver died: nothing to let go
            log.warning("the giving process did not answer a hand-off", extra={"process": handoff.source,
                                                                                "error": repr(exc)})

    async def _seated(self, peer: Peer, admission: Admission) -> None:
        session = peer.session
        if session is None:  # the simulation refused the Hello (name taken, bad version...)
            await self.node.cancel(admission)
            return
        if await self.node.confirm(admission):
            self.seated[session.id] = (admission.instance, session.visitor_id)
            await self.node.present(session.visitor_id, session.name, admission.instance)
        self._tell_servers(peer)

    # ------------------------------------------------------------------ leaving through a portal

    def portal(self, slots: np.ndarray, halls: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The simulation's call for avatars standing in a portal: True where the hop stays
        here (we have an instance of that hall), else a hand-off starts and the avatar waits."""
        expo_halls = self.sim.expo.halls
        here = np.ones(len(slots), dtype=bool)
        for i, (slot, hall) in enumerate(zip(slots.tolist(), halls.tolist(), strict=True)):
            hall_id = expo_halls[hall].id
            local = next((inst for inst in self.node.instances.values()
                          if inst.hall == hall_id and inst.process == self.node.id), None)
            if local is not None:  # a hop here; find a person learns the new hall
                session = self.sim.by_slot.get(slot)
                seat = self.seated.get(session.id) if session is not None else None
                if session is not None and seat is not None and seat[0].id != local.id:
                    self._spawn(self._move_seat(session.id, seat, local), "move-seat")
                continue
            here[i] = False
            session = self.sim.by_slot.get(slot)
            if session is None or session.id in self.leaving or session.peer is None:
                continue
            x, y = float(targets[i, 0]), float(targets[i, 1])
            yaw = float(self.sim.avatars.yaw[slot])
            self.leaving[session.id] = None
            self._spawn(self._hand_off(session, hall_id, x, y, yaw), "hand-off")
        return here

    async def _move_seat(self, session_id: str, seat: tuple[InstanceRecord, str], target: InstanceRecord) -> None:
        """The seat follows a hop inside this process, so each instance's count (and cap) is of
        the visitors in it. Under the seats lock: the reconciliation does not give back the old
        seat of a session that ended meanwhile while it is moving."""
        async with self._seats_lock:
            if self.seated.get(session_id) != seat:
                return  # ended, or moved again meanwhile
            if await self.node.move_seat(seat[1], seat[0], target):
                self.seated[session_id] = (target, seat[1])

    async def _hand_off(self, session: Session, hall_id: str, x: float, y: float, yaw: float) -> None:
        started = time.perf_counter()
        try:
            admission = await self.node.admit(hall_id, self.instance_cap)
        except ClusterUnavailable as exc:
            log.warning("no hand-off: the cluster does not answer", extra={"error": str(exc)})
            admission = None
        if admission is None or admission.instance.process == self.node.id or session.peer is None \
                or session.id not in self.sim.sessions:
            self.leaving.pop(session.id, None)
            if admission is not None:
                await self.node.cancel(admission)
            if admission is None and session.peer is not None:
                session.send(p.Error(p.ErrorCode.SERVER_FULL.value, f"the hall {hall_id!r} is full; try again soon", 0))
            return
        self.leaving[session.id] = admission
        await self.node.put_handoff(HandOff(admission.token, admission.instance, x, y, yaw, session.visitor_id,
                                            self.node.id, session.id, admission.expires_at))
        session.send(self._transfer(admission))
        self.timings["giving"].append(time.perf_counter() - started)
        if session.peer is not None:
            self.flush(session.peer)  # every millisecond of a hand-off is the visitor's wait
        # the taker asks for the avatar when the visitor arrives; until then it stays here
        await asyncio.sleep(max(0.0, admission.expires_at - self.node.clock()))
        if self.leaving.get(session.id) is admission:  # never taken: the seat there expired, the avatar is still ours
            del self.leaving[session.id]
            self.transfers["failed"] += 1

    async def _on_release(self, msg: Msg) -> None:
        """The taking process has the visitor's seat: let go of the avatar now."""
        try:
            release = Release.decode(msg.data)
        except (ValueError, TypeError, KeyError):
            return
        session = self.sim.sessions.get(release.session)
        admission = self.leaving.get(release.session)
        released = session is not None and session.visitor_id == release.visitor and admission is not None \
            and admission.token == release.token
        if released and session is not None:
            del self.leaving[session.id]
            self.sim.hand_over(session)
            self.transfers["released"] += 1
            seat = self.seated.pop(session.id, None)
            if seat is not None:
                self._spawn(self.node.leave(*seat), "leave")
        with contextlib.suppress(Exception):
            await msg.respond(json.dumps({"released": released}).encode())

    # ------------------------------------------------------------------ the rest

    def _tell_servers(self, peer: Peer) -> None:
        """Where to go if this process dies (the client core tries them in turn)."""
        if peer.session is not None:
            peer.send(p.Servers(tuple(self.node.live_urls())))

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_INTERVAL)
            try:
                await self.reconcile()
            except Exception as exc:  # NATS away: the heartbeat's rebuild and the next round retry
                log.warning("seat reconciliation failed", extra={"error": repr(exc)})

    async def reconcile(self) -> None:
        """Give back the seats of sessions that ended; report our load; tell everyone when
        the other processes changed."""
        async with self._seats_lock:
            for session_id, (instance, visitor) in list(self.seated.items()):
                if session_id not in self.sim.sessions:
                    del self.seated[session_id]
                    await self.node.leave(instance, visitor)
        self.node.load = self.sim.connected
        servers = tuple(self.node.live_urls())
        if servers != self._servers:
            self._servers = servers
            for session in self.sim.sessions.values():
                if session.peer is not None:
                    session.peer.send(p.Servers(servers))


def _quantiles(seconds: deque[float]) -> dict[str, float] | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    return {q: round(ordered[min(len(ordered) - 1, int(f * len(ordered)))] * 1e3, 1)
            for q, f in (("p50", 0.5), ("p99", 0.99))}


def _fresh_hello(data: bytes | str) -> p.Hello | None:
    """A Hello that joins afresh (not a resume: a resumed session keeps its seat)."""
    if not isinstance(data, (bytes, bytearray)) or p.peek_type(data) != p.Hello.TYPE:
        return None
    try:
        hello = p.decode_client(data)
    except p.ProtocolError:
        return None  # the simulation answers the bad frame
    return hello if isinstance(hello, p.Hello) and hello.resume_token is None else None


def _refuse(peer: Peer, message: str, code: p.ErrorCode = p.ErrorCode.SERVER_FULL) -> None:
    """Say why and close, unless the connection is closing already (the client went, or the
    process is stopping): it has its reason, and a second close is no transition."""
    if peer.closing:
        return
    peer.send(p.Refused(code.value, message))
    peer.begin_close(code, message)
