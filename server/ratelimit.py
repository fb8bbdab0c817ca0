"""A token bucket over an injected clock: allows ``burst`` at once, ``rate`` per second after;
and one such bucket per key, for the services that limit each visitor on their own."""

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

    def ready(self, cost: float = 1.0) -> bool:
        """Whether ``cost`` tokens are there now; nothing is spent."""
        self.take_at(self._clock.monotonic(), 0.0)  # brought up to now
        return self._tokens >= cost

    def take(self, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough; False (and nothing spent) otherwise."""
        return self.take_at(self._clock.monotonic(), cost)

    def take_at(self, now: float, cost: float = 1.0) -> bool:
        """``take`` as of ``now``, the clock's reading: a caller that takes from several
        buckets at once (every frame: the flood and frame limits) reads the clock once."""
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if tokens < cost:
            self._tokens = tokens
            return False
        self._tokens = tokens - cost
        return True


class KeyedBuckets:
    """A ``TokenBucket(rate, burst, clock)`` per key (a visitor), made at the key's first take."""

    __slots__ = ("rate", "burst", "_clock", "_buckets")

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, cost: float = 1.0) -> bool:
        """``TokenBucket.take`` on ``key``'s bucket."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
        return bucket.take(cost)
