"""A hall's heatmap: visitor-seconds per floor cell, from positions sampled every second.

Sans-I/O: ``PositionSampler`` decides when a sample is due (each whole second of the clock)
and ``heatmap`` bins sampled positions into a grid. Cell (row, col) covers
``col*cell <= x < (col+1)*cell`` and ``row*cell <= y < (row+1)*cell``; a position on the
hall's far edge falls in the last cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from world.model import Hall

SAMPLE_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Heatmap:
    hall: str
    cell: float  # metres per cell side
    counts: np.ndarray  # (rows along y, cols along x) visitor-seconds
    width: float
    depth: float

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def rows(self) -> int:
        return int(self.counts.shape[0])

    @property
    def cols(self) -> int:
        return int(self.counts.shape[1])


def heatmap(xy: np.ndarray, hall: Hall, cell: float = 1.0) -> Heatmap:
    """Bin positions of ``hall`` ((n, 2) x, y, as ``EventLog.positions`` gives them;
    positions outside the hall clamped in)."""
    if not (cell > 0 and math.isfinite(cell)):
        raise ValueError(f"cell size must be a positive number of metres, got {cell!r}")
    cols, rows = max(1, math.ceil(hall.width / cell)), max(1, math.ceil(hall.depth / cell))
    counts = np.zeros((rows, cols), dtype=np.int64)
    if len(xy):
        c = np.clip((xy[:, 0] // cell).astype(np.int64), 0, cols - 1)
        r = np.clip((xy[:, 1] // cell).astype(np.int64), 0, rows - 1)
        np.add.at(counts, (r, c), 1)
    return Heatmap(hall.id, cell, counts, hall.width, hall.depth)


class PositionSampler:
    """Says when the next sample is due: once per whole second of the clock, however the
    ticks fall, and never twice for the same second."""

    def __init__(self, interval: float = SAMPLE_INTERVAL) -> None:
        assert interval > 0
        self.interval = interval
        self._last: int | None = None

    def due(self, now: float) -> float | None:
        """The sample time (a whole multiple of the interval) if one is due at ``now``."""
        n = math.floor(now / self.interval + 1e-6)  # ticks summed in floats land a hair early
        if n == self._last:
            return None
        self._last = n
        return n * self.interval
