"""The numba kernel of benchmarks/interest_numba.py against the brute-force reference.

It is only a benchmark peer, but the benchmark's verdict means something only if the kernel
implements the rule: compared here with the reference of test_interest.py (visible lists in
rank order) and with InterestManager (entered/left pairs), tick after tick.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import numpy as np
import pytest

from server.interest import InterestManager
from test_interest import ROOT, Reference, crowd

pytest.importorskip("numba")


def load_kernel() -> ModuleType:
    """benchmarks/ is not a package: load the module from its file."""
    name = "interest_numba"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "interest_numba.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def check(kernel, im: InterestManager, ref: Reference, pos: np.ndarray, halls: np.ndarray,
          active: np.ndarray) -> None:
    """One tick of all three: the kernel's lists against the reference, its changes against ours."""
    got = kernel.update(pos, halls, active)
    want = ref.step(pos, halls, active)
    lists: dict[int, list[int]] = {}
    for o, t in zip(got.observers.tolist(), got.targets.tolist()):
        lists.setdefault(o, []).append(t)
    assert lists == want
    vis = im.update(pos, halls, active)
    n = im.capacity
    assert got.entered.tolist() == np.sort(vis.entered_observers * n + vis.entered_targets).tolist()
    assert got.left.tolist() == np.sort(vis.left_observers * n + vis.left_targets).tolist()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("layout", ["uniform", "crowd"])
def test_kernel_matches_reference_over_ticks(seed, layout):
    """Random worlds in two halls, moves, hall hops, (de)activations and freed slots."""
    rng = np.random.default_rng(seed)
    n, side = 250, 100.0
    pos = rng.uniform(0, side, (n, 2)) if layout == "uniform" else crowd(rng, n, side)
    halls = rng.integers(0, 2, n).astype(np.int16)
    active = rng.random(n) < 0.9
    kernel = load_kernel().NumbaInterest(n, 20.0, max_visible=12)
    im = InterestManager(n, 20.0, max_visible=12)
    ref = Reference(n, 20.0, cap=12)
    for _ in range(8):
        check(kernel, im, ref, pos, halls, active)
        pos = pos + rng.normal(0, 2.0, (n, 2)) * (rng.random(n) < 0.3)[:, None]
        hop = rng.random(n) < 0.03
        halls[hop] = 1 - halls[hop]
        for slot in np.flatnonzero(rng.random(n) < 0.03).tolist():
            active[slot] = not active[slot]
            for peer in (kernel, im, ref):
                peer.forget(slot)


def test_kernel_ties_borders_and_a_dense_crowd():
    """Exact ties in distance on a lattice, and a crowd far denser than the cells are fine."""
    rng = np.random.default_rng(9)
    n = 400
    pos = np.round(rng.uniform(0, 30, (n, 2)) * 2) / 2
    pos[:200] = rng.normal(15.0, 1.0, (200, 2))
    halls = np.zeros(n, np.int16)
    active = np.ones(n, bool)
    kernel = load_kernel().NumbaInterest(n, 10.0, max_visible=8)
    im = InterestManager(n, 10.0, max_visible=8)
    ref = Reference(n, 10.0, cap=8)
    for _ in range(4):
        check(kernel, im, ref, pos, halls, active)
        pos = pos + np.round(rng.normal(0, 1.0, (n, 2))) * 0.5
