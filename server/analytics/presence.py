"""Booth visits from positions: who passed by, who entered, who left after how long.

Sans-I/O: ``PresenceTracker.update`` takes the avatars' positions at one instant and returns
the events that instant produced. The simulation calls it every tick, so dwell times are
exact to a tick, and it costs one compiled pass over (avatars x booths); Python runs only
for the avatars whose booth changed.

Zones are the booth's footprint grown by a margin (a square-cornered rectangle, so
"within m metres" is the Chebyshev distance to the footprint). Leaving uses a wider margin
than entering: an avatar standing on the line does not make a visit per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocol.limits import BOOTH_CHANNEL_MARGIN
from world.jit import compiled
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
        zones = self.zones
        passed, changed, booths = _visits(zones.rects, zones.halls, np.ascontiguousarray(slots, dtype=np.int64),
                                          np.ascontiguousarray(pos, dtype=np.float64),
                                          np.ascontiguousarray(halls, dtype=np.int64), self.near, self.at)
        events = [self._event(now, EventKind.BOOTH_PASSED, slot, b) for slot, b in passed.tolist()]
        for slot, booth in zip(changed.tolist(), booths.tolist()):
            events += self._close_visit(slot, now)
            if booth >= 0:
                self.at[slot] = booth
                self.since[slot] = now
                events.append(self._event(now, EventKind.BOOTH_ENTERED, slot, booth))
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


@compiled()
def _visits(rects: np.ndarray, booth_halls: np.ndarray, slots: np.ndarray, pos: np.ndarray, halls: np.ndarray,
            near: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the avatars at ``pos`` (in ``slots``, of ``halls``): the (slot, booth) pairs that
    came near a booth, and the slots whose booth changed with the booth each is at now (-1:
    none). ``near`` is brought up to date; ``at`` only read (leaving and entering make events).

    Compiled: a loop per avatar over the booths, where numpy built (avatars x booths) arrays
    a few times over (0.75 ms a tick at 1,000). Distances are Chebyshev metres outside the
    footprint (0 inside); a booth of another hall is never near. A visit stays while within
    STAY_MARGIN; otherwise the avatar is at the nearest booth within ENTER_MARGIN (the first
    of equals), if any."""
    passed = []
    changed = []
    for i in range(len(slots)):
        slot, x, y, hall = slots[i], pos[i, 0], pos[i, 1], halls[i]
        current = at[slot]
        stays = False
        best, candidate = np.inf, -1
        for b in range(len(rects)):
            if booth_halls[b] != hall:
                d = np.inf
            else:
                dx = max(max(rects[b, 0] - x, x - rects[b, 2]), 0.0)
                dy = max(max(rects[b, 1] - y, y - rects[b, 3]), 0.0)
                d = max(dx, dy)
            was = near[slot, b]
            now = d <= PASS_STAY_MARGIN if was else d <= PASS_MARGIN
            if now and not was:
                passed.append((slot, b))
            near[slot, b] = now
            if b == current and d <= STAY_MARGIN:
                stays = True
            if d <= ENTER_MARGIN and d < best:
                best, candidate = d, b
        new = current if stays else candidate
        if new != current:
            changed.append((slot, new))
    pairs = np.empty((len(passed), 2), dtype=np.int64)
    for k in range(len(passed)):
        pairs[k, 0], pairs[k, 1] = passed[k]
    moved = np.empty(len(changed), dtype=np.int64)
    booths = np.empty(len(changed), dtype=np.int64)
    for k in range(len(changed)):
        moved[k], booths[k] = changed[k]
    return pairs, moved, booths
