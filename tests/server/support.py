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
from server.snapshots import frame_payload
from world.model import (
    Booth,
    Colour,
    Display,
    Expo,
    Facing,
    Hall,
    HallTheme,
    Portal,
    Primitive,
    Product,
    Rect,
    StaffMember,
    Vec2,
)

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
        messages = [p.decode_server(frame_payload(frame) if isinstance(frame, memoryview) else frame)
                    for frame in self.outbox]
        self.outbox.clear()
        self.received.extend(messages)
        return messages


class SocketHost:
    """The least a socket's connection (server.connection.SocketPeer) needs around it: it
    admits everything and notes the loss."""

    def __init__(self) -> None:
        self.lost_peers: list[Peer] = []

    def admit(self, conn):
        return None

    def http(self, request):
        return None

    def opened(self, conn):
        pass

    def frame(self, conn, data):
        pass

    def lost(self, conn):
        self.lost_peers.append(conn)


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


async def read_to_end(sock: socket.socket, timeout: float = 5.0, answer_close: bool = False) -> bytes:
    """Everything a non-blocking socket receives until the peer closes or resets it; with
    ``answer_close`` (a raw WebSocket client) a server's close frame is echoed, as a client must."""
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
            if answer_close:
                _, frames = server_frames(bytes(got), partial=True)
                if frames and frames[-1][0] == 0x8:
                    sock.sendall(client_frame(frames[-1][1][:2], opcode=0x8))
    return bytes(got)


HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def client_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """One final client frame (masked with a zero key, as RFC 6455 allows), payload < 64 KiB."""
    n = len(payload)
    header = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else b"\xfe" + n.to_bytes(2, "big"))
    return header + b"\x00\x00\x00\x00" + payload


def server_frames(stream: bytes, partial: bool = False) -> tuple[bytes, list[tuple[int, bytes]]]:
    """The HTTP response head and the (opcode, payload) frames of a server's byte stream;
    asserts every frame is final and unmasked and, unless ``partial`` (the whole frames so
    far), that the stream ends on a frame boundary."""
    head, _, rest = stream.partition(b"\r\n\r\n")
    frames = []
    at = 0
    while at < len(rest):
        if partial and not _whole_frame(rest, at):
            return head, frames
        b0, b1 = rest[at], rest[at + 1]
        assert b0 & 0x80 and not b1 & 0x80, "a server frame is final and unmasked"
        n, at = b1 & 0x7F, at + 2
        if n == 126:
            n, at = int.from_bytes(rest[at:at + 2], "big"), at + 2
        elif n == 127:
            n, at = int.from_bytes(rest[at:at + 8], "big"), at + 8
        frames.append((b0 & 0x0F, rest[at:at + n]))
        at += n
    assert at == len(rest), "the stream ends inside a frame"
    return head, frames


def _whole_frame(rest: bytes, at: int) -> bool:
    if len(rest) - at < 2:
        return False
    n, header = rest[at + 1] & 0x7F, 2
    if n >= 126:
        header += 2 if n == 126 else 8
        if len(rest) - at < header:
            return False
        n = int.from_bytes(rest[at + 2:at + header], "big")
    return len(rest) - at >= header + n


def entered(messages: list[p.Message]) -> list[p.EntityInfo]:
    """The avatars that entered the view in these messages' Snapshots, in order."""
    return [e for m in messages if isinstance(m, p.Snapshot) for e in m.enters]


def left(messages: list[p.Message]) -> list[int]:
    """The entities that left the view in these messages' Snapshots, in order."""
    return [e for m in messages if isinstance(m, p.Snapshot) for e in m.leaves]
