"""The client's socket (``client.connection.ServerLink``) against a WebSocket server written
here by hand on raw asyncio, which sends a scripted byte stream cut at random points.

The link splits final binary frames itself and gives every other frame to websockets'
protocol; with debug logging on ``expo.client.ws`` websockets parses every frame. Both must
deliver the same messages in the same order, answer pings and closes alike and fail alike
on frames the protocol refuses."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import random
import socket
from dataclasses import dataclass, field

import pytest

from client.connection import open_link

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BINARY, TEXT, CONT, CLOSE, PING, PONG = 0x2, 0x1, 0x0, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None) -> bytes:
    """One frame as RFC 6455 5.2 lays it out."""
    n = len(payload)
    masked = 0x80 if mask else 0
    head = bytes(((0x80 if fin else 0) | rsv | opcode,))
    if n < 126:
        head += bytes((masked | n,))
    elif n < 65536:
        head += bytes((masked | 126,)) + n.to_bytes(2, "big")
    else:
        head += bytes((masked | 127,)) + n.to_bytes(8, "big")
    if mask:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def read_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The client's frames (masked, as a client's must be): (opcode, payload)."""
    frames, pos = [], 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b1 & 0x80, "a client's frames are masked"
        n, pos = b1 & 0x7F, pos + 2
        if n == 126:
            n, pos = int.from_bytes(data[pos:pos + 2], "big"), pos + 2
        elif n == 127:
            n, pos = int.from_bytes(data[pos:pos + 8], "big"), pos + 8
        mask, pos = data[pos:pos + 4], pos + 4
        frames.append((b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data[pos:pos + n]))))
        pos += n
    return frames


@dataclass
class Script:
    """What the server sends after its response head, and what the client should make of it."""

    stream: bytes
    messages: list[bytes]
    answers: list[tuple[int, bytes]]  # the client's frames the server should read, in order
    close_code: int


def conversation(rng: random.Random) -> Script:
    """Binary frames of every length form, two pings (one inside a fragmented message), a
    text message, an empty message, a close, and a frame after the close (discarded)."""
    out: list[bytes] = []
    messages: list[bytes] = []

    def binary(payload: bytes) -> None:
        out.append(frame(BINARY, payload))
        messages.append(payload)

    for _ in range(30):
        binary(rng.randbytes(rng.randint(0, 300)))
    out.append(frame(PING, b"p1"))
    binary(rng.randbytes(1000))  # a 16-bit length
    binary(rng.randbytes(70_000))  # a 64-bit length
    out.append(frame(TEXT, "héllo".encode()))
    messages.append("héllo".encode())
    out += [frame(BINARY, b"ab", fin=False), frame(PING, b"p2"), frame(CONT, b"cd", fin=False), frame(CONT, b"ef")]
    messages.append(b"abcdef")
    binary(b"")
    for _ in range(20):
        binary(rng.randbytes(rng.randint(1, 200)))
    out.append(frame(CLOSE, (1000).to_bytes(2, "big") + b"bye"))
    out.append(frame(BINARY, b"after the close"))
    return Script(b"".join(out), messages, [(PONG, b"p1"), (PONG, b"p2"), (CLOSE, (1000).to_bytes(2, "big") + b"bye")],
                  1000)


def refused(kind: str) -> Script:
    """Two messages, then a frame websockets refuses (a protocol error, 1002), then one more."""
    before = [b"one", b"two"]
    bad = {
        "masked": frame(BINARY, b"masked", mask=b"\x01\x02\x03\x04"),
        "reserved bit": frame(BINARY, b"rsv1", rsv=0x40),
        "stray continuation": frame(CONT, b"cont"),
        "bad opcode": bytes((0x83, 0)),
        "binary inside a fragmented message": frame(BINARY, b"a", fin=False) + frame(BINARY, b"b"),
        # refused on its first two bytes, before the 64-bit length (which never comes)
        "masked, then nothing": bytes((0x82, 0xFF)),
    }[kind]
    after = frame(BINARY, b"never") if kind != "masked, then nothing" else b""
    stream = b"".join(frame(BINARY, m) for m in before) + bad + after
    # the client's close says 1002 and why; the server never closes, so the link's code is 1006
    return Script(stream, before, [(CLOSE, (1002).to_bytes(2, "big"))], 1006)


@dataclass
class HandWrittenServer:
    """A WebSocket server in a few lines of asyncio: answers one handshake, then writes its
    response head and the script's stream together, cut at random points, a piece at a time."""

    script: Script
    rng: random.Random
    steps: tuple[int, ...]  # the pieces' sizes to draw from
    received: bytearray = field(default_factory=bytearray)
    pieces: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        reading = asyncio.create_task(self._read(reader))
        stream, pos = head + self.script.stream, 0
        while pos < len(stream):
            step = self.rng.choice(self.steps)
            writer.write(stream[pos:pos + step])
            await writer.drain()
            await asyncio.sleep(0.001)  # each piece its own read on the client's side
            pos += step
            self.pieces += 1
        await reading  # until the client's close frame
        writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            self.received += chunk
            frames = read_frames(bytes(self.received))
            if frames and frames[-1][0] == CLOSE:
                return


async def talk(script: Script, seed: int) -> tuple[list[bytes], list[tuple[int, bytes]], int | None, int]:
    """Connect to a hand-written server playing ``script``: the messages the link
    delivered, the frames it sent back, its close code, and how many it split itself."""
    steps = (1, 1, 2, 3, 5, 8, 13, 40, 300, 3000) if len(script.stream) > 10_000 else (1, 2, 3, 5, 8)
    server = HandWrittenServer(script, random.Random(seed), steps)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    messages: list[bytes] = []
    try:
        link = await open_link(f"ws://127.0.0.1:{port}/", messages.append, 5.0)
        async with asyncio.timeout(10):
            await link.closed
    finally:
        listener.close()
        await listener.wait_closed()
    assert server.pieces > 10
    return messages, read_frames(bytes(server.received)), link.close_code, link.splitter.split_frames


@pytest.mark.parametrize("seed", range(4))
async def test_messages_cut_anywhere_arrive_whole_and_in_order_with_pings_and_the_close_answered(seed):
    script = conversation(random.Random(seed))
    messages, answers, code, split = await talk(script, seed)
    assert messages == script.messages
    assert answers == script.answers
    assert code == script.close_code
    assert split == len(script.messages) - 3  # all but the 64-bit one, the text and the fragmented message


@pytest.mark.parametrize("seed", range(2))
async def test_websockets_parsing_every_frame_gives_the_same(seed, caplog):
    script = conversation(random.Random(seed))
    caplog.set_level(logging.DEBUG, logger="expo.client.ws")  # the link leaves every frame to websockets
    messages, answers, code, split = await talk(script, seed)
    assert (messages, answers, code, split) == (script.messages, script.answers, script.close_code, 0)


@pytest.mark.parametrize("kind", ["masked", "reserved bit", "stray continuation", "bad opcode",
                                  "binary inside a fragmented message", "masked, then nothing"])
@pytest.mark.parametrize("seed", range(3))
async def test_a_frame_the_protocol_refuses_fails_the_connection_as_websockets_does(kind, seed, caplog):
    script = refused(kind)
    messages, answers, code, _ = got = await talk(script, seed)
    caplog.set_level(logging.DEBUG, logger="expo.client.ws")
    reference = await talk(script, seed)
    assert got[:3] == reference[:3]
    assert (messages, code) == (script.messages, script.close_code)
    assert [(opcode, data[:2]) for opcode, data in answers] == script.answers
