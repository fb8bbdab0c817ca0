"""One headless visitor: a ClientCore in its cheap mode (no view kept, no prediction) on a
Transport, steered towards a target point, recording what a load tester measures.

Bots steer from the server's word on their own position: a tick or two late, which costs
nothing but a little overshoot, and saves running the motion rules hundreds of times a tick.
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from protocol.deals import DealStatus
from protocol.messages import OwnState
from world.model import Expo, Hall, Portal, Vec2

from .. import events as ev
from ..core import ClientCore
from ..pathfind import route
from ..transport import InputSchedule, Transport
from .stats import Recorder

if TYPE_CHECKING:
    from bank.client import VisitorClient

ARRIVED = 0.6  # metres from the target that count as there
COUNTER_OF_EVENT = {  # the Recorder's counter of each kind of message received
    ev.SnapshotReceived: "in.Snapshot", ev.Entered: "in.Enter", ev.Left: "in.Leave", ev.PongReceived: "in.Pong",
    ev.ChatReceived: "in.ChatLine", ev.OrderUpdated: "in.OrderStatus", ev.ReceiptReceived: "in.Receipt",
    ev.StockReceived: "in.Stock", ev.InventoryReceived: "in.Inventory", ev.BoothEffectSeen: "in.BoothEffect",
    ev.ErrorReceived: "in.Error", ev.Closed: "in.Closing", ev.Joined: "in.Welcome", ev.Refused: "in.Refused",
}


class Crossing:
    """One walk through a portal, as the bot's events see it: when the portal was entered
    (the first snapshot showing the own avatar in its circle, or the Transfer if that comes
    first; a hop inside one process can land between two snapshots, so failing both it is
    the last snapshot in the old hall) and when the first snapshot in the new hall came."""

    def __init__(self, portal: Portal, from_hall: int) -> None:
        self.portal = portal
        self.from_hall = from_hall
        self.entered_at: float | None = None
        self.last_old_snapshot: float | None = None
        self.transferred = False  # followed a Transfer to another hall process
        self.arrived = asyncio.Event()
        self.counted = False

    def on_snapshot(self, hall: int, x: float, y: float, now: float) -> float | None:
        """The hand-off in seconds when this snapshot is the first in the new hall."""
        if self.arrived.is_set():
            return None
        if hall != self.from_hall:
            self.arrived.set()
            since = self.entered_at if self.entered_at is not None else self.last_old_snapshot
            return None if since is None else now - since
        self.last_old_snapshot = now
        if self.entered_at is None and math.hypot(x - self.portal.position.x, y - self.portal.position.y) <= self.portal.radius:
            self.entered_at = now
        return None


class Bot:
    def __init__(self, index: int, name: str, url: str, rng: random.Random, recorder: Recorder,
                 clock: Callable[[], float], schedule: InputSchedule | None = None, run_id: str = "",
                 staff_pass: str | None = None) -> None:
        self.index = index
        self.rng = rng
        self.run_id = run_id
        self.recorder = recorder
        self.clock = clock
        colour = rng.randrange(0x1000000)
        self.core = ClientCore(name, colour, rng.randrange(256), view=False, predict=False, staff_pass=staff_pass)
        self.transport = Transport(self.core, url, on_event=self._on_event, before_input=self._steer,
                                   clock=clock, rng=random.Random(rng.random()), schedule=schedule)
        self.target: tuple[float, float] | None = None
        self.running = False
        self.facing = rng.uniform(-math.pi, math.pi)
        self.joined = asyncio.Event()
        self.meter: tuple[float, int, int] | None = None  # (since, bytes in, bytes out) for per-bot rates
        self.tick_interval = 0.05
        self._last_snapshot: float | None = None
        self._waiters: list[tuple[Callable[[ev.Event], bool], asyncio.Future]] = []
        self.stopping = False
        self._bank: VisitorClient | None = None  # opened at the first purchase
        self._linked = False  # the server knows the account is this bot's
        self.meetings: list[tuple[float, float]] = []  # (start, end) of the meetings it kept, UTC
        self.crossing: Crossing | None = None  # the portal it is walking through, if any
        self.visitor_ids: set[str] = set()  # one, however many processes it crossed to
        self.on_deal: Callable[[DealStatus], None] | None = None  # booth staff: every deal of the booth
        self.watchers: list[Callable[[ev.Event], None]] = []  # see every event, unlike expect's one-off waiters

    # ------------------------------------------------------------------ state

    def purchase_key(self) -> str:
        """A fresh idempotency key for an order: from the bot's random stream, so a seed
        replays the same choices, and from the run, so a run with the same seed against
        the same server does not replay the last run's orders (which the server would
        answer, rightly, with their old outcome)."""
        key = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return f"{self.run_id}-{key}" if self.run_id else key

    @property
    def expo(self) -> Expo:
        assert self.core.expo is not None
        return self.core.expo

    @property
    def own(self) -> OwnState:
        assert self.core.own is not None, "a bot acts only once it has joined"
        return self.core.own

    @property
    def hall(self) -> Hall:
        return self.expo.halls[self.own.hall]

    @property
    def position(self) -> tuple[float, float]:
        s = self.own.state
        return s.x / 100.0, s.y / 100.0

    # ------------------------------------------------------------------ events

    def _on_event(self, event: ev.Event) -> None:
        rec = self.recorder
        counter = COUNTER_OF_EVENT.get(type(event))
        if counter is not None:
            rec.count(counter)
        match event:
            case ev.SnapshotReceived():
                now = event.received_at
                own = self.core.own
                if self.crossing is not None and own is not None:
                    handoff = self.crossing.on_snapshot(own.hall, own.x / 100.0, own.y / 100.0, self.clock())
                    if handoff is not None:
                        rec.sample("handoff", handoff)
                    if self.crossing.arrived.is_set() and not self.crossing.counted:
                        self.crossing.counted = True  # here, not in cross(): a crossing at the deadline counts too
                        rec.count("portal.crossings")
                        rec.count("portal.transferred" if self.crossing.transferred else "portal.in_process")
                if self._last_snapshot is not None:
                    interval = now - self._last_snapshot
                    rec.sample("snapshot_interval", interval)
                    rec.sample("snapshot_jitter", abs(interval - self.tick_interval))
                self._last_snapshot = now
                rec.sample("snapshot_bytes", event.size)
                if event.ack_latency is not None:
                    rec.sample("ack", event.ack_latency)
                if event.delivery is not None and self.core.timing.synced:
                    rec.sample("delivery", event.delivery)
            case ev.PongReceived():
                rec.sample("rtt", event.rtt)
            case ev.DealUpdated() if self.on_deal is not None:
                self.on_deal(event.message)
            case ev.Transferring() if not event.at_hello:
                if self.crossing is not None:
                    self.crossing.transferred = True
                    if self.crossing.entered_at is None:
                        self.crossing.entered_at = self.clock()
            case ev.Joined():
                self.visitor_ids.add(event.welcome.visitor_id)
                self.tick_interval = 1.0 / event.welcome.tick_rate
                crossed = event.transferred and self.meter is not None  # not a Transfer at the first Hello
                if event.connect_time is not None and not event.resumed and not crossed:
                    rec.sample("connect", event.connect_time, always=True)
                rec.count("bots.transferred" if crossed else "bots.resumed" if event.resumed else "bots.joined")
                if self.meter is None:
                    self.start_meter()  # after the Welcome: the rates are of the steady stream
                self.joined.set()
            case ev.Refused():
                rec.error(f"refused_{event.code}")
            case ev.ErrorReceived():
                rec.error(event.code)
            case ev.ProtocolViolation():
                rec.error("protocol_violation")
            case ev.Closed():
                if not self.stopping:
                    rec.error(f"closing_{event.code}")
            case ev.Disconnected():
                self._last_snapshot = None
                if not self.stopping:
                    rec.error("disconnected")
                self.joined.clear()
        for watch in self.watchers:
            watch(event)
        for waiter in self._waiters[:]:
            test, future = waiter
            if not future.done() and test(event):
                future.set_result(event)
                self._waiters.remove(waiter)

    def expect(self, test: Callable[[ev.Event], bool], timeout: float) -> Coroutine[Any, Any, ev.Event | None]:
        """The next event passing ``test``, or None after ``timeout`` seconds. It is looked
        for from this call on, not from the first await: messages are handled as soon as
        they arrive, so the answer to a request sent after this call can come before it."""
        future = asyncio.get_running_loop().create_future()
        waiter = (test, future)
        self._waiters.append(waiter)
        return self._wait(waiter, timeout)

    async def _wait(self, waiter: tuple[Callable[[ev.Event], bool], asyncio.Future], timeout: float) -> ev.Event | None:
        try:
            async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancel (Swarm._live)
                return await waiter[1]
        except TimeoutError:
            return None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    # ------------------------------------------------------------------ moving

    def _steer(self, now: float) -> None:
        """Before each input: head for the target, or stand still."""
        if self.target is None or self.core.own is None:
            self.transport.set_controls(0.0, 0.0, self.facing, False)
            return
        x, y = self.position
        dx, dy = self.target[0] - x, self.target[1] - y
        dist = math.hypot(dx, dy)
        if dist < ARRIVED:
            self.transport.set_controls(0.0, 0.0, self.facing, False)
            return
        self.facing = math.atan2(dy, dx)
        self.transport.set_controls(dx / dist, dy / dist, self.facing, self.running)

    async def walk_to(self, x: float, y: float, run: bool = False, timeout: float = 30.0) -> bool:
        """Walk until within ARRIVED of (x, y); sidesteps when a wall holds it up. False when
        it did not get there in time (or changed hall through a portal)."""
        hall = self.own.hall
        self.target, self.running = (x, y), run
        deadline = self.clock() + timeout
        best, best_at = math.inf, self.clock()
        try:
            while self.clock() < deadline:
                await asyncio.sleep(0.25)
                if self.core.own is None or self.core.own.hall != hall:
                    return False
                px, py = self.position
                dist = math.hypot(x - px, y - py)
                if dist < ARRIVED:
                    return True
                if dist < best - 0.3:
                    best, best_at = dist, self.clock()
                elif self.clock() - best_at > 1.5:  # stuck on a wall: step aside, then retry
                    angle = math.atan2(y - py, x - px) + self.rng.choice((-1, 1)) * math.pi / 2
                    self.target = self.clamp_to_hall(px + 3 * math.cos(angle), py + 3 * math.sin(angle))
                    await asyncio.sleep(1.0)
                    self.target = (x, y)
                    best, best_at = math.inf, self.clock()
            self.recorder.count("nav.gave_up")
            return False
        finally:
            self.target = None

    def clamp_to_hall(self, x: float, y: float, margin: float = 1.0) -> tuple[float, float]:
        hall = self.hall
        return min(max(x, margin), hall.width - margin), min(max(y, margin), hall.depth - margin)

    def random_point(self, margin: float = 2.0) -> tuple[float, float]:
        """A point of the hall outside every booth."""
        hall = self.hall
        booths = self.expo.booths_in(hall.id)
        for _ in range(20):
            x = self.rng.uniform(margin, hall.width - margin)
            y = self.rng.uniform(margin, hall.depth - margin)
            if not any(b.footprint.contains(Vec2(x, y), 1.0) for b in booths):
                break
        return x, y

    async def cross(self, portal: Portal, timeout: float = 45.0) -> bool:
        """Run into ``portal`` (of the bot's hall) and on until the first snapshot in the
        hall beyond it, at this process or, after a Transfer, another one. False (counted as
        ``error.portal_failed``) when it did not arrive within ``timeout`` seconds."""
        crossing = self.crossing = Crossing(portal, self.own.hall)
        try:
            deadline = self.clock() + timeout
            side = 1.0

            def still_here() -> bool:
                return not crossing.arrived.is_set() and self.core.own is not None and self.core.own.hall == crossing.from_hall

            while not crossing.arrived.is_set() and self.clock() < deadline:
                if still_here():
                    # around the booths: a row of them between a booth and the portal held the
                    # straight-line walker up for good
                    goal = (portal.position.x, portal.position.y)
                    for x, y in route(self.expo, self.hall, self.position, goal):
                        if not await self.walk_to(x, y, run=True, timeout=deadline - self.clock()):
                            break
                    await asyncio.sleep(0.3)
                    if still_here():
                        # in the circle while the portal still rested after the last hop: the server
                        # moves an avatar through only on a step, so one standing at the centre
                        # never goes; a step within the circle, now the rest is over, does
                        side = -side
                        await self.walk_to(goal[0] + side, goal[1], run=False, timeout=min(2.0, deadline - self.clock()))
                if not crossing.arrived.is_set():
                    await asyncio.sleep(0.1)
            if not crossing.arrived.is_set():
                self.recorder.error("portal_failed")
                return False
            return True
        finally:
            self.crossing = None

    async def linger(self, seconds: float) -> None:
        """Stand and look around."""
        end = self.clock() + seconds
        while self.clock() < end:
            self.facing = math.remainder(self.facing + self.rng.uniform(-0.6, 0.6), math.tau)  # Input.yaw is within ±7
            await asyncio.sleep(min(1.0, max(0.0, end - self.clock())))

    # ------------------------------------------------------------------ paying

    async def bank_account(self, bank_url: str, key: str) -> VisitorClient | None:
        """This bot's own bank account (opened on first use, in USD with the bank's welcome
        balance; the bank converts currencies), linked to its visitor at the server with the
        bank's proof, as orders require. None when the server did not confirm the link."""
        if self._bank is None:
            from bank.client import VisitorClient

            bank = VisitorClient(bank_url)
            try:
                await bank.open_account(self.core.name, "USD", idempotency_key=f"open-{self.core.name}-{key}")
            except BaseException:
                await bank.aclose()
                raise
            self._bank = bank
        if not self._linked:
            assert self.core.visitor_id is not None, "joined: the Welcome named the visitor"
            proof = await self._bank.account_proof(self.core.visitor_id)
            linked = asyncio.ensure_future(self.expect(lambda e: isinstance(e, ev.AccountLinked), 10.0))
            await self.transport.command(lambda core: core.link_account(proof.proof))
            self._linked = await linked is not None
        return self._bank if self._linked else None

    async def pay(self, bank_url: str, intent_id: str, key: str) -> None:
        """Confirm a payment intent with this bot's own bank account."""
        bank = await self.bank_account(bank_url, key)
        if bank is None:
            raise ConnectionError("the server did not link the bank account")
        await bank.confirm_intent(intent_id, idempotency_key=f"confirm-{key}")

    # ------------------------------------------------------------------ lifetime

    async def close(self) -> None:
        self.stopping = True
        self.account_traffic()
        await self.transport.close()
        if self._bank is not None:
            await self._bank.aclose()

    def start_meter(self) -> None:
        t = self.transport.traffic
        self.meter = (self.clock(), t.bytes_in, t.bytes_out)

    def account_traffic(self) -> None:
        """Per-bot payload bytes per second since the meter started (the Welcome, or the
        end of the warm-up)."""
        if self.meter is None or not self.recorder.enabled:
            return
        since, bytes_in, bytes_out = self.meter
        elapsed = self.clock() - since
        if elapsed > 1.0:
            t = self.transport.traffic
            self.recorder.sample("bytes_in_per_bot", (t.bytes_in - bytes_in) / elapsed)
            self.recorder.sample("bytes_out_per_bot", (t.bytes_out - bytes_out) / elapsed)
