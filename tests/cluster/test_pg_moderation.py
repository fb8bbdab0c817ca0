"""Moderation on PostgreSQL keeps SQLite's rules, and two hall processes share it: what one
decides the other enforces once it reloads, and a report filed at either is listed at both."""

from __future__ import annotations

import pytest

from server.moderation import Kind
from server.moderation_pg import PgModeration


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # far enough from 0 that a float4 column would round it away

    def __call__(self) -> float:
        return self.now


def test_two_processes_share_the_decisions_and_the_reports(fresh_database) -> None:
    clock = Clock()
    console, other = PgModeration(fresh_database, clock), PgModeration(fresh_database, clock)
    try:
        ban = console.impose("vis_1", "Dana", Kind.BAN, "spam", 30, "organiser")
        assert other.banned("vis_1") is None  # not reloaded yet
        other.refresh()
        assert other.banned("vis_1") == ban and ban.until == clock.now + 1800  # to the second
        console.impose("vis_1", "Dana", Kind.BAN, "spam, again", None, "organiser")  # replaces the first
        other.refresh()
        assert (other.banned("vis_1").reason, other.banned("vis_1").until) == ("spam, again", None)
        clock.now += 3600
        assert console.lift("vis_1", Kind.BAN) and not console.lift("vis_1", Kind.BAN)
        other.refresh()
        assert other.banned("vis_1") is None and other.sanctions() == []

        first = other.file_report("vis_2", "Eli", "vis_3", "Fay", "insults", "silk-road")
        second = other.file_report("vis_2", "Eli", "vis_4", "Gus", "x" * 500, "maritime")
        assert second > first
        listed = console.reports()
        assert [(r.id, r.reporter, r.visitor, r.visitor_id) for r in listed] == [
            (second, "Eli", "Gus", "vis_4"), (first, "Eli", "Fay", "vis_3")]  # newest first
        assert len(listed[0].reason) == 200  # cut to the limit, as SQLite's
        assert console.handle_report(first, "organiser") and not other.handle_report(first, "organiser")
        assert [r.id for r in other.reports()] == [second] and len(other.reports(open_only=False)) == 2
        with pytest.raises(ValueError, match="reason"):
            console.impose("vis_1", "Dana", Kind.MUTE, " ", None, "organiser")
    finally:
        console.close()
        other.close()
