"""Time as a dependency: everything in the bank asks a clock, so tests can move time by hand.

The clock protocol is the expo's one (``protocol.clock``: ``monotonic()`` and ``wall()``),
declared here again because the bank imports nothing of the expo: structurally, a clock of
either is a clock of both. The bank's own reading is ``now_ms()``, the wall in integer
milliseconds since the Unix epoch (UTC): integers hash and compare exactly, which the ledger's
hash chain and the intent expiry rules rely on.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds that never go back."""
        ...

    def wall(self) -> float:
        """Unix seconds, UTC."""
        ...

    def now_ms(self) -> int:
        """The wall in integer milliseconds, the bank's timestamps."""
        ...


class SystemClock:
    """The machine's clocks."""

    def __init__(self) -> None:
        self._origin = time.monotonic()

    def monotonic(self) -> float:
        return time.monotonic() - self._origin

    def wall(self) -> float:
        return time.time()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to (like Trio's MockClock), both readings together;
    thread-safe. It counts whole milliseconds, as the bank does."""

    def __init__(self, start_ms: int = 1_750_000_000_000) -> None:
        self._now = start_ms
        self._start = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def wall(self) -> float:
        return self.now_ms() / 1000

    def monotonic(self) -> float:
        return (self.now_ms() - self._start) / 1000

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
