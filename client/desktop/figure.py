"""The avatar's figure: legs, a body in the visitor's colour, arms, a head with hair and
eyes (so you can tell which way someone faces). Built facing +y, feet at the origin.

``style`` (0..255, from Hello) picks the skin tone and hair colour, so a crowd in the same
colour still varies.

Near the camera a figure walks: ``figure_parts`` is the same figure as a trunk and four
limbs, each limb built hanging from its pivot (hip or shoulder) at the origin, so the scene
swings it with a single pitch (``swing``); far away the one-piece figure only bobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .mesh import Mesh, MeshBuilder, rgba, shade

SKIN = ((0.96, 0.80, 0.69), (0.87, 0.67, 0.52), (0.74, 0.53, 0.38), (0.55, 0.38, 0.26), (0.38, 0.26, 0.18))
HAIR = ((0.12, 0.09, 0.07), (0.35, 0.22, 0.12), (0.62, 0.45, 0.22), (0.55, 0.55, 0.55))
HEIGHT = 1.8  # metres, top of the head
HIP, SHOULDER = 0.82, 1.40  # pivot heights of the legs and the arms
HIP_X, SHOULDER_X = 0.11, 0.31  # and their distance from the middle
LEG_SWING, ARM_SWING = 26.0, 20.0  # degrees either way at full stride
TROUSERS = (0.16, 0.17, 0.22)


def colour_floats(colour: int) -> tuple[float, float, float]:
    return ((colour >> 16) & 0xFF) / 255.0, ((colour >> 8) & 0xFF) / 255.0, (colour & 0xFF) / 255.0


RGB = tuple[float, float, float]


def palette(colour: int, style: int) -> tuple[RGB, RGB, RGB]:
    """The body's colour, the skin tone and the hair colour of a look."""
    return colour_floats(colour), SKIN[style % len(SKIN)], HAIR[(style // len(SKIN)) % len(HAIR)]


def avatar_mesh(colour: int, style: int, plain_uv: tuple[float, float] = (0.0, 0.0), far: bool = False) -> Mesh:
    """``far``: the figure seen from afar, a tenth of the triangles (no shoes, hands or
    eyes, coarser curves); from where it is drawn the two look the same."""
    body, skin, hair = palette(colour, style)
    m = MeshBuilder(plain_uv)
    for side in (-1, 1):
        if far:
            m.cylinder((side * HIP_X, 0.0, 0.0), 0.085, HIP, rgba(TROUSERS), 4, cap=False)  # legs
            m.cylinder((side * SHOULDER_X, 0.0, SHOULDER - 0.62), 0.065, 0.62, rgba(shade(body, 0.85)), 4, cap=False)
        else:
            _leg(m, (side * HIP_X, 0.0, HIP))
            _arm(m, (side * SHOULDER_X, 0.0, SHOULDER), body, skin)
    _trunk(m, body, skin, hair, far)
    return m.build()


def distant_mesh(colour: int, style: int, plain_uv: tuple[float, float] = (0.0, 0.0)) -> Mesh:
    """The figure past twice the far distance, half the far one's vertices: both legs one
    trouser column (the gap between them is under a pixel there), three-sided arms, a
    five-sided torso, head and hair. On a software renderer a crowd's vertices are what is
    left of its cost once it is one draw."""
    body, skin, hair = palette(colour, style)
    m = MeshBuilder(plain_uv)
    m.cylinder((0.0, 0.0, 0.0), HIP_X + 0.09, HIP, rgba(TROUSERS), 4, cap=False)
    for side in (-1, 1):
        m.cylinder((side * SHOULDER_X, 0.0, SHOULDER - 0.62), 0.065, 0.62, rgba(shade(body, 0.85)), 3, cap=False)
    m.cylinder((0.0, 0.0, 0.78), 0.27, 0.64, rgba(body), 5, top_radius=0.24, cap=False)
    m.sphere((0.0, 0.0, 1.62), 0.17, rgba(skin), 2, 5)
    m.sphere((0.0, -0.03, 1.70), 0.172, rgba(hair), 2, 5, squash=0.7)
    return m.build()


def _leg(m: MeshBuilder, pivot: tuple[float, float, float]) -> None:
    x, y, z = pivot
    m.cylinder((x, y, z - HIP), 0.085, HIP, rgba(TROUSERS), 8)
    m.sphere((x, y + 0.04, z - HIP + 0.04), 0.09, rgba((0.1, 0.1, 0.1)), 4, 8, squash=0.5)  # shoe


def _arm(m: MeshBuilder, pivot: tuple[float, float, float], body, skin) -> None:
    x, y, z = pivot
    m.cylinder((x, y, z - 0.62), 0.065, 0.62, rgba(shade(body, 0.85)), 8)
    m.sphere((x, y, z - 0.64), 0.07, rgba(skin), 4, 8)  # hand


def _trunk(m: MeshBuilder, body, skin, hair, far: bool) -> None:
    round_ = 6 if far else 14  # segments around the torso and head
    if not far:
        for side in (-1, 1):
            m.sphere((side * 0.065, 0.145, 1.63), 0.028, rgba((0.08, 0.08, 0.1)), 3, 6)  # eyes
    m.cylinder((0.0, 0.0, 0.78), 0.27, 0.64, rgba(body), round_, top_radius=0.24)  # torso
    m.sphere((0.0, 0.0, 1.42), 0.27, rgba(body), 2 if far else 6, round_, squash=0.35)  # shoulders
    if not far:
        m.cylinder((0.0, 0.0, 1.42), 0.07, 0.1, rgba(skin), 8)  # neck
    m.sphere((0.0, 0.0, 1.62), 0.17, rgba(skin), 4 if far else 8, round_)  # head
    m.sphere((0.0, -0.03, 1.70), 0.172, rgba(hair), 3 if far else 6, round_, squash=0.7)  # hair, back and top


@dataclass(frozen=True, slots=True)
class FigureParts:
    """The near figure in pieces: the trunk in place, a leg and an arm hanging from the
    origin (mirror images are the same: the limbs are round)."""

    trunk: Mesh
    leg: Mesh
    arm: Mesh


def figure_parts(colour: int, style: int, plain_uv: tuple[float, float] = (0.0, 0.0)) -> FigureParts:
    body, skin, hair = palette(colour, style)
    trunk, leg, arm = MeshBuilder(plain_uv), MeshBuilder(plain_uv), MeshBuilder(plain_uv)
    _trunk(trunk, body, skin, hair, far=False)
    _leg(leg, (0.0, 0.0, 0.0))
    _arm(arm, (0.0, 0.0, 0.0), body, skin)
    return FigureParts(trunk.build(), leg.build(), arm.build())


def limb_pivots() -> tuple[tuple[float, float, float], ...]:
    """Left leg, right leg, left arm, right arm: where each limb of ``figure_parts`` hangs."""
    return ((-HIP_X, 0.0, HIP), (HIP_X, 0.0, HIP), (-SHOULDER_X, 0.0, SHOULDER), (SHOULDER_X, 0.0, SHOULDER))


def swing(phase: float) -> tuple[float, float, float, float]:
    """The limbs' pitch in degrees at a point of the stride (``phase`` radians, a full cycle
    is two steps): each leg swings against the arm on its side, and the legs against each
    other, as people walk."""
    leg = LEG_SWING * math.sin(phase)
    arm = ARM_SWING * math.sin(phase)
    return leg, -leg, -arm, arm
