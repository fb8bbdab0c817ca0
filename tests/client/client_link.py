"""A ClientCore wired to the real sans-I/O Simulation in memory: the server's own rules on
one side, the client core on the other, frames passed as bytes, time from a ManualClock."""

from __future__ import annotations

import protocol as p
from client import events as ev
from client.core import ClientCore
from server.clock import ManualClock
from server.config import ServerConfig
from server.simulation import Peer, Session, Simulation
from server.snapshots import frame_payload
from world.loader import default_expo_path, load_expo
from world.model import Expo

_DEFAULT_EXPO: Expo | None = None


def default_expo() -> Expo:
    global _DEFAULT_EXPO
    if _DEFAULT_EXPO is None:
        _DEFAULT_EXPO = load_expo(default_expo_path())
    return _DEFAULT_EXPO


class Link:
    """One connection between a client core and the simulation."""

    def __init__(self, world: World, core: ClientCore) -> None:
        self.world, self.core = world, core
        self.peer = Peer()
        self.events: list[ev.Event] = []
        world.sim.open_peer(self.peer)
        world.links.append(self)
        core.connection_made(world.clock.monotonic())
        self.pump()

    def pump(self) -> list[ev.Event]:
        """Deliver the client's frames to the server and the server's to the client."""
        for frame in self.core.data_to_send():
            self.world.sim.on_frame(self.peer, frame)
        new: list[ev.Event] = []
        frames, self.peer.outbox = self.peer.outbox, []
        for frame in frames:
            message = frame_payload(frame) if isinstance(frame, memoryview) else frame
            new += self.core.receive(message, self.world.clock.monotonic())
        self.events += new
        return new

    def drop(self) -> None:
        """The socket breaks: both sides notice."""
        self.world.sim.on_disconnect(self.peer)
        self.world.links.remove(self)
        self.core.connection_lost()

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


class World:
    def __init__(self, expo: Expo | None = None, **config) -> None:
        self.clock = ManualClock(10.0)
        self.config = ServerConfig(**{"max_clients": 64, **config})
        self.sim = Simulation(expo or default_expo(), self.config, self.clock)
        self.links: list[Link] = []

    def join(self, name: str, **core_options) -> Link:
        link = Link(self, ClientCore(name, **core_options))
        assert link.of(ev.Joined), link.events
        return link

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            for link in list(self.links):
                link.pump()
            self.clock.advance(self.config.dt)
            self.sim.tick()
            for link in list(self.links):
                link.pump()

    def session_of(self, link: Link) -> Session:
        return next(s for s in self.sim.sessions.values() if s.entity == link.core.entity)

    def server_pos(self, link: Link) -> tuple[float, float]:
        x, y = self.sim.avatars.pos[self.session_of(link).slot]
        return float(x), float(y)

    def server_hall(self, link: Link) -> int:
        return int(self.sim.avatars.hall[self.session_of(link).slot])


def snapshot_bytes(tick: int, server_time: float, own: p.OwnState, deltas: list[int], ack: int = 0) -> bytes:
    return p.encode(p.Snapshot(tick, server_time, ack, own, (), (), tuple(deltas)))


def walk_thread(thread, waypoints: list[tuple[float, float]], timeout: float = 40.0) -> None:
    """Walk a plain client (another visitor, staff) along ``waypoints``, as the app's autopilot walks."""
    import time

    from client.desktop.steering import Autopilot

    deadline = time.monotonic() + timeout
    pilot, yaw = Autopilot(waypoints), 0.0
    while not pilot.done:
        assert time.monotonic() < deadline, f"did not reach {waypoints[-1]}"
        scene = thread.scene()
        if scene is not None:
            controls = pilot.update(scene.own.x, scene.own.y, yaw, 0.05)
            yaw = controls.yaw
            thread.set_controls(controls.move_x, controls.move_y, controls.yaw, controls.run)
        time.sleep(0.05)
    thread.set_controls(0.0, 0.0, yaw, False)
