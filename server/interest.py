"""Interest management: who sees whom, every tick, for every avatar at once.

The rule (the brute-force reference in tests/server/test_interest.py implements exactly
this):

* An observer ``o`` sees only active avatars in its own hall, never itself.
* A *newcomer* (a target ``o`` did not see last tick) is eligible when its distance
  ``d <= view_radius`` (inclusive). A *member* (seen last tick, not forgotten since) stays
  eligible while ``d <= leave_radius`` (default 1.15 * view_radius): radial hysteresis.
* Eligible targets are ranked by ``q = floor(d2 * key_scale)`` for newcomers and
  ``q = floor(d2 * (member_factor * key_scale))`` for members (``d2 = dx*dx + dy*dy``,
  ``member_factor = (view/leave)**2``): members compete as if they were 15 % nearer.
  ``key_scale = (2**key_bits - 1) / view_radius**2`` (a resolution below 1e-6 m^2); ties
  in ``q`` go to the lower slot. The observer sees the
  ``max_visible`` first by ``(q, slot)``. The same discount that stops radial flicker stops
  cap flicker: a newcomer replaces a member only by being 15 % nearer, so two avatars at
  nearly equal distances do not swap places every tick.
* Output pairs are sorted by observer, then by that rank (nearest first, members'
  distance discounted).

Every ``every``-th call (``every=1``: each call) runs the rule; a call between returns the
last sets as they stand (its entered and left empty), unless something happened since that
only the rule shows truly (an avatar activated, deactivated or changed hall, or a slot was
forgotten): then the rule runs at once. So the rule runs at least every ``every`` ticks: an
avatar that comes within ``view_radius`` at tick t is seen from the first run at or after t
at which it is still within it (and among the ``max_visible``), by t + every - 1 when it
stays; one beyond ``leave_radius`` goes at the first run, by t + every - 1; and nobody is
listed in a hall they left or after they went. The positions sent are each tick's whatever
the sets' age (the snapshot's deltas read the avatar table). Why: the rule is a tenth of the
server's CPU at 1,000 walking visitors (benchmarks/README.md), and a walking avatar covers 7
cm a tick against a 20 m radius.

``forget(slot)`` must be called when a slot is freed (the simulation calls it before the
avatar table reuses the slot): the slot's pairs, as observer and as target, lose their
membership, and next tick's changes report them as left (and any pair the slot is in as
entered), so a newcomer in a reused slot is never mistaken for its predecessor.

How it is fast: one compiled pass per tick (server.interest_kernel, numba), one observer at
a time, touching only what changed: movers are found by comparing positions, halls and
active flags with last tick's; an observer that did not move keeps its members' keys and
meets only movers as newcomers (from a grid of the movers alone), unless a place fell free
in its list; the others rank their members, then newcomers from a uniform grid, square by
square until nothing outside can rank. The numpy implementation before it (now the
benchmark peer benchmarks/interest_numpy.py) spent its tick in the overhead of ~20
whole-array passes and in re-selecting every moved observer: 5 ms against 0.8 ms at 1,000
avatars, 52-164 ms against 9-10 ms at 10,000; 7 ms against 0.6 ms a tick in the server with
250 walking bots. The JIT takes ~5 s and its result is cached on disk; ``warm()`` pays it
(or loads the cache, ~0.3 s) at server start, not in the first tick.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import interest_kernel

MAX_CAPACITY = 1 << 17  # keys keep >= 28 bits (62 - 2 * slot_bits), as the rule defines them


@dataclass(frozen=True, slots=True)
class Visibility:
    """One tick's visible sets, as CSR, and what changed since the tick before."""

    observers: np.ndarray  # int64, sorted
    targets: np.ndarray  # int64, per observer nearest first (by rank)
    offsets: np.ndarray  # (capacity + 1,): o's targets are targets[offsets[o]:offsets[o + 1]]
    entered_observers: np.ndarray  # pairs visible now and not last tick, sorted by observer
    entered_targets: np.ndarray
    left_observers: np.ndarray  # pairs visible last tick and not now, sorted by observer
    left_targets: np.ndarray


class InterestManager:
    def __init__(self, capacity: int, view_radius: float, leave_radius: float | None = None, max_visible: int = 64,
                 every: int = 1) -> None:
        if every < 1:
            raise ValueError("every must be at least 1")
        if leave_radius is None:
            leave_radius = 1.15 * view_radius
        if not (view_radius > 0 and leave_radius >= view_radius):
            raise ValueError("need 0 < view_radius <= leave_radius")
        if max_visible < 1:
            raise ValueError("max_visible must be positive")
        if capacity > MAX_CAPACITY:
            raise ValueError(f"capacity {capacity} is above {MAX_CAPACITY}")
        self.capacity = capacity
        self.view_radius = float(view_radius)
        self.leave_radius = float(leave_radius)
        self.max_visible = int(max_visible)
        self.every = int(every)
        self._since = 0  # calls since the rule last ran
        self.slot_bits = max(1, (capacity - 1).bit_length())
        self.key_bits = min(40, 62 - 2 * self.slot_bits)
        self.key_scale = float((1 << self.key_bits) - 1) / (self.view_radius**2)
        self.member_factor = (self.view_radius / self.leave_radius) ** 2
        # last tick, as the kernel left it: where everyone was, every observer's list with
        # its members' keys ((key << slot_bits) | target, sorted), and the cap-th rank if full
        self._x = np.zeros(capacity)
        self._y = np.zeros(capacity)
        self._halls = np.zeros(capacity, dtype=np.int16)
        self._active = np.zeros(capacity, dtype=np.bool_)
        self._forgotten = np.zeros(capacity, dtype=np.bool_)
        self._offsets = np.zeros(capacity + 1, dtype=np.int64)
        self._keys = np.zeros(0, dtype=np.int64)
        self._worst = np.full(capacity, -1, dtype=np.int64)
        self.last: Visibility | None = None

    # ------------------------------------------------------------------ API

    def forget(self, slot: int) -> None:
        """The slot was freed or reused: drop its pairs as observer and as target."""
        self._forgotten[slot] = True

    def visible_pairs(self, positions: np.ndarray, halls: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(observers, targets) int64 slot arrays of every visible pair, sorted by observer,
        each observer's targets nearest first. The full result, with changes, is ``self.last``."""
        vis = self.update(positions, halls, active)
        return vis.observers, vis.targets

    def update(self, positions: np.ndarray, halls: np.ndarray, active: np.ndarray) -> Visibility:
        """One tick. No mask of movers is asked for: the kernel compares every position,
        hall and active flag with last tick's, a pass far cheaper than the tick, so no
        caller can get it wrong."""
        positions = np.asarray(positions, dtype=np.float64)
        halls = np.asarray(halls)
        active = np.asarray(active)
        if positions.shape != (self.capacity, 2) or halls.shape != (self.capacity,) or active.shape != (self.capacity,):
            raise ValueError("positions, halls and active must cover the capacity")
        # fixed dtypes and layouts: one compiled signature, the one warm() compiles
        halls = np.ascontiguousarray(halls, dtype=np.int16)
        active = np.ascontiguousarray(active, dtype=np.bool_)
        if self._may_stand(halls, active):
            assert self.last is not None
            self._since += 1
            kept, none = self.last, np.zeros(0, dtype=np.int64)
            self.last = Visibility(kept.observers, kept.targets, kept.offsets, none, none, none, none)
            return self.last
        self._since = 0
        x = np.ascontiguousarray(positions[:, 0])
        y = np.ascontiguousarray(positions[:, 1])
        last = (self._x, self._y, self._halls, self._active, self._forgotten, self._offsets, self._keys, self._worst)
        rule = (self.max_visible, self.slot_bits, self.key_scale, self.member_factor * self.key_scale,
                self.view_radius, self.leave_radius)
        cells = (self.view_radius / interest_kernel.CELL_DIVISOR, interest_kernel.CELLS_PER_AVATAR,
                 interest_kernel.MOVER_CELLS_PER_AVATAR)
        observers, targets, offsets, keys, worst, entered, left = interest_kernel.tick(
            x, y, halls, active, last, rule, cells)
        self._x, self._y = x.copy(), y.copy()  # copies: the caller's arrays change in place
        self._halls, self._active = halls.copy(), active.copy()
        self._offsets, self._keys, self._worst = offsets, keys, worst
        self._forgotten[:] = False
        n = self.capacity
        vis = Visibility(observers, targets, offsets, entered // n, entered % n, left // n, left % n)
        self.last = vis
        return vis

    def _may_stand(self, halls: np.ndarray, active: np.ndarray) -> bool:
        """Whether this call may return the last sets: not yet ``every`` calls since the rule
        ran, and nobody came, went, changed hall or was forgotten since (all of which the
        sets would show wrongly: a departed avatar in view, a newcomer missed)."""
        return (self._since + 1 < self.every and self.last is not None and not self._forgotten.any()
                and np.array_equal(halls, self._halls) and np.array_equal(active, self._active))


def warm() -> float:
    """Compile the kernel on a tiny world (or load it from the disk cache), so that the
    first tick of a server does not stall for the JIT; returns the seconds it took."""
    start = time.perf_counter()
    im = InterestManager(16, 5.0, max_visible=4)
    pos = np.random.default_rng(0).uniform(0, 10, (16, 2))
    im.update(pos, np.zeros(16, np.int16), np.ones(16, bool))
    return time.perf_counter() - start
