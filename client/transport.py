"""The asyncio shell around ClientCore: a websockets connection, the input and ping
schedules, and reconnection with resume.

Everything protocol-shaped happens in the core; this module only moves bytes and keeps
time. Inputs are taken on a fixed schedule of one per server tick from the current
``Controls`` (the keys held), as the server applies one tick of input per tick; the core
sends a frame only when they change or a hold runs out. The schedule is an
``InputSchedule``: each transport has its own, or many share one (a swarm of bots in one
process: one timer a tick for all of them, not a task each). The socket is
``client.connection.ServerLink`` (websockets' sans-I/O protocol under our own asyncio
protocol): messages from the server are handled as soon as they are parsed, and frames are
written synchronously, in order from every sender, without a lock.

The transport is used from one event loop. ``client.threaded`` runs it in a thread of its
own for an application (Panda3D) that owns the main thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.exceptions import InvalidHandshake, InvalidURI

from . import events as ev
from .connection import ServerLink, open_link
from .core import ClientCore, ClientState, NotJoined

log = logging.getLogger("expo.client")


@dataclass(frozen=True, slots=True)
class Controls:
    """What the visitor is doing now: a direction in hall axes (length <= 1), a heading,
    running or not. Replaced whole, so another thread can set it without a lock."""

    move_x: float = 0.0
    move_y: float = 0.0
    yaw: float = 0.0
    run: bool = False

    @property
    def moving(self) -> bool:
        return self.move_x != 0.0 or self.move_y != 0.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits a random time in
    [(1 - jitter) * d, d] with d = min(maximum, initial * factor**n), so a crowd of clients
    that lost the server together does not come back in one wave."""

    initial: float = 0.5
    maximum: float = 15.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        d = min(self.maximum, self.initial * self.factor**attempt)
        return d * (1.0 - self.jitter * rng.random())


@dataclass(slots=True)
class TrafficCounters:
    """Frames and payload bytes through this transport, for load figures."""

    frames_in: int = 0
    bytes_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    inputs_held: int = 0  # ticks whose input was held back, too many being unacknowledged
    sent_by_type: Counter[int] = field(default_factory=Counter)  # message type -> frames


class InputSchedule:
    """One timer for the inputs of every member transport, at the server's tick rate.

    Members are served in ``phases`` groups spread over the tick, so a swarm's inputs reach
    the server (and its snapshots come back) spread out, as people's would, not in one
    burst a tick. Ticks missed while the loop was held up are skipped, not sent in a burst:
    the server applies one tick of input per tick, so a burst would only wait in its queue."""

    def __init__(self, phases: int = 4) -> None:
        self.dt: float | None = None
        self.phases = phases
        self._members: dict[Transport, None] = {}  # insertion-ordered set
        self._task: asyncio.Task | None = None

    def add(self, transport: Transport, dt: float) -> None:
        if self._members and dt != self.dt:
            raise ValueError(f"this schedule ticks every {self.dt} s, not {dt} s")
        self.dt = dt
        self._members[transport] = None
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="inputs")

    def remove(self, transport: Transport) -> None:
        self._members.pop(transport, None)
        if not self._members and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        phase = 0
        while self._members:
            dt = self.dt
            assert dt is not None  # set by the first add
            step = dt / self.phases
            next_at += step
            delay = next_at - loop.time()
            if delay < -dt:
                next_at += step * math.floor(-delay / step)
                delay = next_at - loop.time()
            await asyncio.sleep(max(0.0, delay))
            for transport in list(self._members)[phase :: self.phases]:
                try:
                    transport.input_tick(dt)
                except Exception:  # one member's failure must not stop the others' inputs
                    log.exception("input tick failed")
            phase = (phase + 1) % self.phases


@dataclass(slots=True)
class _SessionState:
    """What one connection has seen so far."""

    joined: bool = False
    retry_now: bool = False  # the resume token was refused: join afresh without waiting
    pings: asyncio.Task | None = None
    transfer_to: str | None = None  # cluster: a Transfer named this process; go there at once
    transfer_refused: bool = False  # the process a Transfer named refused us: go back at once


class Transport:
    """Runs one ClientCore over a WebSocket until ``close`` or a final refusal.

    Events go to ``on_event`` when given, else into ``self.events`` (an asyncio.Queue).
    ``before_input(now)`` is called just before each scheduled input, so a driver (a bot,
    a test) can steer from the newest state. ``schedule`` is shared by transports in one
    event loop, else each has its own. ``clock`` and ``rng`` are injectable.
    """

    def __init__(
        self,
        core: ClientCore,
        url: str,
        *,
        on_event: Callable[[ev.Event], None] | None = None,
        before_input: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        backoff: Backoff = Backoff(),
        ping_interval: float = 1.5,
        reconnect: bool = True,
        open_timeout: float = 10.0,
        schedule: InputSchedule | None = None,
    ) -> None:
        self.core = core
        self.url = url
        self.events: asyncio.Queue[ev.Event] = asyncio.Queue()
        self._on_event = on_event or self.events.put_nowait
        self.before_input = before_input
        self.clock = clock
        self.rng = rng or random.Random()
        self.backoff = backoff
        self.ping_interval = ping_interval
        self.reconnect = reconnect
        self.open_timeout = open_timeout
        self.controls = Controls()
        self.traffic = TrafficCounters()
        self.lock = threading.Lock()  # guards the core for readers in other threads
        self.connection: ServerLink | None = None
        self.schedule = schedule or InputSchedule(phases=1)
        self._joined = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._last_yaw: float | None = None
        self._session_state = _SessionState()
        self._came_from: str | None = None  # following a Transfer: the process that keeps our avatar
        self._tried = 0  # other processes tried since the last Welcome

    # ------------------------------------------------------------------ the app's side

    def set_controls(self, move_x: float = 0.0, move_y: float = 0.0, yaw: float = 0.0, run: bool = False) -> None:
        self.controls = Controls(move_x, move_y, yaw, run)

    async def wait_joined(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._joined.wait()

    async def command(self, do: Callable[[ClientCore], object]) -> None:
        """Run a core command (``lambda core: core.chat(0, "hi")``) and send what it queued.
        Raises NotJoined when there is no avatar right now."""
        with self.lock:
            do(self.core)
        self.flush()

    async def close(self, timeout: float = 2.0) -> None:
        """Leave for good: Bye, then close the socket; ``run`` returns."""
        self._stopping = True
        self._stopped.set()
        with self.lock:
            self.core.bye()
        link = self.connection
        if link is not None:
            self.flush()
            await link.close(timeout)  # a server that stopped reading gets no closing handshake

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        attempt = 0
        while not self._stopping and self.core.state is not ClientState.CLOSED:
            opened_at = self.clock()
            reason = "closed"
            retry_now = False
            session = self._session_state = _SessionState()
            try:
                link = await open_link(self.url, self._receive, self.open_timeout)
                if self._stopping:  # close() came while connecting, with no link to close
                    await link.close()
                    reason = "left while connecting"
                else:
                    self.connection = link
                    try:
                        joined, retry_now = await self._session(link, opened_at)
                    finally:
                        await link.close()
                    if joined:
                        attempt = 0
                    if link.close_code is not None:
                        reason = f"closed {link.close_code} {link.close_reason}".strip()
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                retry_now = self._unreachable()
            finally:
                self.connection = None
                self._joined.clear()
                with self.lock:
                    self.core.connection_lost()
            if not self._stopping and self._follow(session):
                continue
            if self._stopping or self.core.state is ClientState.CLOSED or not self.reconnect:
                self._on_event(ev.Disconnected(reason, None))
                return
            delay = 0.0 if retry_now else self.backoff.delay(attempt, self.rng)
            attempt += 0 if retry_now else 1
            self._on_event(ev.Disconnected(reason, delay))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # not wait_for: on 3.11 it can swallow a cancel
                    await self._stopped.wait()

    def _follow(self, session: _SessionState) -> bool:
        """Cluster: after a connection that ended in a Transfer, go to the process it named
        at once; after one the named process refused, go back at once. True to reconnect now."""
        if session.transfer_to is not None:
            self._came_from = self._came_from or self.url
            self.url = session.transfer_to
            return True
        if session.transfer_refused and self._came_from is not None:
            self.url, self._came_from = self._came_from, None
            return True
        return False

    def _unreachable(self) -> bool:
        """The process we tried does not answer. Following a Transfer: go back to the one
        that keeps our avatar. Else, in a cluster, try the next process we know of (the
        last ``Servers``; a resume there fails and we join afresh as the same visitor).
        True to try again at once."""
        with self.lock:
            if self.core.transfer is not None and self._came_from is not None:
                self.core.transfer_failed()
                self.url, self._came_from = self._came_from, None
                return True
            known = [self.url, *(u for u in self.core.servers if u != self.url)]
        if len(known) < 2:
            return False
        self.url = known[1]
        self._tried += 1
        log.info("server unreachable: trying another hall process", extra={"url": self.url})
        return self._tried < len(known)  # each once at once; then with the backoff, so a dead cluster is not hammered

    async def _session(self, link: ServerLink, opened_at: float) -> tuple[bool, bool]:
        """One connection, from Hello to close. Returns (joined, retry at once)."""
        session = self._session_state
        with self.lock:
            self.core.connection_made(self.clock(), opened_at)
        self.flush()
        try:
            await link.closed
        finally:
            self.schedule.remove(self)
            if session.pings is not None:
                session.pings.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await session.pings
        return session.joined, session.retry_now

    def _receive(self, data: bytes) -> None:
        """One message from the server, as soon as it is parsed."""
        now = self.clock()
        traffic = self.traffic
        traffic.frames_in += 1
        traffic.bytes_in += len(data)
        with self.lock:
            events = self.core.receive(data, now)
        session = self._session_state
        for event in events:
            if isinstance(event, ev.Transferring):
                session.transfer_to = event.url
                link = self.connection
                if link is not None:  # this process keeps the avatar until the other one has us
                    link.close_now()
            elif isinstance(event, ev.Refused) and self._came_from is not None:
                session.transfer_refused = True
            if isinstance(event, ev.Joined):
                self._tried = 0
                if event.transferred:
                    self._came_from = None
                session.joined = True
                self._joined.set()
                self._last_yaw = None
                if session.pings is None:
                    self.schedule.add(self, 1.0 / event.welcome.tick_rate)
                    session.pings = asyncio.create_task(self._pings())
            elif isinstance(event, ev.Refused) and event.code == "resume_failed":
                session.retry_now = True
            self._on_event(event)

    def flush(self) -> None:
        """Write what the core queued, in order, now. Nothing is written once the
        connection is closing (the core's reconnection handles what was lost). Most ticks
        of a walk queue nothing (the input in force holds): those return at once."""
        if not self.core.has_data_to_send:  # the core is written only on this loop's thread
            return
        with self.lock:
            frames = self.core.data_to_send()
        link = self.connection
        if link is None or not frames or not link.open:
            return
        traffic = self.traffic
        for frame in frames:
            link.send_binary(frame)
            traffic.frames_out += 1
            traffic.bytes_out += len(frame)
            traffic.sent_by_type[frame[1]] += 1  # [type, ...] as a fixarray: the type is byte 1
        link.send_data()

    def input_tick(self, dt: float) -> None:
        """The schedule's call, once a tick: one input while moving or turning (the core
        sends a frame only when it changes or its hold runs out), one to stop, nothing while
        standing still, and none while more are unacknowledged than a round trip explains
        (the server's queue would only grow the input-to-ack delay)."""
        now = self.clock()
        if self.before_input is not None:
            self.before_input(now)
        c = self.controls
        with self.lock:
            core = self.core
            if not core.joined or (not c.moving and c.yaw == self._last_yaw and not core.holding):
                return
            behind = core.unacknowledged
            if behind > 2 and behind > self.max_in_flight(dt):
                self.traffic.inputs_held += 1
                return
            core.send_input(c.move_x, c.move_y, c.yaw, c.run, now)
        self._last_yaw = c.yaw
        self.flush()

    def max_in_flight(self, dt: float) -> int:
        """Inputs that may be unacknowledged: those a round trip covers, plus two ticks of slack."""
        rtt = self.core.timing.rtt or 0.0
        return math.ceil((rtt + 2 * self.core.timing.rtt_deviation) / dt) + 2

    async def _pings(self) -> None:
        while True:
            with self.lock:
                try:
                    self.core.ping(self.clock())
                except NotJoined:
                    return
            self.flush()
            await asyncio.sleep(self.ping_interval)
