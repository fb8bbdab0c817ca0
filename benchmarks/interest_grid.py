"""A multi-resolution spatial hash over avatars, kept sorted by (hall, Morton code, slot):
the grid of the numpy benchmark peer, interest_numpy.py.

Why Morton order: with cells of the finest size ``f`` numbered along a Z-curve, every
coarser cell (size ``f * 2**k``, aligned) is one contiguous run of the sorted array, so a
single sorted int64 array answers "who is in this cell" at every level with two
``searchsorted`` calls. Crowds use fine cells (a 3x3 block of 3 m cells already holds 64
people), open floor uses coarse ones; nothing is rebuilt when the level changes.

The array is updated incrementally: only avatars that moved, appeared or vanished are
taken out and merged back in, so unmoved avatars keep their place.
"""

from __future__ import annotations

import numpy as np

COORD_BITS = 15  # cells per axis at the finest level: 32768 (47 km at 1.44 m cells)
COORD_OFFSET = 1 << (COORD_BITS - 1)  # negative coordinates are fine down to -half of that
MORTON_BITS = 2 * COORD_BITS
HALL_BITS = 16  # int16 halls, offset to unsigned
MAX_SLOT_BITS = 63 - MORTON_BITS - HALL_BITS  # 17: capacity up to 131072

# The 3x3 neighbourhood, row-major so the ranges of one query come out grouped.
OFFSETS_X = np.array([-1, 0, 1, -1, 0, 1, -1, 0, 1], dtype=np.int64)
OFFSETS_Y = np.array([-1, -1, -1, 0, 0, 0, 1, 1, 1], dtype=np.int64)


def part1by1(v: np.ndarray) -> np.ndarray:
    """Spread the low 15 bits of ``v`` to the even bit positions."""
    v = (v | (v << 8)) & 0x00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F
    v = (v | (v << 2)) & 0x33333333
    return (v | (v << 1)) & 0x55555555


def morton(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return part1by1(x) | (part1by1(y) << 1)


class MortonGrid:
    """Sorted composite keys ``hall | morton(cx, cy) | slot`` of every active avatar.

    Level 0 has cells of size ``coarsest``; level ``j`` has cells ``coarsest / 2**j``; the
    finest level is ``levels - 1``.
    """

    def __init__(self, capacity: int, coarsest: float, levels: int) -> None:
        self.slot_bits = max(1, (capacity - 1).bit_length())
        if self.slot_bits > MAX_SLOT_BITS:
            raise ValueError(f"capacity {capacity} is above {1 << MAX_SLOT_BITS}")
        self.slot_mask = (1 << self.slot_bits) - 1
        self.levels = levels
        self.finest = coarsest / (1 << (levels - 1))
        self.cell_sizes = np.array([coarsest / (1 << j) for j in range(levels)])
        self.keys = np.zeros(0, dtype=np.int64)  # sorted composites
        self.cx = np.zeros(capacity, dtype=np.int64)  # finest cell of each slot when inserted
        self.cy = np.zeros(capacity, dtype=np.int64)
        self.hallkey = np.zeros(capacity, dtype=np.int64)  # (hall + 32768) << MORTON_BITS
        self.inserted = np.zeros(0, dtype=np.int64)  # sorted keys put back by the last update

    def update(self, changed: np.ndarray, positions: np.ndarray, halls: np.ndarray, active: np.ndarray) -> None:
        """Take the ``changed`` slots out and put the active ones back at their new cells."""
        slots = np.flatnonzero(changed)
        self.inserted = np.zeros(0, dtype=np.int64)
        if len(slots) == 0:
            return
        if len(self.keys):
            kept = self.keys[~changed[self.keys & self.slot_mask]]
        else:
            kept = self.keys
        slots = slots[active[slots]]
        limit = (1 << COORD_BITS) - 1
        cell = np.floor(positions[slots] / self.finest)
        np.clip(cell + COORD_OFFSET, 0, limit, out=cell)
        cx = cell[:, 0].astype(np.int64)
        cy = cell[:, 1].astype(np.int64)
        hk = (halls[slots].astype(np.int64) + 32768) << MORTON_BITS
        self.cx[slots] = cx
        self.cy[slots] = cy
        self.hallkey[slots] = hk
        new = np.sort(((hk | morton(cx, cy)) << self.slot_bits) | slots)
        self.inserted = new
        if len(kept) == 0:
            self.keys = new
        else:
            self.keys = np.insert(kept, np.searchsorted(kept, new), new)

    def block_ranges(self, slots: np.ndarray, level: int | np.ndarray,
                     keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), each (len(slots), 9): index ranges into ``keys`` (default: everyone) of the
        3x3 block of cells at ``level`` around each slot's cell. The block holds everyone
        within one cell size."""
        if keys is None:
            keys = self.keys
        shift = ((self.levels - 1) - np.broadcast_to(np.asarray(level, dtype=np.int64), slots.shape))[:, None]
        cx = self.cx[slots][:, None] >> shift
        cy = self.cy[slots][:, None] >> shift
        nx = cx + OFFSETS_X
        ny = cy + OFFSETS_Y
        top = ((1 << COORD_BITS) - 1) >> shift
        valid = (nx >= 0) & (ny >= 0) & (nx <= top) & (ny <= top)
        span = np.int64(1) << (2 * shift)
        start = self.hallkey[slots][:, None] + morton(np.clip(nx, 0, None), np.clip(ny, 0, None)) * span
        lo = np.searchsorted(keys, start << self.slot_bits)
        hi = np.searchsorted(keys, (start + span) << self.slot_bits)
        hi = np.where(valid, hi, lo)
        return lo, hi


def expand(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten (rows, k) index ranges: (row of each element, index of each element)."""
    counts = (hi - lo).reshape(-1)
    total = int(counts.sum())
    k = lo.shape[1]
    rows = np.repeat(np.repeat(np.arange(lo.shape[0], dtype=np.int64), k), counts)
    starts = np.cumsum(counts) - counts
    index = np.arange(total, dtype=np.int64) + np.repeat(lo.reshape(-1) - starts, counts)
    return rows, index
