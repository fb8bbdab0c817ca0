"""The console's view of the cluster's processes, sans I/O: snapshots of the directory fed
with an injected clock; a process appears, vanishes by TTL (down), leaves cleanly (info),
comes back, and an organiser dismisses what they have seen."""

from __future__ import annotations

from server.cluster.directory import InstanceRecord, ProcessRecord
from server.cluster.watch import Gone, ProcessWatch


def record(pid: str, at: float, load: int = 0) -> ProcessRecord:
    return ProcessRecord(pid, f"ws://{pid}.test/", load, 100, 1, at)


def test_appear_vanish_by_ttl_and_come_back() -> None:
    watch = ProcessWatch("me")
    watch.observe({"me": record("me", 0.0), "b": record("b", 0.0, load=7)}, (), 0.0,
                  [InstanceRecord("hall-i1", "hall", 1, "b", 50)])
    assert watch.departures() == []
    live = {lp.record.id: lp for lp in watch.processes()}
    assert live["b"].record.load == 7 and [i.id for i in live["b"].instances] == ["hall-i1"]
    assert live["me"].instances == ()
    watch.observe({"me": record("me", 2.0), "b": record("b", 2.0)}, (), 2.0)
    watch.observe({"me": record("me", 8.0)}, (), 8.5)  # b's record expired: no goodbye
    [down] = watch.departures()
    assert (down.process, down.how, down.last_seen, down.noticed_at, down.url) == ("b", Gone.DOWN, 2.0, 8.5, "ws://b.test/")
    watch.observe({"me": record("me", 10.0)}, (), 10.0)
    assert [d.process for d in watch.departures()] == ["b"]  # stays until it comes back
    assert watch.departures()[0].last_seen == 2.0
    watch.observe({"me": record("me", 12.0), "b": record("b", 12.0)}, (), 12.0)
    assert watch.departures() == []
    assert [lp.record.id for lp in watch.processes()] == ["b", "me"]


def test_a_clean_leave_is_not_an_alarm_and_dismissal_forgets() -> None:
    watch = ProcessWatch("me")
    watch.observe({"me": record("me", 0.0), "b": record("b", 0.0), "c": record("c", 0.0)}, (), 0.0)
    watch.observe({"me": record("me", 3.0)}, {"b"}, 3.0)  # b said goodbye, c just vanished
    assert [(d.process, d.how) for d in watch.departures()] == [("c", Gone.DOWN), ("b", Gone.LEFT)]
    assert watch.dismiss("c") is True
    assert watch.dismiss("c") is False  # nothing left to dismiss
    assert watch.dismiss("nobody") is False
    assert [d.process for d in watch.departures()] == ["b"]
    watch.observe({"me": record("me", 5.0)}, (), 5.0)  # dismissed stays dismissed, unseen never returns
    assert [d.process for d in watch.departures()] == ["b"]


def test_never_seen_and_own_process_are_no_departures() -> None:
    watch = ProcessWatch("me")
    watch.observe({}, {"ghost"}, 0.0)  # a goodbye from a process never seen live: nothing to say
    watch.observe({"me": record("me", 1.0)}, (), 1.0)
    watch.observe({}, (), 9.0)  # our own record missing (NATS lost its store): not a process down
    assert watch.departures() == []
