"""A token bucket over an injected clock: allows ``burst`` at once, ``rate`` per second after."""

from __future__ import annotations

from .clock import Clock


class TokenBucket:
    __slots__ = ("rate", "burst", "_clock", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock.monotonic()

    def take(self, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough; False (and nothing spent) otherwise."""
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False
