"""Token buckets on a manual clock: a burst, then the rate; one bucket per visitor."""

from __future__ import annotations

from server.clock import ManualClock
from server.ratelimit import KeyedBuckets, TokenBucket


def test_a_bucket_allows_its_burst_then_its_rate():
    clock = ManualClock()
    bucket = TokenBucket(2.0, 3.0, clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.5)  # one token back at 2 a second
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.advance(60)  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) is False  # nothing is spent by a refusal...
    clock.advance(0.25)
    assert bucket.take(0.5) is True  # ...so half a second's worth is there after a quarter


def test_each_key_has_a_bucket_of_its_own():
    clock = ManualClock()
    buckets = KeyedBuckets(1.0, 2.0, clock)
    assert [buckets.take("ana") for _ in range(3)] == [True, True, False]
    assert [buckets.take("bo") for _ in range(3)] == [True, True, False]  # Ana's spending is not Bo's
    clock.advance(1.0)
    assert [buckets.take("ana"), buckets.take("ana")] == [True, False]
