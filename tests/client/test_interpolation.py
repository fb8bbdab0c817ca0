"""Interpolation of remote avatars: holds, gaps, shortest-arc yaw, bounded extrapolation."""

from __future__ import annotations

import math

import pytest

from client.interpolation import Track
from client.view import WorldView
from protocol.messages import EntityInfo, EntityState


def S(x: int, y: int = 0, yaw: int = 0, motion: int = 1) -> EntityState:
    return EntityState(x, y, yaw, motion)


def test_linear_between_states_and_held_past_the_last_when_unchanged():
    t = Track()
    t.push(1.0, S(0), None)
    t.push(1.1, S(100), 1.0)
    assert t.sample(1.05, 1.1, 0.25).x == pytest.approx(0.5)
    assert t.sample(0.5, 1.1, 0.25).x == 0.0  # before the first state: the first state
    # the newest snapshot (1.3) did not list it: it stands still at 1.0 m, no extrapolation
    assert t.sample(1.4, 1.3, 0.25).x == 1.0


def test_a_pause_is_not_smeared_across_the_gap():
    view = WorldView()
    view.enter((EntityInfo(7, "Pat", 0, 0, None, S(0)),))
    view.apply(1.0, [])
    view.apply(1.05, [7, 100, 0, 0, 1])  # moves...
    view.apply(1.10, [])  # ...stands still (not listed)...
    view.apply(1.15, [])
    view.apply(1.20, [7, 100, 0, 0, 1])  # ...moves again
    track = view.tracks[7]
    assert track.sample(1.125, 1.20, 0.25).x == 1.0  # still standing, not halfway to 2 m
    assert track.sample(1.175, 1.20, 0.25).x == pytest.approx(1.5)  # moving only since 1.15


def test_yaw_takes_the_short_way_round():
    t = Track()
    t.push(0.0, S(0, yaw=65000), None)
    t.push(1.0, S(0, yaw=1000), 0.0)
    # 65000 -> 1000 is +1536 steps through 0, not -64000 steps the long way
    half = t.sample(0.5, 1.0, 0.25).yaw
    assert half == pytest.approx(((65000 + 768) % 65536) * 2 * math.pi / 65536)


def test_extrapolation_is_bounded_when_snapshots_are_late():
    t = Track()
    t.push(1.0, S(0), None)
    t.push(1.05, S(10), 1.0)  # 2 m/s
    assert t.sample(1.10, 1.05, 0.25).x == pytest.approx(0.2)
    assert t.sample(5.00, 1.05, 0.25).x == pytest.approx(0.1 + 0.25 * 2)  # stops after 0.25 s


def test_a_gap_of_skipped_snapshots_interpolates_across_it():
    t = Track()
    t.push(1.0, S(0), None)
    t.push(1.25, S(500), 1.0)  # four snapshots skipped by the server: one delta covers them
    assert t.sample(1.125, 1.25, 0.25).x == pytest.approx(2.5)
