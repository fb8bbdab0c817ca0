"""The interest rule of server/interest.py as one compiled (numba) pass per tick.

``tick`` does the whole job for every observer; ``InterestManager`` holds its state between
ticks. Same rule, same integers (``floor(d2 * key_scale)`` for newcomers,
``floor(d2 * (member_factor * key_scale))`` for members, ties to the lower slot, cap nearest
by ``(key, slot)``). One single-threaded pass:

* Movers are found by comparing with the positions, halls and active flags of last tick
  (plus forgotten slots): no ``moved`` mask to trust.
* Two uniform grids per hall, built by counting sort: every active avatar, and the movers
  alone. Cells are as small as ``view_radius / CELL_DIVISOR`` but no more than
  ``CELLS_PER_AVATAR`` per avatar (``MOVER_CELLS_PER_AVATAR`` per mover): small cells keep
  a crowd observer's square close to the small disc it needs, while on open floor every
  row of cells in a square costs a visit whether it holds anyone or not.
* Each observer's last members are checked explicitly and kept in a sorted array of at most
  ``max_visible`` keys (a partial selection). Then newcomers come from a square of cells:
  with ``max_visible`` members the worst key bounds the radius a newcomer must be within to
  rank, so one square usually settles it; otherwise the square grows, ring by ring, only
  new cells scanned, until the cap-th key is provably below any key outside, or the square
  covers the view radius.
* Not every observer is redone: one that did not move keeps its members' keys (only moved
  members are re-measured) and looks for newcomers among the movers only. That is exact
  unless a place fell free (its list was full last tick and now is not, or its worst rank
  got worse): someone who did not move might take it, so such an observer is redone from
  the full grid (3 % of observers a tick at 10,000 uniform, 13 % crowded). Redoing every
  observer, the simpler choice, measured 13 ms a tick at 10,000 avatars against 8-10 ms
  this way: it re-measures ~60 unchanged members and rescans ~100 candidates per observer.
* The diff against each observer's previous list, with a mark array.

The compiled code is cached on disk (``cache=True``): compiling takes ~5 s, loading it
back well under a second, so only the first start after a change to this file pays.
"""

from __future__ import annotations

import math

import numpy as np

from world.jit import compiled

CELL_DIVISOR = 32.0  # cells down to 0.625 m at a 20 m view, for small dense halls
CELLS_PER_AVATAR = 8.0  # 1.6 m cells for 10,000 avatars on 0.2 km^2; 2-8 measured best there
MOVER_CELLS_PER_AVATAR = 4.0  # 7 m cells for 1,000 movers on the same floor
SLACK = 1e-9  # relative margin on search radii: float rounding never hides a candidate


# ---------------------------------------------------------------------- the kernel
# Helpers with array arguments are inlined (inline="always") and called from one place in
# the per-observer loop: numba otherwise pays two atomic reference counts per array
# argument per call, which cost a quarter of the tick.


@compiled()
def _build_grids(x: np.ndarray, y: np.ndarray, halls: np.ndarray, active: np.ndarray, moved: np.ndarray, hmin: int,
                 nh: int, cell_min: float, cells_per_avatar: float, mover_cells_per_avatar: float) -> tuple:
    """Counting sort into two grids, everyone (g = 0) and the movers (g = 1), one row-major
    grid per hall each (index ``g * nh + hall - hmin``), in one set of arrays so the search
    picks a grid by index. Each row of cells is one contiguous run of the sorted arrays."""
    n = len(x)
    count = np.zeros(2 * nh, np.int64)
    x0 = np.full(2 * nh, np.inf)
    y0 = np.full(2 * nh, np.inf)
    x1 = np.full(2 * nh, -np.inf)
    y1 = np.full(2 * nh, -np.inf)
    for i in range(n):
        for g in range(2 if active[i] and moved[i] else 1 if active[i] else 0):
            k = g * nh + halls[i] - hmin
            count[k] += 1
            x0[k] = min(x0[k], x[i])
            y0[k] = min(y0[k], y[i])
            x1[k] = max(x1[k], x[i])
            y1[k] = max(y1[k], y[i])
    size = np.ones(2 * nh)
    width = np.zeros(2 * nh, np.int64)
    height = np.zeros(2 * nh, np.int64)
    base = np.zeros(2 * nh + 1, np.int64)
    for k in range(2 * nh):
        if count[k]:
            spanx, spany = x1[k] - x0[k], y1[k] - y0[k]
            per_avatar = cells_per_avatar if k < nh else mover_cells_per_avatar
            size[k] = max(cell_min, math.sqrt(spanx * spany / (per_avatar * count[k])))
            width[k] = np.int64(spanx / size[k]) + 1
            height[k] = np.int64(spany / size[k]) + 1
        base[k + 1] = base[k] + width[k] * height[k]
    cell = np.empty(2 * n, np.int64)
    start = np.zeros(base[2 * nh] + 1, np.int64)
    for i in range(n):
        for g in range(2 if active[i] and moved[i] else 1 if active[i] else 0):
            k = g * nh + halls[i] - hmin
            cx = min(np.int64((x[i] - x0[k]) / size[k]), width[k] - 1)
            cy = min(np.int64((y[i] - y0[k]) / size[k]), height[k] - 1)
            cell[g * n + i] = base[k] + cy * width[k] + cx
            start[cell[g * n + i] + 1] += 1
    for c in range(len(start) - 1):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    sx = np.empty(start[-1])
    sy = np.empty(start[-1])
    slot = np.empty(start[-1], np.int64)
    for i in range(n):
        for g in range(2 if active[i] and moved[i] else 1 if active[i] else 0):
            c = cell[g * n + i]
            sx[fill[c]] = x[i]
            sy[fill[c]] = y[i]
            slot[fill[c]] = i
            fill[c] += 1
    return x0, y0, size, width, height, base, start, sx, sy, slot, count[:nh].sum()


@compiled(inline="always")
def _insert(best: np.ndarray, cnt: int, cap: int, key: int) -> int:
    """Put ``key`` into the sorted ``best[:cnt]``, dropping the last one when full (the
    caller checked that it ranks); returns the new count."""
    i = cnt if cnt < cap else cap - 1
    while i > 0 and best[i - 1] > key:
        best[i] = best[i - 1]
        i -= 1
    best[i] = key
    return cnt + 1 if cnt < cap else cap


@compiled(inline="always")
def _radius(q: int, scale: float) -> float:
    """A radius beyond which every newcomer's key exceeds ``q`` (true distance, with slack)."""
    return math.sqrt((q + 1.0) / scale) * (1.0 + SLACK)


@compiled(inline="always")
def _cell_range(lo: float, hi: float, origin: float, size: float, cells: int) -> tuple[int, int]:
    """Cells [first, last] covering coordinates [lo, hi]: the same float steps as the
    avatars' own cells, so every avatar in [lo, hi] is inside (rounding is monotone)."""
    a = (lo - origin) / size
    b = (hi - origin) / size
    first = 0 if a < 0 else min(int(a), cells - 1)
    last = cells - 1 if b >= cells else max(int(b), 0)
    return first, last


@compiled(inline="always")
def _members(o: int, x: np.ndarray, y: np.ndarray, halls: np.ndarray, active: np.ndarray, forgotten: np.ndarray,
             moved: np.ndarray, keys: np.ndarray, p0: int, p1: int, mark: np.ndarray, best: np.ndarray,
             fresh: np.ndarray, rule: tuple) -> int:
    """Rank o's members of last tick (marking them). Their keys are sorted: those that did
    not move (nor o) keep theirs, in order; the moved ones are re-measured, sorted apart in
    ``fresh`` and merged in. Returns the count in ``best`` (at most the old count <= cap)."""
    _, tb, _, mscale, _, leave = rule
    tmask = (np.int64(1) << tb) - 1
    cnt = nf = 0
    for j in range(p0, p1):
        t = keys[j] & tmask
        if moved[o] or moved[t]:
            if forgotten[t] or not active[t] or halls[t] != halls[o]:
                continue
            mark[t] = 2 * o
            dx = x[o] - x[t]
            dy = y[o] - y[t]
            d2 = dx * dx + dy * dy
            if d2 <= leave * leave:
                nf = _insert(fresh, nf, len(fresh), (np.int64(d2 * mscale) << tb) | t)
        else:
            mark[t] = 2 * o
            best[cnt] = keys[j]
            cnt += 1
    i, w = cnt - 1, cnt + nf - 1
    for j in range(nf - 1, -1, -1):  # merge from the back
        while i >= 0 and best[i] > fresh[j]:
            best[w] = best[i]
            i -= 1
            w -= 1
        best[w] = fresh[j]
        w -= 1
    return cnt + nf


@compiled(inline="always")
def _search(o: int, k: int, grids: tuple, x: np.ndarray, y: np.ndarray, mark: np.ndarray, best: np.ndarray, cnt: int,
            rule: tuple) -> int:
    """Add the newcomers of grid ``k`` (a grid index, see _build_grids) to o's ranking: a
    square of cells, grown ring by ring (only new cells scanned) until nothing outside it
    can rank. Returns the count in ``best``."""
    cap, tb, scale, _, view, _ = rule
    x0, y0, size, width, height, base, start, sx, sy, slot, _ = grids
    w, ht = width[k], height[k]
    if w == 0:
        return cnt
    reach = view * (1.0 + SLACK)
    lim2 = view * view  # >= every squared distance that can still rank: a filter before the key
    if cnt == cap:
        radius = min(reach, _radius(best[cap - 1] >> tb, scale))
        lim2 = min(lim2, radius * radius)
    else:  # members but no full list: the view disc is sparse; none: grow from one cell
        radius = reach if cnt else size[k]
    px, py = x[o], y[o]
    c0, c1, r0, r1 = 0, -1, 0, -1  # cells done
    while True:
        n0, n1 = _cell_range(px - radius, px + radius, x0[k], size[k], w)
        m0, m1 = _cell_range(py - radius, py + radius, y0[k], size[k], ht)
        for row in range(m0, m1 + 1):
            rb = base[k] + row * w
            inside = r0 <= row <= r1
            for part in range(2 if inside else 1):  # the row, or its two ends beside the cells done
                a = n0 if part == 0 else c1 + 1
                b = (c0 - 1 if inside else n1) if part == 0 else n1
                for j in range(start[rb + a], start[rb + b + 1]):
                    t = slot[j]
                    dx = px - sx[j]
                    dy = py - sy[j]
                    d2 = dx * dx + dy * dy
                    if d2 > lim2 or t == o or mark[t] == 2 * o:
                        continue
                    key = (np.int64(d2 * scale) << tb) | t
                    if cnt == cap and key >= best[cap - 1]:
                        continue
                    cnt = _insert(best, cnt, cap, key)
                    if cnt == cap:
                        lim2 = min(view * view, ((best[cap - 1] >> tb) + 1.0) / scale * (1.0 + SLACK))
        c0, c1, r0, r1 = n0, n1, m0, m1
        need = min(reach, _radius(best[cap - 1] >> tb, scale)) if cnt == cap else reach
        if radius >= need or (n0 == 0 and m0 == 0 and n1 == w - 1 and m1 == ht - 1):
            return cnt
        radius = need if cnt == cap else min(2.0 * radius, need)


@compiled(inline="always")
def _sort_pairs(pairs: np.ndarray, lo: int, hi: int) -> None:
    """Insertion sort of one observer's few changed pairs, or nearly sorted keys."""
    for i in range(lo + 1, hi):
        k = pairs[i]
        j = i
        while j > lo and pairs[j - 1] > k:
            pairs[j] = pairs[j - 1]
            j -= 1
        pairs[j] = k


@compiled()
def tick(x: np.ndarray, y: np.ndarray, halls: np.ndarray, active: np.ndarray, last: tuple, rule: tuple,
         cells: tuple) -> tuple:
    """One tick for every observer: lists by rank, their offsets, the keys and worst ranks
    for next tick, and the entered and left pair keys (``observer * n + target``, sorted).

    ``last`` is what the previous tick returned and saw, as InterestManager keeps it: (x, y,
    halls, active, forgotten, offsets, keys, worst); ``rule`` is (max_visible, slot_bits,
    key_scale, member key scale, view_radius, leave_radius); ``cells`` is (smallest cell,
    cells per avatar, cells per mover)."""
    lx, ly, lhalls, lactive, forgotten, prev_off, prev_key, prev_worst = last
    cap, tb, _, mscale, _, _ = rule
    n = len(x)
    tmask = (np.int64(1) << tb) - 1
    moved = np.empty(n, np.bool_)
    hmin, hmax = 1 << 16, -(1 << 16)
    for i in range(n):
        moved[i] = (x[i] != lx[i] or y[i] != ly[i] or halls[i] != lhalls[i] or active[i] != lactive[i]
                    or forgotten[i])
        if active[i]:
            hmin = min(hmin, int(halls[i]))
            hmax = max(hmax, int(halls[i]))
    nh = max(0, hmax - hmin + 1)
    grids = _build_grids(x, y, halls, active, moved, hmin, nh, *cells)
    live = grids[-1]

    off = np.zeros(n + 1, np.int64)
    obs = np.empty(live * cap, np.int64)
    tgt = np.empty(live * cap, np.int64)
    keys = np.empty(live * cap, np.int64)  # for next tick: every pair keyed as a member
    worst = np.full(n, -1, np.int64)
    entered = np.empty(live * cap, np.int64)
    left = np.empty(len(prev_key), np.int64)
    mark = np.full(n, -1, np.int32)  # 2 * o: a member of o; 2 * o + 1: visible to o now
    best = np.empty(cap, np.int64)
    fresh = np.empty(cap, np.int64)
    m = ne = nl = 0
    for o in range(n):
        p0, p1 = prev_off[o], prev_off[o + 1]
        if not active[o]:
            for j in range(p0, p1):
                left[nl + j - p0] = o * n + (prev_key[j] & tmask)
            _sort_pairs(left, nl, nl + p1 - p0)
            nl += p1 - p0
            off[o + 1] = m
            continue
        h = halls[o] - hmin
        q0 = p1 if forgotten[o] else p0  # a forgotten observer has no members
        g = 0 if moved[o] else 1  # an observer that did not move meets only movers as newcomers
        while True:
            cnt = _members(o, x, y, halls, active, forgotten, moved, prev_key, q0, p1, mark, best, fresh, rule)
            cnt = _search(o, g * nh + h, grids, x, y, mark, best, cnt, rule)
            if g == 0 or prev_worst[o] < 0 or (cnt == cap and best[cap - 1] <= prev_worst[o]):
                break
            g = 0  # a place fell free: someone who did not move may take it; redo from everyone
        if cnt == cap:
            worst[o] = best[cap - 1]

        # the list, the keys it competes with next tick (sorted), and the diff against last tick's
        e0, m0 = ne, m
        for i in range(cnt):
            t = best[i] & tmask
            obs[m] = o
            tgt[m] = t
            keys[m] = best[i]
            if mark[t] != 2 * o:  # a newcomer (forgotten slots are never members)
                entered[ne] = o * n + t
                ne += 1
                dx = x[o] - x[t]
                dy = y[o] - y[t]
                keys[m] = (np.int64((dx * dx + dy * dy) * mscale) << tb) | t
            m += 1
        if ne > e0:  # newcomers' member keys are smaller: they move up
            _sort_pairs(keys, m0, m)
            _sort_pairs(entered, e0, ne)
        l0 = nl
        if forgotten[o] or p1 - p0 != cnt - (ne - e0):  # else every old pair is still there
            for i in range(cnt):
                mark[best[i] & tmask] = 2 * o + 1
            for j in range(p0, p1):
                t = prev_key[j] & tmask
                if forgotten[o] or forgotten[t] or mark[t] != 2 * o + 1:
                    left[nl] = o * n + t
                    nl += 1
            _sort_pairs(left, l0, nl)
        off[o + 1] = m
    return obs[:m], tgt[:m], off, keys[:m], worst, entered[:ne], left[:nl]
