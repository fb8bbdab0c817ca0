"""The numpy benchmark peer (benchmarks/interest_numpy.py) against the brute-force reference.

It is no longer the server's, but the benchmark's verdict means something only if the peer
implements the rule: compared here with the reference of test_interest.py (visible lists in
rank order) and with InterestManager (entered/left pairs), tick after tick, fed the moved
mask it relies on.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from test_interest import ROOT, Reference, as_dict, random_world

from server.interest import InterestManager

sys.path.append(str(ROOT / "benchmarks"))  # not a package: the peer imports its grid as a sibling
from interest_numpy import NumpyInterest  # noqa: E402


def check(peer: NumpyInterest, im: InterestManager, ref: Reference, pos: np.ndarray, halls: np.ndarray,
          active: np.ndarray, moved: np.ndarray | None) -> None:
    """One tick of all three: the peer's lists against the reference, its changes against ours."""
    got = peer.update(pos, halls, active, moved)
    assert as_dict(got.observers, got.targets) == ref.step(pos, halls, active)
    want = im.update(pos, halls, active)
    for name in ("offsets", "entered_observers", "entered_targets", "left_observers", "left_targets"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("layout", ["uniform", "crowd"])
def test_numpy_peer_matches_reference_over_ticks(seed, layout):
    """Random worlds in two halls, moves, hall hops, (de)activations and freed slots."""
    rng = np.random.default_rng(seed)
    n = 250
    pos, halls, active = random_world(rng, n, 100.0, layout)
    peer = NumpyInterest(n, 20.0, max_visible=12)
    im = InterestManager(n, 20.0, max_visible=12)
    ref = Reference(n, 20.0, cap=12)
    moved = None
    for _ in range(8):
        check(peer, im, ref, pos, halls, active, moved)
        moved = rng.random(n) < 0.3
        pos = pos + rng.normal(0, 2.0, (n, 2)) * moved[:, None]
        hop = rng.random(n) < 0.03
        halls[hop] = 1 - halls[hop]
        for slot in np.flatnonzero(rng.random(n) < 0.03).tolist():
            active[slot] = not active[slot]
            for impl in (peer, im, ref):
                impl.forget(slot)


def test_numpy_peer_ties_borders_and_a_dense_crowd():
    """Exact ties in distance on a lattice, and a crowd that needs the finest cells."""
    rng = np.random.default_rng(9)
    n = 400
    pos = np.round(rng.uniform(0, 30, (n, 2)) * 2) / 2
    pos[:200] = rng.normal(15.0, 1.0, (200, 2))
    halls = np.zeros(n, np.int16)
    active = np.ones(n, bool)
    peer = NumpyInterest(n, 10.0, max_visible=8)
    im = InterestManager(n, 10.0, max_visible=8)
    ref = Reference(n, 10.0, cap=8)
    for _ in range(4):
        check(peer, im, ref, pos, halls, active, None)
        pos = pos + np.round(rng.normal(0, 1.0, (n, 2))) * 0.5
