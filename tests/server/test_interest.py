"""Interest management against a brute-force reference of the same rule, tick after tick.

The reference is written from the rule in server/interest.py's docstring, one observer at a
time with plain numpy rows: newcomers within view_radius, members within leave_radius,
ranked by floor(key * scale) then slot, members' squared distance discounted by
(view/leave)**2, at most max_visible.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import interest_kernel
from server.interest import InterestManager, warm

ROOT = Path(__file__).resolve().parents[2]


class Reference:
    """The rule, brute force: every observer against every slot."""

    def __init__(self, capacity: int, view: float, leave: float | None = None, cap: int = 64) -> None:
        self.capacity = capacity
        self.view = view
        self.leave = 1.15 * view if leave is None else leave
        self.cap = cap
        key_bits = min(40, 62 - 2 * max(1, (capacity - 1).bit_length()))
        self.scale = float((1 << key_bits) - 1) / view**2
        self.factor = (view / self.leave) ** 2
        self.visible: dict[int, list[int]] = {}

    def forget(self, slot: int) -> None:
        self.visible.pop(slot, None)
        for o in self.visible:
            self.visible[o] = [t for t in self.visible[o] if t != slot]

    def step(self, pos: np.ndarray, halls: np.ndarray, active: np.ndarray) -> dict[int, list[int]]:
        new: dict[int, list[int]] = {}
        x, y = pos[:, 0], pos[:, 1]
        for o in np.flatnonzero(active).tolist():
            dx = x[o] - x
            dy = y[o] - y
            d2 = dx * dx + dy * dy
            member = np.zeros(self.capacity, bool)
            member[self.visible.get(o, [])] = True
            others = active & (halls == halls[o])
            others[o] = False
            # one observer's row at a time, as numpy columns rather than a Python loop over
            # targets (the same float operations, so the same keys)
            kept = others & np.where(member, d2 <= self.leave**2, d2 <= self.view**2)
            targets = np.flatnonzero(kept)
            near = d2[targets]
            keys = np.where(member[targets], near * (self.factor * self.scale), near * self.scale).astype(np.int64)
            ranked = targets[np.lexsort((targets, keys))]  # by key, then slot
            if len(ranked):
                new[o] = ranked[: self.cap].tolist()
        self.visible = new
        return new


def as_dict(observers: np.ndarray, targets: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for o, t in zip(observers.tolist(), targets.tolist(), strict=True):
        out.setdefault(o, []).append(t)
    return out


def pairs(d: dict[int, list[int]]) -> set[tuple[int, int]]:
    return {(o, t) for o, ts in d.items() for t in ts}


def run_both(im: InterestManager, ref: Reference, pos, halls, active):
    old = pairs(ref.visible)
    got = as_dict(*im.visible_pairs(pos, halls, active))
    want = ref.step(pos, halls, active)
    assert got == want
    return old, got


def crowd(rng, n: int, side: float, booths: int = 2) -> np.ndarray:
    centres = rng.uniform(0.2 * side, 0.8 * side, (booths, 2))
    pos = rng.uniform(0, side, (n, 2))
    k = int(0.8 * n)
    pos[:k] = centres[rng.integers(0, booths, k)] + rng.normal(0, side / 30, (k, 2))
    return pos


def random_world(rng, n: int, side: float, layout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions ("uniform" or a "crowd" around booths), two halls, 90 % of slots active."""
    pos = rng.uniform(0, side, (n, 2)) if layout == "uniform" else crowd(rng, n, side)
    halls = rng.integers(0, 2, n).astype(np.int16)
    active = rng.random(n) < 0.9
    return pos, halls, active


# ---------------------------------------------------------------------- random worlds


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("layout", ["uniform", "crowd"])
def test_random_worlds_match_reference_over_ticks(seed, layout):
    rng = np.random.default_rng(seed)
    n = 300
    pos, halls, active = random_world(rng, n, 120.0, layout)
    im = InterestManager(n, 20.0, max_visible=16)
    ref = Reference(n, 20.0, cap=16)
    for _ in range(8):
        run_both(im, ref, pos, halls, active)
        moved = rng.random(n) < 0.3
        pos = pos.copy()
        pos[moved] += rng.normal(0, 2.0, (int(moved.sum()), 2))
        run_both(im, ref, pos, halls, active)


def test_dense_crowd_uses_fine_cells_and_stays_exact():
    rng = np.random.default_rng(7)
    n = 1500
    pos = rng.normal(50.0, 4.0, (n, 2))
    halls = np.zeros(n, np.int16)
    active = np.ones(n, bool)
    im = InterestManager(n, 20.0, max_visible=32)
    ref = Reference(n, 20.0, cap=32)
    for _ in range(3):
        run_both(im, ref, pos, halls, active)
        moved = rng.random(n) < 0.1
        pos = pos.copy()
        pos[moved] += rng.normal(0, 0.3, (int(moved.sum()), 2))
        run_both(im, ref, pos, halls, active)


# ---------------------------------------------------------------------- edges and rules


def world(n: int):
    return np.zeros((n, 2)), np.zeros(n, np.int16), np.zeros(n, bool)


def test_distance_exactly_at_view_radius_is_visible_and_leave_radius_inclusive():
    im = InterestManager(4, 20.0, leave_radius=25.0)
    pos, halls, active = world(4)
    active[:2] = True
    pos[0] = (100.0, 100.0)
    pos[1] = (120.0, 100.0)  # exactly 20 m
    o, t = im.visible_pairs(pos, halls, active)
    assert set(zip(o.tolist(), t.tolist(), strict=True)) == {(0, 1), (1, 0)}
    pos[1] = (125.0, 100.0)  # exactly the leave radius: still a member
    o, t = im.visible_pairs(pos, halls, active)
    assert len(o) == 2
    pos[1] = (125.0001, 100.0)
    o, t = im.visible_pairs(pos, halls, active)
    assert len(o) == 0 and len(im.last.left_observers) == 2
    pos[1] = (120.0001, 100.0)  # inside leave, outside view: a newcomer may not enter
    assert len(im.visible_pairs(pos, halls, active)[0]) == 0


def test_hysteresis_keeps_an_edge_avatar_until_leave_radius():
    im = InterestManager(2, 20.0)
    pos, halls, active = world(2)
    active[:] = True
    pos[1] = (19.0, 0.0)
    im.visible_pairs(pos, halls, active)
    seen = []
    for x in (20.5, 22.0, 22.9, 23.1, 21.0, 19.99):
        pos[1] = (x, 0.0)
        seen.append(len(im.visible_pairs(pos, halls, active)[0]) == 2)
    assert seen == [True, True, True, False, False, True]


def test_cell_borders_and_hall_border_at_zero():
    # positions exactly on multiples of every cell size, and at x = 0 / negative
    n = 64
    im = InterestManager(n, 20.0)
    ref = Reference(n, 20.0)
    sizes = 23.0 / np.array([1, 2, 4, 8, 16])
    rng = np.random.default_rng(3)
    pos = np.stack([rng.choice(sizes, n) * rng.integers(-2, 4, n), rng.choice(sizes, n) * rng.integers(0, 3, n)], axis=1)
    pos[:8, 0] = 0.0
    halls = np.zeros(n, np.int16)
    active = np.ones(n, bool)
    run_both(im, ref, pos, halls, active)
    pos[8:16] += 1e-12
    run_both(im, ref, pos, halls, active)


def test_many_avatars_in_one_cell_cap_nearest_first_ties_by_slot():
    n = 200
    im = InterestManager(n, 20.0, max_visible=10)
    ref = Reference(n, 20.0, cap=10)
    pos, halls, active = world(n)
    active[:] = True
    pos[:, 0] = 5.0 + (np.arange(n) % 7) * 0.25  # many exact ties in distance
    pos[:, 1] = 5.0
    run_both(im, ref, pos, halls, active)
    o, t = im.visible_pairs(pos, halls, active)
    assert np.bincount(o, minlength=n).max() == 10
    mine = t[o == 0]
    d = np.abs(pos[mine, 0] - pos[0, 0])
    assert np.all(np.diff(d) >= 0)
    assert mine.tolist() == sorted(mine.tolist(), key=lambda s: (abs(pos[s, 0] - pos[0, 0]), s))


def test_cap_does_not_flicker_between_equidistant_avatars():
    im = InterestManager(4, 20.0, max_visible=1)
    pos, halls, active = world(4)
    active[:3] = True
    pos[1] = (10.0, 0.0)
    pos[2] = (-10.3, 0.0)
    o, t = im.visible_pairs(pos, halls, active)
    assert t[o == 0].tolist() == [1]
    for x1, x2 in ((10.4, -10.2), (10.1, -10.35), (11.0, -9.7)):  # 2 gets nearer, within 15 %
        pos[1, 0], pos[2, 0] = x1, x2
        o, t = im.visible_pairs(pos, halls, active)
        assert t[o == 0].tolist() == [1]
        assert (0, 1) not in set(zip(im.last.left_observers.tolist(), im.last.left_targets.tolist(), strict=True))
    pos[2, 0] = -9.0  # now more than 15 % nearer: it takes the place
    o, t = im.visible_pairs(pos, halls, active)
    assert t[o == 0].tolist() == [2]


def test_halls_separate_avatars_at_the_same_coordinates():
    im = InterestManager(3, 20.0)
    pos, halls, active = world(3)
    active[:] = True
    halls[:] = (0, 1, 1)
    o, t = im.visible_pairs(pos, halls, active)
    assert set(zip(o.tolist(), t.tolist(), strict=True)) == {(1, 2), (2, 1)}
    halls[0] = 1  # a portal hop: detected without a moved flag
    o, t = im.visible_pairs(pos, halls, active)
    assert len(o) == 6


def test_inactive_slots_see_nothing_and_are_not_seen():
    im = InterestManager(3, 20.0)
    pos, halls, active = world(3)
    active[:] = True
    im.visible_pairs(pos, halls, active)
    active[1] = False
    o, t = im.visible_pairs(pos, halls, active)
    assert set(zip(o.tolist(), t.tolist(), strict=True)) == {(0, 2), (2, 0)}
    left = set(zip(im.last.left_observers.tolist(), im.last.left_targets.tolist(), strict=True))
    assert left == {(0, 1), (1, 0), (1, 2), (2, 1)}


def test_forget_drops_membership_and_reports_reuse_as_leave_and_enter():
    im = InterestManager(3, 20.0)
    pos, halls, active = world(3)
    active[:2] = True
    pos[1] = (19.0, 0.0)
    im.visible_pairs(pos, halls, active)
    # slot 1 is freed and reused by a newcomer standing at 21 m: beyond the view radius,
    # so the old membership must not carry over
    im.forget(1)
    pos[1] = (21.0, 0.0)
    o, _ = im.visible_pairs(pos, halls, active)
    assert len(o) == 0
    # reused at a visible spot in the same tick: it leaves and enters again
    pos[1] = (5.0, 0.0)
    im.visible_pairs(pos, halls, active)
    im.forget(1)
    o, t = im.visible_pairs(pos, halls, active)
    assert set(zip(o.tolist(), t.tolist(), strict=True)) == {(0, 1), (1, 0)}
    last = im.last
    assert set(zip(last.left_observers.tolist(), last.left_targets.tolist(), strict=True)) == {(0, 1), (1, 0)}
    assert set(zip(last.entered_observers.tolist(), last.entered_targets.tolist(), strict=True)) == {(0, 1), (1, 0)}


def test_changes_and_offsets_are_consistent_with_the_sets():
    rng = np.random.default_rng(11)
    n = 400
    pos = rng.uniform(0, 100, (n, 2))
    halls = np.zeros(n, np.int16)
    active = np.ones(n, bool)
    im = InterestManager(n, 20.0, max_visible=20)
    prev: set[tuple[int, int]] = set()
    for _ in range(5):
        vis = im.update(pos, halls, active)
        now = set(zip(vis.observers.tolist(), vis.targets.tolist(), strict=True))
        assert set(zip(vis.entered_observers.tolist(), vis.entered_targets.tolist(), strict=True)) == now - prev
        assert set(zip(vis.left_observers.tolist(), vis.left_targets.tolist(), strict=True)) == prev - now
        assert np.all(np.diff(vis.observers) >= 0)
        for o in rng.integers(0, n, 10).tolist():
            assert vis.targets[vis.offsets[o] : vis.offsets[o + 1]].tolist() == vis.targets[vis.observers == o].tolist()
        prev = now
        pos = pos + rng.normal(0, 1.5, pos.shape)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        InterestManager(4, 20.0, leave_radius=10.0)
    im = InterestManager(4, 20.0)
    with pytest.raises(ValueError):
        im.visible_pairs(np.zeros((3, 2)), np.zeros(3, np.int16), np.ones(3, bool))


# ---------------------------------------------------------------------- the compiled kernel


def test_warm_compiles_the_one_signature_every_tick_uses():
    """The server warms the kernel at start: whatever dtypes and layouts a caller passes,
    a tick then finds it compiled instead of stalling ~5 s for the JIT."""
    warm()
    im = InterestManager(8, 20.0)
    im.update(np.zeros((8, 2), np.float32), np.zeros(8, np.int64), np.ones(8, np.int8))
    im.update(np.asfortranarray(np.ones((8, 2))), [0] * 8, [True] * 8)
    assert len(interest_kernel.tick.signatures) == 1


# ---------------------------------------------------------------------- property


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(2, 40),
    st.integers(1, 6),
    st.lists(st.tuples(st.integers(0, 39), st.floats(-30, 30), st.floats(-30, 30), st.integers(0, 3)), max_size=60),
    st.integers(0, 2**32 - 1),
)
def test_property_random_small_worlds_and_moves(n, cap, moves, seed):
    """Random small worlds on a coarse lattice (many exact ties and borders), random moves,
    hall hops, deactivations and slot reuse, compared with the reference every step."""
    rng = np.random.default_rng(seed)
    pos = np.round(rng.uniform(-5, 45, (n, 2)) * 2) / 2
    halls = rng.integers(0, 2, n).astype(np.int16)
    active = rng.random(n) < 0.85
    im = InterestManager(n, 10.0, max_visible=cap)
    ref = Reference(n, 10.0, cap=cap)
    run_both(im, ref, pos, halls, active)
    for slot, dx, dy, what in moves:
        slot %= n
        pos = pos.copy()
        if what == 0:
            pos[slot] += (dx, dy)
        elif what == 1:
            halls[slot] = 1 - halls[slot]
        elif what == 2:
            active[slot] = not active[slot]
            im.forget(slot)
            ref.forget(slot)
        else:
            pos[slot] = np.round(pos[slot] + (dx / 4, dy / 4))
        run_both(im, ref, pos, halls, active)


# ---------------------------------------------------------------------- benchmark smoke


def test_benchmark_quick_mode_runs_and_agrees(tmp_path):
    out = tmp_path / "interest.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "interest.py"), "--quick", "--sizes", "300,1200", "--json", str(out)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ours/cKDTree" in proc.stdout
    import json

    data = json.loads(out.read_text())
    assert {c["n"] for c in data["cases"]} == {300, 1200}
    assert all(c["agree"] for c in data["cases"])


# ---------------------------------------------------------------------- the rule every second tick


@pytest.mark.parametrize("seed", range(3))
def test_every_second_call_is_the_rule_on_its_runs_and_stands_between(seed):
    """every=2: the calls that run the rule give the reference stepped on those calls alone
    (its memberships are those of the last run); the calls between give the last sets."""
    rng = np.random.default_rng(seed)
    n = 300
    pos, halls, active = random_world(rng, n, 120.0, "crowd")
    im = InterestManager(n, 20.0, max_visible=16, every=2)
    ref = Reference(n, 20.0, cap=16)
    want: dict[int, list[int]] = {}
    for call in range(12):
        got = as_dict(*im.visible_pairs(pos, halls, active))
        if call % 2 == 0:
            want = ref.step(pos, halls, active)
        else:
            assert len(im.last.entered_observers) == len(im.last.left_observers) == 0
        assert got == want
        moved = rng.random(n) < 0.5
        pos = pos.copy()
        pos[moved] += rng.normal(0, 1.0, (int(moved.sum()), 2))


@pytest.mark.parametrize("change", ["hall", "leave", "join", "forget"])
def test_a_join_leave_hall_change_or_forget_runs_the_rule_at_once(change):
    n = 40
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 30, (n, 2))
    halls = np.zeros(n, np.int16)
    active = np.ones(n, bool)
    active[-1] = False
    im = InterestManager(n, 20.0, max_visible=16, every=2)
    ref = Reference(n, 20.0, cap=16)
    assert as_dict(*im.visible_pairs(pos, halls, active)) == ref.step(pos, halls, active)
    halls, active = halls.copy(), active.copy()
    if change == "hall":
        halls[5] = 1
    elif change == "leave":
        active[5] = False
    elif change == "join":
        active[-1] = True
    else:
        im.forget(5)
        ref.forget(5)
    pos = pos + rng.normal(0, 1.0, (n, 2))
    got = as_dict(*im.visible_pairs(pos, halls, active))  # a call that would stand, but may not
    assert got == ref.step(pos, halls, active)
    assert got != as_dict(im.last.observers[:0], im.last.targets[:0])


@pytest.mark.parametrize("every", [1, 2, 3])
@pytest.mark.parametrize("phase", [0.0, 0.013, 0.029, 0.041, 0.066])
def test_an_avatar_walking_into_range_is_seen_within_every_minus_one_ticks(every, phase):
    """The bound in protocol/README.md: walking at 1.4 m/s (7 cm a tick) straight at an
    observer, an avatar is seen at most every - 1 ticks after the tick the every-tick rule
    first sees it, and walking away it is gone at most every - 1 ticks after that rule drops it."""
    speed = 0.07
    pos, halls, active = world(2)
    active[:] = True
    pos[1] = (30.0 + phase, 0.0)  # 30 m away: out of view
    each = InterestManager(2, 20.0)
    im = InterestManager(2, 20.0, every=every)
    first_each = first = None
    for tick in range(400):
        pos = pos.copy()
        pos[1, 0] -= speed
        if len(each.visible_pairs(pos, halls, active)[0]) and first_each is None:
            first_each = tick
        if len(im.visible_pairs(pos, halls, active)[0]) and first is None:
            first = tick
    assert first_each is not None and first is not None
    assert 0 <= first - first_each <= every - 1
    gone_each = gone = None
    for tick in range(1000):
        pos = pos.copy()
        pos[1, 0] -= speed  # on through the observer and away on the other side
        if not len(each.visible_pairs(pos, halls, active)[0]) and gone_each is None:
            gone_each = tick
        if not len(im.visible_pairs(pos, halls, active)[0]) and gone is None:
            gone = tick
    assert gone_each is not None and gone is not None
    assert 0 <= gone - gone_each <= every - 1


def test_every_must_be_at_least_one():
    with pytest.raises(ValueError):
        InterestManager(4, 20.0, every=0)
