"""Movement as arrays (server.inputs) against the per-visitor rule it replaced, on random
inputs: backlogs, late and overlapping inputs, holds cut short, runs, long directions,
avatars started by the booth's walls, the hall's edges and the portals. Both queue the
inputs with the same rule (``hold``); what is compared is how a tick applies them."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pytest
from support import Harness

import protocol as p
from server.inputs import INPUT_CREDIT_CAP, INPUT_CREDIT_PER_TICK, INPUT_TICK_COST, HeldInput, hold
from world.motion import PORTAL_COOLDOWN, portal_hops, step


@dataclass
class Walker:
    """One visitor as the per-session rule kept it, with its avatar stepped alone."""

    hall: int
    pos: tuple[float, float]
    yaw: float = 0.0
    motion: int = 0
    ready_at: float = 0.0
    inputs: deque[HeldInput] = field(default_factory=deque)
    last_input_seq: int = 0
    acked_seq: int = 0
    credit: int = 0
    credit_tick: int = 0

    def queue(self, message: p.Input) -> bool:
        if message.seq <= self.last_input_seq:
            return False
        self.last_input_seq = message.seq
        hold(self.inputs, message, self.acked_seq)
        return True


def reference_move(walkers: list[Walker], tick: int, now: float, harness: Harness) -> None:
    """The per-session ``_move`` as it was, each avatar stepped as an array of one."""
    geometry, dt = harness.sim.geometry, harness.config.dt
    for w in walkers:
        w.motion = 0
    moving = [w for w in walkers if w.inputs]
    for w in moving:
        w.credit = min(INPUT_CREDIT_CAP, w.credit + INPUT_CREDIT_PER_TICK * (tick - w.credit_tick))
        w.credit_tick = tick
    for _ in range(INPUT_CREDIT_CAP // INPUT_TICK_COST):
        again = []
        for w in moving:
            if w.credit < INPUT_TICK_COST:
                continue
            w.credit -= INPUT_TICK_COST
            held = w.inputs[0]
            if len(w.inputs) > 1:
                again.append(w)
            w.acked_seq = held.next_seq
            held.next_seq += 1
            if held.next_seq >= held.end_seq:
                w.inputs.popleft()
            m = held.message
            w.yaw = m.yaw
            hall, pos = np.array([w.hall], np.int16), np.array([w.pos])
            new = step(geometry, hall, pos, np.array([[m.move_x, m.move_y]]), np.array([m.run]), dt)
            w.motion = (2 if m.run else 1) if bool(np.any(new[0] != pos[0])) else 0
            w.pos = (float(new[0, 0]), float(new[0, 1]))
            who, halls, targets = portal_hops(geometry, hall, new, np.array([w.ready_at <= now]))
            if len(who):
                w.hall, w.pos, w.ready_at = int(halls[0]), (float(targets[0, 0]), float(targets[0, 1])), now + PORTAL_COOLDOWN
        moving = again


STARTS = [  # (hall, x, y): open floor, by the booth's walls and its open side, the edges, the portals
    (0, 50.0, 20.0), (0, 29.8, 33.0), (0, 38.3, 31.0), (0, 34.0, 36.2), (0, 34.0, 29.5),
    (0, 0.5, 0.5), (0, 99.6, 59.6), (0, 94.0, 30.0), (0, 96.8, 30.0), (1, 3.0, 35.0), (1, 39.5, 20.0), (1, 20.0, 0.4),
]


@pytest.mark.parametrize("seed", range(6))
def test_array_movement_matches_the_per_visitor_rule(seed):
    rng = random.Random(seed)
    harness = Harness(frame_burst=10_000.0, flood_burst=10_000.0)  # bursts test the input rules, not the rate limits
    sim = harness.sim
    peers, walkers = [], []
    for i, (hall, x, y) in enumerate(STARTS):
        peer, welcome = harness.join(f"w{i}")
        harness.place(welcome.entity, x, y, hall)
        peers.append(peer)
        walkers.append(Walker(hall, (x, y), credit_tick=sim.tick_count))
    sessions = [peer.session for peer in peers]
    seqs = [0] * len(peers)
    for _ in range(400):
        for i, peer in enumerate(peers):
            for _ in range(rng.choice((0, 0, 0, 1, 1, 2, 3))):
                # mostly the next ticks, sometimes far ahead (a hiccup's backlog), rarely one not after
                # the last (refused: more than a few a second and the connection closes as a flood)
                seqs[i] = max(1, seqs[i] + (-2 if rng.random() < 0.01 else rng.choice((1, 1, 2, 3, 6, 15))))
                # each component within [-1, 1]: directions up to sqrt(2) long (scaled down), or standing
                mx, my = rng.choice(((0.0, 0.0), (1.0, 1.0), (rng.uniform(-1, 1), rng.uniform(-1, 1))))
                frame = p.encode(p.Input(seqs[i], mx, my, rng.uniform(-math.pi, math.pi),
                                         rng.random() < 0.3, rng.randint(1, 20)))
                message = p.decode_client(frame)  # what the server sees
                assert isinstance(message, p.Input)
                accepted = walkers[i].queue(message)
                replies = harness.send(peer, frame)
                assert accepted == (replies == []), replies
        harness.clock.advance(harness.config.dt)
        sim.tick()
        reference_move(walkers, sim.tick_count, harness.clock.monotonic(), harness)
        for session, w in zip(sessions, walkers):
            slot = session.slot
            assert session.acked_seq == w.acked_seq
            assert [(h.next_seq, h.end_seq, h.message) for h in session.inputs] == [
                (h.next_seq, h.end_seq, h.message) for h in w.inputs]
            assert (int(sim.avatars.hall[slot]), tuple(sim.avatars.pos[slot].tolist())) == (w.hall, w.pos)
            assert (float(sim.avatars.yaw[slot]), int(sim.avatars.motion[slot])) == (w.yaw, w.motion)
            assert float(sim.avatars.portal_ready_at[slot]) == w.ready_at
            peer = session.peer
            assert peer is not None
            peer.outbox.clear()
    hops = sim.metrics.portal_hops._value.get()
    assert hops > 0, "the walk went through a portal"
