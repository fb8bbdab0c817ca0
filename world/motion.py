"""How avatars move: speeds, hall bounds, booth walls, portals. Vectorised with numpy; the
walls' collision is a compiled loop.

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
    """Push each avatar out of the walls of its hall it stands in, each by the shallowest
    side; a second pass settles corners where two walls meet. Compiled: a loop per avatar
    over its hall's walls, not (avatars x walls) arrays (15 % of the server at 1,000)."""
    out = pos.copy()
    for i in range(len(out)):
        x, y, hall = out[i, 0], out[i, 1], halls[i]
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
        out[i, 0], out[i, 1] = x, y
    return out


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


def warm() -> float:
    """Compile the wall collision (or load it from the disk cache) before the first step
    needs it; returns the seconds it took."""
    start = time.perf_counter()
    walls = np.array([[0.0, 0.0, 1.0, 1.0]])
    _collide_walls_kernel(walls, np.zeros(1, np.int16), np.zeros(1, np.int16), np.full((1, 2), 0.5))
    return time.perf_counter() - start
