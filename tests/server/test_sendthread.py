"""The send thread behind a connection's one write path, on real sockets: what the kernel
did not take and what was written meanwhile reach the client whole and in order, and a
close asked for while a batch is in flight waits for it."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
from support import SocketHost as Host
from websockets.protocol import State

from server.connection import SocketPeer
from server.link import LinkState
from server.sendstate import SendState
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


def join(peer: SocketPeer, state: SendState, slot: int) -> None:
    """As after the handshake and a Welcome (the test skips both): the peer keeps its row."""
    peer.protocol.state = State.OPEN
    peer.state = LinkState.JOINED
    state.attach(slot, peer)


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


async def test_a_late_batch_goes_behind_the_one_out_and_after_what_that_one_left():
    """A tick whose predecessor's batch is still out is submitted behind it, not written by
    the loop's transports; where the batch ahead left a message unfinished, the late one's
    goes after the rest of it, and writes made meanwhile after both."""
    loop = asyncio.get_running_loop()
    sender = SendThread(loop)
    host = Host()
    try:
        small, small_end = await connected(host, sender, send_buffer=4096)
        other, other_end = await connected(host, sender)
        big = bytes(range(256)) * 4096
        first = submit(sender, [small, other], [big, b"hello"])
        assert sender.room  # the thread has not handed the first back: it cannot have, the loop has not run
        second = submit(sender, [small, other], [b"tick2", b"world"])
        assert not sender.room and sender.late == 1
        small.write(b"after")
        assert small.backlog() >= len(big) + 10
        await until_back(sender)
        assert first == ["done"] and second == ["done"] and sender.batches == 2
        assert await read(other_end, 10) == b"helloworld"
        assert await read(small_end, len(big) + 10) == big + b"tick2after"
        assert not small.in_flight and not other.in_flight
    finally:
        sender.stop()


async def test_a_connection_with_writes_waiting_behind_a_batch_is_not_direct():
    """Its next tick frame must follow what waits, so it goes by the per-session rules and its
    transport, not in a late batch; once the batch is back and the transport empty it is direct."""
    loop = asyncio.get_running_loop()
    sender = SendThread(loop)
    state = SendState(4, loop.time)
    try:
        peer, end = await connected(Host(), sender)
        join(peer, state, 1)
        assert state.direct[1] and state.fd[1] == peer.send_fd >= 0
        submit(sender, [peer], [b"tick"])
        assert state.direct[1]  # in flight, nothing waiting: a late tick's frame may go behind it
        peer.write(b"reply")
        assert not state.direct[1]
        assert sender.finish(5.0)
        assert await read(end, 9) == b"tickreply"
        async with asyncio.timeout(5):
            while not state.direct[1]:
                await asyncio.sleep(0.001)
    finally:
        sender.stop()
