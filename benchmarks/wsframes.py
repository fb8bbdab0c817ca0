"""Reading a client's Input frames: websockets' sans-I/O parser alone against the same
parser behind ``protocol.wsframes.FrameSplitter``, as the server's connection drives them.

    .venv/bin/python benchmarks/wsframes.py [--frames 20000] [--rounds 7]

The job: ``--frames`` Input frames as a client masks them, each arriving in its own read
(what loopback and a 20 Hz client give), fed to an open ``ServerProtocol`` and every event
taken. Peers, in the same run on the same bytes: the protocol alone, and the splitter in
front of it; a ping every 50 frames goes through the protocol in both. Best of ``rounds``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.http11 import Request  # noqa: E402
from websockets.protocol import State  # noqa: E402
from websockets.server import ServerProtocol  # noqa: E402

import protocol as p  # noqa: E402
from protocol.wsframes import FrameSplitter, unmask  # noqa: E402

# RFC 6455's sample handshake request
HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def client_reads(frames: int) -> list[bytes]:
    """A client's frames as it masks them, one read each."""
    reads = []
    for i in range(frames):
        mask = os.urandom(4)
        if i % 50 == 49:
            reads.append(bytes((0x89, 0x80)) + mask)  # a ping, empty
            continue
        payload = p.encode(p.Input(i + 1, 0.6, -0.8, 1.25, False, 10))
        reads.append(bytes((0x82, 0x80 | len(payload))) + mask + unmask(payload, mask))
    return reads


def run(reads: list[bytes], split: bool) -> tuple[float, int]:
    server = ServerProtocol(max_size=64 * 1024)
    got = 0

    def feed(data: bytes) -> None:
        nonlocal got
        server.receive_data(data)
        for event in server.events_received():
            if isinstance(event, Request):
                server.send_response(server.accept(event))
            else:
                got += 1

    def deliver(payload: bytes) -> None:
        nonlocal got
        got += 1

    splitter = FrameSplitter(masked=True, feed=feed, deliver=deliver, is_open=lambda: server.state is State.OPEN,
                             split=split)
    splitter.data(HANDSHAKE)
    server.data_to_send()
    assert server.state is State.OPEN
    started = time.perf_counter()
    for data in reads:
        splitter.data(data)
        server.data_to_send()
    return time.perf_counter() - started, got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    reads = client_reads(args.frames)
    best = {False: float("inf"), True: float("inf")}
    for _ in range(args.rounds):
        for split in (False, True):  # alternated: a slower stretch of the machine hits both
            seconds, got = run(reads, split)
            assert got == args.frames, (got, args.frames)
            best[split] = min(best[split], seconds)
    alone, ours = (best[k] / args.frames * 1e6 for k in (False, True))
    print(f"{args.frames} client frames (1 in 50 a ping), one read each, best of {args.rounds}")
    print(f"  websockets' parser alone   {alone:6.2f} us a frame")
    print(f"  split ahead of it          {ours:6.2f} us a frame   ({ours / alone:.2f} of the parser's time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
