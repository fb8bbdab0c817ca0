"""Layout rules that span tables and files: where halls, portals and booths may be.

These checks take the geometry the loader could read even when other parts of a hall or
booth are broken, so one bad colour does not hide an overlap. Pure: no files, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .fields import FileReport, suggest
from .model import Rect, Vec2

SPAWN_CLEARANCE = 2.0  # metres of open floor around spawn and portal arrival points
KEYNOTE_CLEARANCE = 6.0  # metres of open floor around a keynote stage spot


@dataclass(frozen=True, slots=True)
class PortalLayout:
    key: str  # "halls[0].portals[1]"
    id: str | None
    position: Vec2 | None
    radius: float | None
    target_hall: str | None
    target: Vec2 | None


@dataclass(frozen=True, slots=True)
class HallLayout:
    key: str  # "halls[0]"
    id: str | None
    size: tuple[float, float] | None
    spawn: Vec2 | None
    keynote: Vec2 | None
    portals: tuple[PortalLayout, ...]

    def contains(self, point: Vec2) -> bool:
        return self.size is None or (0 <= point.x <= self.size[0] and 0 <= point.y <= self.size[1])

    def keep_clear(self, arrivals: list[Vec2]) -> list[tuple[str, Vec2, float]]:
        """Spots no booth may cover: (what, centre, radius)."""
        spots: list[tuple[str, Vec2 | None, float | None]] = [
            ("the spawn point", self.spawn, SPAWN_CLEARANCE),
            ("the keynote stage", self.keynote, KEYNOTE_CLEARANCE)]
        spots += [(f"portal {p.id!r}", p.position, p.radius) for p in self.portals]
        spots += [("a portal's arrival point", a, SPAWN_CLEARANCE) for a in arrivals]
        return [(what, at, r) for what, at, r in spots if at is not None and r is not None]


@dataclass(frozen=True, slots=True)
class BoothLayout:
    report: FileReport
    id: str | None
    hall: str | None
    rect: Rect | None


def _distance_to_rect(point: Vec2, rect: Rect) -> float:
    dx = max(rect.min_x - point.x, 0.0, point.x - rect.max_x)
    dy = max(rect.min_y - point.y, 0.0, point.y - rect.max_y)
    return math.hypot(dx, dy)


def _metres(v: Vec2) -> str:
    return f"({v.x:g}, {v.y:g})"


def check_halls(report: FileReport, halls: list[HallLayout]) -> dict[str, list[Vec2]]:
    """Checks halls and portals; returns the portal arrival points in each hall."""
    by_id: dict[str, HallLayout] = {}
    for hall in halls:
        if hall.id is None:
            continue
        if hall.id in by_id:
            report(f"{hall.key}.id", f"hall id {hall.id!r} is already used by {by_id[hall.id].key}")
        else:
            by_id[hall.id] = hall
    arrivals: dict[str, list[Vec2]] = {}
    for hall in halls:
        for what, at in (("spawn", hall.spawn), ("keynote", hall.keynote)):
            if at is not None and not hall.contains(at):
                report(f"{hall.key}.{what}", f"{_metres(at)} is outside the hall")
        seen: set[str] = set()
        for portal in hall.portals:
            if portal.id is not None:
                if portal.id in seen:
                    report(f"{portal.key}.id", f"portal id {portal.id!r} is already used in this hall")
                seen.add(portal.id)
            if portal.position is not None and not hall.contains(portal.position):
                report(f"{portal.key}.position", f"{_metres(portal.position)} is outside the hall")
            if portal.target_hall is None:
                continue
            target_hall = by_id.get(portal.target_hall)
            if target_hall is None:
                report(f"{portal.key}.target_hall",
                       f"no hall has id {portal.target_hall!r}" + suggest(portal.target_hall, by_id))
                continue
            if portal.target is None:
                continue
            arrivals.setdefault(portal.target_hall, []).append(portal.target)
            if not target_hall.contains(portal.target):
                report(f"{portal.key}.target", f"{_metres(portal.target)} is outside hall {portal.target_hall!r}")
            for other in target_hall.portals:
                if (other.position is not None and other.radius is not None
                        and math.dist((other.position.x, other.position.y),
                                      (portal.target.x, portal.target.y)) < other.radius):
                    report(f"{portal.key}.target",
                           f"lands inside portal {other.id!r} of hall {portal.target_hall!r}, "
                           "which would send the visitor straight on")
    return arrivals


def check_booths(halls: list[HallLayout] | None, arrivals: dict[str, list[Vec2]],
                 booths: list[BoothLayout]) -> None:
    """``halls`` is None when expo.toml could not be read: then no booth is blamed for it."""
    by_id = {hall.id: hall for hall in halls or () if hall.id is not None}
    all_halls_known = halls is not None and all(hall.id is not None for hall in halls)
    first_use: dict[str, BoothLayout] = {}
    placed: list[BoothLayout] = []
    for booth in booths:
        if booth.id is not None:
            if booth.id in first_use:
                booth.report("id", f"booth id {booth.id!r} is already used by {first_use[booth.id].report.file}")
            else:
                first_use[booth.id] = booth
        if booth.hall is None:
            continue
        hall = by_id.get(booth.hall)
        if hall is None:
            if all_halls_known:
                booth.report("hall", f"no hall has id {booth.hall!r}" + suggest(booth.hall, by_id))
            continue
        rect = booth.rect
        if rect is None:
            continue
        if hall.size is not None and not (rect.min_x >= 0 and rect.min_y >= 0
                                          and rect.max_x <= hall.size[0] and rect.max_y <= hall.size[1]):
            booth.report("position", f"the booth spans x {rect.min_x:g}..{rect.max_x:g}, "
                         f"y {rect.min_y:g}..{rect.max_y:g}: outside hall {hall.id!r} "
                         f"(0..{hall.size[0]:g} x 0..{hall.size[1]:g})")
        for what, at, radius in hall.keep_clear(arrivals.get(booth.hall, [])):
            if _distance_to_rect(at, rect) < radius:
                booth.report("position", f"the booth covers {what} at {_metres(at)} "
                             f"(keep {radius:g} m clear)")
        for other in placed:
            if other.hall == booth.hall and other.rect is not None and rect.overlaps(other.rect):
                booth.report("position", f"the booth overlaps booth {other.id!r} ({other.report.file})")
        placed.append(booth)

