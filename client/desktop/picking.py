"""Which avatar a click lands on: the ray from the camera through the mouse (Panda3D's
``Lens.extrude`` gives it) against an upright cylinder per figure, nearest hit first.

Pure geometry, so the rule is tested without a window: a figure is a cylinder of
``RADIUS`` about its feet' point, ``HEIGHT`` tall, which covers the body, head and the
arms of every style (a generous target: a person clicks a figure, not a pixel of it)."""

from __future__ import annotations

import math
from collections.abc import Iterable

RADIUS = 0.45
HEIGHT = 1.95

Vec = tuple[float, float, float]


def ray_hits_figure(origin: Vec, direction: Vec, foot: tuple[float, float, float],
                    radius: float = RADIUS, height: float = HEIGHT) -> float | None:
    """The ray parameter t (origin + t * direction) where the ray first enters the
    figure's cylinder, or None if it misses (or the figure is behind the camera)."""
    ox, oy, oz = origin[0] - foot[0], origin[1] - foot[1], origin[2] - foot[2]
    dx, dy, dz = direction
    hits: list[float] = []
    a = dx * dx + dy * dy
    if a > 1e-12:  # the side wall: |(o + t d)_xy| = radius
        b = 2 * (ox * dx + oy * dy)
        c = ox * ox + oy * oy - radius * radius
        disc = b * b - 4 * a * c
        if disc >= 0:
            root = math.sqrt(disc)
            hits += [t for t in ((-b - root) / (2 * a), (-b + root) / (2 * a)) if 0 <= oz + t * dz <= height]
    if abs(dz) > 1e-12:  # the top and bottom caps
        for z in (0.0, height):
            t = (z - oz) / dz
            if (ox + t * dx) ** 2 + (oy + t * dy) ** 2 <= radius * radius:
                hits.append(t)
    ahead = [t for t in hits if t > 0]
    return min(ahead) if ahead else None


def pick(origin: Vec, direction: Vec, figures: Iterable[tuple[int, tuple[float, float, float]]]) -> int | None:
    """The entity of the nearest figure the ray hits, or None."""
    best: tuple[float, int] | None = None
    for entity, foot in figures:
        t = ray_hits_figure(origin, direction, foot)
        if t is not None and (best is None or t < best[0]):
            best = (t, entity)
    return best[1] if best else None
