"""Interest management: who sees whom, every tick, with a uniform-grid spatial hash in numpy.

Rules (the tests' brute-force reference implements exactly these):
- an observer sees active avatars in its own hall, never itself;
- a target enters the view at distance <= ``view_radius`` and, once visible, stays until its
  distance exceeds ``leave_radius`` (hysteresis, so nothing flickers at the edge);
- at most ``max_visible`` targets: current members keep their place (they are never pushed
  out by newcomers, so the cap cannot flicker either), free places go to the nearest
  newcomers, ties broken by slot.

The grid's cell is ``leave_radius`` wide, so every candidate lies in the 3x3 cells around
the observer. No Python loop runs per avatar: only over the nine cell offsets.
"""

from __future__ import annotations

import numpy as np

_CELL_BITS = 20  # cell coordinates per axis: enough for 1,000 km at 1 m cells
_OFFSETS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]


class InterestManager:
    def __init__(self, capacity: int, view_radius: float, leave_radius: float | None = None, max_visible: int = 64) -> None:
        self.capacity = capacity
        self.view_radius = float(view_radius)
        self.leave_radius = float(leave_radius if leave_radius is not None else view_radius * 1.15)
        if self.leave_radius < self.view_radius:
            raise ValueError("leave_radius must not be smaller than view_radius")
        self.max_visible = max_visible
        self._visible_keys = np.zeros(0, dtype=np.int64)  # sorted observer * capacity + target

    def forget(self, slot: int) -> None:
        """The slot was freed (or is about to be reused): drop its pairs both ways."""
        keys = self._visible_keys
        keep = (keys // self.capacity != slot) & (keys % self.capacity != slot)
        self._visible_keys = keys[keep]

    def visible_pairs(
        self, positions: np.ndarray, halls: np.ndarray, active: np.ndarray, moved: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(observers, targets): every visible pair, sorted by observer, nearest target first."""
        observers, targets, d2 = self._candidates(positions, halls, active)
        keys = observers * self.capacity + targets
        was = _member(keys, self._visible_keys)
        keep = (d2 <= self.view_radius**2) | was
        observers, targets, d2, was, keys = observers[keep], targets[keep], d2[keep], was[keep], keys[keep]

        # cap: members first, then newcomers by distance, then slot
        order = np.lexsort((targets, d2, ~was, observers))
        observers, targets, d2, keys = observers[order], targets[order], d2[order], keys[order]
        rank = _rank_in_groups(observers)
        kept = rank < self.max_visible
        observers, targets, d2, keys = observers[kept], targets[kept], d2[kept], keys[kept]
        self._visible_keys = np.sort(keys)

        order = np.lexsort((targets, d2, observers))  # nearest first within each observer
        return observers[order], targets[order]

    def _candidates(self, positions: np.ndarray, halls: np.ndarray, active: np.ndarray):
        """All pairs in the same hall within ``leave_radius``, as (observer, target, d2)."""
        slots = np.flatnonzero(active)
        empty = np.zeros(0, dtype=np.int64)
        if len(slots) < 2:
            return empty, empty, np.zeros(0)
        pos = positions[slots]
        cells = np.floor(pos / self.leave_radius).astype(np.int64) + 1  # +1 keeps neighbours >= 0
        hall_key = halls[slots].astype(np.int64) << (2 * _CELL_BITS)
        keys = hall_key | (cells[:, 0] << _CELL_BITS) | cells[:, 1]
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        sorted_slots = slots[order]
        sorted_pos = pos[order]

        obs_parts, tgt_parts, d2_parts = [], [], []
        for dx, dy in _OFFSETS:
            neighbour = hall_key | ((cells[:, 0] + dx) << _CELL_BITS) | (cells[:, 1] + dy)
            lo = np.searchsorted(sorted_keys, neighbour, side="left")
            hi = np.searchsorted(sorted_keys, neighbour, side="right")
            counts = hi - lo
            total = int(counts.sum())
            if total == 0:
                continue
            observer_index = np.repeat(np.arange(len(slots)), counts)
            starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
            target_index = starts + np.arange(total)
            delta = sorted_pos[target_index] - pos[observer_index]
            d2 = np.einsum("ij,ij->i", delta, delta)
            observer = slots[observer_index]
            target = sorted_slots[target_index]
            near = (d2 <= self.leave_radius**2) & (observer != target)
            obs_parts.append(observer[near])
            tgt_parts.append(target[near])
            d2_parts.append(d2[near])
        if not obs_parts:
            return empty, empty, np.zeros(0)
        return np.concatenate(obs_parts), np.concatenate(tgt_parts), np.concatenate(d2_parts)


def _member(keys: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if len(sorted_set) == 0:
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, keys), len(sorted_set) - 1)
    return sorted_set[at] == keys


def _rank_in_groups(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2... within each run of equal values of a sorted array."""
    if len(groups) == 0:
        return groups
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    lengths = np.diff(np.r_[starts, len(groups)])
    return np.arange(len(groups)) - np.repeat(starts, lengths)
