"""Clock offset and round-trip estimates from Ping/Pong."""

from __future__ import annotations

import random

import pytest

from client.link_timing import LinkTiming


def test_offset_comes_from_the_least_delayed_round_trip():
    rng = random.Random(3)
    true_offset = 1234.5  # server clock = client clock + this
    sync = LinkTiming()
    t = 0.0
    for i in range(16):
        up, down = 0.002 + rng.expovariate(1 / 0.02), 0.002 + rng.expovariate(1 / 0.02)  # queueing delays
        if i == 9:
            up = down = 0.001  # one clean exchange
        sync.pong(t, t + up + true_offset, t + up + down)
        t += 1.0
    assert sync.offset == pytest.approx(true_offset, abs=1e-9)
    assert sync.server_time(100.0) == pytest.approx(100.0 + true_offset)


def test_asymmetry_bounds_the_error_by_half_the_round_trip():
    sync = LinkTiming()
    sync.pong(10.0, 10.030 + 50.0, 10.040)  # 30 ms up, 10 ms down
    assert abs(sync.offset - 50.0) <= 0.040 / 2


def test_rtt_is_smoothed_and_the_rough_offset_only_serves_until_a_pong():
    sync = LinkTiming()
    sync.rough(server_time=500.0, client_time=100.0)
    assert sync.offset == 400.0 and not sync.synced
    sync.pong(0.0, 0.005, 0.010)
    assert sync.rtt == pytest.approx(0.010) and sync.synced and sync.offset == pytest.approx(0.0)
    sync.pong(1.0, 1.05, 1.100)
    assert sync.rtt == pytest.approx(0.010 + 0.125 * 0.090)  # EWMA, 1/8 gain
    assert sync.last_rtt == pytest.approx(0.100)
    assert sync.offset == pytest.approx(0.0)  # the 100 ms sample is ignored for the offset
