"""Time as a dependency: everything in the bank asks a clock, so tests can move time by hand.

Times are integer milliseconds since the Unix epoch (UTC): integers hash and compare exactly,
which the ledger's hash chain and the intent expiry rules rely on.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """The wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to (like Trio's MockClock); thread-safe."""

    def __init__(self, start_ms: int = 1_750_000_000_000) -> None:
        self._now = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += round(seconds * 1000)


def to_datetime(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def from_datetime(value: dt.datetime) -> int:
    """Naive datetimes are taken as UTC, the only zone the bank speaks."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)
