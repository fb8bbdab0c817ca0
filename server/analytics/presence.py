"""Booth visits from positions: who passed by, who entered, who left after how long.

Sans-I/O: ``PresenceTracker.update`` takes the avatars' positions at one instant and returns
the events that instant produced. The simulation calls it every tick, so dwell times are
exact to a tick, and it costs one (avatars x booths) numpy comparison; Python runs only for
the avatars whose booth changed.

Zones are the booth's footprint grown by a margin (a square-cornered rectangle, so
"within m metres" is the Chebyshev distance to the footprint). Leaving uses a wider margin
than entering: an avatar standing on the line does not make a visit per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocol.limits import BOOTH_CHANNEL_MARGIN
from world.model import BoothKind, Expo

from .events import Event, EventKind

ENTER_MARGIN = BOOTH_CHANNEL_MARGIN  # "at the booth" is where its chat channel reaches
STAY_MARGIN = BOOTH_CHANNEL_MARGIN + 1.0
PASS_MARGIN = 10.0  # "passed by": came within this of the footprint
PASS_STAY_MARGIN = 12.0


@dataclass(frozen=True, slots=True)
class BoothZones:
    """The exhibitor booths of an expo as arrays: footprints, halls, ids."""

    ids: tuple[str, ...]
    hall_ids: tuple[str, ...]  # per booth
    rects: np.ndarray  # (B, 4): min_x, min_y, max_x, max_y
    halls: np.ndarray  # (B,) hall index of each booth, in expo.halls order

    @classmethod
    def of(cls, expo: Expo) -> BoothZones:
        booths = [b for b in expo.booths if b.kind is BoothKind.EXHIBITOR]
        index = {hall.id: i for i, hall in enumerate(expo.halls)}
        rects = np.array(
            [[b.footprint.min_x, b.footprint.min_y, b.footprint.max_x, b.footprint.max_y] for b in booths],
            dtype=np.float64,
        ).reshape(-1, 4)
        halls = np.array([index[b.hall] for b in booths], dtype=np.int64)
        return cls(tuple(b.id for b in booths), tuple(b.hall for b in booths), rects, halls)

    def distances(self, pos: np.ndarray, halls: np.ndarray) -> np.ndarray:
        """(N, B): how far each position is outside each booth's footprint (Chebyshev
        metres, 0 inside), infinite for booths of another hall."""
        x, y = pos[:, 0:1], pos[:, 1:2]
        r = self.rects
        dx = np.maximum(np.maximum(r[None, :, 0] - x, x - r[None, :, 2]), 0.0)
        dy = np.maximum(np.maximum(r[None, :, 1] - y, y - r[None, :, 3]), 0.0)
        d = np.maximum(dx, dy)
        return np.where(halls[:, None] == self.halls[None, :], d, np.inf)


class PresenceTracker:
    """Per avatar slot: the booth it is at (if any) since when, and the booths it is near.

    A slot belongs to one visitor between ``join`` and ``leave``; ``leave`` closes the
    visit in progress, so every BOOTH_ENTERED gets its BOOTH_LEFT."""

    def __init__(self, zones: BoothZones, capacity: int) -> None:
        self.zones = zones
        self.capacity = capacity
        self.visitor: list[str | None] = [None] * capacity
        self.at = np.full(capacity, -1, dtype=np.int64)  # booth index, or -1
        self.since = np.zeros(capacity, dtype=np.float64)
        self.near = np.zeros((capacity, len(zones.ids)), dtype=bool)

    def join(self, slot: int, visitor: str) -> None:
        assert self.visitor[slot] is None, f"slot {slot} is still {self.visitor[slot]!r}'s"
        self.visitor[slot] = visitor
        self.at[slot] = -1
        self.near[slot] = False

    def leave(self, slot: int, now: float) -> list[Event]:
        events = self._close_visit(slot, now)
        self.visitor[slot] = None
        self.at[slot] = -1
        self.near[slot] = False
        return events

    def rezone(self, zones: BoothZones, now: float) -> list[Event]:
        """The world changed: visits in progress end now and zones start afresh."""
        events = []
        for slot, visitor in enumerate(self.visitor):
            if visitor is not None:
                events += self._close_visit(slot, now)
        self.zones = zones
        self.at[:] = -1
        self.near = np.zeros((self.capacity, len(zones.ids)), dtype=bool)
        return events

    def update(self, now: float, slots: np.ndarray, pos: np.ndarray, halls: np.ndarray) -> list[Event]:
        """The positions of the avatars in ``slots`` (all joined) at ``now``."""
        if len(slots) == 0 or len(self.zones.ids) == 0:
            return []
        d = self.zones.distances(pos, halls)
        events: list[Event] = []

        near = self.near[slots]
        now_near = np.where(near, d <= PASS_STAY_MARGIN, d <= PASS_MARGIN)
        for i, b in zip(*np.nonzero(now_near & ~near)):
            events.append(self._event(now, EventKind.BOOTH_PASSED, int(slots[i]), int(b)))
        self.near[slots] = now_near

        current = self.at[slots]
        rows = np.arange(len(slots))
        stays = (current >= 0) & (d[rows, np.maximum(current, 0)] <= STAY_MARGIN)
        entering = np.where(d <= ENTER_MARGIN, d, np.inf)
        candidate = np.where(np.isfinite(entering.min(axis=1)), entering.argmin(axis=1), -1)
        new = np.where(stays, current, candidate)
        for i in np.flatnonzero(new != current).tolist():
            slot = int(slots[i])
            events += self._close_visit(slot, now)
            if new[i] >= 0:
                self.at[slot] = new[i]
                self.since[slot] = now
                events.append(self._event(now, EventKind.BOOTH_ENTERED, slot, int(new[i])))
        return events

    def booth_of(self, slot: int) -> str | None:
        b = int(self.at[slot])
        return None if b < 0 else self.zones.ids[b]

    def _close_visit(self, slot: int, now: float) -> list[Event]:
        b = int(self.at[slot])
        if b < 0 or self.visitor[slot] is None:
            return []
        self.at[slot] = -1
        return [self._event(now, EventKind.BOOTH_LEFT, slot, b, dwell=round(now - float(self.since[slot]), 3))]  # ms: ticks are not exact binary fractions

    def _event(self, now: float, kind: EventKind, slot: int, b: int, dwell: float | None = None) -> Event:
        visitor = self.visitor[slot]
        assert visitor is not None, f"slot {slot} moved without a visitor"
        return Event(now, kind, visitor, self.zones.ids[b], self.zones.hall_ids[b], dwell=dwell)
