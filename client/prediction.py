"""Client-side prediction of the visitor's own avatar, reconciled with the server.

Each Input sent is applied at once with ``world.motion.step`` (the server's own rule, on an
array of one), so the avatar answers the keys without waiting a round trip. Each Snapshot
says which input the server applied last (``ack``) and where that left the avatar. The
server keeps full-precision floats and sends centimetres, so the client keeps the exact
float position it predicted after each input: when that rounds to the server's
centimetres, the prediction was right and stays bit-for-bit equal to the server's state;
otherwise (a lost or dropped input, a push the client could not foresee) the client restarts
from the server's position and re-applies the inputs the server has not applied yet.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from protocol.limits import POSITION_SCALE
from protocol.messages import Motion, OwnState
from protocol.quantise import dequantise_yaw, quantise_position
from world.motion import HallGeometry, step


@dataclass(frozen=True, slots=True)
class SentInput:
    """An input the server has not acknowledged yet, and where it took the prediction."""

    seq: int
    move_x: float
    move_y: float
    yaw: float
    run: bool
    sent_at: float
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Correction:
    """The prediction disagreed with the server by ``error`` metres and was redone."""

    ack: int
    error: float
    hall_changed: bool


class Predictor:
    def __init__(self, geometry: HallGeometry, dt: float, hall: int, x: float, y: float, yaw: float) -> None:
        self.geometry = geometry
        self.dt = dt
        self.hall = hall
        self.x, self.y, self.yaw = x, y, yaw
        self.motion = Motion.IDLE
        self.pending: deque[SentInput] = deque()
        self._confirmed = (x, y)  # exact position after the last acknowledged input

    @property
    def confirmed(self) -> tuple[float, float]:
        """The exact position after the last acknowledged input, as the server holds it
        when the prediction was right."""
        return self._confirmed

    def _step(self, x: float, y: float, move_x: float, move_y: float, run: bool) -> tuple[float, float]:
        new = step(
            self.geometry,
            np.array([self.hall], dtype=np.int16),
            np.array([[x, y]], dtype=np.float64),
            np.array([[move_x, move_y]], dtype=np.float64),
            np.array([run], dtype=bool),
            self.dt,
        )
        return float(new[0, 0]), float(new[0, 1])

    def apply(self, seq: int, move_x: float, move_y: float, yaw: float, run: bool, sent_at: float) -> None:
        """Predict the effect of an input just sent."""
        x, y = self._step(self.x, self.y, move_x, move_y, run)
        self.motion = (Motion.RUN if run else Motion.WALK) if (x, y) != (self.x, self.y) else Motion.IDLE
        self.x, self.y, self.yaw = x, y, yaw
        self.pending.append(SentInput(seq, move_x, move_y, yaw, run, sent_at, x, y))

    def reconcile(self, ack: int, own: OwnState) -> Correction | None:
        """Line the prediction up with the server's state after input ``ack``."""
        if own.hall != self.hall:  # a portal: the client cannot foresee it, so it snaps
            error = math.inf
            self.reset(own)
            return Correction(ack, error, True)
        confirmed = self._confirmed
        while self.pending and self.pending[0].seq <= ack:
            done = self.pending.popleft()
            if done.seq == ack:
                confirmed = (done.x, done.y)
        if not self.pending:
            self.motion = Motion(own.state.motion)
        server = (own.state.x, own.state.y)
        if (quantise_position(confirmed[0]), quantise_position(confirmed[1])) == server:
            self._confirmed = confirmed
            return None
        before = (self.x, self.y)
        self._confirmed = (own.state.x / POSITION_SCALE, own.state.y / POSITION_SCALE)
        self._replay()
        return Correction(ack, math.dist(before, (self.x, self.y)), False)

    def _replay(self) -> None:
        x, y = self._confirmed
        redone: deque[SentInput] = deque()
        for sent in self.pending:
            x, y = self._step(x, y, sent.move_x, sent.move_y, sent.run)
            redone.append(SentInput(sent.seq, sent.move_x, sent.move_y, sent.yaw, sent.run, sent.sent_at, x, y))
        self.pending = redone
        self.x, self.y = x, y

    def reset(self, own: OwnState, exact: tuple[float, float] | None = None) -> None:
        """Start again from the server's state (``exact`` when the float position is known,
        e.g. the hall's spawn point), forgetting unacknowledged inputs."""
        self.hall = own.hall
        self.x, self.y = exact or (own.state.x / POSITION_SCALE, own.state.y / POSITION_SCALE)
        self.yaw = dequantise_yaw(own.state.yaw)
        self.motion = Motion(own.state.motion)
        self.pending.clear()
        self._confirmed = (self.x, self.y)
