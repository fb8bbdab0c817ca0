"""The send state's rows (server.sendstate): a connection that reports its backlog there is
judged as arrays and its tick frame left to the shell, and every decision is the one the
per-session rules make for the same backlog; a real socket's row follows its transport."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket

import pytest
from support import FakePeer, SocketHost, small_expo
from websockets.protocol import State

import protocol as p
from server.clock import ManualClock
from server.config import ServerConfig
from server.connection import SocketPeer
from server.link import LinkState
from server.sendstate import SendState
from server.simulation import Simulation

SKIP, STUCK = 1000, 1.0


class KernelPeer(FakePeer):
    """A backlog the test sets, and acknowledgement times for the stall rule, as
    SocketPeer has them from its kernel."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.acked = -1
        self.acked_at = 0.0
        self.backlog_calls = 0

    def backlog(self) -> int:
        self.backlog_calls += 1
        return self.pending

    def stalled(self, timeout: float) -> bool:
        return bool(self.pending) and self.acked >= 0 and self.clock.monotonic() - self.acked_at > timeout

    def set(self, pending: int, acked: int, acked_at: float) -> None:
        self.pending, self.acked, self.acked_at = pending, acked, acked_at


class ReportingPeer(KernelPeer):
    """The same, kept in the send state's row, as SocketPeer keeps it: direct, so asked
    only when its row says it is too slow (the rules then run as for anyone)."""

    def backlog(self) -> int:
        assert self.pending > SKIP or self.stalled(STUCK), "a healthy direct row is judged without a call"
        return super().backlog()

    def attached(self, state: SendState, slot: int) -> None:
        super().attached(state, slot)
        self.set(self.pending, self.acked, self.acked_at)

    def set(self, pending: int, acked: int, acked_at: float) -> None:
        super().set(pending, acked, acked_at)
        state, slot = self.sendstate, self.slot
        if state is not None and state.owns(slot, self):
            state.direct[slot] = True
            state.unsent[slot], state.acked[slot], state.acked_at[slot] = pending, acked, acked_at


def deliver(sim: Simulation) -> None:
    """What the shell does with the tick's frames of the direct slots, minus the socket."""
    frames = sim.sendstate.take_frames()
    if frames is None:
        return
    view = memoryview(frames.data)
    for slot, start, end in zip(frames.slots.tolist(), frames.at[:-1].tolist(), frames.at[1:].tolist(), strict=True):
        owner = sim.sendstate.owner[slot]
        assert owner is not None and owner.state is LinkState.JOINED
        owner.outbox.append(view[start:end])


def world(kind: type[KernelPeer], count: int) -> tuple[Simulation, ManualClock, list[KernelPeer]]:
    clock = ManualClock(100.0)
    tokens = (f"t{i}" for i in itertools.count())
    config = ServerConfig(max_clients=16, stuck_timeout=STUCK, skip_backlog=SKIP, hard_backlog=5000)
    sim = Simulation(small_expo(), config, clock, token=lambda: next(tokens))
    peers = []
    for i in range(count):
        peer = kind(clock)
        sim.open_peer(peer)
        sim.on_frame(peer, p.encode(p.Hello(p.PROTOCOL_VERSION, f"V{i}", 0x336699, 1, None, None)))
        assert isinstance(peer.take()[0], p.Welcome)  # its visitor token is this process's own
        peers.append(peer)
    return sim, clock, peers


@pytest.mark.parametrize("seed", range(6))
def test_direct_rows_are_judged_as_the_per_session_rules_judge_them(seed):
    rng = random.Random(seed)
    plain, plain_clock, plain_peers = world(KernelPeer, 8)
    direct, direct_clock, direct_peers = world(ReportingPeer, 8)
    assert all(direct.sendstate.direct[peer.session.slot] for peer in direct_peers if peer.session)
    for tick in range(300):
        now = plain_clock.monotonic()
        for i in range(8):
            if rng.random() < 0.15:  # a new backlog: none, some, over skip, over hard; acked long ago or not
                values = (rng.choice([0, 0, 300, 1001, 5001]), rng.choice([-1, 7]), now - rng.choice([0.0, 0.5, 2.0]))
                plain_peers[i].set(*values)
                direct_peers[i].set(*values)
        for sim, clock in ((plain, plain_clock), (direct, direct_clock)):
            clock.advance(sim.config.dt)
            sim.tick()
        assert plain.sendstate.frames is None  # no row of a per-session peer is direct
        deliver(direct)
        for a, b in zip(plain_peers, direct_peers, strict=True):
            assert a.take() == b.take(), (tick, a.pending)
            assert (a.state, a.close_request) == (b.state, b.close_request)
    for metric in ("skipped_snapshots", "slow_drops"):
        assert getattr(plain.metrics, metric)._value.get() == getattr(direct.metrics, metric)._value.get()
    assert direct.metrics.slow_drops._value.get() > 0 and direct.metrics.skipped_snapshots._value.get() > 0
    assert sum(peer.backlog_calls for peer in direct_peers) < sum(peer.backlog_calls for peer in plain_peers)


def test_a_row_is_its_owners_only_while_it_is_joined():
    sim, clock, (a, b) = world(ReportingPeer, 2)
    slot = a.session.slot
    assert sim.sendstate.owner[slot] is a
    sim.on_frame(a, p.encode(p.Bye()))  # leaves: the row is nobody's, and not direct
    assert a.state is not LinkState.JOINED and sim.sendstate.owner[slot] is None and not sim.sendstate.direct[slot]
    a.set(0, -1, 0.0)  # a peer that left writes nothing into a row
    assert not sim.sendstate.direct[slot]
    clock.advance(sim.config.dt)
    sim.tick()
    frames = sim.sendstate.take_frames()
    assert frames is not None and frames.slots.tolist() == [b.session.slot]



@pytest.mark.parametrize("loop_kind", ["uvloop", "asyncio"])
def test_a_socket_is_direct_only_while_its_transport_holds_nothing(loop_kind):
    """The transport says when it starts to buffer and when it is empty again (a zero
    high-water mark), under the server's loop and asyncio's: the row follows without the
    tick asking."""
    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        uvloop.run(_direct_while_empty())
    else:
        asyncio.run(_direct_while_empty())


async def _direct_while_empty() -> None:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    peer = SocketPeer(SocketHost(), loop.time, send_buffer=4096)
    await loop.connect_accepted_socket(lambda: peer, ours)
    state = SendState(4, loop.time)
    peer.protocol.state = State.OPEN  # as after the handshake; the test skips the HTTP part
    peer.state = LinkState.JOINED
    state.attach(2, peer)
    assert state.direct[2] and state.fd[2] == peer.send_fd == -1  # no send thread: no descriptor for one
    peer.write(b"x" * (4 << 20))  # far more than the socket takes: the transport keeps the rest
    assert not state.direct[2]
    got = 0
    async with asyncio.timeout(10):
        while got < 4 << 20:
            try:
                got += len(theirs.recv(1 << 20))
            except BlockingIOError:
                await asyncio.sleep(0.001)
        while not state.direct[2]:
            await asyncio.sleep(0.001)
    assert peer.transport.get_write_buffer_size() == 0
    peer.abort()
    assert not state.direct[2]
    theirs.close()

