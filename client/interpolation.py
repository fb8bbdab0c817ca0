"""Smooth motion for remote avatars: each is drawn a little in the past, between two states
the server really sent, instead of jumping 20 times a second.

A track holds one avatar's recent states stamped with the server time of the snapshot that
carried them. Snapshots list only avatars that changed, so "not listed" means "unchanged":
when an avatar that stood still moves again, the track first records a hold at the previous
snapshot's time, so the interpolation does not smear the pause across the gap.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from protocol.limits import POSITION_SCALE, YAW_STEPS
from protocol.messages import EntityState
from protocol.quantise import wrap_yaw_delta

_TURN = 2 * math.pi


@dataclass(frozen=True, slots=True)
class Pose:
    """Where to draw an avatar: metres in the hall's frame, yaw in radians, motion 0/1/2."""

    x: float
    y: float
    yaw: float
    motion: int


def pose_of(state: EntityState) -> Pose:
    return Pose(state.x / POSITION_SCALE, state.y / POSITION_SCALE, state.yaw * _TURN / YAW_STEPS, state.motion)


class Track:
    __slots__ = ("samples",)

    def __init__(self, capacity: int = 32) -> None:
        self.samples: deque[tuple[float, EntityState]] = deque(maxlen=capacity)

    def push(self, time: float, state: EntityState, previous_snapshot: float | None) -> None:
        """Record ``state`` as of the snapshot at ``time``; ``previous_snapshot`` is the time
        of the snapshot before it, at which this avatar was still in its last state."""
        samples = self.samples
        if samples and previous_snapshot is not None and samples[-1][0] < previous_snapshot < time:
            samples.append((previous_snapshot, samples[-1][1]))
        if samples and samples[-1][0] >= time:
            samples.pop()  # a state for the same instant replaces the earlier one
        samples.append((time, state))

    def sample(self, render_time: float, newest_snapshot: float, max_extrapolation: float) -> Pose:
        """The pose at ``render_time``. Past the last state the avatar holds still, unless
        it moved in the newest snapshot and newer ones are late: then it keeps going for at
        most ``max_extrapolation`` seconds."""
        samples = self.samples
        t1, s1 = samples[-1]
        if render_time >= t1:
            if len(samples) < 2 or t1 < newest_snapshot or render_time == t1:
                return pose_of(s1)
            t0, s0 = samples[-2]
            ahead = min(render_time - t1, max_extrapolation)
            return _blend(s0, s1, 1.0 + ahead / (t1 - t0), s1.motion)
        # newest first: the render time is normally close to the end
        for i in range(len(samples) - 2, -1, -1):
            t0, s0 = samples[i]
            if t0 <= render_time:
                t1, s1 = samples[i + 1]
                return _blend(s0, s1, (render_time - t0) / (t1 - t0), s0.motion)
        return pose_of(samples[0][1])


def _blend(a: EntityState, b: EntityState, f: float, motion: int) -> Pose:
    """Linear in position, the shorter way round in yaw; f beyond 1 extrapolates."""
    yaw = (a.yaw + wrap_yaw_delta(b.yaw - a.yaw) * f) % YAW_STEPS
    return Pose(
        (a.x + (b.x - a.x) * f) / POSITION_SCALE,
        (a.y + (b.y - a.y) * f) / POSITION_SCALE,
        yaw * _TURN / YAW_STEPS,
        motion,
    )
