"""Snapshot delta encoding against a plain-Python reference, tick after tick, and the
frames it encodes against msgpack.packb of the same lists.

The reference is written from server/snapshots.py's docstring: what each observer was last
sent, by entity; for the observers that send, enters are entities visible and not sent,
leaves sent and not visible, deltas the visible ones whose state changed (yaw folded by
wrap_yaw_delta, motion as is), all by entity, each delta naming its entity by the gap from
the previous delta's; the others keep what they have.
"""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from websockets.frames import Frame, Opcode

import protocol as p
from protocol.limits import YAW_STEPS
from protocol.quantise import wrap_yaw_delta
from server import snapshots_kernel
from server.avatars import AvatarInfo
from server.snapshots import FrameEncoder, SentTable, frame_payload, warm

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
YAW_HALF = YAW_STEPS // 2


class Reference:
    def __init__(self) -> None:
        self.sent: dict[int, dict[int, tuple[int, ...]]] = {}  # observer -> entity -> state

    def forget_observer(self, slot: int) -> None:
        self.sent.pop(slot, None)

    def diff(self, pairs: list[tuple[int, int]], entity: list[int], states: list[tuple[int, ...]],
             sending: list[bool]) -> dict[int, tuple[list[int], list[int], list[int]]]:
        """Per sending observer: (entering target slots, leaving entities, flat deltas)."""
        visible: dict[int, dict[int, int]] = {o: {} for o in range(len(sending)) if sending[o]}
        for o, t in pairs:
            if sending[o]:
                visible[o][entity[t]] = t
        changes = {}
        for o, now in visible.items():
            old = self.sent.get(o, {})
            deltas, previous = [], 0
            for e in sorted(now.keys() & old.keys()):
                new, was = states[now[e]], old[e]
                d = [new[0] - was[0], new[1] - was[1], wrap_yaw_delta(new[2] - was[2])]
                if any(d) or new[3] != was[3]:
                    deltas += [e - previous, *d, new[3]]  # the gap from the one before
                    previous = e
            changes[o] = ([now[e] for e in sorted(now.keys() - old.keys())], sorted(old.keys() - now.keys()), deltas)
            self.sent[o] = {e: states[t] for e, t in now.items()}
        return changes


def _random_states(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mostly small steps, some int32 extremes: every msgpack int size, both signs."""
    q = rng.integers(-3, 4, (n, 4)).astype(np.int64) + rng.choice([0, 200, 70000, YAW_HALF], (n, 4))
    q[:, 2] = rng.choice([0, 1, YAW_HALF, 2 * YAW_HALF - 1], n) + rng.integers(-2, 3, n)  # across the wrap
    extreme = rng.random((n, 4)) < 0.1
    q[extreme] = rng.choice([INT32_MIN, INT32_MAX, -129, 128, -32769, 65536], extreme.sum())
    return q.astype(np.int32)


@pytest.mark.parametrize("grouped", [False, True], ids=["any order, some send", "grouped by observer, all send"])
@pytest.mark.parametrize("seed", range(6))
def test_diff_matches_the_reference_tick_after_tick(seed, grouped):
    """In any order the diff groups the pairs itself; grouped by observer (as the interest
    kernel gives them), with every observer sending (the usual tick), it reads them as
    they are."""
    rng = np.random.default_rng(seed)
    n = 12
    table, ref = SentTable(n), Reference()
    next_entity = 2**31 - 8  # ids across 2**31, up to the 32 bits a key holds
    entity = np.full(n, -1, np.int64)
    states = _random_states(rng, n)
    for _ in range(40):
        for slot in np.flatnonzero(rng.random(n) < 0.15).tolist():  # leave, or a newcomer reuses the slot
            entity[slot] = next_entity if rng.random() < 0.7 else -1
            next_entity += 1
        keep = rng.random((n, 4)) < 0.5
        states = np.where(keep, states, _random_states(rng, n))
        for slot in np.flatnonzero(rng.random(n) < 0.05).tolist():
            table.forget_observer(slot)
            ref.forget_observer(slot)
        active = np.flatnonzero(entity >= 0)
        pairs = [(o, t) for o in active.tolist() for t in active.tolist() if o != t and rng.random() < 0.6]
        rng.shuffle(pairs)  # any order: the diff sorts
        sending = rng.random(n) < 0.7
        if grouped:
            pairs.sort(key=lambda pair: pair[0])  # each observer's targets stay in their random order
            sending[:] = True
        observers = np.array([o for o, _ in pairs], np.int64)
        targets = np.array([t for _, t in pairs], np.int64)

        diff = table.diff(observers, targets, entity, states, sending)
        expected = ref.diff(pairs, entity.tolist(), [tuple(s) for s in states.tolist()], sending.tolist())
        for o in range(n):
            enters = diff.enter_targets[diff.enter_offsets[o]:diff.enter_offsets[o + 1]].tolist()
            leaves = diff.leave_entities[diff.leave_offsets[o]:diff.leave_offsets[o + 1]].tolist()
            deltas = bytes(diff.delta_bytes[diff.delta_offsets[o]:diff.delta_offsets[o + 1]])
            if o in expected:
                want_enters, want_leaves, want_deltas = expected[o]
                assert (enters, leaves) == (want_enters, want_leaves)
                assert deltas == msgpack.packb(want_deltas)
            else:
                assert (enters, leaves, deltas) == ([], [], b"")


def test_delta_bytes_are_msgpack_for_every_int_size():
    """Deltas at every msgpack boundary and beyond int32, as differences of states."""
    edges = [0, 1, 127, 128, 255, 256, 65535, 65536, INT32_MAX, -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN]
    n = len(edges) + 1
    table = SentTable(n)
    entity = np.arange(n, dtype=np.int64) + 2**32 - n  # the largest ids a key holds
    observers, targets = np.zeros(n - 1, np.int64), np.arange(1, n)
    sending = np.ones(n, bool)
    old = np.zeros((n, 4), np.int32)
    old[1:] = [[INT32_MAX, INT32_MIN, 0, 0]] + [[0, 0, 0, 0]] * (n - 2)
    table.diff(observers, targets, entity, old, sending)
    new = old.copy()
    new[1] = [INT32_MIN, INT32_MAX, YAW_HALF, INT32_MIN]  # dx, dy beyond int32; yaw folds to -32768
    new[2:, 0] = edges[1:]
    new[2:, 1] = edges[:-1]
    new[2:, 3] = edges[1:]
    diff = table.diff(observers, targets, entity, new, sending)

    flat = []
    for t in range(1, n):
        d = new[t].astype(np.int64) - old[t]
        flat += [int(entity[t] - (entity[t - 1] if t > 1 else 0)), int(d[0]), int(d[1]), wrap_yaw_delta(int(d[2])), int(new[t, 3])]
    assert flat[1:3] == [-(2**32) + 1, 2**32 - 1] and flat[3] == -YAW_HALF
    body = bytes(diff.delta_bytes[diff.delta_offsets[0]:diff.delta_offsets[1]])
    assert body == msgpack.packb(flat)


def test_observers_that_do_not_send_keep_what_they_were_sent():
    table = SentTable(3)
    entity = np.array([10, 11, 12])
    q = np.zeros((3, 4), np.int32)
    observers, targets = np.array([0, 0, 1]), np.array([1, 2, 2])
    table.diff(observers, targets, entity, q, np.ones(3, bool))
    q[1, 0] = q[2, 0] = 5
    idle = table.diff(observers, targets, entity, q, np.array([False, True, True]))
    assert len(idle.delta_bytes[idle.delta_offsets[0]:idle.delta_offsets[1]]) == 0
    q[1, 0] = 9
    back = table.diff(observers, targets, entity, q, np.ones(3, bool))
    assert msgpack.unpackb(bytes(back.delta_bytes[back.delta_offsets[0]:back.delta_offsets[1]])) == [
        11, 9, 0, 0, 0, 1, 5, 0, 0, 0]  # against what observer 0 really has; entity 12 as 11 + 1
    assert msgpack.unpackb(bytes(back.delta_bytes[back.delta_offsets[1]:back.delta_offsets[2]])) == []


def test_rejects_pairs_and_arrays_outside_the_capacity():
    table = SentTable(4)
    q, sending, entity = np.zeros((4, 4), np.int32), np.ones(4, bool), np.arange(4)
    with pytest.raises(ValueError):
        table.diff(np.array([0]), np.array([4]), entity, q, sending)
    with pytest.raises(ValueError):
        table.diff(np.array([-1]), np.array([1]), entity, q, sending)
    with pytest.raises(ValueError):
        table.diff(np.array([0]), np.array([1]), entity, q[:3], sending)


# ---------------------------------------------------------------------- frames


def _avatar(rng: np.random.Generator, entity: int) -> AvatarInfo | None:
    names = ["a", "Гость", "ш" * 24, "name with spaces", "x" * 31]
    if rng.random() < 0.2:
        return None
    return AvatarInfo(entity, names[entity % len(names)], int(rng.integers(0, 2**24)), int(rng.integers(0, 4)),
                      None if rng.random() < 0.7 else "kz-honey")


@pytest.mark.parametrize("seed", range(4))
def test_frames_are_what_msgpack_writes_for_the_same_lists(seed):
    rng = np.random.default_rng(seed)
    n = 10
    table, encoder = SentTable(n), FrameEncoder(n)
    info = [_avatar(rng, e) for e in range(1, n + 1)]
    next_entity = n + 1
    q = _random_states(rng, n)
    for tick in range(1, 8):
        for slot in np.flatnonzero(rng.random(n) < 0.3).tolist():  # left, or a new occupant: its entry re-encoded
            info[slot] = _avatar(rng, next_entity)
            next_entity += 1
        entity = np.array([-1 if a is None else a.entity for a in info], np.int64)
        live = np.flatnonzero(entity >= 0).tolist()
        pairs = [(o, t) for o in live for t in live if o != t and rng.random() < 0.7]
        q = np.where(rng.random((n, 4)) < 0.5, q, _random_states(rng, n))
        sending = rng.random(n) < 0.8
        diff = table.diff(np.array([o for o, _ in pairs], np.int64), np.array([t for _, t in pairs], np.int64),
                          entity, q, sending)
        senders = rng.permutation(np.flatnonzero(sending))
        acks = rng.choice([0, 5, 2**32 - 1], n)
        halls = rng.integers(0, 300, n).astype(np.int16)
        now = 1e6 * rng.random()
        data, at = encoder.encode(diff, senders, acks, halls, q, entity, info, tick * 100_000, now)

        assert len(at) == len(senders) + 1 and at[0] == 0 and at[-1] == len(data)
        for i, o in enumerate(senders.tolist()):
            leaves = diff.leave_entities[diff.leave_offsets[o]:diff.leave_offsets[o + 1]].tolist()
            enters = diff.enter_targets[diff.enter_offsets[o]:diff.enter_offsets[o + 1]].tolist()
            deltas = msgpack.unpackb(bytes(diff.delta_bytes[diff.delta_offsets[o]:diff.delta_offsets[o + 1]]))
            payload = msgpack.packb([p.Snapshot.TYPE, tick * 100_000, now, int(acks[o]), [int(halls[o]), *q[o].tolist()],
                                     leaves, [info[t].wire_prefix() + [q[t].tolist()] for t in enters], deltas])
            assert bytes(data[at[i]:at[i + 1]]) == Frame(Opcode.BINARY, payload).serialize(mask=False)  # websockets' bytes


def test_frames_decode_as_the_protocol_messages():
    n = 3
    info = [AvatarInfo(7, "Aigerim", 0x336699, 1, "kz-honey"), AvatarInfo(8, "Бекзат", 0xFFFFFF, 2, None), None]
    entity = np.array([7, 8, -1])
    q = np.array([[100, 200, 65535, 2], [0, 0, 0, 0], [0, 0, 0, 0]], np.int32)
    table, encoder = SentTable(n), FrameEncoder(n)
    diff = table.diff(np.array([0, 1]), np.array([1, 0]), entity, q, np.array([True, True, False]))
    data, at = encoder.encode(diff, np.array([1]), np.array([0, 41, 0]), np.array([1, 0, 0]), q, entity, info, 9, 2.5)
    enter = p.EntityInfo(7, "Aigerim", 0x336699, 1, "kz-honey", p.EntityState(100, 200, 65535, 2))
    own = p.OwnState.of(0, p.EntityState(0, 0, 0, 0))
    assert frame_payload(data[at[0]:at[1]]) == p.encode(p.Snapshot(9, 2.5, 41, own, (), (enter,), ()))
    q[0, 2] = 1  # yaw across the wrap: +2 steps
    diff = table.diff(np.array([1]), np.array([0]), entity, q, np.array([False, True, False]))
    data, at = encoder.encode(diff, np.array([1]), np.array([0, 42, 0]), np.array([1, 0, 0]), q, entity, info, 10, 2.6)
    assert p.decode_server(frame_payload(data[at[0]:at[1]])) == p.Snapshot(10, 2.6, 42, own, (), (), (7, 0, 0, 2, 2))
    entity[0] = 9  # the slot's avatar left and another took it
    diff = table.diff(np.array([1]), np.array([0]), entity, q, np.array([False, True, False]))
    info[0] = AvatarInfo(9, "Chen", 0, 0, None)
    data, at = encoder.encode(diff, np.array([1]), np.array([0, 42, 0]), np.array([1, 0, 0]), q, entity, info, 11, 2.7)
    message = p.decode_server(frame_payload(data[at[0]:at[1]]))
    assert message.leaves == (7,) and [e.entity for e in message.enters] == [9]


@pytest.mark.parametrize("crowd", [1, 40, 1500])  # frames under 126 bytes, under 64 KiB, over
def test_each_tick_message_is_one_whole_websocket_frame(crowd):
    n = crowd + 1
    info = [AvatarInfo(e + 1, f"visitor {e}", 0, 0, None) for e in range(n)]
    entity = np.arange(1, n + 1, dtype=np.int64)
    q = np.zeros((n, 4), np.int32)
    table, encoder = SentTable(n), FrameEncoder(n)
    diff = table.diff(np.zeros(crowd, np.int64), np.arange(1, n, dtype=np.int64), entity, q, np.ones(n, bool))
    data, at = encoder.encode(diff, np.array([0]), np.zeros(n), np.zeros(n), q, entity, info, 1, 0.5)
    payload = frame_payload(data[at[0]:at[1]])
    assert bytes(data[at[0]:at[1]]) == Frame(Opcode.BINARY, payload).serialize(mask=False)
    assert len(p.decode_server(payload).enters) == crowd


def test_warm_compiles_the_one_signature_every_tick_uses():
    """The server warms the kernels at start: whatever dtypes a caller passes, a tick then
    finds them compiled instead of stalling for the JIT."""
    warm()
    n = 4
    table, encoder = SentTable(n), FrameEncoder(n)
    info = [AvatarInfo(e, "a", 0, 0, None) for e in range(1, n + 1)]
    entity = np.arange(1, n + 1, dtype=np.int32)
    diff = table.diff(np.array([0, 1], np.int16), [1, 2], entity, np.zeros((n, 4), np.int64), [1, 1, 0, 0])
    encoder.encode(diff, [1, 0], [3, 4, 0, 0], np.zeros(n, np.int16), np.zeros((n, 4), np.int16), entity, info, 1, 0.5)
    assert len(snapshots_kernel.diff.signatures) == 1
    assert len(snapshots_kernel.frames.signatures) == 1
