"""Joined clients' sockets read in rounds (server.readrounds): over real sockets on loopback,
what a client sees is what it saw when the loop read each frame as it came."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest
from support import small_expo
from test_app import join, recv_until

import protocol as p
from server.app import ExpoServer
from server.config import ServerConfig
from server.readrounds import PERIOD, ReadRounds


@pytest.fixture(params=[True, False], ids=["read-rounds", "loop-reads"])
async def server(request):
    srv = ExpoServer(small_expo(), ServerConfig(port=0, max_clients=16, read_rounds=request.param))
    await srv.start()
    yield srv
    await srv.stop()


async def until(condition, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.01)


def reading(srv: ExpoServer) -> list[bool]:
    """Whether each connection's transport reads its socket itself (asyncio's is_reading)."""
    return [conn.transport.is_reading() for conn in srv._connections if conn.transport is not None]


async def test_a_joined_clients_socket_is_read_by_the_rounds_and_a_ping_is_answered_within_one(server):
    ws, _ = await join(server, "Aru")
    rounds = server.config.read_rounds
    assert reading(server) == [not rounds]  # fails when the rounds never take the socket
    for _ in range(5):
        sent = time.monotonic()
        await ws.send(p.encode(p.Ping(sent)))
        pong = await recv_until(ws, p.Pong)
        assert pong.client_time == sent
        # answered at the next round at the latest: within PERIOD and a tick, with room for a busy machine
        assert time.monotonic() - sent < PERIOD + server.config.dt + 0.25
    await ws.send(p.encode(p.Input(1, 0.0, 1.0, 0.0, True)))
    async with asyncio.timeout(3):  # the Input read by a round is applied (acknowledged by a Snapshot)
        while (await recv_until(ws, p.Snapshot)).ack < 1:
            pass
    await ws.close()
    await until(lambda: server.sim.connected == 0)


async def test_a_bye_read_by_a_round_closes_with_1000(server):
    ws, _ = await join(server, "Bek")
    await ws.send(p.encode(p.Bye()))
    async with asyncio.timeout(3):
        await ws.wait_closed()
    assert ws.close_code == 1000
    await until(lambda: not server._connections)


@pytest.mark.parametrize("how", ["end of file", "reset"])
async def test_a_joined_client_that_vanishes_is_let_go(server, how):
    """Its socket's end is met by the transport it is given back to: the session detaches,
    the connection is gone, nothing is left watched."""
    ws, _ = await join(server, "Cem")
    sock = ws.transport.get_extra_info("socket")
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()
    await until(lambda: not server._connections)
    await until(lambda: server.sim.connected == 0)
    assert server._rounds is None or len(server._rounds) == 0
    other, _ = await join(server, "Dana")  # and the server carries on
    await recv_until(other, p.Snapshot)
    await other.close()


class _Transport:
    """What ReadRounds asks of an asyncio transport, recorded."""

    def __init__(self) -> None:
        self.reads = True
        self.closing = False

    def pause_reading(self) -> None:
        self.reads = False

    def resume_reading(self) -> None:
        self.reads = True

    def is_closing(self) -> bool:
        return self.closing


class _Conn:
    def __init__(self, sock: socket.socket, fail: bool = False) -> None:
        self.fd, self.read_fd, self.transport = sock.fileno(), -1, _Transport()
        self.got: list[bytes] = []
        self.fail = fail
        self.aborted = False

    def data_received(self, data: bytes) -> None:
        if self.fail:
            raise RuntimeError("a bug in the protocol")
        self.got.append(data)

    def abort(self) -> None:
        self.aborted = True


def test_a_round_reads_each_ready_socket_once_and_a_failing_one_does_not_stop_it():
    rounds = ReadRounds()
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        conns = [_Conn(ours, fail=(i == 1)) for i, (ours, _) in enumerate(pairs)]
        for conn in conns:
            rounds.take(conn)  # type: ignore[arg-type]
        assert [c.transport.reads for c in conns] == [False] * 3 and len(rounds) == 3
        assert rounds.round() == 0  # nothing came: nothing read, nothing waited for
        for i, (_, theirs) in enumerate(pairs):
            theirs.send(b"frame %d" % i)
        assert rounds.round() == 3
        assert conns[0].got == [b"frame 0"] and conns[2].got == [b"frame 2"]
        assert conns[1].aborted and conns[1].transport.reads and conns[1].read_fd == -1  # given back, closed
        pairs[2][1].close()  # end of file: given back, its transport reads the end
        rounds.round()
        assert conns[2].transport.reads and len(rounds) == 1
        rounds.close()
        assert conns[0].transport.reads and len(rounds) == 0
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
