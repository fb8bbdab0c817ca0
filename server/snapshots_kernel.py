"""The snapshot delta encoding of server/snapshots.py as compiled (numba) passes.

``diff`` walks the observers in slot order, each one once: it marks the target slots of
the observer's sent rows (a row still matches when its slot holds the same entity), marks
the slots it sees now, then merges the sent rows (sorted by entity) with the newcomers
(sorted apart, few) into its new rows, emitting leaves, enters and changed deltas on the
way. No global sort: the numpy version before it spent most of its 8 ms (500 avatars of a
crowd, 64 seen each) in argsort, searchsorted and ~30 whole-array passes.

Deltas are written as msgpack straight away, each naming its entity by the gap from the
previous delta's (they go out by entity, so the gap is positive and mostly a one-byte
fixint where a 3-byte uint16 id was), and ``frames`` writes each sending
observer's one tick message (protocol 3: leaves, enters and snapshot together) around
them, as a whole WebSocket frame: the bytes ``msgpack.packb`` writes for the same lists
(the smallest format for every int) behind the frame header, without a Python object per
avatar or per client.

Cached on disk like the interest kernel (compiling takes seconds, loading the cache well
under one); ``server.snapshots.warm`` pays it at server start.
"""

from __future__ import annotations

import numpy as np

from world.jit import compiled

ENTITY_BITS = 32  # a sent row's key is (observer << ENTITY_BITS) | entity
_ENTITY_MASK = (1 << ENTITY_BITS) - 1
MAX_INT_BYTES = 9  # the longest msgpack int: a marker and 8 bytes
MAX_HEADER_BYTES = 5  # the longest msgpack array header: a marker and 4 bytes


@compiled(inline="always")
def _pack_int(buf: np.ndarray, at: int, v: int) -> int:
    """msgpack's own choice for ``v``: a fixint, else the shortest uint (v >= 0) or int
    (v < 0) format; returns the position after it."""
    if -32 <= v <= 127:
        buf[at] = v & 0xFF
        return at + 1
    if v >= 0:
        size, marker = ((1, 0xCC) if v <= 0xFF else (2, 0xCD) if v <= 0xFFFF else (4, 0xCE) if v <= 0xFFFFFFFF
                        else (8, 0xCF))
    else:
        size, marker = ((1, 0xD0) if v >= -0x80 else (2, 0xD1) if v >= -0x8000 else (4, 0xD2) if v >= -0x80000000
                        else (8, 0xD3))
    buf[at] = marker
    for i in range(size):  # big-endian, two's complement
        buf[at + size - i] = (v >> (8 * i)) & 0xFF
    return at + 1 + size


@compiled(inline="always")
def _pack_array_header(buf: np.ndarray, at: int, count: int) -> int:
    """The msgpack header of an array of ``count`` items; returns the position after it."""
    if count < 16:
        buf[at] = 0x90 | count
        return at + 1
    size, marker = (2, 0xDC) if count <= 0xFFFF else (4, 0xDD)
    buf[at] = marker
    for i in range(size):
        buf[at + size - i] = (count >> (8 * i)) & 0xFF
    return at + 1 + size


@compiled(inline="always")
def _copy(buf: np.ndarray, at: int, src: np.ndarray, lo: int, hi: int) -> int:
    """Copy ``src[lo:hi]`` to ``buf`` at ``at``; returns the position after it."""
    buf[at:at + hi - lo] = src[lo:hi]  # a memmove; a loop of byte copies takes 3x as long
    return at + hi - lo


@compiled()
def diff(keys: np.ndarray, slots: np.ndarray, states: np.ndarray, observers: np.ndarray, targets: np.ndarray,
         entity: np.ndarray, quantised: np.ndarray, sending: np.ndarray, yaw_steps: int, out_keys: np.ndarray,
         out_slots: np.ndarray, out_states: np.ndarray) -> tuple:
    """One tick's changes for the observers where ``sending[slot]``, with the sent table
    after it written to ``out_*`` (at least ``len(keys) + len(observers)`` rows; the caller
    keeps them from tick to tick: fresh pages cost more than the whole pass) and its row
    count returned first; other observers' rows are kept as they are. Arguments and
    results as server.snapshots.SentTable and SnapshotDiff hold them."""
    n = len(sending)
    # the sending observers' visible targets, grouped by observer: as they come when the
    # pairs are grouped already (the interest kernel's are), else by a counting sort
    new_off = np.zeros(n + 1, np.int64)
    grouped = True
    last = -1
    for i in range(len(observers)):
        o = observers[i]
        if not (0 <= o < n and 0 <= targets[i] < n):
            raise ValueError("a visible pair's slot is out of range")
        if sending[o]:
            new_off[o + 1] += 1
        grouped = grouped and o >= last
        last = o
    for o in range(n):
        new_off[o + 1] += new_off[o]
    if grouped and new_off[n] == len(observers):
        new_targets = targets  # every observer sends: read as they are
    else:
        fill = new_off[:-1].copy()
        new_targets = np.empty(new_off[n], np.int64)
        for i in range(len(observers)):
            o = observers[i]
            if sending[o]:
                new_targets[fill[o]] = targets[i]
                fill[o] += 1
    old_off = np.zeros(n + 1, np.int64)
    for j in range(len(keys)):
        old_off[(keys[j] >> ENTITY_BITS) + 1] += 1
    for o in range(n):
        old_off[o + 1] += old_off[o]

    enter_targets = np.empty(new_off[n], np.int64)
    enter_entities = np.empty(new_off[n], np.int64)
    leave_entities = np.empty(len(keys), np.int64)
    delta_bytes = np.empty(n * MAX_HEADER_BYTES + new_off[n] * 5 * MAX_INT_BYTES, np.uint8)
    enter_off = np.zeros(n + 1, np.int64)
    leave_off = np.zeros(n + 1, np.int64)
    delta_off = np.zeros(n + 1, np.int64)
    # the row of the entity in the slot, for the observer whose rows hold that index, and the
    # last observer that sees the slot now: marks that need no clearing between observers
    sent_row = np.full(n, -1, np.int64)
    seen_by = np.full(n, -1, np.int64)
    half = yaw_steps // 2
    turn = yaw_steps - 1  # a power of two: folding by a mask, not a division per pair
    assert yaw_steps > 0 and yaw_steps & turn == 0, "yaw steps are a power of two"
    r = ne = nl = w = 0
    for o in range(n):
        p0, p1 = old_off[o], old_off[o + 1]
        if not sending[o]:  # keeps what it was last sent: its next delta is against that
            for j in range(p0, p1):
                out_keys[r] = keys[j]
                out_slots[r] = slots[j]
                for c in range(4):
                    out_states[r, c] = states[j, c]
                r += 1
        else:
            for j in range(p0, p1):
                s = slots[j]
                if entity[s] == keys[j] & _ENTITY_MASK:  # else the slot was reused: a leave
                    sent_row[s] = j
            e0 = ne
            for i in range(new_off[o], new_off[o + 1]):
                t = new_targets[i]
                seen_by[t] = o
                if not p0 <= sent_row[t] < p1:  # a newcomer: insert by entity
                    k = ne
                    while k > e0 and enter_entities[k - 1] > entity[t]:
                        enter_entities[k] = enter_entities[k - 1]
                        enter_targets[k] = enter_targets[k - 1]
                        k -= 1
                    enter_entities[k] = entity[t]
                    enter_targets[k] = t
                    ne += 1
            # merge the sent rows and the newcomers by entity (never equal: an entity keeps
            # its slot); the deltas go after room for their array's header
            d0 = w
            w += MAX_HEADER_BYTES
            changed = 0
            previous = 0  # deltas name their entity by the gap from the one before (protocol 4)
            j, k = p0, e0
            while j < p1 or k < ne:
                if k < ne and (j == p1 or enter_entities[k] < keys[j] & _ENTITY_MASK):
                    s = enter_targets[k]
                    out_keys[r] = (np.int64(o) << ENTITY_BITS) | enter_entities[k]
                    k += 1
                else:
                    s = slots[j]
                    e = keys[j] & _ENTITY_MASK
                    if sent_row[s] != j or seen_by[s] != o:
                        leave_entities[nl] = e
                        nl += 1
                        j += 1
                        continue
                    dx = np.int64(quantised[s, 0]) - states[j, 0]
                    dy = np.int64(quantised[s, 1]) - states[j, 1]
                    dyaw = ((np.int64(quantised[s, 2]) - states[j, 2] + half) & turn) - half
                    if dx != 0 or dy != 0 or dyaw != 0 or quantised[s, 3] != states[j, 3]:
                        w = _pack_int(delta_bytes, w, e - previous)
                        previous = e
                        w = _pack_int(delta_bytes, w, dx)
                        w = _pack_int(delta_bytes, w, dy)
                        w = _pack_int(delta_bytes, w, dyaw)
                        w = _pack_int(delta_bytes, w, quantised[s, 3])  # motion is sent as is
                        changed += 1
                    out_keys[r] = keys[j]
                    j += 1
                out_slots[r] = s
                for c in range(4):
                    out_states[r, c] = quantised[s, c]
                r += 1
            start = _pack_array_header(delta_bytes, d0, 5 * changed)
            w = _copy(delta_bytes, start, delta_bytes, d0 + MAX_HEADER_BYTES, w)  # close the gap it left
        enter_off[o + 1] = ne
        leave_off[o + 1] = nl
        delta_off[o + 1] = w
    return r, enter_targets[:ne], enter_off, leave_entities[:nl], leave_off, delta_bytes[:w], delta_off


@compiled(inline="always")
def _int_size(v: int) -> int:
    """The bytes ``_pack_int`` writes for ``v``."""
    if -32 <= v <= 127:
        return 1
    if v >= 0:
        return 2 if v <= 0xFF else 3 if v <= 0xFFFF else 5 if v <= 0xFFFFFFFF else 9
    return 2 if v >= -0x80 else 3 if v >= -0x8000 else 5 if v >= -0x80000000 else 9


@compiled(inline="always")
def _array_header_size(count: int) -> int:
    return 1 if count < 16 else 3 if count <= 0xFFFF else 5


@compiled(inline="always")
def _pack_frame_header(buf: np.ndarray, at: int, n: int) -> int:
    """A final, binary, unmasked WebSocket frame's header for ``n`` payload bytes (RFC 6455,
    5.2); returns the position after it."""
    buf[at] = 0x82
    if n < 126:
        buf[at + 1] = n
        return at + 2
    size, marker = (2, 126) if n <= 0xFFFF else (8, 127)
    buf[at + 1] = marker
    for i in range(size):
        buf[at + 1 + size - i] = (n >> (8 * i)) & 0xFF
    return at + 2 + size


@compiled()
def frames(order: np.ndarray, head: np.ndarray, acks: np.ndarray, halls: np.ndarray, quantised: np.ndarray,
           info: tuple, leaves: tuple, enters: tuple, deltas: tuple) -> tuple:
    """Each observer's tick message of protocol 3 for the observers in ``order``, each as a
    whole WebSocket frame, back to back in that order: ``head`` (the message's array header,
    type, tick and server time, common to all) followed by ``ack``, ``[hall, x, y, yaw,
    motion]``, the entities that left, ``[[*info, [x, y, yaw, motion]], ...]`` for those
    that entered, and the deltas' array. Returns the bytes and offsets ``at``: the i-th
    observer's frame is ``[at[i], at[i+1])``, ready for its socket.

    ``info`` is each slot's Enter entry up to its state (the array header and static
    fields), joined, and offsets by slot; ``leaves``, ``enters`` and ``deltas`` are the
    diff's (values, offsets) pairs. Each payload's size is computed first, so the frame
    header goes in front of it without moving a byte."""
    info_bytes, info_off = info
    leave_entities, leave_off = leaves
    enter_targets, enter_off = enters
    delta_bytes, delta_off = deltas
    sizes = np.empty(len(order), np.int64)
    total = 0
    for i in range(len(order)):
        o = order[i]
        n = len(head) + _int_size(acks[o]) + 1 + _int_size(halls[o])
        for c in range(4):
            n += _int_size(quantised[o, c])
        nl = leave_off[o + 1] - leave_off[o]
        n += _array_header_size(nl)
        for j in range(leave_off[o], leave_off[o + 1]):
            n += _int_size(leave_entities[j])
        ne = enter_off[o + 1] - enter_off[o]
        n += _array_header_size(ne)
        for j in range(enter_off[o], enter_off[o + 1]):
            t = enter_targets[j]
            n += info_off[t + 1] - info_off[t] + 1
            for c in range(4):
                n += _int_size(quantised[t, c])
        n += delta_off[o + 1] - delta_off[o]
        sizes[i] = n
        total += n + (2 if n < 126 else 4 if n <= 0xFFFF else 10)
    buf = np.empty(total, np.uint8)
    at = np.empty(len(order) + 1, np.int64)
    w = 0
    for i in range(len(order)):
        o = order[i]
        at[i] = w
        w = _pack_frame_header(buf, w, sizes[i])
        end = w + sizes[i]
        w = _copy(buf, w, head, 0, len(head))
        w = _pack_int(buf, w, acks[o])
        buf[w] = 0x95
        w = _pack_int(buf, w + 1, halls[o])
        for c in range(4):
            w = _pack_int(buf, w, quantised[o, c])
        w = _pack_array_header(buf, w, leave_off[o + 1] - leave_off[o])
        for j in range(leave_off[o], leave_off[o + 1]):
            w = _pack_int(buf, w, leave_entities[j])
        w = _pack_array_header(buf, w, enter_off[o + 1] - enter_off[o])
        for j in range(enter_off[o], enter_off[o + 1]):
            t = enter_targets[j]
            w = _copy(buf, w, info_bytes, info_off[t], info_off[t + 1])
            buf[w] = 0x94
            w += 1
            for c in range(4):
                w = _pack_int(buf, w, quantised[t, c])
        w = _copy(buf, w, delta_bytes, delta_off[o], delta_off[o + 1])
        if w != end:
            raise AssertionError("a tick message's size was computed wrong")
    at[len(order)] = w
    return buf, at
