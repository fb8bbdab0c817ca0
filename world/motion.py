"""How avatars move: speeds, hall bounds, booth walls, portals. Vectorised with numpy.

The server steps every avatar with these functions and the client predicts its own avatar
with the very same code (arrays of one), so prediction and authority agree to the bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    def from_expo(cls, expo: Expo) -> "HallGeometry":
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
    w = geometry.walls
    for _ in range(2):  # a second pass settles corners where two walls meet
        x = pos[:, 0:1]
        y = pos[:, 1:2]
        inside = (
            (halls[:, None] == geometry.wall_halls[None, :])
            & (x > w[None, :, 0]) & (x < w[None, :, 2])
            & (y > w[None, :, 1]) & (y < w[None, :, 3])
        )
        if not inside.any():
            break
        # penetration depth towards each side; leave by the shallowest
        depths = np.stack(
            [x - w[None, :, 0], w[None, :, 2] - x, y - w[None, :, 1], w[None, :, 3] - y], axis=-1
        )
        side = np.argmin(depths, axis=-1)
        depth = np.take_along_axis(depths, side[..., None], axis=-1)[..., 0]
        push_x = np.where(side == 0, -depth, np.where(side == 1, depth, 0.0))
        push_y = np.where(side == 2, -depth, np.where(side == 3, depth, 0.0))
        pos = pos + np.stack(
            [np.where(inside, push_x, 0.0).sum(axis=1), np.where(inside, push_y, 0.0).sum(axis=1)], axis=-1
        )
    return pos


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
