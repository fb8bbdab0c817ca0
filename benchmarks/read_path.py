"""The server's CPU per read of a client's Input, in-process (no sockets).

    python benchmarks/read_path.py [--clients 1000] [--ticks 100]

``capacity.py``'s wandering bots make the server read about 3,400 times a second at 1,000
(an Input on a change of direction, a Ping every 1.5 s, one frame a read), and reading was
4.2 us of the server's 17-18 us per visitor-tick on 7 December 2026: more than the tick.
This times what one read of an Input costs in ``SocketPeer.data_received`` (the splitter,
``ExpoServer.frame``, ``Simulation.on_frame``, what follows a frame), for ``--clients``
joined connections that each send an Input every 8th tick, with the tick run between them
as the server does (thread CPU time over the ticks, outside the ticks). The connections
have no transport: what they write goes nowhere, as the figure is the Python's.
"""

from __future__ import annotations

import argparse
import math
import random
import time

from websockets.protocol import State

import protocol as p
from protocol.wsframes import Mode
from server.app import ExpoServer
from server.config import ServerConfig
from server.connection import SocketPeer
from world import load_expo

MASK = b"\x01\x02\x03\x04"


def client_frame(payload: bytes) -> bytes:
    """A client's final binary frame (masked, RFC 6455 5.3) of a payload under 126 bytes."""
    body = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes((0x82, 0x80 | len(payload))) + MASK + body


def joined(server: ExpoServer, count: int) -> list[SocketPeer]:
    """``count`` connections past the handshake that sent their Hello and joined."""
    peers = []
    for i in range(count):
        conn = SocketPeer(server, time.monotonic)
        conn.protocol.state = State.OPEN  # the handshake done, as _on_request leaves it
        conn.websocket_open = True
        conn.splitter.mode = Mode.SPLIT
        server.sim.open_peer(conn)
        conn.data_received(client_frame(p.encode(p.Hello(p.PROTOCOL_VERSION, f"v{i}", 0, 0, None, None))))
        assert conn.session is not None, "joined"
        peers.append(conn)
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=100)
    args = parser.parse_args()
    server = ExpoServer(load_expo(), ServerConfig(max_clients=args.clients + 100))
    peers = joined(server, args.clients)
    rng = random.Random(1)
    spent, reads = 0.0, 0
    for tick in range(20 + args.ticks):  # the first 20 warm the kernels and the caches
        frames = []
        for i, conn in enumerate(peers):
            if (i + tick) % 8 == 0:
                angle = rng.uniform(-math.pi, math.pi)
                frames.append((conn, client_frame(p.encode(p.Input(tick + 1, math.cos(angle), math.sin(angle), angle, False, 20)))))
        started = time.thread_time()
        for conn, frame in frames:
            conn.data_received(frame)
        if tick >= 20:
            spent += time.thread_time() - started
            reads += len(frames)
        server.sim.tick()
        for conn in peers:
            conn.outbox.clear()
    print(f"{args.clients} joined, {reads} reads of an Input: {spent / reads * 1e6:.2f} us a read (thread CPU time)")


if __name__ == "__main__":
    main()
