"""The compiled wall collision against the whole-array numpy rule it replaced, and the
server's compiled step (``advance``) against ``step`` and ``portal_hops``, the client's rule."""

from __future__ import annotations

import numpy as np

from world.loader import default_expo_path, load_expo
from world.motion import HallGeometry, _collide_walls, advance, portal_hops, step


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


def random_halls(seed: int, n: int) -> tuple[HallGeometry, np.random.Generator, np.ndarray]:
    """The packaged expo's geometry, a generator and ``n`` random hall indices."""
    geometry = HallGeometry.from_expo(load_expo(default_expo_path()))
    rng = np.random.default_rng(seed)
    return geometry, rng, rng.integers(0, len(geometry.sizes), n).astype(np.int16)


def test_the_compiled_collision_matches_the_numpy_rule_bit_for_bit():
    n = 20_000
    geometry, rng, halls = random_halls(3, n)
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


def test_the_servers_compiled_step_matches_step_and_portal_hops_bit_for_bit():
    n = 20_000
    geometry, rng, halls = random_halls(5, n)
    # by the walls, on the portals (in their halls), at the edges and anywhere
    wall = rng.integers(0, len(geometry.walls), n // 4)
    halls[: n // 4] = geometry.wall_halls[wall]
    portal = rng.integers(0, len(geometry.portals), n // 4)
    halls[n // 4 : n // 2] = geometry.portal_halls[portal]
    pos = np.concatenate([
        rng.uniform(geometry.walls[wall, 0:2] - 0.5, geometry.walls[wall, 2:4] + 0.5),
        geometry.portals[portal, 0:2] + rng.uniform(-1.5, 1.5, (n // 4, 2)) * geometry.portals[portal, 2:3],
        rng.uniform(-0.2, geometry.sizes[halls[n // 2:]] + 0.2),
    ])
    moves = rng.uniform(-1.5, 1.5, (n, 2))  # some longer than 1: scaled down
    moves[::7] = 0.0  # standing
    run = rng.random(n) < 0.3
    ready_at = rng.uniform(0.0, 2.0, n)
    now = 1.0
    idx = rng.permutation(n + 100)[:n]  # slots, in any order, in a bigger table
    table_halls = np.zeros(n + 100, np.int16)
    table_halls[idx] = halls
    table_pos = np.zeros((n + 100, 2))
    table_pos[idx] = pos
    motion = np.full(n + 100, 7, np.int8)
    table_ready = np.zeros(n + 100)
    table_ready[idx] = ready_at

    want = step(geometry, halls, pos, moves, run, 0.05)
    who, to_halls, targets = advance(geometry, table_halls, table_pos, motion, table_ready, idx, moves, run, 0.05, now)

    assert np.array_equal(table_pos[idx], want)
    assert np.array_equal(motion[idx], np.where(np.any(want != pos, axis=1), np.where(run, 2, 1), 0))
    assert (motion[np.setdiff1d(np.arange(n + 100), idx)] == 7).all()  # other slots untouched
    want_who, want_halls, want_targets = portal_hops(geometry, halls, want, ready_at <= now)
    assert len(want_who) > 100  # some hopped
    assert np.array_equal(who, want_who)
    assert np.array_equal(to_halls, want_halls) and to_halls.dtype == want_halls.dtype
    assert np.array_equal(targets, want_targets)
