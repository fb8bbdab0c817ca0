"""The click-an-avatar rule: a ray against an upright cylinder per figure, nearest first."""

from __future__ import annotations

import pytest

from client.desktop.picking import pick, ray_hits_figure

EYE = (0.0, -5.0, 1.6)  # a camera 5 m south of the origin, at eye height


def toward(x: float, y: float, z: float) -> tuple[float, float, float]:
    return (x - EYE[0], y - EYE[1], z - EYE[2])


def test_a_ray_through_the_chest_hits_and_says_where():
    t = ray_hits_figure(EYE, toward(0.0, 0.0, 1.2), (0.0, 0.0, 0.0))
    assert t == pytest.approx((5.0 - 0.45) / 5.0, rel=1e-3)  # the cylinder's near wall, 0.45 m before the axis


def test_beside_above_and_behind_miss():
    foot = (0.0, 0.0, 0.0)
    assert ray_hits_figure(EYE, toward(0.6, 0.0, 1.2), foot) is None  # a shoulder's width beside
    assert ray_hits_figure(EYE, toward(0.0, 0.0, 2.6), foot) is None  # over the head
    assert ray_hits_figure(EYE, (0.0, -1.0, 0.0), foot) is None  # the camera looks away
    assert ray_hits_figure((0.0, 0.0, 5.0), (0.0, 0.0, -1.0), foot) == pytest.approx(5.0 - 1.95)  # from above: the top


def test_the_nearest_figure_wins_and_the_floor_is_nobody():
    figures = [(7, (0.0, 3.0, 0.0)), (4, (0.0, 0.0, 0.0)), (9, (3.0, 0.0, 0.0))]
    assert pick(EYE, toward(0.0, 3.0, 1.0), figures) == 4  # the one in front hides the one behind
    assert pick(EYE, toward(3.0, 0.0, 1.0), figures) == 9
    assert pick(EYE, toward(1.5, 0.0, 0.0), figures) is None
    assert pick(EYE, toward(0.0, 0.0, 1.0), []) is None
