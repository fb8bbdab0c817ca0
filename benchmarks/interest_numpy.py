"""The numpy implementation of server/interest.py's rule, the server's before the compiled
kernel: kept as the benchmark peer (benchmarks/interest.py), checked against the brute-force
reference in tests/server/test_interest_numpy.py.

How it works: a Morton-ordered multi-level grid (interest_grid.py) gives each observer the
3x3 block of cells at the finest level that is likely to hold its ``max_visible`` nearest
(small cells in crowds, cells of ``leave_radius`` on open floor); members are checked
explicitly from last tick's pairs; a block is accepted only if its ``max_visible``-th key is
below the cell size squared, which proves nobody outside could rank higher, else the
observer is redone one level coarser. Pairs are encoded as one sorted int64
``observer | key | target`` so ranking, capping and grouping are one sort. Only observers
that moved are redone that way each tick; the others keep their list and absorb the movers
(see ``_incremental``), which is why ``moved`` must flag every slot whose position changed
(hall and active changes are detected here). Where it loses to the kernel: each whole-array
pass over the ~580,000 pairs of 10,000 avatars costs 0.5-1.5 ms, and a tick makes ~20.
"""

from __future__ import annotations

import numpy as np
from interest_grid import MortonGrid, expand  # the script's own folder

from server.interest import InterestManager, Visibility

LEVELS = 6  # cell sizes leave_radius / 1, 2, 4, 8, 16, 32
SCRATCH_BYTES = 1 << 25  # the membership bitmap, processed in chunks of observers
LEVEL_MARGIN = 1.05  # pick a cell size this much above last tick's cap radius (+ a step)
LEVEL_SLACK = 0.2  # metres
BLOCK_FILL = 3  # a fresh observer starts at the finest level whose block holds 3 * cap


class NumpyInterest(InterestManager):
    """InterestManager's constructor, rule, keys, ``forget`` and output, computed with numpy:
    only ``update`` and its state are its own."""

    def __init__(self, capacity: int, view_radius: float, leave_radius: float | None = None,
                 max_visible: int = 64) -> None:
        super().__init__(capacity, view_radius, leave_radius, max_visible)
        self._grid = MortonGrid(capacity, self.leave_radius, LEVELS)
        tb = self.slot_bits
        self._tmask = (1 << tb) - 1
        self._kmask = (1 << self.key_bits) - 1
        self._osh = self.key_bits + tb
        self._r2 = self.view_radius**2
        self._l2 = self.leave_radius**2
        self._level_q = np.floor(self._grid.cell_sizes**2 * self.key_scale).astype(np.int64)
        self._ranks = np.zeros(0, dtype=np.int64)  # current visible pairs, sorted
        self._pos = np.zeros((capacity, 2), dtype=np.float64)
        self._hall = np.zeros(capacity, dtype=np.int16)
        self._scratch = np.zeros(0, dtype=bool)

    def update(self, positions: np.ndarray, halls: np.ndarray, active: np.ndarray,
               moved: np.ndarray | None = None) -> Visibility:
        """One tick; ``moved`` must flag every slot whose position changed (None: compare)."""
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

        vis = self._incremental(changed, positions, halls, active)
        self._forgotten[:] = False
        self.last = vis
        return vis

    # ------------------------------------------------------------------ one tick

    def _incremental(self, changed: np.ndarray, pos: np.ndarray, halls: np.ndarray, active: np.ndarray) -> Visibility:
        """Observers that moved (or appeared, or hopped halls) are redone from the grid.
        The others keep last tick's list: members whose target moved get a new key, moved
        avatars now within reach are added, and the list is re-capped. That is exact unless
        a place fell free below last tick's worst rank (someone unseen might take it): those
        observers are redone from the grid too."""
        cap = self.max_visible
        osh, tb, tmask = self._osh, self.slot_bits, self._tmask
        forgotten = self._forgotten
        prev, off = self._ranks, self._offsets
        x, y = pos[:, 0], pos[:, 1]
        dirty = active & changed
        owner = prev >> osh
        tgt = prev & tmask

        # (a) clean observers' pairs: unchanged targets keep their rank, moved ones are redone
        clean_pair = active[owner] & ~dirty[owner]
        stale = clean_pair & changed[tgt]
        kept = prev[clean_pair & ~stale]
        ro, rt = owner[stale], tgt[stale]
        member_o, member_t = ro[~forgotten[rt]], rt[~forgotten[rt]]  # still members of their observer
        ok = active[rt] & ~forgotten[rt] & (halls[rt] == halls[ro])
        dx = x[ro] - x[rt]
        dy = y[ro] - y[rt]
        d2 = dx * dx + dy * dy
        ok &= d2 <= self._l2
        dropped = prev[stale][~ok]
        redone = (ro[ok] << osh) | ((d2[ok] * (self.member_factor * self.key_scale)).astype(np.int64) << tb) | rt[ok]

        # (b) moved avatars within reach of clean observers, from a grid of the movers only
        clean = np.flatnonzero(active & ~dirty)
        count = off[clean + 1] - off[clean]
        full = count >= cap
        worst = np.full(len(clean), np.iinfo(np.int64).max, dtype=np.int64)
        worst[full] = prev[off[clean[full]] + cap - 1]
        probe = np.zeros(0, dtype=np.int64)
        movers = self._grid.inserted
        if len(movers) and len(clean):
            levels = np.zeros(len(clean), dtype=np.int64)
            reach = np.sqrt((((worst[full] >> tb) & self._kmask) + 1) / self.key_scale)
            levels[full] = np.sum(self._grid.cell_sizes[None, :] >= reach[:, None], axis=1) - 1
            lo, hi = self._grid.block_ranges(clean, levels, movers)
            rows, idx = expand(lo, hi)
            m = movers[idx] & tmask
            o = clean[rows]
            dx = x[o] - x[m]
            dy = y[o] - y[m]
            d2 = dx * dx + dy * dy
            near = d2 <= self._r2
            o, m, d2 = o[near], m[near], d2[near]
            fresh = ~self._contains(member_o, member_t, o, m, self.capacity)
            o, m, d2 = o[fresh], m[fresh], d2[fresh]
            probe = (o << osh) | ((d2 * self.key_scale).astype(np.int64) << tb) | m

        # (c) merge into the sorted kept pairs, cap, and check no free place opened
        extra = np.concatenate((redone, probe))
        order = np.argsort(extra)
        extra = extra[order]
        entering = order >= len(redone)
        at = np.searchsorted(kept, extra)
        merged = np.insert(kept, at, extra)
        is_new = np.zeros(len(merged), dtype=bool)
        is_new[at + np.arange(len(extra))] = entering
        mo = merged >> osh
        start = np.searchsorted(mo, clean)
        size = np.searchsorted(mo, clean, side="right") - start
        place = np.arange(len(merged), dtype=np.int64) - np.repeat(start, size)
        chosen = place < cap
        capth = merged[np.minimum(start + cap - 1, len(merged) - 1)] if len(merged) else worst
        vacancy = full & ((size < cap) | (capth > worst))
        redo = dirty.copy()
        redo[clean[vacancy]] = True
        good = ~redo[mo]
        ranks_clean = merged[chosen & good]
        entered = [merged[chosen & good & is_new]]
        left = [dropped[~redo[dropped >> osh]], merged[~chosen & good & ~is_new], prev[~active[owner]]]

        # (d) the rest from the grid, diffed against their previous lists
        qs = np.flatnonzero(redo)
        ranks_redo = self._select(qs, pos, halls, active)
        old = prev[redo[owner]]
        no, nt = ranks_redo >> osh, ranks_redo & tmask
        oo, ot = old >> osh, old & tmask
        came = forgotten[nt] | forgotten[no] | ~self._contains(oo, ot, no, nt, self.capacity)
        gone = forgotten[ot] | forgotten[oo] | ~self._contains(no, nt, oo, ot, self.capacity)
        entered.append(ranks_redo[came])
        left.append(old[gone])
        ranks = np.insert(ranks_clean, np.searchsorted(ranks_clean, ranks_redo), ranks_redo)
        return self._finish(ranks, np.concatenate(entered), np.concatenate(left), pos)

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
            q = ranks[np.searchsorted(ranks >> self._osh, qs[check]) + cap - 1]
            passed[check] = ((q >> tb) & self._kmask) < self._level_q[levels[check]]
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

    def _finish(self, ranks: np.ndarray, entered: np.ndarray, left: np.ndarray, pos: np.ndarray) -> Visibility:
        """Store the new pairs; changes come as ranks and are listed as sorted pairs.

        What is stored for next tick has the pairs that just entered re-keyed as members
        (discounted), since that is how they will compete from now on."""
        osh, tb, tmask = self._osh, self.slot_bits, self._tmask
        observers = ranks >> osh
        targets = ranks & tmask
        n = self.capacity
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(observers, minlength=n), out=offsets[1:])
        entered.sort()
        stored = ranks
        if len(entered):
            eo, et = entered >> osh, entered & tmask
            dx = pos[eo, 0] - pos[et, 0]
            dy = pos[eo, 1] - pos[et, 1]
            d2 = dx * dx + dy * dy
            rekeyed = np.sort((eo << osh) | ((d2 * (self.member_factor * self.key_scale)).astype(np.int64) << tb) | et)
            stored = np.delete(ranks, np.searchsorted(ranks, entered))
            stored = np.insert(stored, np.searchsorted(stored, rekeyed), rekeyed)
        self._ranks = stored
        self._offsets = offsets
        entered = np.sort((entered >> osh << tb) | (entered & tmask))
        left = np.sort((left >> osh << tb) | (left & tmask))
        return Visibility(observers, targets, offsets, entered >> tb, entered & tmask, left >> tb, left & tmask)
