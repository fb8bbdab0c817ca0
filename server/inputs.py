"""The visitors' held inputs as arrays by avatar slot, so that a tick's movement is a few
numpy operations over every walking avatar instead of Python per visitor.

A slot's queue of held inputs (oldest first; the newest is the one in force, see
``Simulation._queue_input``) is split in two: its front, the input applied next, lives in
the arrays (direction, yaw, run, the next tick of it and where it ends); whatever waits
behind the front, which is only there while a network hiccup left a backlog, stays a deque
of ``HeldInput`` in Python (``rest``), and is touched only when the front runs out. Input
credit (tenths of a tick) and the highest tick applied (the snapshot's ack) are arrays too.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

import numpy as np

import protocol as p

# Input credit in tenths of a tick (integers: exact): an avatar earns 1.1 ticks of input a
# tick and may save at most 2, so a backlog drains 10 % faster than real time and no tick
# applies more than two ticks of input (see Simulation._move).
INPUT_CREDIT_PER_TICK = 11
INPUT_CREDIT_CAP = 20
INPUT_TICK_COST = 10
INPUT_BACKLOG_LIMIT = 4  # ticks of backlog kept behind the input in force; older ones are dropped


@dataclass(eq=False, slots=True)
class HeldInput:
    """An Input with the ticks of it still to apply: ``next_seq`` up to ``end_seq``
    (exclusive), cut short when the next Input starts earlier."""

    message: p.Input
    next_seq: int
    end_seq: int


def hold(queue: deque[HeldInput], message: p.Input, acked_seq: int) -> None:
    """Queue ``message`` (its seq after every one before) behind the held inputs ``queue``
    of a visitor whose inputs are applied up to ``acked_seq``.

    The input before it holds only until it starts; ticks the server already spent on the
    one before (it arrived late) are skipped. The ticks waiting before the newest input's
    first are a backlog (the newest is in force): beyond INPUT_BACKLOG_LIMIT the oldest go."""
    if queue:
        queue[-1].end_seq = min(queue[-1].end_seq, message.seq)
        if queue[-1].next_seq >= queue[-1].end_seq:
            queue.pop()
    start = max(message.seq, acked_seq + 1)
    if start < message.seq + message.ticks:
        queue.append(HeldInput(message, start, message.seq + message.ticks))
    backlog = sum(held.end_seq - held.next_seq for held in itertools.islice(queue, max(0, len(queue) - 1)))
    stale = backlog - INPUT_BACKLOG_LIMIT
    while stale > 0:
        oldest = queue[0]
        dropped = min(stale, oldest.end_seq - oldest.next_seq)
        oldest.next_seq += dropped
        stale -= dropped
        if oldest.next_seq >= oldest.end_seq:
            queue.popleft()


@dataclass(frozen=True, slots=True)
class Steps:
    """One round of a tick's movement: the slots that take a tick of input, and that input."""

    slots: np.ndarray  # int64
    yaw: np.ndarray  # float64
    move: np.ndarray  # (n, 2) float64, C order (the layout the motion kernel was compiled for)
    run: np.ndarray  # bool


class InputQueues:
    def __init__(self, capacity: int) -> None:
        self.holding = np.zeros(capacity, dtype=bool)  # the slot has a front
        self.backlogged = np.zeros(capacity, dtype=bool)  # and held inputs behind it (``rest``)
        self.next_seq = np.zeros(capacity, dtype=np.int64)
        self.end_seq = np.zeros(capacity, dtype=np.int64)
        self.yaw = np.zeros(capacity, dtype=np.float64)
        self.move = np.zeros((capacity, 2), dtype=np.float64)
        self.run = np.zeros(capacity, dtype=bool)
        self.front: list[p.Input | None] = [None] * capacity  # the front's message, for ``queue`` (while holding)
        self.rest: dict[int, deque[HeldInput]] = {}
        self.credit = np.zeros(capacity, dtype=np.int64)  # as of tick ``credit_tick`` (brought up to date when used)
        self.credit_tick = np.zeros(capacity, dtype=np.int64)
        self.acked = np.zeros(capacity, dtype=np.int64)  # highest seq applied

    def reset(self, slot: int, tick: int) -> None:
        """A new session in ``slot``: nothing held, no credit, nothing applied."""
        self.clear(slot)
        self.credit[slot] = 0
        self.credit_tick[slot] = tick
        self.acked[slot] = 0

    def clear(self, slot: int) -> None:
        """Drop the slot's held inputs (its credit and ack stay)."""
        self.holding[slot] = False
        self.backlogged[slot] = False
        self.front[slot] = None
        self.rest.pop(slot, None)

    def queue(self, slot: int) -> deque[HeldInput]:
        """The slot's held inputs, oldest first, as a new deque (change it, then ``store``)."""
        queue: deque[HeldInput] = deque()
        if self.holding[slot]:
            message = self.front[slot]
            assert message is not None, "a held front has its message"
            queue.append(HeldInput(message, int(self.next_seq[slot]), int(self.end_seq[slot])))
            queue.extend(self.rest.get(slot, ()))
        return queue

    def store(self, slot: int, queue: deque[HeldInput]) -> None:
        """Make ``queue`` (oldest first) the slot's held inputs."""
        if not queue:
            self.clear(slot)
            return
        front = queue.popleft()
        self._set_front(slot, front.message, front.next_seq, front.end_seq)
        if queue:
            self.rest[slot] = queue
            self.backlogged[slot] = True
        else:
            self.rest.pop(slot, None)
            self.backlogged[slot] = False

    def add(self, slot: int, message: p.Input, acked_seq: int) -> None:
        """``hold`` the slot's next Input (its seq after every one before): on the arrays
        when nothing waits behind the front (nearly always), else on the queue as a deque."""
        if self.backlogged[slot]:
            queue = self.queue(slot)
            hold(queue, message, acked_seq)
            self.store(slot, queue)
            return
        seq, end = message.seq, message.seq + message.ticks
        front = bool(self.holding[slot])
        if front:  # the input before this one holds only until this one starts
            front_next, front_end = int(self.next_seq[slot]), min(int(self.end_seq[slot]), seq)
            front = front_next < front_end
            self.end_seq[slot] = front_end
        start = max(seq, acked_seq + 1)  # ticks already spent on the one before are skipped
        if start >= end:  # wholly spent already: the front (if any) stays alone
            self.holding[slot] = front
        elif front:  # the front's remaining ticks are a backlog behind which this one waits
            self.next_seq[slot] = max(front_next, front_end - INPUT_BACKLOG_LIMIT)
            self.rest[slot] = deque((HeldInput(message, start, end),))
            self.backlogged[slot] = True
        else:
            self._set_front(slot, message, start, end)  # no HeldInput made: the usual Input

    def _set_front(self, slot: int, m: p.Input, next_seq: int, end_seq: int) -> None:
        self.holding[slot] = True
        self.front[slot] = m
        self.next_seq[slot] = next_seq
        self.end_seq[slot] = end_seq
        self.yaw[slot] = m.yaw
        self.move[slot, 0] = m.move_x  # item by item: a row set from a tuple costs 3x
        self.move[slot, 1] = m.move_y
        self.run[slot] = m.run

    def earn(self, tick: int) -> np.ndarray:
        """The slots holding inputs, with the credit earned since each was last brought up
        to date added (idle slots are left as they were: they catch up when next used)."""
        moving = np.flatnonzero(self.holding)
        credit = self.credit[moving] + INPUT_CREDIT_PER_TICK * (tick - self.credit_tick[moving])
        self.credit[moving] = np.minimum(INPUT_CREDIT_CAP, credit)
        self.credit_tick[moving] = tick
        return moving

    def take(self, candidates: np.ndarray) -> tuple[Steps, np.ndarray]:
        """One round: each of ``candidates`` with a tick's credit spends it on the next tick
        of its front. Returns those steps and the slots that may take another this tick
        (they had a backlog: a backlog drains with the spare credit)."""
        slots = candidates[self.credit[candidates] >= INPUT_TICK_COST]
        self.credit[slots] -= INPUT_TICK_COST
        again = slots[self.backlogged[slots]]
        self.acked[slots] = self.next_seq[slots]
        self.next_seq[slots] += 1
        steps = Steps(slots, self.yaw[slots], self.move[slots], self.run[slots])
        spent = slots[self.next_seq[slots] >= self.end_seq[slots]]
        if len(spent):
            self.holding[spent[~self.backlogged[spent]]] = False
            for slot in spent[self.backlogged[spent]].tolist():  # the next held input moves up (Python: few)
                self.store(slot, self.rest.pop(slot))
        return steps, again
