"""How avatars move: speeds, hall bounds, booth walls, portals. Vectorised with numpy; the
walls' collision is a compiled loop, and so is the server's whole step (``advance``).

The server steps every avatar with these functions and the client predicts its own avatar
with the very same code (arrays of one), so prediction and authority agree to the bit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .jit import compiled
from .model import Expo, Facing

WALK_SPEED = 2.5  # metres per second
RUN_SPEED = 6.0
AVATAR_RADIUS = 0.35
WALL_THICKNESS = 0.2
PORTAL_COOLDOWN = 1.5  # seconds after a hop during which portals do not fire again


@dataclass(frozen=True, slots=True)
class HallGeometry:
    """What movement needs of the expo, as arrays, halls addressed by index."""

    sizes: np.ndarray  # (halls, 2) width, depth
    walls: np.ndarray  # (walls, 4) min_x, min_y, max_x, max_y, already grown by AVATAR_RADIUS
    wall_halls: np.ndarray  # (walls,) hall index of each wall
    portals: np.ndarray  # (portals, 6) x, y, radius, target hall, target x, target y
    portal_halls: np.ndarray  # (portals,) hall index each portal stands in

    @classmethod
    def from_expo(cls, expo: Expo) -> HallGeometry:
        index = {hall.id: i for i, hall in enumerate(expo.halls)}
        sizes = np.array([[h.width, h.depth] for h in expo.halls], dtype=np.float64).reshape(-1, 2)
        walls, wall_halls = [], []
        for booth in expo.booths:
            for rect in booth_walls(booth.footprint.min_x, booth.footprint.min_y,
                                    booth.footprint.max_x, booth.footprint.max_y, booth.facing):
                walls.append(rect)
                wall_halls.append(index[booth.hall])
        grown = np.array(walls, dtype=np.float64).reshape(-1, 4) + np.array(
            [-AVATAR_RADIUS, -AVATAR_RADIUS, AVATAR_RADIUS, AVATAR_RADIUS]
        )
        portals, portal_halls = [], []
        for hall in expo.halls:
            for p in hall.portals:
                portals.append([p.position.x, p.position.y, p.radius, index[p.target_hall], p.target.x, p.target.y])
                portal_halls.append(index[hall.id])
        return cls(
            sizes=sizes,
            walls=grown,
            wall_halls=np.array(wall_halls, dtype=np.int16),
            portals=np.array(portals, dtype=np.float64).reshape(-1, 6),
            portal_halls=np.array(portal_halls, dtype=np.int16),
        )


def booth_walls(min_x: float, min_y: float, max_x: float, max_y: float, facing: Facing) -> list[tuple[float, float, float, float]]:
    """The three walls of a booth as rectangles; the side named by ``facing`` stays open."""
    t = WALL_THICKNESS
    sides = {
        Facing.SOUTH: (min_x, min_y, max_x, min_y + t),
        Facing.NORTH: (min_x, max_y - t, max_x, max_y),
        Facing.WEST: (min_x, min_y, min_x + t, max_y),
        Facing.EAST: (max_x - t, min_y, max_x, max_y),
    }
    return [rect for side, rect in sides.items() if side != facing]


def step(
    geometry: HallGeometry,
    halls: np.ndarray,
    positions: np.ndarray,
    moves: np.ndarray,
    run: np.ndarray,
    dt: float,
) -> np.ndarray:
    """New positions after one step of ``dt`` seconds. ``moves`` are directions with
    length <= 1 (longer ones are scaled down); avatars slide along walls and stop at bounds."""
    moves = np.asarray(moves, dtype=np.float64)
    length = np.hypot(moves[:, 0], moves[:, 1])
    moves = moves / np.maximum(length, 1.0)[:, None]
    speed = np.where(run, RUN_SPEED, WALK_SPEED)
    new = positions + moves * (speed * dt)[:, None]
    new = _collide_walls(geometry, halls, new)
    size = geometry.sizes[halls]
    return np.clip(new, AVATAR_RADIUS, size - AVATAR_RADIUS)


def _collide_walls(geometry: HallGeometry, halls: np.ndarray, pos: np.ndarray) -> np.ndarray:
    if len(geometry.walls) == 0 or len(pos) == 0:
        return pos
    return _collide_walls_kernel(geometry.walls, geometry.wall_halls, np.ascontiguousarray(halls, dtype=np.int16),
                                 np.ascontiguousarray(pos, dtype=np.float64))


@compiled()
def _collide_walls_kernel(walls: np.ndarray, wall_halls: np.ndarray, halls: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Push each avatar out of the walls of its hall it stands in (``_push_out``). Compiled:
    a loop per avatar over its hall's walls, not (avatars x walls) arrays (15 % of the
    server at 1,000)."""
    out = pos.copy()
    for i in range(len(out)):
        out[i, 0], out[i, 1] = _push_out(walls, wall_halls, halls[i], out[i, 0], out[i, 1])
    return out


@compiled(inline="always")
def _push_out(walls: np.ndarray, wall_halls: np.ndarray, hall: int, x: float, y: float) -> tuple[float, float]:
    """(x, y) pushed out of the walls of ``hall`` it stands in, each by the shallowest
    side; a second pass settles corners where two walls meet."""
    for _ in range(2):
        push_x = push_y = 0.0
        hit = False
        for j in range(len(walls)):
            if wall_halls[j] != hall or not (walls[j, 0] < x < walls[j, 2] and walls[j, 1] < y < walls[j, 3]):
                continue
            hit = True
            depth, side = x - walls[j, 0], 0  # penetration towards each side; the first shallowest wins
            if walls[j, 2] - x < depth:
                depth, side = walls[j, 2] - x, 1
            if y - walls[j, 1] < depth:
                depth, side = y - walls[j, 1], 2
            if walls[j, 3] - y < depth:
                depth, side = walls[j, 3] - y, 3
            if side == 0:
                push_x -= depth
            elif side == 1:
                push_x += depth
            elif side == 2:
                push_y -= depth
            else:
                push_y += depth
        if not hit:
            break
        x += push_x
        y += push_y
    return x, y


def portal_hops(
    geometry: HallGeometry, halls: np.ndarray, positions: np.ndarray, eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which avatars stand in a portal: (indices, target halls, target positions).
    ``eligible`` masks avatars whose portal cooldown is over."""
    empty = np.zeros(0, dtype=np.int64)
    if len(geometry.portals) == 0 or len(positions) == 0:
        return empty, empty.astype(np.int16), np.zeros((0, 2))
    p = geometry.portals
    d2 = (positions[:, 0:1] - p[None, :, 0]) ** 2 + (positions[:, 1:2] - p[None, :, 1]) ** 2
    hit = (d2 <= p[None, :, 2] ** 2) & (halls[:, None] == geometry.portal_halls[None, :]) & eligible[:, None]
    who, which = np.nonzero(hit)
    who, first = np.unique(who, return_index=True)  # one portal per avatar per step
    which = which[first]
    return who, p[which, 3].astype(np.int16), p[which, 4:6].copy()


def advance(geometry: HallGeometry, halls: np.ndarray, pos: np.ndarray, motion: np.ndarray, ready_at: np.ndarray,
            idx: np.ndarray, moves: np.ndarray, run: np.ndarray, dt: float, now: float,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The server's step of the avatars in slots ``idx`` (each once), in place: ``pos`` as
    ``step`` moves them, ``motion`` 2 (ran), 1 (walked) or 0 (stood: blocked), then the
    portals they stand in as ``portal_hops`` finds them (``ready_at <= now``), indices into
    ``idx``. One compiled pass: the same arithmetic as ``step`` and ``portal_hops`` in the
    same order, so it agrees with them (and the client's prediction) to the bit, without a
    dozen numpy calls and their temporaries over the walking slots each tick."""
    return _advance_kernel(geometry.sizes, geometry.walls, geometry.wall_halls, geometry.portals, geometry.portal_halls,
                           halls, pos, motion, ready_at, np.ascontiguousarray(idx, dtype=np.int64),
                           np.ascontiguousarray(moves, dtype=np.float64), np.ascontiguousarray(run, dtype=np.bool_),
                           float(dt), float(now))


@compiled()
def _advance_kernel(sizes: np.ndarray, walls: np.ndarray, wall_halls: np.ndarray, portals: np.ndarray,
                    portal_halls: np.ndarray, halls: np.ndarray, pos: np.ndarray, motion: np.ndarray,
                    ready_at: np.ndarray, idx: np.ndarray, moves: np.ndarray, run: np.ndarray, dt: float,
                    now: float) -> tuple:
    who = np.empty(len(idx), np.int64)
    to_halls = np.empty(len(idx), np.int16)
    targets = np.empty((len(idx), 2), np.float64)
    hops = 0
    for i in range(len(idx)):
        s = idx[i]
        hall = halls[s]
        x0, y0 = pos[s, 0], pos[s, 1]
        length = np.hypot(moves[i, 0], moves[i, 1])
        scale = 1.0 if length <= 1.0 else length  # np.maximum(length, 1.0), NaN kept
        speed = (RUN_SPEED if run[i] else WALK_SPEED) * dt
        x, y = _push_out(walls, wall_halls, hall, x0 + moves[i, 0] / scale * speed, y0 + moves[i, 1] / scale * speed)
        x = _clip(x, AVATAR_RADIUS, sizes[hall, 0] - AVATAR_RADIUS)
        y = _clip(y, AVATAR_RADIUS, sizes[hall, 1] - AVATAR_RADIUS)
        pos[s, 0], pos[s, 1] = x, y
        motion[s] = (2 if run[i] else 1) if (x != x0 or y != y0) else 0
        if ready_at[s] <= now:
            for j in range(len(portals)):  # the first portal it stands in
                if portal_halls[j] == hall and (x - portals[j, 0]) ** 2 + (y - portals[j, 1]) ** 2 <= portals[j, 2] ** 2:
                    who[hops] = i
                    to_halls[hops] = np.int16(portals[j, 3])
                    targets[hops, 0], targets[hops, 1] = portals[j, 4], portals[j, 5]
                    hops += 1
                    break
    return who[:hops], to_halls[:hops], targets[:hops]


@compiled(inline="always")
def _clip(v: float, lo: float, hi: float) -> float:
    """np.clip's: NaN stays NaN."""
    v = lo if v < lo else v
    return hi if v > hi else v


def warm() -> float:
    """Compile the wall collision (or load it from the disk cache) before the first step
    needs it; returns the seconds it took."""
    start = time.perf_counter()
    walls = np.array([[0.0, 0.0, 1.0, 1.0]])
    _collide_walls_kernel(walls, np.zeros(1, np.int16), np.zeros(1, np.int16), np.full((1, 2), 0.5))
    geometry = HallGeometry(np.ones((1, 2)), walls, np.zeros(1, np.int16), np.zeros((1, 6)), np.zeros(1, np.int16))
    advance(geometry, np.zeros(1, np.int16), np.full((1, 2), 0.5), np.zeros(1, np.int8), np.zeros(1),
            np.zeros(1, np.int64), np.zeros((1, 2)), np.zeros(1, bool), 0.05, 0.0)
    return time.perf_counter() - start
