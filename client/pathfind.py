"""A walkable route across a hall, around the booths: A* on a half-metre grid, then the
corners only (a straight line between two points of the route crosses no booth).

Pure arithmetic on the expo model; the desktop client's "walk me there" hands the waypoints
to its Autopilot, and a bot walks them to a portal (``route``), each straight to the next."""

from __future__ import annotations

import heapq
import math

from world.model import FACING_NORMALS, Booth, Expo, Hall
from world.motion import booth_walls

CELL = 0.5  # metres
CLEARANCE = 0.6  # metres kept from a booth's footprint (the avatar's radius and a little more)


Rect = tuple[float, float, float, float]


def entrance(booth: Booth, outside: float) -> tuple[float, float]:
    """A point ``outside`` metres beyond the middle of the booth's open side (negative: inside)."""
    fx, fy = FACING_NORMALS[booth.facing]
    fp = booth.footprint
    half = fp.depth / 2 if fy else fp.width / 2
    return fp.centre.x + fx * (half + outside), fp.centre.y + fy * (half + outside)


def obstacles(expo: Expo, hall: Hall) -> list[Rect]:
    """Every booth wall of the hall (the server's collision rectangles), grown by the
    clearance: a booth's open side is its way in and out."""
    out = []
    for booth in expo.booths_in(hall.id):
        fp = booth.footprint
        for x0, y0, x1, y1 in booth_walls(fp.min_x, fp.min_y, fp.max_x, fp.max_y, booth.facing):
            out.append((x0 - CLEARANCE, y0 - CLEARANCE, x1 + CLEARANCE, y1 + CLEARANCE))
    return out


def _blocked(walls: list[Rect], hall: Hall, x: float, y: float) -> bool:
    if not (CLEARANCE <= x <= hall.width - CLEARANCE and CLEARANCE <= y <= hall.depth - CLEARANCE):
        return True
    return any(r[0] <= x <= r[2] and r[1] <= y <= r[3] for r in walls)


def _clear_line(walls: list[Rect], hall: Hall, a: tuple[float, float], b: tuple[float, float]) -> bool:
    steps = max(2, int(math.dist(a, b) / (CELL / 2)))
    return all(not _blocked(walls, hall, a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps)
               for i in range(steps + 1))


def plan(expo: Expo, hall: Hall, start: tuple[float, float], goal: tuple[float, float]) -> list[tuple[float, float]]:
    """Waypoints from ``start`` to ``goal`` (the goal last), clear of every booth wall.
    Raises ValueError when no route exists."""
    return _search(obstacles(expo, hall), hall, start, goal)


def _search(walls: list[Rect], hall: Hall, start: tuple[float, float], goal: tuple[float, float]) -> list[tuple[float, float]]:
    cols, rows = int(hall.width / CELL), int(hall.depth / CELL)

    def cell(p: tuple[float, float]) -> tuple[int, int]:
        return min(max(int(p[0] / CELL), 0), cols - 1), min(max(int(p[1] / CELL), 0), rows - 1)

    def centre(c: tuple[int, int]) -> tuple[float, float]:
        return (c[0] + 0.5) * CELL, (c[1] + 0.5) * CELL

    s, g = cell(start), cell(goal)
    frontier: list[tuple[float, tuple[int, int]]] = [(0.0, s)]
    came: dict[tuple[int, int], tuple[int, int] | None] = {s: None}
    cost = {s: 0.0}
    while frontier:
        _, here = heapq.heappop(frontier)
        if here == g:
            break
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)):
            nxt = (here[0] + dx, here[1] + dy)
            if not (0 <= nxt[0] < cols and 0 <= nxt[1] < rows):
                continue
            if nxt != g and _blocked(walls, hall, *centre(nxt)):
                continue
            new = cost[here] + math.hypot(dx, dy)
            if new < cost.get(nxt, math.inf):
                cost[nxt], came[nxt] = new, here
                heapq.heappush(frontier, (new + math.dist(nxt, g), nxt))
    if g not in came:
        raise ValueError(f"no way from {start} to {goal} in {hall.id}")
    path: list[tuple[float, float]] = []
    node: tuple[int, int] | None = g
    while node is not None:
        path.append(centre(node))
        node = came[node]
    path.reverse()
    path[-1] = goal
    corners = [start]
    for i in range(1, len(path)):  # keep a point only when the line from the last corner is not clear
        if not _clear_line(walls, hall, corners[-1], path[i]):
            corners.append(path[i - 1])
    corners.append(goal)
    return corners[1:]


def route(expo: Expo, hall: Hall, start: tuple[float, float], goal: tuple[float, float]) -> list[tuple[float, float]]:
    """``[goal]`` when the straight line is clear (no search: a walk's usual case), else
    ``plan``'s waypoints; ``[goal]`` too when no route exists (the walker's sidesteps may)."""
    walls = obstacles(expo, hall)
    if _clear_line(walls, hall, start, goal):
        return [goal]
    try:
        return _search(walls, hall, start, goal)
    except ValueError:
        return [goal]
