"""Which booth the visitor is at: the one whose footprint, grown by a reach, holds them;
the closest when several do. Drives the HUD card and what E opens."""

from __future__ import annotations

import math
from dataclasses import dataclass

from world.model import Booth, Expo, Portal

from .. import pathfind
from ..pathfind import entrance
from .layout import booth_front

Point = tuple[float, float]

REACH = 2.0  # metres beyond the footprint that still count as "at the booth"


def distance_to(booth: Booth, x: float, y: float) -> float:
    """Metres from (x, y) to the booth's footprint (0 inside)."""
    fp = booth.footprint
    dx = max(fp.min_x - x, 0.0, x - fp.max_x)
    dy = max(fp.min_y - y, 0.0, y - fp.max_y)
    return math.hypot(dx, dy)


def booth_at(expo: Expo, hall_id: str, x: float, y: float, reach: float = REACH) -> Booth | None:
    best: tuple[float, Booth] | None = None
    for booth in expo.booths_in(hall_id):
        d = distance_to(booth, x, y)
        if d <= reach:
            c = booth.footprint.centre
            key = d + 1e-3 * math.hypot(c.x - x, c.y - y)  # inside two at once: the nearer centre
            if best is None or key < best[0]:
                best = (key, booth)
    return best[1] if best else None


@dataclass(frozen=True, slots=True)
class Route:
    """A walk around the booths to a point: ``here`` in this hall, then, when the point is in
    another, through ``portal`` and ``there`` from where the portal puts us."""

    here: tuple[Point, ...]
    portal: Portal | None = None
    there: tuple[Point, ...] = ()


def portal_to(expo: Expo, from_hall: str, to_hall: str) -> Portal:
    """The portal of ``from_hall`` into ``to_hall`` (one hop; the default expo's halls are linked directly)."""
    hall = expo.hall(from_hall)
    portal = next((p for p in hall.portals if p.target_hall == to_hall), None) if hall else None
    if portal is None:
        raise ValueError(f"no portal from {from_hall} to {to_hall}")
    return portal


def route(expo: Expo, from_hall: str, start: Point, to_hall: str, point: Point) -> Route:
    """The way from ``start`` in ``from_hall`` to ``point`` in ``to_hall``: each leg planned
    around the booths of its hall (a straight leg into a portal ran into the booths between)."""
    hall = expo.hall(from_hall)
    if hall is None:
        raise ValueError(f"no hall {from_hall}")
    if from_hall == to_hall:
        return Route(tuple(pathfind.route(expo, hall, start, point)))
    portal = portal_to(expo, from_hall, to_hall)
    there = expo.hall(to_hall)
    assert there is not None, "a portal leads to a hall of its expo"  # world.validate checks it
    door, arrival = (portal.position.x, portal.position.y), (portal.target.x, portal.target.y)
    return Route(tuple(pathfind.route(expo, hall, start, door)), portal,
                 tuple(pathfind.route(expo, there, arrival, point)))


def spots_near(booth: Booth, count: int, seed: int = 1) -> list[tuple[float, float]]:
    """Where a crowd stands at a booth: a few inside by the counter, the rest in a loose fan
    in front of the open side (all reachable, none inside a wall)."""
    import random

    rng = random.Random(seed)
    fx, fy = booth_front(booth)
    rx, ry = -fy, fx
    fp = booth.footprint
    span = fp.width if fy else fp.depth
    out: list[tuple[float, float]] = []
    for i in range(count):
        if i < 3:
            ex, ey = entrance(booth, -1.6 - rng.uniform(0, 0.8))
            lateral = (i - 1) * span * 0.22
        else:
            ex, ey = entrance(booth, rng.uniform(0.8, 1.9))
            lateral = rng.uniform(-0.55, 0.55) * span
        out.append((ex + rx * lateral, ey + ry * lateral))
    return out


def on_duty(booth: Booth, people: list[tuple[str, str | None, float, float]], reach: float = REACH) -> tuple[str, ...]:
    """The booth's staff at the booth now, by name: ``people`` are (name, booth they are
    staff of, x, y) of those in view. Staff who walked off into the hall are not on duty."""
    return tuple(sorted({name for name, staff_of, x, y in people
                         if staff_of == booth.id and distance_to(booth, x, y) <= reach}, key=str.casefold))
