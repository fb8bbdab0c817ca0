"""The compiled wall collision against the whole-array numpy rule it replaced."""

from __future__ import annotations

import numpy as np

from world.loader import default_expo_path, load_expo
from world.motion import HallGeometry, _collide_walls, step


def numpy_collide(geometry: HallGeometry, halls: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The reference: (avatars x walls) arrays, leave each wall by its shallowest side, twice."""
    w = geometry.walls
    for _ in range(2):
        x, y = pos[:, 0:1], pos[:, 1:2]
        inside = ((halls[:, None] == geometry.wall_halls[None, :]) & (x > w[None, :, 0]) & (x < w[None, :, 2])
                  & (y > w[None, :, 1]) & (y < w[None, :, 3]))
        if not inside.any():
            break
        depths = np.stack([x - w[None, :, 0], w[None, :, 2] - x, y - w[None, :, 1], w[None, :, 3] - y], axis=-1)
        side = np.argmin(depths, axis=-1)
        depth = np.take_along_axis(depths, side[..., None], axis=-1)[..., 0]
        push_x = np.where(side == 0, -depth, np.where(side == 1, depth, 0.0))
        push_y = np.where(side == 2, -depth, np.where(side == 3, depth, 0.0))
        pos = pos + np.stack([np.where(inside, push_x, 0.0).sum(axis=1), np.where(inside, push_y, 0.0).sum(axis=1)], -1)
    return pos


def test_the_compiled_collision_matches_the_numpy_rule_bit_for_bit():
    geometry = HallGeometry.from_expo(load_expo(default_expo_path()))
    rng = np.random.default_rng(3)
    n = 20_000
    halls = rng.integers(0, len(geometry.sizes), n).astype(np.int16)
    # around the walls (in their halls), where the pushes happen, and anywhere in the halls
    wall = rng.integers(0, len(geometry.walls), n // 2)
    near = geometry.walls[wall]
    halls[: n // 2] = geometry.wall_halls[wall]
    around = rng.uniform(near[:, 0:2] - 0.5, near[:, 2:4] + 0.5)
    anywhere = rng.uniform(0, geometry.sizes[halls[n // 2:]])
    pos = np.concatenate([around, anywhere])
    want = numpy_collide(geometry, halls, pos)
    got = _collide_walls(geometry, halls, pos)
    assert np.array_equal(got, want)
    assert not np.array_equal(got, pos)  # some were pushed


def test_an_avatar_walking_into_a_wall_slides_along_it():
    geometry = HallGeometry.from_expo(load_expo(default_expo_path()))
    tall = next(i for i, w in enumerate(geometry.walls) if w[3] - w[1] > 2 * (w[2] - w[0]))  # a west or east wall
    wall = geometry.walls[tall]
    start = np.array([[wall[0] - 0.01, (wall[1] + wall[3]) / 2]])  # just west of it, walking north-east into it
    new = step(geometry, geometry.wall_halls[tall : tall + 1], start, np.array([[0.6, 0.8]]), np.array([False]), 0.05)
    assert abs(new[0, 0] - wall[0]) < 1e-12  # stopped at the wall's face
    assert abs(new[0, 1] - (start[0, 1] + 0.8 * 2.5 * 0.05)) < 1e-12  # and slid north at full pace
