"""The send thread behind a connection's one write path, on real sockets: what the kernel
did not take and what was written meanwhile reach the client whole and in order, and a
close asked for while a batch is in flight waits for it."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
from support import SocketHost as Host

from server.connection import SocketPeer
from server.sendthread import SendThread


async def connected(host: Host, sender: SendThread, send_buffer: int | None = None) -> tuple[SocketPeer, socket.socket]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    peer = SocketPeer(host, loop.time, send_buffer, sender)
    await loop.connect_accepted_socket(lambda: peer, ours)
    theirs.setblocking(False)
    return peer, theirs


async def read(sock: socket.socket, size: int, timeout: float = 10.0) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    async with asyncio.timeout(timeout):
        while len(got) < size:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                break
            got += chunk
    return bytes(got)


def submit(sender: SendThread, peers: list[SocketPeer], datas: list[bytes]) -> list[str]:
    """The batch, as the shell hands it over: descriptors and offsets into one buffer."""
    ends = np.cumsum([len(d) for d in datas]).astype(np.int64)
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    done: list[str] = []
    sender.submit(np.array([peer.send_fd for peer in peers], np.int32), np.frombuffer(b"".join(datas), np.uint8),
                  starts, ends, lambda: done.append("done"))
    assert all(peer.in_flight for peer in peers)
    return done


async def until_back(sender: SendThread) -> None:
    async with asyncio.timeout(5):
        while sender.busy:
            await asyncio.sleep(0.005)


async def test_what_the_kernel_did_not_take_and_later_writes_follow_in_order():
    sender = SendThread(asyncio.get_running_loop())
    host = Host()
    try:
        small, small_end = await connected(host, sender, send_buffer=4096)  # takes a fraction of the message
        other, other_end = await connected(host, sender)
        big = bytes(range(256)) * 4096  # 1 MiB: far more than the socket's buffers hold
        done = submit(sender, [small, other], [big, b"hello"])
        small.write(b"after")  # a reply while the batch is in flight waits behind it
        assert small.backlog() >= len(big) + 5
        await until_back(sender)
        assert sender.batches == 1 and sender.alive and done == ["done"]
        assert not other.in_flight
        assert await read(other_end, 5) == b"hello"
        assert await read(small_end, len(big) + 5) == big + b"after"  # the rest went by the transport
        assert not small.in_flight and small.backlog() < len(big)
    finally:
        sender.stop()
    assert not sender.alive


async def test_a_close_while_in_flight_waits_for_the_batch():
    sender = SendThread(asyncio.get_running_loop())
    host = Host()
    try:
        peer, end = await connected(host, sender)
        submit(sender, [peer], [b"last words"])
        peer.abort()  # asked for while the thread may hold the descriptor's duplicate
        await until_back(sender)
        assert await read(end, 100) == b"last words"  # then the close: read to the end
        async with asyncio.timeout(5):
            while peer not in host.lost_peers:
                await asyncio.sleep(0.01)
        assert peer.send_fd == -1  # the duplicate closed once nothing was in flight
        assert not peer.in_flight
    finally:
        sender.stop()


async def test_finish_hands_a_sent_batch_back_at_once_and_only_once():
    """The tick does not wait for the thread to get the GIL back: once its sends are over,
    ``finish`` hands the batch back on the loop, and the thread's own call does nothing."""
    sender = SendThread(asyncio.get_running_loop())
    host = Host()
    try:
        peer, end = await connected(host, sender)
        done = submit(sender, [peer], [b"tick"])
        peer.write(b"reply")  # waits behind the tick's message
        assert sender.finish(5.0) and not sender.busy and not peer.in_flight
        assert done == ["done"] and sender.batches == 1
        assert await read(end, 9) == b"tickreply"
        await asyncio.sleep(0.05)  # the thread's call_soon_threadsafe has run by now
        assert done == ["done"] and sender.batches == 1
        assert sender.finish(0.0)  # nothing in flight
    finally:
        sender.stop()
