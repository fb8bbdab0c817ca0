"""The tick's kernel sample of 100 connections (as ExpoServer._sample_kernels at 1,000 bots:
a tenth of them a tick), per connection in Python (SocketPeer.sample_kernel) against
server.kernelsample's compiled loop with the host's gathering, alternated rounds.
Half the sockets hold unread bytes (TIOCOUTQ and TCP_INFO), half are empty (TIOCOUTQ alone).

    python benchmarks/kernel_sample.py [--rounds 7] [--connections 100]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.connection import SocketPeer  # noqa: E402
from server.kernelsample import KernelSampler, warm  # noqa: E402


def pairs(n: int) -> list[tuple[socket.socket, socket.socket]]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=n)
    out = []
    for i in range(n):
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
        server.setblocking(False)
        if i % 2:
            try:
                while True:
                    server.send(b"x" * 65536)
            except BlockingIOError:
                pass
        out.append((server, client))
    listener.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    warm()
    socks = pairs(args.connections)
    peers = []
    for server, _ in socks:
        peer = SocketPeer(None, time.monotonic)  # type: ignore[arg-type]
        peer.fd, peer._sock = server.fileno(), server
        peers.append(peer)
    n = len(peers)
    unsent, acked, acked_at = np.zeros(n, np.int64), np.full(n, -1, np.int64), np.zeros(n)
    sampler, watched, watch = KernelSampler(), set(), 1 << 14

    def python() -> None:
        for conn in peers:
            conn.sample_kernel()
            if conn.kernel_unsent > watch:
                watched.add(conn)
            else:
                watched.discard(conn)

    def compiled() -> None:
        joined, slots, fds = [], [], []
        for i, conn in enumerate(peers):
            joined.append(conn)
            slots.append(i)
            fds.append(conn.fd)
        rows = np.array(slots, np.int64)
        sampler(np.array(fds, np.int32), rows, unsent, acked, acked_at, time.monotonic())
        for conn, over in zip(joined, (unsent[rows] > watch).tolist(), strict=True):
            if over:
                watched.add(conn)
            else:
                watched.discard(conn)

    results: dict[str, list[float]] = {"python": [], "compiled": []}
    for r in range(args.rounds):
        order = (("python", python), ("compiled", compiled)) if r % 2 == 0 else (("compiled", compiled), ("python", python))
        for name, run in order:
            started = time.perf_counter()
            for _ in range(args.reps):
                run()
            results[name].append((time.perf_counter() - started) / args.reps * 1e6)
    for name, values in results.items():
        print(f"{name}: us a tick {' '.join(f'{v:.1f}' for v in values)}  median {statistics.median(values):.1f}")
    for server, client in socks:
        server.close()
        client.close()


if __name__ == "__main__":
    main()
