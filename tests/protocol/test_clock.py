"""One clock protocol: the expo's clocks and the bank's are the same shape (monotonic and
wall), so one manual clock can stand for time everywhere in a test."""

from __future__ import annotations

import time

import pytest

from bank import clock as bank_clock
from protocol.clock import Clock, ManualClock, SystemClock


@pytest.mark.parametrize("clock", [SystemClock(), ManualClock(), bank_clock.SystemClock(), bank_clock.ManualClock()],
                         ids=["expo-system", "expo-manual", "bank-system", "bank-manual"])
def test_every_clock_has_both_readings(clock):
    assert isinstance(clock, Clock)
    assert clock.monotonic() >= 0.0 and abs(clock.wall() - time.time()) < 10 * 365 * 86400


def test_a_manual_clock_moves_both_readings_together_and_never_back():
    for clock in (ManualClock(5.0, 1_000.0), bank_clock.ManualClock(1_000_000)):
        monotonic, wall = clock.monotonic(), clock.wall()
        clock.advance(1.5)
        assert (clock.monotonic() - monotonic, clock.wall() - wall) == (pytest.approx(1.5), pytest.approx(1.5))
        with pytest.raises(ValueError):
            clock.advance(-1)


def test_the_system_clock_counts_monotonic_seconds_from_its_start():
    clock = SystemClock()
    assert 0.0 <= clock.monotonic() < 1.0
