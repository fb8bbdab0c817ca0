"""Keys to movement, and the camera that follows the visitor: pure arithmetic on floats.

The server takes a direction in hall axes and a heading per input; the visitor thinks in
"forward" and "turn". W/S (or up/down) walk along the heading, A/D (or left/right) turn it,
Q/E-less strafing is left out on purpose: E opens a booth's catalogue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TURN_RATE = 2.2  # radians per second while a turn key is held


@dataclass(frozen=True, slots=True)
class Keys:
    forward: bool = False
    back: bool = False
    left: bool = False
    right: bool = False
    run: bool = False


@dataclass(frozen=True, slots=True)
class Controls:
    """What goes to the transport: a direction in hall axes (length <= 1), a heading, run."""

    move_x: float
    move_y: float
    yaw: float
    run: bool


def wrap_angle(a: float) -> float:
    """Into [-pi, pi): the server takes yaws in [-7, 7], so the heading never winds up."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def steer(keys: Keys, yaw: float, dt: float, turn_rate: float = TURN_RATE) -> Controls:
    """The controls after ``dt`` seconds of holding ``keys`` from heading ``yaw``."""
    turn = (1 if keys.left else 0) - (1 if keys.right else 0)
    yaw = wrap_angle(yaw + turn * turn_rate * dt)
    along: float = (1 if keys.forward else 0) - (1 if keys.back else 0)
    if along < 0:
        along = -0.6  # walking backwards is slower, as people do
    return Controls(along * math.cos(yaw), along * math.sin(yaw), yaw, keys.run and along > 0)


def heading_to(x: float, y: float, tx: float, ty: float) -> float:
    return math.atan2(ty - y, tx - x)


@dataclass(frozen=True, slots=True)
class CameraPose:
    eye: tuple[float, float, float]
    target: tuple[float, float, float]


class FollowCamera:
    """Behind and above the avatar, easing towards its spot each frame (exponential
    smoothing, so it is frame-rate independent) and never outside the hall's walls."""

    def __init__(self, distance: float = 7.5, height: float = 4.2, look_ahead: float = 2.0, stiffness: float = 5.0,
                 bounds: tuple[float, float] | None = None) -> None:
        self.distance, self.height, self.look_ahead, self.stiffness = distance, height, look_ahead, stiffness
        self.bounds = bounds
        self.yaw: float | None = None
        self.focus: tuple[float, float] | None = None

    def snap(self) -> None:
        """Jump straight to the avatar at the next update (a portal, a fresh join)."""
        self.yaw = self.focus = None

    def update(self, x: float, y: float, yaw: float, dt: float) -> CameraPose:
        k = 1.0 - math.exp(-self.stiffness * dt)
        if self.yaw is None or self.focus is None:
            self.yaw, self.focus = yaw, (x, y)
        else:
            self.yaw = wrap_angle(self.yaw + wrap_angle(yaw - self.yaw) * k)
            fx, fy = self.focus
            self.focus = (fx + (x - fx) * min(1.0, k * 2.0), fy + (y - fy) * min(1.0, k * 2.0))
        fx, fy = self.focus
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        ex, ey = fx - c * self.distance, fy - s * self.distance
        if self.bounds is not None:
            w, d = self.bounds
            ex, ey = min(max(ex, 0.6), w - 0.6), min(max(ey, 0.6), d - 0.6)
        return CameraPose((ex, ey, self.height), (fx + c * self.look_ahead, fy + s * self.look_ahead, 1.2))


class Autopilot:
    """Walks the avatar through waypoints (e.g. a portal, then a booth's entrance) for
    previews and tests: heads straight for the next point and, when a wall holds it up,
    steps sideways for a moment (as the bots do). ``update`` returns the controls."""

    ARRIVED = 0.5

    def __init__(self, waypoints: list[tuple[float, float]], run: bool = True) -> None:
        self.waypoints = list(waypoints)
        self.run = run
        self._best = math.inf
        self._stuck_for = 0.0
        self._sidestep = 0.0
        self._side = 1.0

    @property
    def done(self) -> bool:
        return not self.waypoints

    def skip(self) -> None:
        """Drop the current waypoint (a portal that already moved us)."""
        if self.waypoints:
            self.waypoints.pop(0)
            self._best, self._stuck_for = math.inf, 0.0

    def update(self, x: float, y: float, yaw: float, dt: float) -> Controls:
        if not self.waypoints:
            return Controls(0.0, 0.0, yaw, False)
        tx, ty = self.waypoints[0]
        dist = math.hypot(tx - x, ty - y)
        if dist < self.ARRIVED:
            self.skip()
            return self.update(x, y, yaw, dt)
        heading = math.atan2(ty - y, tx - x)
        if dist < self._best - 0.2:
            self._best, self._stuck_for = dist, 0.0
        else:
            self._stuck_for += dt
        if self._stuck_for > 0.8 and self._sidestep <= 0:
            self._sidestep, self._side, self._stuck_for = 0.7, -self._side, 0.0
            self._best = math.inf
        if self._sidestep > 0:
            self._sidestep -= dt
            heading += self._side * math.pi / 2
        slow = min(1.0, dist / 1.5)  # ease in, so the last step does not overshoot
        return Controls(math.cos(heading) * slow, math.sin(heading) * slow, wrap_angle(heading), self.run and dist > 3)
