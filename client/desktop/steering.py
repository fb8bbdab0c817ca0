"""Keys to movement, and the camera that follows the visitor: pure arithmetic on floats.

The server takes a direction in hall axes and a heading per input; the visitor thinks in
"forward" and "turn". W/S (or up/down) walk along the heading, A/D (or left/right) turn it
(tank controls); while the right mouse button is held the mouse turns the heading and A/D
step sideways (mouse look, as in most 3D worlds). Q/E are not used for strafing: E opens a
booth's catalogue. Turning is by seconds held, never by frames drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .nearby import Route

TURN_RATE = 2.2  # radians per second while a turn key is held
MOUSE_TURN = 0.006  # radians per pixel of mouse travel in mouse look
MAX_FRAME_DT = 0.5  # a longer frame is a stall (a window drag, a hall build), not a long key hold


@dataclass(frozen=True, slots=True)
class Keys:
    forward: bool = False
    back: bool = False
    left: bool = False
    right: bool = False
    run: bool = False
    strafe: bool = False  # mouse look: A/D step sideways instead of turning


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


def frame_dt(now: float, last: float) -> float:
    """Seconds the last frame took, for steering: at 5 fps a key held for a second turns
    as far as at 60 fps; only a stall longer than ``MAX_FRAME_DT`` is cut short."""
    return min(max(now - last, 0.0), MAX_FRAME_DT)


def steer(keys: Keys, yaw: float, dt: float, turn_rate: float = TURN_RATE, turn_by: float = 0.0) -> Controls:
    """The controls after ``dt`` seconds of holding ``keys`` from heading ``yaw``;
    ``turn_by``: radians the mouse turned this frame (mouse look)."""
    side = (1 if keys.left else 0) - (1 if keys.right else 0)
    yaw = wrap_angle(yaw + turn_by + (0.0 if keys.strafe else side * turn_rate * dt))
    along: float = (1 if keys.forward else 0) - (1 if keys.back else 0)
    if along < 0:
        along = -0.6  # walking backwards is slower, as people do
    lateral = 0.8 * side if keys.strafe else 0.0
    mx = along * math.cos(yaw) - lateral * math.sin(yaw)
    my = along * math.sin(yaw) + lateral * math.cos(yaw)
    length = math.hypot(mx, my)
    if length > 1.0:
        mx, my = mx / length, my / length
    return Controls(mx, my, yaw, keys.run and along > 0)


Rect = tuple[float, float, float, float]  # min_x, min_y, max_x, max_y


def _segment_span(x0: float, y0: float, dx: float, dy: float, r: Rect) -> tuple[float, float] | None:
    """Where the segment (x0, y0) + t (dx, dy), t in [0, 1], is inside ``r``: (t_in, t_out)."""
    lo, hi = 0.0, 1.0
    for p, d, a, b in ((x0, dx, r[0], r[2]), (y0, dy, r[1], r[3])):
        if abs(d) < 1e-12:
            if not a <= p <= b:
                return None
            continue
        t1, t2 = (a - p) / d, (b - p) / d
        lo, hi = max(lo, min(t1, t2)), min(hi, max(t1, t2))
        if lo > hi:
            return None
    return lo, hi


def camera_reach(fx: float, fy: float, ex: float, ey: float, booths: list[Rect], margin: float = 0.35) -> float:
    """How far along focus -> eye (0..1) the camera may stand: short of any booth it would
    enter, and inside the booth the visitor stands in (its walls and header hold the
    camera in, so a booth's fascia never fills the screen)."""
    dx, dy = ex - fx, ey - fy
    reach = 1.0
    length = math.hypot(dx, dy) or 1.0
    pad = margin / length
    for r in booths:
        if r[0] <= fx <= r[2] and r[1] <= fy <= r[3]:  # we are in this booth: stay in it
            inner = (r[0] + margin, r[1] + margin, r[2] - margin, r[3] - margin)
            span = _segment_span(fx, fy, dx, dy, inner) if inner[0] < inner[2] and inner[1] < inner[3] else None
            reach = min(reach, span[1] if span else 0.0)
            continue
        grown = (r[0] - margin, r[1] - margin, r[2] + margin, r[3] + margin)
        span = _segment_span(fx, fy, dx, dy, grown)
        if span is not None:
            reach = min(reach, max(0.0, span[0] - pad))
    return reach


def heading_to(x: float, y: float, tx: float, ty: float) -> float:
    return math.atan2(ty - y, tx - x)


@dataclass(frozen=True, slots=True)
class CameraPose:
    eye: tuple[float, float, float]
    target: tuple[float, float, float]


class FollowCamera:
    """Behind and above the avatar, easing towards its spot each frame (exponential
    smoothing, so it is frame-rate independent) and never outside the hall's walls."""

    MIN_REACH = 0.0  # backed against a wall the camera comes all the way in: first person
    EYE_LEVEL = 1.75  # metres: a pulled-in camera comes down towards it, under the booth headers
    FIRST_PERSON = 0.12  # reach below which the visitor's own figure is in the way (hide it)

    def __init__(self, distance: float = 7.5, height: float = 4.2, look_ahead: float = 2.0, stiffness: float = 5.0,
                 bounds: tuple[float, float] | None = None, booths: list[Rect] | None = None) -> None:
        self.distance, self.height, self.look_ahead, self.stiffness = distance, height, look_ahead, stiffness
        self.bounds = bounds
        self.booths: list[Rect] = booths or []  # footprints the camera must not enter
        self.yaw: float | None = None
        self.focus: tuple[float, float] | None = None
        self.reach = 1.0  # pulled in at once, let out smoothly

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
        # the booths are tested from where the avatar is, not the eased focus: the camera
        # must not be left inside a wall the avatar just walked past
        wanted = max(self.MIN_REACH, camera_reach(x, y, ex, ey, self.booths))
        self.reach = wanted if wanted < self.reach else self.reach + (wanted - self.reach) * k
        t = self.reach
        ex, ey = x + (ex - x) * t, y + (ey - y) * t
        z = self.EYE_LEVEL + (self.height - self.EYE_LEVEL) * t
        return CameraPose((ex, ey, z), (fx + c * self.look_ahead, fy + s * self.look_ahead, 1.2))


class Autopilot:
    """Walks the avatar through waypoints (e.g. to a portal, then to a booth's entrance) for
    "walk me there", previews and tests: heads straight for the next point and, when a wall
    holds it up, steps sideways for a moment (as the bots do). ``update`` returns the controls;
    the app calls ``crossed`` when a portal has moved the avatar, for the next hall's leg."""

    ARRIVED = 0.5

    def __init__(self, waypoints: list[tuple[float, float]], run: bool = True,
                 portal: tuple[float, float, float] | None = None, beyond: tuple[tuple[float, float], ...] = (),
                 face: tuple[float, float] | None = None) -> None:
        """``portal``: (x, y, radius) of the circle the waypoints lead into; ``beyond``: the
        waypoints from where it puts us; ``face``: what to turn to at the end (a booth's
        centre: one arrives walking along the aisle, and would stand side-on to it)."""
        self.waypoints = list(waypoints)
        self.face = face
        self.run = run
        self.portal = portal
        self.beyond = beyond
        self._best = math.inf
        self._stuck_for = 0.0
        self._sidestep = 0.0
        self._side = 1.0

    @classmethod
    def along(cls, route: Route, run: bool = True, face: tuple[float, float] | None = None) -> Autopilot:
        p = route.portal
        return cls(list(route.here), run, (p.position.x, p.position.y, p.radius) if p else None, route.there, face)

    @property
    def done(self) -> bool:
        return not self.waypoints and self.portal is None and self.face is None

    def skip(self) -> None:
        """Drop the current waypoint (reached)."""
        if self.waypoints:
            self.waypoints.pop(0)
            self._best, self._stuck_for = math.inf, 0.0

    def crossed(self) -> None:
        """A portal moved us: walk the leg beyond it (or stop, if the walk had no portal)."""
        if self.portal is None:
            self.face = None  # what we were to face is in the hall we left
        self.waypoints, self.portal, self.beyond = list(self.beyond), None, ()
        self._best, self._stuck_for, self._sidestep = math.inf, 0.0, 0.0

    def update(self, x: float, y: float, yaw: float, dt: float) -> Controls:
        if not self.waypoints and self.portal is not None:
            # in the circle while the portal still rested after our last hop: the server moves
            # an avatar through only on a step, so one standing there never goes; step within it
            px, py, radius = self.portal
            self._side = -self._side
            self.waypoints.append((px + self._side * max(radius / 2, 2 * self.ARRIVED), py))
        if not self.waypoints:
            if self.face is not None:  # arrived: one last step, turning to it
                (fx, fy), self.face = self.face, None
                yaw = wrap_angle(math.atan2(fy - y, fx - x))
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
