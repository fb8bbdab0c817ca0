"""Booth presence's compiled pass against the (avatars x booths) numpy rule it replaced,
on random walks of the packaged expo's two halls: the same events in the same order."""

from __future__ import annotations

import numpy as np
import pytest

from server.analytics.events import Event, EventKind
from server.analytics.presence import (
    ENTER_MARGIN,
    PASS_MARGIN,
    PASS_STAY_MARGIN,
    STAY_MARGIN,
    BoothZones,
    PresenceTracker,
)
from world.loader import default_expo_path, load_expo


class NumpyPresence(PresenceTracker):
    """The rule as numpy arrays over (avatars x booths), as it was."""

    def update(self, now: float, slots: np.ndarray, pos: np.ndarray, halls: np.ndarray) -> list[Event]:
        if len(slots) == 0 or len(self.zones.ids) == 0:
            return []
        x, y, r = pos[:, 0:1], pos[:, 1:2], self.zones.rects
        dx = np.maximum(np.maximum(r[None, :, 0] - x, x - r[None, :, 2]), 0.0)
        dy = np.maximum(np.maximum(r[None, :, 1] - y, y - r[None, :, 3]), 0.0)
        d = np.where(halls[:, None] == self.zones.halls[None, :], np.maximum(dx, dy), np.inf)
        near = self.near[slots]
        now_near = np.where(near, d <= PASS_STAY_MARGIN, d <= PASS_MARGIN)
        events = [self._event(now, EventKind.BOOTH_PASSED, int(slots[i]), int(b))
                  for i, b in zip(*np.nonzero(now_near & ~near))]
        self.near[slots] = now_near
        current = self.at[slots]
        stays = (current >= 0) & (d[np.arange(len(slots)), np.maximum(current, 0)] <= STAY_MARGIN)
        entering = np.where(d <= ENTER_MARGIN, d, np.inf)
        new = np.where(stays, current, np.where(np.isfinite(entering.min(axis=1)), entering.argmin(axis=1), -1))
        for i in np.flatnonzero(new != current).tolist():
            slot = int(slots[i])
            events += self._close_visit(slot, now)
            if new[i] >= 0:
                self.at[slot] = new[i]
                self.since[slot] = now
                events.append(self._event(now, EventKind.BOOTH_ENTERED, slot, int(new[i])))
        return events


@pytest.mark.parametrize("seed", range(3))
def test_the_compiled_pass_makes_the_numpy_rules_events(seed):
    expo = load_expo(default_expo_path())
    zones = BoothZones.of(expo)
    rng = np.random.default_rng(seed)
    n = 300
    compiled, reference = PresenceTracker(zones, n), NumpyPresence(zones, n)
    for slot in range(n):
        compiled.join(slot, f"v{slot}")
        reference.join(slot, f"v{slot}")
    halls = rng.integers(0, len(expo.halls), n)
    # start by a booth of the avatar's hall, or anywhere: walks that cross every margin
    sizes = np.array([[h.width, h.depth] for h in expo.halls])
    pos = rng.uniform(0, 1, (n, 2)) * sizes[halls]
    for slot in range(0, n, 2):
        booths = np.flatnonzero(zones.halls == halls[slot])
        if len(booths):
            rect = zones.rects[rng.choice(booths)]
            pos[slot] = rng.uniform(rect[:2] - 4, rect[2:] + 4)
    kinds: dict[EventKind, int] = {}
    for t in range(300):
        pos += rng.normal(0, 0.4, pos.shape)
        pos[rng.random(n) < 0.02] = rect[:2]  # some land on a footprint's corner exactly
        slots = np.flatnonzero(rng.random(n) < 0.8)  # not all of them every time (the moved ones)
        now = 1000.0 + t * 0.05
        got = compiled.update(now, slots, pos[slots], halls[slots])
        want = reference.update(now, slots, pos[slots], halls[slots])
        assert got == want
        for e in got:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        assert (compiled.near == reference.near).all() and (compiled.at == reference.at).all()
    assert min(kinds.get(k, 0) for k in (EventKind.BOOTH_PASSED, EventKind.BOOTH_ENTERED, EventKind.BOOTH_LEFT)) > 20, kinds
