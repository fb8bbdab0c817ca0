"""The server process's CPU per visitor-tick with clients that cost nothing: ``expo-server``'s
ExpoServer in this process (uvloop, the send thread as configured), ``--clients`` raw
WebSocket clients in one other process that join (Hello), stand still and read everything.

capacity.py's bots are two Python processes decoding every snapshot on the same two cores:
when they are starved the server's figures move with them (and their swarm sometimes hangs
at the end). Here the readers are a selector loop doing ``recv``, so what moves between two
trees is the server's own work: the tick (standing avatars: little interest or diff work) and
the shell's per-connection passes, the sends and the kernel sampling. CPU time of this
process only, over a window after all joined; the load average is printed with it.

    python benchmarks/shell_cost.py [--clients 1000] [--seconds 10] [--no-send-thread]
    PYTHONPATH=<other tree> python benchmarks/shell_cost.py   # the same for another tree
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import msgpack
import uvloop

import protocol as p
from server.app import ExpoServer
from server.config import ServerConfig
from world.loader import load_expo

_CLIENTS = r"""
import selectors, socket, sys
import msgpack
port, count = int(sys.argv[1]), int(sys.argv[2])
HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
def frame(payload):  # one final binary client frame, masked with a zero key
    n = len(payload)
    return b"\x82" + (bytes([0x80 | n]) if n < 126 else b"\xfe" + n.to_bytes(2, "big")) + b"\0\0\0\0" + payload
hello = frame(msgpack.packb(eval(sys.argv[3])))
sel = selectors.DefaultSelector()
socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(HANDSHAKE)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(4096)
    s.sendall(hello)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    socks.append(s)
sys.stdout.write("joined\n"); sys.stdout.flush()
while True:
    for key, _ in sel.select(1.0):
        try:
            if not key.fileobj.recv(1 << 16):
                sel.unregister(key.fileobj)
        except (BlockingIOError, ConnectionError):
            pass
"""


def cpu() -> float:
    t = os.times()
    return t.user + t.system


async def measure(clients: int, seconds: float, send_thread: bool, data_dir: Path) -> dict[str, float]:
    config = ServerConfig(port=0, max_clients=clients + 10, max_connections=clients + 10,
                          max_connections_per_address=clients + 10, send_thread=send_thread,
                          data_dir=data_dir)
    server = ExpoServer(load_expo(), config)  # the default expo, of the tree imported
    await server.start()
    hello = p.Hello(p.PROTOCOL_VERSION, "reader", 0x336699, 1, None, None)
    readers = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CLIENTS, str(server.port), str(clients), repr(_hello_list(hello)),
        stdout=asyncio.subprocess.PIPE)
    try:
        assert readers.stdout is not None
        await asyncio.wait_for(readers.stdout.readline(), 300)
        deadline = time.monotonic() + 60
        while server.sim.connected < clients and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # settle
        tick0, cpu0, wall0 = server.sim.tick_count, cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        ticks, spent, wall = server.sim.tick_count - tick0, cpu() - cpu0, time.monotonic() - wall0
        joined = server.sim.connected
    finally:
        readers.kill()
        await readers.wait()
        await server.stop()
    return {"joined": joined, "tick_hz": ticks / wall, "cores": spent / wall,
            "us_per_visitor_tick": spent / max(1, ticks) / max(1, joined) * 1e6}


def _hello_list(hello: p.Hello) -> list[object]:
    """The Hello as the msgpack array the codec writes (protocol.encode), for the readers."""
    return msgpack.unpackb(p.encode(hello))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-send-thread", action="store_true")
    args = parser.parse_args()
    load = open("/proc/loadavg").read().split()[:3]
    with tempfile.TemporaryDirectory(prefix="shell-cost-") as tmp:
        result = uvloop.run(measure(args.clients, args.seconds, not args.no_send_thread, Path(tmp)))
    print(f"{result['joined']} joined, {result['tick_hz']:.1f} Hz, {result['cores']:.3f} cores, "
          f"{result['us_per_visitor_tick']:.2f} us per visitor-tick (load at start {' '.join(load)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
