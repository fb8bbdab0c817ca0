"""Interest management per tick: ours (a compiled numba kernel) against the numpy
implementation it replaced, a naive O(n^2) numpy version and scipy's cKDTree.

    python benchmarks/interest.py [--quick] [--json PATH] [--sizes 1000,10000] [--ticks N]

All four get the same positions and do the same job per tick: the visible set of every
active avatar under the rule of server/interest.py (view 20 m, leave 23 m, cap 64, members
discounted), sorted, plus the entered/left pairs against the previous tick. They must agree
pair for pair on every timed tick, or the script says so and exits 1.

* ours: ``server.interest.InterestManager.update``: the compiled kernel (server/interest_kernel.py),
  a per-observer pass (grid by counting sort, members checked explicitly, partial selection,
  diff), single-threaded. Its JIT compile (or load from the disk cache) is measured once, on
  a tiny world, and kept out of the timings.
* numpy: benchmarks/interest_numpy.py, the server's implementation before the kernel
  (incremental Morton grid, whole-array numpy passes), given the moved mask it relies on.
* naive: every observer against every avatar, 256 observers at a time, on the last two
  ticks only (given our previous sets as its hysteresis state); skipped above 10,000.
* cKDTree: rebuild the tree (it cannot move points), ``query(k=cap+1,
  distance_upper_bound=view)`` for every observer (the k nearest are a superset of the
  capped newcomers; query_pairs is hopeless in crowds: 25 M pairs at 10,000), plus last
  tick's members' distances, then the same rank/cap/diff with numpy. One thread.

Worlds: one hall. Uniform: side sqrt(N / 0.05) m, i.e. 0.5 avatars per 10 m^2 (about 63
within 20 m). Crowded: the same hall, 80 % of the avatars around three booths (normal,
sigma 6 m), the rest uniform. Each tick 10 % of the avatars, drawn afresh, step 1.4 m/s *
0.05 s (a fifth of them run at 3.5 m/s).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from interest_numpy import NumpyInterest  # noqa: E402  (the script's own folder)

from server.interest import InterestManager, Visibility, warm  # noqa: E402

VIEW = 20.0
CAP = 64
DENSITY = 0.05  # avatars per m^2 on open floor
DT = 0.05
NAIVE_LIMIT = 10_000
NAIVE_TICKS = 2


@dataclass(frozen=True, slots=True)
class World:
    pos: np.ndarray
    halls: np.ndarray
    active: np.ndarray
    side: float


def make_world(n: int, layout: str, rng: np.random.Generator) -> World:
    side = float(np.sqrt(n / DENSITY))
    pos = rng.uniform(0, side, (n, 2))
    if layout == "crowded":
        booths = np.array([[0.3, 0.3], [0.7, 0.4], [0.45, 0.75]]) * side
        k = int(0.8 * n)
        pos[:k] = booths[rng.integers(0, 3, k)] + rng.normal(0, 6.0, (k, 2))
        np.clip(pos, 0, side, out=pos)
    return World(pos, np.zeros(n, np.int16), np.ones(n, bool), side)


def walk(world: World, rng: np.random.Generator) -> np.ndarray:
    n = len(world.pos)
    moved = rng.random(n) < 0.1
    k = int(moved.sum())
    angle = rng.uniform(0, 2 * np.pi, k)
    speed = np.where(rng.random(k) < 0.2, 3.5, 1.4) * DT
    step = np.stack([np.cos(angle), np.sin(angle)], axis=1) * speed[:, None]
    world.pos[moved] = np.clip(world.pos[moved] + step, 0, world.side)
    return moved


# ---------------------------------------------------------------------- the shared rule


class RankRule:
    """Rank/cap/diff shared by the two peers: the same integers as InterestManager."""

    def __init__(self, n: int, im: InterestManager) -> None:
        self.n = n
        self.tb = im.slot_bits
        self.osh = im.key_bits + im.slot_bits
        self.scale = im.key_scale
        self.member_scale = im.member_factor * im.key_scale
        self.r2 = im.view_radius**2
        self.l2 = im.leave_radius**2
        self.prev_keys = np.zeros(0, dtype=np.int64)  # sorted observer * n + target

    def select(self, o: np.ndarray, t: np.ndarray, d2: np.ndarray, member: np.ndarray) -> np.ndarray:
        eligible = np.where(member, d2 <= self.l2, d2 <= self.r2)
        o, t, d2, member = o[eligible], t[eligible], d2[eligible], member[eligible]
        q = np.where(member, (d2 * self.member_scale).astype(np.int64), (d2 * self.scale).astype(np.int64))
        ranks = np.sort((o << self.osh) | (q << self.tb) | t)
        owner = ranks >> self.osh
        first = np.r_[True, owner[1:] != owner[:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(len(ranks)), 0))
        return ranks[np.arange(len(ranks)) - start < CAP]

    def is_member(self, o: np.ndarray, t: np.ndarray) -> np.ndarray:
        keys = o * self.n + t
        i = np.searchsorted(self.prev_keys, keys)
        i[i == len(self.prev_keys)] = 0
        return self.prev_keys[i] == keys if len(self.prev_keys) else np.zeros(len(keys), bool)

    def finish(self, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        o = ranks >> self.osh
        t = ranks & ((1 << self.tb) - 1)
        keys = np.sort(o * self.n + t)
        entered = np.setdiff1d(keys, self.prev_keys, assume_unique=True)
        left = np.setdiff1d(self.prev_keys, keys, assume_unique=True)
        self.prev_keys = keys
        return o, t, entered, left


class Naive:
    """Every observer against everyone, in chunks of rows."""

    def __init__(self, n: int, im: InterestManager) -> None:
        self.rule = RankRule(n, im)

    def tick(self, pos: np.ndarray, halls: np.ndarray, active: np.ndarray, moved: np.ndarray):
        n = len(pos)
        x, y = pos[:, 0], pos[:, 1]
        live = np.flatnonzero(active)
        out = []
        prev = self.rule.prev_keys
        for lo in range(0, len(live), 256):
            rows = live[lo : lo + 256]
            dx = x[rows, None] - x[None, live]
            dy = y[rows, None] - y[None, live]
            d2 = dx * dx + dy * dy
            ok = (halls[rows, None] == halls[None, live]) & (rows[:, None] != live[None, :]) & (d2 <= self.rule.l2)
            r, c = np.nonzero(ok)
            o, t = rows[r], live[c]
            member = np.zeros(len(o), bool)
            p0, p1 = np.searchsorted(prev, (rows[0] * n, (rows[-1] + 1) * n))
            if p1 > p0:
                member = self.rule.is_member(o, t)
            out.append(self.rule.select(o, t, d2[r, c], member))
        ranks = np.concatenate(out) if out else np.zeros(0, np.int64)
        return self.rule.finish(ranks)


class KDTree:
    """scipy cKDTree rebuilt each tick, k nearest within the view radius, plus members."""

    def __init__(self, n: int, im: InterestManager) -> None:
        from scipy.spatial import cKDTree

        self.cKDTree = cKDTree
        self.rule = RankRule(n, im)

    def tick(self, pos: np.ndarray, halls: np.ndarray, active: np.ndarray, moved: np.ndarray):
        n = len(pos)
        live = np.flatnonzero(active)
        # halls side by side, far apart, so one tree serves all of them
        spread = pos[live].copy()
        spread[:, 0] += halls[live].astype(np.float64) * 1e6
        tree = self.cKDTree(spread)
        k = min(CAP + 1, len(live))
        _, idx = tree.query(spread, k=k, distance_upper_bound=self.rule.r2**0.5, workers=1)
        idx = idx.reshape(len(live), k)
        found = idx < len(live)
        o = np.repeat(live, k)[found.ravel()]
        t = live[idx[found]]
        keep = o != t
        o, t = o[keep], t[keep]
        member = self.rule.is_member(o, t)
        o, t = o[~member], t[~member]  # members come from last tick's list below
        prev = self.rule.prev_keys
        mo, mt = prev // n, prev % n
        ok = active[mt] & active[mo] & (halls[mt] == halls[mo])
        mo, mt = mo[ok], mt[ok]
        o = np.concatenate((mo, o))
        t = np.concatenate((mt, t))
        member = np.r_[np.ones(len(mo), bool), np.zeros(len(o) - len(mo), bool)]
        dx = pos[o, 0] - pos[t, 0]
        dy = pos[o, 1] - pos[t, 1]
        return self.rule.finish(self.rule.select(o, t, dx * dx + dy * dy, member))


class Ours:
    """The server's InterestManager: it finds the movers itself."""

    def __init__(self, n: int) -> None:
        self.im = InterestManager(n, VIEW, max_visible=CAP)

    def tick(self, pos: np.ndarray, halls: np.ndarray, active: np.ndarray, moved: np.ndarray) -> Visibility:
        return self.im.update(pos, halls, active)


class NumpyPeer:
    """The numpy peer, given the moved mask it relies on."""

    def __init__(self, n: int) -> None:
        self.im = NumpyInterest(n, VIEW, max_visible=CAP)

    def tick(self, pos: np.ndarray, halls: np.ndarray, active: np.ndarray, moved: np.ndarray) -> Visibility:
        return self.im.update(pos, halls, active, moved)


def pair_keys(vis: Visibility, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A Visibility as the other peers report a tick (outside the timing): lists, then
    sorted entered/left pair keys."""
    entered = np.sort(vis.entered_observers * n + vis.entered_targets)
    left = np.sort(vis.left_observers * n + vis.left_targets)
    return vis.observers, vis.targets, entered, left


# ---------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class Case:
    n: int
    layout: str
    ticks: int
    pairs: int
    mean_visible: float
    ours_ms: float
    numpy_ms: float
    naive_ms: float | None
    ckdtree_ms: float
    ratio: float  # ours / cKDTree
    numpy_ratio: float  # numpy / ours
    agree: bool


def same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def run_case(n: int, layout: str, ticks: int, warmup: int, seed: int) -> Case:
    rng = np.random.default_rng(seed)
    world = make_world(n, layout, rng)
    ours = Ours(n)
    kd = KDTree(n, ours.im)
    naive = Naive(n, ours.im) if n <= NAIVE_LIMIT else None
    numpy_peer = NumpyPeer(n)
    times: dict[str, list[float]] = {"ours": [], "numpy": [], "naive": [], "kd": []}
    agree = True
    moved = np.ones(n, bool)
    for tick in range(warmup + ticks):
        results: dict[str, Any] = {}
        if naive is not None:
            # the naive version is too slow to run every tick at 10,000: it runs on the
            # last NAIVE_TICKS ticks, starting from our previous visible set
            naive_now = tick >= warmup + ticks - NAIVE_TICKS
            if naive_now:
                last = ours.im.last
                naive.rule.prev_keys = np.sort(last.observers * n + last.targets) if last else np.zeros(0, np.int64)
        for name, impl in (("ours", ours), ("numpy", numpy_peer), ("kd", kd), ("naive", naive)):
            if impl is None or (name == "naive" and not naive_now):
                continue
            start = time.perf_counter()
            results[name] = impl.tick(world.pos, world.halls, world.active, moved)
            elapsed = time.perf_counter() - start
            if tick >= warmup:
                times[name].append(elapsed * 1e3)
        for name in ("ours", "numpy"):
            results[name] = pair_keys(results[name], n)
        agree &= all(same(results["ours"], other) for other in results.values())
        moved = walk(world, rng)
    assert ours.im.last is not None, "ticked above"
    pairs = len(ours.im.last.observers)
    ours_ms, numpy_ms, kd_ms = (float(np.median(times[name])) for name in ("ours", "numpy", "kd"))
    return Case(n, layout, ticks, pairs, pairs / n, ours_ms, numpy_ms,
                float(np.median(times["naive"])) if times["naive"] else None, kd_ms, ours_ms / kd_ms,
                numpy_ms / ours_ms, bool(agree))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer ticks, sizes 1,000 and 10,000")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "interest.json")
    ap.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=None)
    ap.add_argument("--ticks", type=int, default=None)
    args = ap.parse_args(argv)
    sizes = args.sizes or ([1_000, 10_000] if args.quick else [1_000, 10_000, 50_000])
    ticks = args.ticks or (3 if args.quick else 5)
    warmup = 2

    print(f"interest management, one core: view {VIEW:g} m, leave {1.15 * VIEW:g} m, cap {CAP}, "
          f"10 % moving per tick, median of {ticks} ticks after {warmup} warm-up")
    print("ours: InterestManager.update (compiled per-observer kernel) | numpy: the previous incremental "
          "Morton grid | naive: all pairs, 256 rows at a time | cKDTree: rebuild + k-NN (k=cap+1, r=view) "
          "+ members; all four do rank, cap, enter/leave")
    compile_s = warm()
    print(f"numba {numba.__version__}: JIT compile (or disk cache load) {compile_s:.1f} s, once, not in the timings")
    header = (f"{'N':>7} {'layout':>8} {'vis/obs':>7} {'ours ms':>9} {'numpy ms':>9} {'naive ms':>9} "
              f"{'cKDTree ms':>10} {'ours/cKDTree':>12} {'numpy/ours':>10} agree")
    print(header)
    print("-" * len(header))
    cases = []
    for n in sizes:
        for layout in ("uniform", "crowded"):
            case = run_case(n, layout, ticks, warmup, seed=n)
            cases.append(case)
            naive = f"{case.naive_ms:9.1f}" if case.naive_ms is not None else f"{'skipped':>9}"
            print(f"{n:>7} {layout:>8} {case.mean_visible:7.1f} {case.ours_ms:9.2f} {case.numpy_ms:9.2f} {naive} "
                  f"{case.ckdtree_ms:10.2f} {case.ratio:12.2f} {case.numpy_ratio:10.2f} "
                  f"{'yes' if case.agree else 'NO'}", flush=True)
    if any(n > NAIVE_LIMIT for n in sizes):
        print(f"naive skipped above {NAIVE_LIMIT:,} avatars (O(n^2))")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "config": {"view_radius": VIEW, "leave_radius": 1.15 * VIEW, "cap": CAP, "density_per_m2": DENSITY,
                   "moving_fraction": 0.1, "ticks": ticks, "warmup": warmup, "kernel_compile_s": compile_s},
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
                    "cpu": platform.processor() or platform.machine()},
        "cases": [asdict(c) for c in cases],
    }, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0 if all(c.agree for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
