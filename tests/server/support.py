"""A small two-hall expo built in code, helpers to drive the simulation without sockets, and
one to read a raw socket to its end."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from decimal import Decimal

import protocol as p
from server.clock import ManualClock
from server.config import ServerConfig
from server.simulation import Peer, Simulation
from world.model import (Booth, Colour, Display, Expo, Facing, Hall, HallTheme, Portal, Primitive,
                         Product, Rect, StaffMember, Vec2)

GREY = Colour(128, 128, 128)


def small_expo() -> Expo:
    theme = HallTheme(GREY, GREY, GREY)
    halls = (
        Hall("main", "Main Hall", 100.0, 60.0, Vec2(50.0, 5.0), theme,
             portals=(Portal("to-annex", Vec2(95.0, 30.0), 1.5, "annex", Vec2(5.0, 20.0)),),
             keynote=Vec2(50.0, 50.0)),
        Hall("annex", "Annex", 40.0, 40.0, Vec2(20.0, 5.0), theme,
             portals=(Portal("to-main", Vec2(2.0, 35.0), 1.5, "main", Vec2(90.0, 30.0)),)),
    )
    product = Product("HONEY-1", "Mountain honey", "500 g jar", Decimal("4500.00"), "KZT", 10, 2,
                      Display(Primitive.CYLINDER, None, GREY))
    carpet = Product("CARPET-1", "Silk carpet", "Hand-knotted, 3 x 4 m", Decimal("9999999.00"), "KZT", 1, 1,
                     Display(Primitive.BOX, None, GREY))
    booth = Booth("kz-honey", "main", Rect(Vec2(30.0, 30.0), 8.0, 6.0), Facing.SOUTH, "Altai Honey",
                  "KZ", "Honey from the Altai", "Wild honey.", GREY, GREY, None, None,
                  (StaffMember("Aigerim", "Owner"),), (product, carpet))
    return Expo("test", "Test Expo", dt.date(2026, 5, 1), dt.date(2026, 5, 3), halls, (booth,))


class FakePeer(Peer):
    """A connection whose socket backlog the test sets; decodes what the server sent."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = 0
        self.received: list[p.Message] = []

    def backlog(self) -> int:
        return self.pending

    def take(self) -> list[p.Message]:
        messages = [p.decode_server(frame) for frame in self.outbox]
        self.outbox.clear()
        self.received.extend(messages)
        return messages


class Harness:
    def __init__(self, **config) -> None:
        self.clock = ManualClock(100.0)
        self.config = ServerConfig(**{"max_clients": 16, **config})
        self.sim = Simulation(small_expo(), self.config, self.clock)

    def connect(self) -> FakePeer:
        peer = FakePeer()
        self.sim.open_peer(peer)
        return peer

    def send(self, peer: FakePeer, message: p.Message | bytes) -> list[p.Message]:
        self.sim.on_frame(peer, message if isinstance(message, (bytes, str)) else p.encode(message))
        return peer.take()

    def join(self, name: str, **hello) -> tuple[FakePeer, p.Welcome]:
        peer = self.connect()
        replies = self.send(peer, p.Hello(p.PROTOCOL_VERSION, name, 0x336699, 1, hello.get("resume_token"), hello.get("staff_pass")))
        assert isinstance(replies[0], p.Welcome), replies
        return peer, replies[0]

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.clock.advance(self.config.dt)
            self.sim.tick()

    def place(self, entity: int, x: float, y: float, hall: int = 0) -> None:
        slot = next(s.slot for s in self.sim.sessions.values() if s.entity == entity)
        self.sim.avatars.pos[slot] = (x, y)
        self.sim.avatars.hall[slot] = hall


async def read_to_end(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything a non-blocking socket receives until the peer closes or resets it."""
    got = bytearray()
    async with asyncio.timeout(timeout):
        while True:
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                await asyncio.sleep(0.002)
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    return bytes(got)
