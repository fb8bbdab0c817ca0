"""Where name tags go on screen, so in a crowd they never pile up.

Pure: each tag's place in the camera's frame in, what to draw out. The nearest tags win:
they are drawn fully opaque; past ``FADE_FROM`` of the reach a tag fades out towards the
reach; a tag that would cover one already placed is lifted just above it (at most
``MAX_ROWS`` times), and culled when it still covers one or when it would be too small to
read. A tag drawn in its own place at the last frame goes first while it is less than
``KEEP`` farther than another, so two people walking side by side do not swap rows every
frame. A tag right in front of the camera is scaled down to ``MAX_PIXELS`` high instead of
filling the view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FADE_FROM = 0.45  # of the reach: nearer than this a tag is opaque
MIN_ALPHA = 0.12  # fainter than this it is not drawn at all
MIN_PIXELS = 7.0  # a tag's card shorter than this on screen cannot be read
MAX_PIXELS = 34.0  # and taller than this it hides the person it names
MAX_ROWS = 2  # times a tag may be lifted above one it covers
GAP = 0.08  # of a tag's height between stacked tags
KEEP = 0.1  # a tag in its own place at the last frame counts as this much nearer


@dataclass(frozen=True, slots=True)
class TagSpot:
    """A tag's anchor in the camera's frame (metres: right, forward, up) and its card size."""

    entity: int
    right: float
    forward: float
    up: float
    width: float
    height: float
    own: bool = False


@dataclass(frozen=True, slots=True)
class TagPlace:
    entity: int
    alpha: float  # 0..1, times the card's own
    scale: float  # 1 = the tag's size in the world; less only right in front of the camera
    row: int  # times lifted above a nearer tag: 0 in its own place
    lift: float  # metres up (in the camera's up direction) from its anchor


def _alpha(distance: float, reach: float) -> float:
    start = reach * FADE_FROM
    if distance <= start:
        return 1.0
    return max(0.0, 1.0 - (distance - start) / (reach - start))


def arrange(spots: list[TagSpot], reach: float, pixels_per_unit: float,
            grounded: frozenset[int] | set[int] = frozenset()) -> list[TagPlace]:
    """The tags to draw, nearest first. ``pixels_per_unit``: screen pixels per metre at one
    metre in front of the camera (half the window height over tan of half the vertical field
    of view); ``grounded``: the tags drawn in their own place (row 0) at the last frame."""
    placed: list[tuple[float, float, float, float]] = []  # left, bottom, right, top in pixels
    out: list[TagPlace] = []

    def priority(s: TagSpot) -> tuple[bool, float]:
        distance = math.hypot(s.right, s.forward, s.up)
        return not s.own, distance * (1 - KEEP) if s.entity in grounded else distance

    for s in sorted(spots, key=priority):
        if s.forward <= 0.3:
            continue  # behind the camera or at the lens
        alpha = _alpha(math.hypot(s.right, s.forward, s.up), reach)
        k = pixels_per_unit / s.forward
        height_px = s.height * k
        if alpha < MIN_ALPHA or height_px < MIN_PIXELS:
            continue
        scale = min(1.0, MAX_PIXELS / height_px)
        w, h = s.width * k * scale, height_px * scale
        left, right, bottom = s.right * k - w / 2, s.right * k + w / 2, s.up * k - h / 2
        lifted = 0
        while True:
            covered = [p for p in placed if left < p[2] and p[0] < right and bottom < p[3] and p[1] < bottom + h]
            if not covered:
                placed.append((left, bottom, right, bottom + h))
                out.append(TagPlace(s.entity, alpha, scale, lifted, (bottom - (s.up * k - h / 2)) / k))
                break
            if lifted == MAX_ROWS:
                break  # no room above: not drawn
            lifted += 1
            bottom = max(p[3] for p in covered) + h * GAP
    return out
