"""The directory's rules without a broker: where a visitor goes, where overflow opens."""

from __future__ import annotations

from server.cluster.directory import HallInstances, ProcessRecord, admission_order, overflow_process
from server.cluster.seats import Seats


def proc(pid: str, load: int = 0, capacity: int = 100, per_hall: int = 1) -> ProcessRecord:
    return ProcessRecord(pid, f"ws://{pid}/", load, capacity, per_hall, 0.0)


def test_instances_are_numbered_and_dead_ones_dropped_when_opening() -> None:
    hall, first = HallInstances("h").open("a", 10, frozenset({"a"}))
    hall, second = hall.open("b", 10, frozenset({"a", "b"}))
    assert (first.id, second.id) == ("h-i1", "h-i2")
    hall, third = hall.open("b", 10, frozenset({"b"}))  # a died
    assert [i.id for i in hall.instances] == ["h-i2", "h-i3"] and hall.opened == 3
    assert HallInstances.decode(hall.encode()) == hall
    assert hall.restore(first).instances[-1] == first and hall.restore(second) is hall


def test_admission_fills_in_order_and_prefers_the_friend() -> None:
    hall, i1 = HallInstances("h").open("a", 2, frozenset({"a"}))
    hall, i2 = hall.open("b", 2, frozenset({"a", "b"}))
    full = Seats(2, {"a": 2})
    assert admission_order(hall.instances, {i1.id: None, i2.id: None}, 0.0, "b") == [i1, i2]
    assert admission_order(hall.instances, {i1.id: full, i2.id: None}, 0.0, "a") == [i2]
    assert admission_order(hall.instances, {i1.id: None, i2.id: None}, 0.0, "a", friend_instance="h-i2") == [i2, i1]


def test_overflow_goes_to_the_least_filled_process_that_can_take_it() -> None:
    hall, _ = HallInstances("h").open("a", 2, frozenset({"a"}))
    processes = {"a": proc("a", 0), "b": proc("b", 50), "c": proc("c", 10, capacity=200)}
    assert overflow_process(hall, processes).id == "c"  # a has its one instance of h already
    assert overflow_process(hall, {"a": proc("a")}) is None
    assert overflow_process(hall, {"a": proc("a", per_hall=2)}).id == "a"


def test_a_hall_process_seats_its_own_visitors_first() -> None:
    hall, i1 = HallInstances("h").open("a", 2, frozenset({"a"}))
    hall, i2 = hall.open("b", 2, frozenset({"a", "b"}))
    seats = {i1.id: None, i2.id: None}
    assert admission_order(hall.instances, seats, 0.0, "b", prefer_local=True) == [i2, i1]
    assert admission_order(hall.instances, {**seats, i2.id: Seats(2, {"b": 2})}, 0.0, "b", prefer_local=True) == [i1]
