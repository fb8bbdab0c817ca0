"""Token buckets for anonymous work, sans-I/O: the caller passes the time.

Opening an account is the one thing anyone may do without a credential, and each opening
costs the bank a database transaction and (until the expo's budget runs out) a welcome grant.
Two buckets guard it: one per client address, so one script cannot take the whole allowance,
and one overall, so many addresses together cannot either. A refusal says how long to wait.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """``burst`` requests at once, refilled at ``per_second``."""

    burst: int
    per_second: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.per_second <= 0:
            raise ValueError(f"a limit needs burst >= 1 and a positive rate, not {self}")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_ms: int


class TokenBucket:
    """One bucket; :meth:`take` returns 0.0 when allowed, else the seconds until it would be."""

    def __init__(self, limit: Limit, now_ms: int) -> None:
        self.limit = limit
        self._bucket = _Bucket(float(limit.burst), now_ms)

    def _refill(self, b: _Bucket, now_ms: int) -> None:
        elapsed = max(0, now_ms - b.updated_ms) / 1000
        b.tokens = min(float(self.limit.burst), b.tokens + elapsed * self.limit.per_second)
        b.updated_ms = max(b.updated_ms, now_ms)

    def wait(self, now_ms: int) -> float:
        """Seconds until a token is there (0.0 if one is now); takes nothing."""
        self._refill(self._bucket, now_ms)
        return 0.0 if self._bucket.tokens >= 1 else (1 - self._bucket.tokens) / self.limit.per_second

    def take(self, now_ms: int) -> float:
        wait = self.wait(now_ms)
        if wait == 0.0:
            self._bucket.tokens -= 1
        return wait


class KeyedLimiter:
    """A bucket per key (client address) and one overall; at most ``max_keys`` remembered.

    Forgetting the least recently seen key hands it a fresh bucket, so ``max_keys`` must be
    well above the number of addresses active within one refill of a bucket; memory stays bounded
    whatever a flood of spoofed or rotating addresses does, and the overall bucket still holds.
    """

    def __init__(self, per_key: Limit, overall: Limit, now_ms: int, max_keys: int = 100_000) -> None:
        self.per_key = per_key
        self._overall = TokenBucket(overall, now_ms)
        self._keys: OrderedDict[str, TokenBucket] = OrderedDict()
        self._max_keys = max_keys

    def take(self, key: str, now_ms: int) -> tuple[str, float] | None:
        """None if allowed (a token taken from both buckets), else (which bucket, seconds to wait)."""
        bucket = self._keys.get(key)
        if bucket is None:
            bucket = self._keys[key] = TokenBucket(self.per_key, now_ms)
            while len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)
        self._keys.move_to_end(key)
        if (wait := bucket.wait(now_ms)) > 0:
            return "address", wait
        if (wait := self._overall.take(now_ms)) > 0:
            return "overall", wait
        assert bucket.take(now_ms) == 0.0
        return None
