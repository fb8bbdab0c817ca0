"""The avatar's figure: legs, a body in the visitor's colour, arms, a head with hair and
eyes (so you can tell which way someone faces). Built facing +y, feet at the origin.

``style`` (0..255, from Hello) picks the skin tone and hair colour, so a crowd in the same
colour still varies.
"""

from __future__ import annotations

from .mesh import Mesh, MeshBuilder, rgba, shade

SKIN = ((0.96, 0.80, 0.69), (0.87, 0.67, 0.52), (0.74, 0.53, 0.38), (0.55, 0.38, 0.26), (0.38, 0.26, 0.18))
HAIR = ((0.12, 0.09, 0.07), (0.35, 0.22, 0.12), (0.62, 0.45, 0.22), (0.55, 0.55, 0.55))
HEIGHT = 1.8  # metres, top of the head


def colour_floats(colour: int) -> tuple[float, float, float]:
    return ((colour >> 16) & 0xFF) / 255.0, ((colour >> 8) & 0xFF) / 255.0, (colour & 0xFF) / 255.0


def avatar_mesh(colour: int, style: int, plain_uv: tuple[float, float] = (0.0, 0.0), far: bool = False) -> Mesh:
    """``far``: the figure seen from afar, a tenth of the triangles (no shoes, hands or
    eyes, coarser curves); from where it is drawn the two look the same."""
    body = colour_floats(colour)
    skin = SKIN[style % len(SKIN)]
    hair = HAIR[(style // len(SKIN)) % len(HAIR)]
    trousers = (0.16, 0.17, 0.22)
    round_ = 6 if far else 14  # segments around the torso and head
    limb = 4 if far else 8
    m = MeshBuilder(plain_uv)
    for side in (-1, 1):
        m.cylinder((side * 0.11, 0.0, 0.0), 0.085, 0.82, rgba(trousers), limb, cap=not far)  # legs
        m.cylinder((side * 0.31, 0.0, 0.78), 0.065, 0.62, rgba(shade(body, 0.85)), limb, cap=not far)  # arms
        if not far:
            m.sphere((side * 0.11, 0.04, 0.04), 0.09, rgba((0.1, 0.1, 0.1)), 4, 8, squash=0.5)  # shoes
            m.sphere((side * 0.31, 0.0, 0.76), 0.07, rgba(skin), 4, 8)  # hands
            m.sphere((side * 0.065, 0.145, 1.63), 0.028, rgba((0.08, 0.08, 0.1)), 3, 6)  # eyes
    m.cylinder((0.0, 0.0, 0.78), 0.27, 0.64, rgba(body), round_, top_radius=0.24)  # torso
    m.sphere((0.0, 0.0, 1.42), 0.27, rgba(body), 2 if far else 6, round_, squash=0.35)  # shoulders
    if not far:
        m.cylinder((0.0, 0.0, 1.42), 0.07, 0.1, rgba(skin), 8)  # neck
    m.sphere((0.0, 0.0, 1.62), 0.17, rgba(skin), 4 if far else 8, round_)  # head
    m.sphere((0.0, -0.03, 1.70), 0.172, rgba(hair), 3 if far else 6, round_, squash=0.7)  # hair, back and top
    return m.build()
