"""The seat rules without a broker: never over the cap, tokens expire, holders' seats go."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.cluster.seats import Seats


def test_grant_fills_to_the_cap_and_no_further() -> None:
    seats, granted = Seats(3).grant(["a", "b"], expires_at=10.0, now=0.0)
    assert granted == ["a", "b"]
    seats, granted = seats.grant(["c", "d", "e"], expires_at=10.0, now=0.0)
    assert granted == ["c"]
    assert seats.free(0.0) == 0
    assert seats.grant(["f"], expires_at=10.0, now=1.0)[1] == []


def test_expired_pending_seats_come_back() -> None:
    seats, _ = Seats(1).grant(["a"], expires_at=10.0, now=0.0)
    assert seats.grant(["b"], expires_at=20.0, now=9.9)[1] == []
    later, granted = seats.grant(["b"], expires_at=20.0, now=10.0)
    assert granted == ["b"] and set(later.pending) == {"b"}


def test_confirm_turns_a_token_into_a_held_seat_once() -> None:
    seats, _ = Seats(2).grant(["a"], expires_at=10.0, now=0.0)
    seats, ok = seats.confirm("a", "p1", now=1.0)
    assert ok and seats.held == {"p1": 1} and seats.pending == {}
    assert seats.confirm("a", "p1", now=1.0) == (seats, False)  # one use
    assert seats.confirm("zz", "p1", now=1.0)[1] is False


def test_a_late_token_is_refused() -> None:
    seats, _ = Seats(2).grant(["a"], expires_at=10.0, now=0.0)
    assert seats.confirm("a", "p1", now=10.0)[1] is False


def test_release_never_goes_below_zero_and_dead_holders_go() -> None:
    seats = Seats(5, {"p1": 2, "p2": 1})
    assert seats.release("p1").held == {"p1": 1, "p2": 1}
    assert seats.release("p2", 5).held == {"p1": 2}
    assert seats.release("nobody").held == seats.held
    assert seats.without_expired(0.0, alive=frozenset({"p2"})).held == {"p2": 1}


def test_over_the_cap_cannot_even_be_built() -> None:
    with pytest.raises(AssertionError, match="over the cap"):
        Seats(1, {"p1": 1}, {"t": 5.0})


def test_wire_round_trip() -> None:
    seats = Seats(7, {"p1": 2}, {"tok": 12.5})
    assert Seats.decode(seats.encode()) == seats


@given(st.lists(st.tuples(st.sampled_from(["grant", "confirm", "release"]), st.integers(0, 6), st.floats(0, 20)),
                max_size=60))
def test_any_sequence_stays_within_the_cap(steps) -> None:
    seats = Seats(4)
    issued: list[str] = []
    for n, (kind, k, now) in enumerate(steps):
        if kind == "grant":
            tokens = [f"t{n}-{i}" for i in range(k)]
            seats, granted = seats.grant(tokens, expires_at=now + 5, now=now)
            issued += granted
        elif kind == "confirm" and issued:
            seats, _ = seats.confirm(issued[k % len(issued)], f"p{k % 2}", now)
        else:
            seats = seats.release(f"p{k % 2}")
        assert seats.used_total() <= seats.cap


def test_cancel_frees_a_pending_seat_at_once() -> None:
    seats, _ = Seats(1).grant(["a"], expires_at=10.0, now=0.0)
    assert seats.cancel("a").free(0.0) == 1
    assert seats.cancel("unknown") == seats
