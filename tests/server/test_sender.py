"""The sender thread: every byte arrives once and in order, whichever way it went out (a
direct write, a tick's batch, the thread draining a full socket); closing and aborting
free the socket; a broken peer costs nothing but its own bytes."""

from __future__ import annotations

import asyncio
import random
import socket

import numpy as np
import pytest
from support import read_to_end

from server.sender import Sender, send_all


@pytest.fixture
async def sender():
    s = Sender(asyncio.get_running_loop())
    yield s
    s.stop()


def pair(buffer: int | None = None) -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on loopback; small buffers make sends partial early."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.socket()
        if buffer:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
        ours.connect(listener.getsockname())
        theirs, _ = listener.accept()
    if buffer:
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    ours.setblocking(False)
    theirs.setblocking(False)
    return ours, theirs


async def wait_for(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


def test_send_all_sends_each_slice_to_its_socket_and_reports_failures():
    pairs = [pair() for _ in range(3)]
    datas = [b"a" * 10, b"bb" * 300, b"c"]
    ends = np.cumsum([len(d) for d in datas]).astype(np.int64)
    fds = np.array([ours.fileno() for ours, _ in pairs] + [-1], np.int32)
    ends = np.append(ends, ends[-1] + 4)  # a bad descriptor: -1, and nothing else happens
    sent = np.zeros(4, np.int64)
    send_all(fds, np.frombuffer(b"".join(datas) + b"dddd", np.uint8), ends, sent)
    assert sent.tolist() == [10, 600, 1, -1]
    assert [theirs.recv(1000) for _, theirs in pairs] == datas
    for ours, theirs in pairs:
        ours.close()
        theirs.close()


async def test_all_bytes_arrive_in_order_through_every_path_with_a_slow_reader(sender):
    ours, theirs = pair(buffer=4096)
    closed = asyncio.Event()
    channel = sender.open(ours.fileno(), closed.set)
    rng = random.Random(3)
    expected = bytearray()
    reader = asyncio.create_task(read_to_end(theirs, timeout=30))  # reads as the writes below yield
    saw_backlog = False
    for i in range(300):
        data = bytes([i % 256]) * rng.randint(1, 3000)
        expected += data
        if i % 3:
            sender.submit([(channel, data)])  # a tick's batch
        else:
            sender.write(channel, data)  # a reply, or a websockets control frame
        saw_backlog = saw_backlog or channel.queued > 0
        if i % 50 == 0:
            await asyncio.sleep(0.01)
    assert saw_backlog  # the small buffers made the thread queue and drain
    await wait_for(lambda: channel.queued == 0, timeout=20)
    sender.finish(channel, "close")
    await asyncio.wait_for(closed.wait(), 5)  # the real transport is told, on the loop
    ours.close()  # what the real transport's close does
    got = await reader
    assert got == bytes(expected)


async def test_a_reader_that_stops_sees_its_bytes_counted_and_abort_drops_them(sender):
    ours, theirs = pair(buffer=4096)
    channel = sender.open(ours.fileno(), lambda: None)
    for _ in range(40):
        sender.submit([(channel, b"x" * 4000)])
    await wait_for(lambda: channel in sender._blocked)
    assert channel.queued > 0  # what the simulation's slow-client rules read
    sender.finish(channel, "abort")
    assert channel.queued == 0
    sender.write(channel, b"late")  # after an abort: dropped, not an error
    await wait_for(lambda: channel.closed)
    ours.close()  # the real transport's abort: with our duplicate closed, the socket goes
    got = await read_to_end(theirs)
    assert 0 < len(got) < 160_000 and set(got) == {ord("x")}


async def test_eof_after_the_queue_and_a_reset_peer_is_harmless(sender):
    ours, theirs = pair()
    channel = sender.open(ours.fileno(), lambda: None)
    sender.write(channel, b"last words")
    sender.finish(channel, "eof")
    assert await read_to_end(theirs) == b"last words"  # half-closed after the bytes
    ours2, theirs2 = pair()
    theirs2.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    theirs2.close()  # a reset
    channel2 = sender.open(ours2.fileno(), lambda: None)
    await asyncio.sleep(0.05)
    for _ in range(5):
        sender.write(channel2, b"y" * 1000)
        sender.submit([(channel2, b"z" * 1000)])
    await wait_for(lambda: channel2.closed)
    assert channel2.queued == 0
    for sock in (ours, theirs, ours2):
        sock.close()


async def test_stop_releases_every_duplicate(sender):
    socks = [pair() for _ in range(5)]
    channels = [sender.open(ours.fileno(), lambda: None) for ours, _ in socks]
    sender.submit([(c, b"hi") for c in channels])
    await wait_for(lambda: all(c.queued == 0 for c in channels))
    sender.stop()
    assert all(c.closed for c in channels)
    for ours, theirs in socks:
        assert theirs.recv(10) == b"hi"
        ours.close()
        assert await read_to_end(theirs) == b""  # our duplicate no longer holds it open
        theirs.close()
