"""Interest management: who sees whom, every tick, for every avatar at once.

The rule (the brute-force reference in tests/server/test_interest.py implements exactly
this):

* An observer ``o`` sees only active avatars in its own hall, never itself.
* A *newcomer* (a target ``o`` did not see last tick) is eligible when its distance
  ``d <= view_radius`` (inclusive). A *member* (seen last tick, not forgotten since) stays
  eligible while ``d <= leave_radius`` (default 1.15 * view_radius): radial hysteresis.
* Eligible targets are ranked by a key: ``d**2`` for newcomers, ``d**2 * (view/leave)**2``
  for members, i.e. members compete as if they were 15 % nearer. The key is quantised,
  ``q = floor(key * key_scale)`` with ``key_scale = (2**key_bits - 1) / view_radius**2``
  (a resolution below 1e-6 m^2), and ties go to the lower slot. The observer sees the
  ``max_visible`` first by ``(q, slot)``. The same discount that stops radial flicker stops
  cap flicker: a newcomer replaces a member only by being 15 % nearer, so two avatars at
  nearly equal distances do not swap places every tick.
* Output pairs are sorted by observer, then by that rank (nearest first, members'
  distance discounted).

``forget(slot)`` must be called when a slot is freed (the simulation calls it before the
avatar table reuses the slot): the slot's pairs, as observer and as target, lose their
membership, and next tick's changes report them as left (and any pair the slot is in as
entered), so a newcomer in a reused slot is never mistaken for its predecessor.

How it is fast: a Morton-ordered multi-level grid (server.interest_grid) gives each
observer the 3x3 block of cells at the finest level that is likely to hold its
``max_visible`` nearest (small cells in crowds, cells of ``leave_radius`` on open floor);
members are checked explicitly from last tick's pairs; a block is accepted only if its
``max_visible``-th key is below the cell size squared, which proves nobody outside could
rank higher, else the observer is redone one level coarser. Pairs are encoded as one
sorted int64 ``observer | key | target`` so ranking, capping and grouping are one sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .interest_grid import MortonGrid, expand

LEVELS = 5  # cell sizes leave_radius / 1, 2, 4, 8, 16
SCRATCH_BYTES = 1 << 25  # the membership bitmap, processed in chunks of observers
LEVEL_MARGIN = 1.1  # pick a cell size this much above last tick's cap radius (+ a step)
LEVEL_SLACK = 0.5  # metres
BLOCK_FILL = 3  # a fresh observer starts at the finest level whose block holds 3 * cap


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
    def __init__(self, capacity: int, view_radius: float, leave_radius: float | None = None, max_visible: int = 64) -> None:
        if leave_radius is None:
            leave_radius = 1.15 * view_radius
        if not (view_radius > 0 and leave_radius >= view_radius):
            raise ValueError("need 0 < view_radius <= leave_radius")
        if max_visible < 1:
            raise ValueError("max_visible must be positive")
        self.capacity = capacity
        self.view_radius = float(view_radius)
        self.leave_radius = float(leave_radius)
        self.max_visible = int(max_visible)
        self._grid = MortonGrid(capacity, self.leave_radius, LEVELS)
        tb = self._grid.slot_bits
        self.slot_bits = tb
        self.key_bits = min(40, 62 - 2 * tb)
        self.key_scale = float((1 << self.key_bits) - 1) / (self.view_radius**2)
        self.member_factor = (self.view_radius / self.leave_radius) ** 2
        self._tmask = (1 << tb) - 1
        self._kmask = (1 << self.key_bits) - 1
        self._osh = self.key_bits + tb
        self._r2 = self.view_radius**2
        self._l2 = self.leave_radius**2
        sizes = self._grid.cell_sizes
        self._level_q = np.floor(sizes**2 * self.key_scale).astype(np.int64)
        self._ranks = np.zeros(0, dtype=np.int64)  # current visible pairs, sorted
        self._offsets = np.zeros(capacity + 1, dtype=np.int64)
        self._pos = np.zeros((capacity, 2), dtype=np.float64)
        self._hall = np.zeros(capacity, dtype=np.int16)
        self._active = np.zeros(capacity, dtype=bool)
        self._forgotten = np.zeros(capacity, dtype=bool)
        self._scratch = np.zeros(0, dtype=bool)
        self.last: Visibility | None = None

    # ------------------------------------------------------------------ API

    def forget(self, slot: int) -> None:
        """The slot was freed or reused: drop its pairs as observer and as target."""
        self._forgotten[slot] = True

    def visible_pairs(self, positions: np.ndarray, halls: np.ndarray, active: np.ndarray,
                      moved: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(observers, targets) int64 slot arrays of every visible pair, sorted by observer,
        each observer's targets nearest first. ``moved`` (bool mask) says whose position
        may have changed since the last call; None compares positions. Hall and active
        changes are always detected. The full result, with changes, is ``self.last``."""
        vis = self.update(positions, halls, active, moved)
        return vis.observers, vis.targets

    def update(self, positions: np.ndarray, halls: np.ndarray, active: np.ndarray,
               moved: np.ndarray | None = None) -> Visibility:
        positions = np.asarray(positions, dtype=np.float64)
        halls = np.asarray(halls)
        active = np.asarray(active, dtype=bool)
        if positions.shape != (self.capacity, 2) or halls.shape != (self.capacity,) or active.shape != (self.capacity,):
            raise ValueError("positions, halls and active must cover the capacity")
        changed = (halls != self._hall) | (active != self._active) | self._forgotten
        if moved is None:
            changed |= np.any(positions != self._pos, axis=1)
        else:
            changed |= np.asarray(moved, dtype=bool)
        changed &= active | self._active
        self._grid.update(changed, positions, halls, active)
        self._pos[changed] = positions[changed]
        self._hall[changed] = halls[changed]
        self._active[:] = active

        observers = np.flatnonzero(active)
        ranks = self._select(observers, positions, halls, active)
        vis = self._finish(ranks)
        self._forgotten[:] = False
        return vis

    # ------------------------------------------------------------------ selection

    def _select(self, qs: np.ndarray, pos: np.ndarray, halls: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Sorted ranks of the visible pairs of observers ``qs`` (sorted slots)."""
        levels = self._start_levels(qs)
        out = []
        while len(qs):
            ranks, passed = self._block_select(qs, levels, pos, halls, active)
            out.append(ranks)
            qs = qs[~passed]
            levels = levels[~passed] - 1
        if not out:
            return np.zeros(0, dtype=np.int64)
        return out[0] if len(out) == 1 else np.sort(np.concatenate(out))

    def _start_levels(self, qs: np.ndarray) -> np.ndarray:
        """The finest level whose 3x3 block probably holds each observer's visible set."""
        cap = self.max_visible
        grid = self._grid
        off = self._offsets
        count = np.where(self._forgotten[qs], 0, off[qs + 1] - off[qs])
        levels = np.zeros(len(qs), dtype=np.int64)
        full = count >= cap
        if full.any():
            q = (self._ranks[off[qs[full]] + cap - 1] >> self.slot_bits) & self._kmask
            r = np.sqrt((q + 1) / self.key_scale) * LEVEL_MARGIN + LEVEL_SLACK
            levels[full] = np.sum(grid.cell_sizes[None, :] >= r[:, None], axis=1) - 1
        fresh = count == 0
        if fresh.any():
            sub = qs[fresh]
            best = np.zeros(len(sub), dtype=np.int64)
            for j in range(1, grid.levels):
                lo, hi = grid.block_ranges(sub, j)
                best = np.where((hi - lo).sum(axis=1) >= BLOCK_FILL * cap + 1, j, best)
            levels[fresh] = best
        return np.maximum(levels, 0)

    def _block_select(self, qs: np.ndarray, levels: np.ndarray, pos: np.ndarray, halls: np.ndarray,
                      active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rank everyone in each observer's block plus its last members; keep the first
        ``max_visible``. ``passed[i]`` says the result is provably exact for ``qs[i]``."""
        grid = self._grid
        cap = self.max_visible
        tb = self.slot_bits
        x = pos[:, 0]
        y = pos[:, 1]

        lo, hi = grid.block_ranges(qs, levels)
        rows, idx = expand(lo, hi)
        t = grid.keys[idx] & grid.slot_mask
        o = qs[rows]
        keep = t != o
        rows, t, o = rows[keep], t[keep], o[keep]
        dx = x[o] - x[t]
        dy = y[o] - y[t]
        d2 = dx * dx + dy * dy

        # last tick's members, checked explicitly wherever they are now
        off = self._offsets
        mlo = off[qs]
        mhi = np.where(self._forgotten[qs], mlo, off[qs + 1])
        mrows, midx = expand(mlo[:, None], mhi[:, None])
        mt = self._ranks[midx] & self._tmask
        mo = qs[mrows]
        ok = active[mt] & ~self._forgotten[mt] & (halls[mt] == halls[mo])
        mrows, mt, mo = mrows[ok], mt[ok], mo[ok]
        dx = x[mo] - x[mt]
        dy = y[mo] - y[mt]
        md2 = dx * dx + dy * dy
        ok = md2 <= self._l2
        mrows, mt, mo, md2 = mrows[ok], mt[ok], mo[ok], md2[ok]

        newcomer = (d2 <= self._r2) & ~self._contains(mrows, mt, rows, t, len(qs))
        o, t, d2 = o[newcomer], t[newcomer], d2[newcomer]
        ranks = np.concatenate((
            (mo << self._osh) | ((md2 * (self.member_factor * self.key_scale)).astype(np.int64) << tb) | mt,
            (o << self._osh) | ((d2 * self.key_scale).astype(np.int64) << tb) | t,
        ))
        ranks.sort()
        owner = ranks >> self._osh
        start = np.searchsorted(owner, qs)
        size = np.searchsorted(owner, qs, side="right") - start
        place = np.arange(len(ranks), dtype=np.int64) - np.repeat(start, size)
        ranks = ranks[place < cap]
        full = size >= cap
        passed = levels == 0
        check = full & ~passed
        if check.any():
            q = (ranks_at := ranks[np.searchsorted(ranks >> self._osh, qs[check]) + cap - 1])
            passed[check] = ((q >> tb) & self._kmask) < self._level_q[levels[check]]
            del ranks_at
        if not passed.all():
            ranks = ranks[passed[np.searchsorted(qs, ranks >> self._osh)]]
        return ranks, passed

    # ------------------------------------------------------------------ bookkeeping

    def _contains(self, rows_a: np.ndarray, t_a: np.ndarray, rows_q: np.ndarray, t_q: np.ndarray, nrows: int) -> np.ndarray:
        """For each (rows_q, t_q), is it among the (rows_a, t_a)? Rows must be sorted.
        A bitmap of rows x capacity, a chunk of rows at a time: no sort, no hashing."""
        cap = self.capacity
        chunk = max(1, SCRATCH_BYTES // cap)
        if len(self._scratch) < min(nrows, chunk) * cap:
            self._scratch = np.zeros(min(nrows, chunk) * cap, dtype=bool)
        scratch = self._scratch
        result = np.zeros(len(rows_q), dtype=bool)
        if len(rows_a) == 0 or len(rows_q) == 0:
            return result
        for first in range(0, nrows, chunk):
            last = first + chunk
            a0, a1 = np.searchsorted(rows_a, (first, last))
            q0, q1 = np.searchsorted(rows_q, (first, last))
            if a1 == a0 or q1 == q0:
                continue
            flat = (rows_a[a0:a1] - first) * cap + t_a[a0:a1]
            scratch[flat] = True
            result[q0:q1] = scratch[(rows_q[q0:q1] - first) * cap + t_q[q0:q1]]
            scratch[flat] = False
        return result

    def _finish(self, ranks: np.ndarray) -> Visibility:
        """Store the new pairs and diff them against the previous tick's."""
        observers = ranks >> self._osh
        targets = ranks & self._tmask
        old = self._ranks
        old_obs = old >> self._osh
        old_tgt = old & self._tmask
        n = self.capacity
        stale_old = self._forgotten[old_obs] | self._forgotten[old_tgt]
        stale_new = self._forgotten[observers] | self._forgotten[targets]
        gone = stale_old | ~self._contains(observers, targets, old_obs, old_tgt, n)
        came = stale_new | ~self._contains(old_obs, old_tgt, observers, targets, n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(observers, minlength=n), out=offsets[1:])
        self._ranks = ranks
        self._offsets = offsets
        vis = Visibility(observers, targets, offsets, observers[came], targets[came], old_obs[gone], old_tgt[gone])
        self.last = vis
        return vis
