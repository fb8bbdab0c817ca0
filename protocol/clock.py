"""The one clock protocol of the expo: the world server, the clients and the bank each take a
clock with these two readings, injected, so every time rule tests with a clock moved by hand.

* ``monotonic()``: seconds that never go back, for durations, deadlines and ticks. The wire's
  ``server_time`` is the world server's monotonic reading (seconds since it started).
* ``wall()``: Unix seconds (UTC), for instants that are stored or shown to people: order
  expiry, meeting times, analytics events.

The bank imports nothing of the expo, so it declares the same two methods in ``bank.clock``
(structural typing: any clock here is one there, and its own clocks are ones here).
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds that never go back."""
        ...

    def wall(self) -> float:
        """Unix seconds, UTC."""
        ...


class SystemClock:
    """The machine's clocks; ``monotonic`` counts from when this clock was made, so a
    server's ``server_time`` is its uptime."""

    def __init__(self) -> None:
        self._origin = time.monotonic()

    def monotonic(self) -> float:
        return time.monotonic() - self._origin

    def wall(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (like Trio's MockClock): both readings together."""

    def __init__(self, start: float = 0.0, wall_start: float = 1_780_000_000.0) -> None:
        self._monotonic = start
        self._wall = wall_start

    def monotonic(self) -> float:
        return self._monotonic

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._monotonic += seconds
        self._wall += seconds
