"""Mutes, bans, kicks, reports and announcements, in the simulation and through Admin."""

from __future__ import annotations

import pytest
from support import Harness, left

import protocol as p
from server.moderation import Kind, Moderation


class WallClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


@pytest.fixture
def moderated(harness: Harness, wall: WallClock) -> Harness:
    harness.sim.moderation = Moderation(":memory:", wall)
    return harness


def chat_lines(messages: list[p.Message]) -> list[p.ChatLine]:
    return [m for m in messages if isinstance(m, p.ChatLine)]


def test_a_muted_visitor_reaches_no_one_and_is_told_why(moderated: Harness, wall: WallClock):
    speaker, aru = moderated.join("Aru")
    listener, _ = moderated.join("Bek")
    moderated.send(speaker, p.Chat(p.Channel.PROXIMITY, "hello"))
    assert [line.text for line in chat_lines(listener.take())] == ["hello"]

    moderated.sim.moderation.impose(aru.visitor_id, "Aru", Kind.MUTE, "spamming the aisle", 5, "organiser")
    replies = moderated.send(speaker, p.Chat(p.Channel.PROXIMITY, "buy my stuff"))
    assert chat_lines(listener.take()) == []
    assert [(e.code, "spamming the aisle" in e.message) for e in replies if isinstance(e, p.Error)] == [("not_allowed", True)]

    wall.now += 5 * 60 + 1  # the mute runs out
    moderated.send(speaker, p.Chat(p.Channel.PROXIMITY, "sorry"))
    assert [line.text for line in chat_lines(listener.take())] == ["sorry"]


def test_a_ban_refuses_hello_until_it_ends_or_is_lifted(moderated: Harness, wall: WallClock):
    moderation = moderated.sim.moderation
    first, aru = moderated.join("Aru")
    session = moderated.sim.sessions[aru.session_id]
    moderation.impose(aru.visitor_id, "Aru", Kind.BAN, "harassment", 60, "organiser")
    moderated.sim.kick(session, "banned")
    peer = moderated.connect()  # the same person, under another name: their token says who they are
    replies = moderated.send(peer, p.Hello(p.PROTOCOL_VERSION, "Someone New", 0, 0, visitor_token=aru.visitor_token))
    assert isinstance(replies[0], p.Refused) and replies[0].code == "banned"
    assert "harassment" in replies[0].message and "60 min" in replies[0].message
    assert peer.close_request is not None
    moderated.join("Aru")  # another visitor with that name is not the banned one

    wall.now += 3601
    peer = moderated.connect()
    replies = moderated.send(peer, p.Hello(p.PROTOCOL_VERSION, "Aru", 0, 0, visitor_token=aru.visitor_token))
    assert isinstance(replies[0], p.Welcome) and replies[0].visitor_id == aru.visitor_id  # expired


def test_bans_survive_a_restart_of_the_store(tmp_path, wall: WallClock):
    path = tmp_path / "moderation.sqlite3"
    first = Moderation(path, wall)
    first.impose("v_aru", "Aru", Kind.BAN, "harassment", None, "organiser")
    first.close()
    again = Moderation(path, wall)
    assert again.banned("v_aru") is not None and again.banned("v_aru").until is None and again.banned("v_aru").name == "Aru"
    assert again.banned("aru") is None  # a name is not an id
    assert again.lift("v_aru", Kind.BAN) and again.banned("v_aru") is None


def test_a_name_keyed_file_from_before_visitor_ids_is_migrated_not_enforced(tmp_path, wall: WallClock):
    """A moderation.sqlite3 written before the identity work: the server starts on it, its
    name-keyed rows stay on record but bind no one (a name is not a person), reports gain ids."""
    import sqlite3

    path = tmp_path / "moderation.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE sanctions (visitor TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('mute', 'ban')),
            reason TEXT NOT NULL, since REAL NOT NULL, until REAL, by TEXT NOT NULL, PRIMARY KEY (visitor, kind));
        CREATE TABLE reports (id INTEGER PRIMARY KEY AUTOINCREMENT, reporter TEXT NOT NULL, visitor TEXT NOT NULL,
            reason TEXT NOT NULL, hall TEXT NOT NULL, at REAL NOT NULL, handled_by TEXT);
        INSERT INTO sanctions VALUES ('li wei', 'ban', 'spam', 1.0, NULL, 'organiser');
        INSERT INTO reports (reporter, visitor, reason, hall, at) VALUES ('Aru', 'Li Wei', 'spam', 'silk-road', 1.0);
    """)
    old.commit()
    old.close()
    migrated = Moderation(path, wall)
    assert migrated.banned("li wei") is None and migrated.sanctions() == []
    [report] = migrated.reports()
    assert (report.visitor, report.visitor_id) == ("Li Wei", None)
    migrated.impose("v_li", "Li Wei", Kind.BAN, "spam", None, "organiser")
    migrated.file_report("v_aru", "Aru", "v_li", "Li Wei", "again", "silk-road")
    migrated.close()
    again = Moderation(path, wall)  # a second start on the migrated file changes nothing
    assert [s.visitor for s in again.sanctions()] == ["v_li"]
    assert [r.visitor_id for r in again.reports()] == ["v_li", None]


@pytest.mark.parametrize(("reason", "minutes", "error"), [
    ("", 5, "reason"), ("x" * 201, 5, "200"), ("spam", 0, "duration"), ("spam", -3, "duration"),
])
def test_bad_decisions_are_refused_and_change_nothing(wall: WallClock, reason, minutes, error):
    moderation = Moderation(":memory:", wall)
    with pytest.raises(ValueError, match=error):
        moderation.impose("v_aru", "Aru", Kind.MUTE, reason, minutes, "organiser")
    assert moderation.sanctions() == []


def test_kick_closes_the_connection_and_removes_the_avatar(moderated: Harness):
    peer, welcome = moderated.join("Aru")
    other, _ = moderated.join("Bek")
    moderated.tick()  # each sees the other
    other.take()
    session = moderated.sim.sessions[welcome.session_id]
    moderated.sim.kick(session, "shouting")
    closing = [m for m in peer.take() if isinstance(m, p.Closing)]
    assert [(c.code, c.message) for c in closing] == [("kicked", "shouting")]
    assert welcome.session_id not in moderated.sim.sessions
    moderated.tick()
    assert welcome.entity in left(other.take())
    assert moderated.sim.connected == 1


def test_reports_name_the_reported_avatar(moderated: Harness):
    reporter, aru = moderated.join("Aru")
    _, target = moderated.join("Bek")
    assert moderated.send(reporter, p.Report(target.entity, "  rude in chat  ")) == []
    [report] = moderated.sim.moderation.reports()
    assert (report.reporter, report.visitor, report.reason, report.hall) == ("Aru", "Bek", "rude in chat", moderated.sim.expo.halls[0].id)
    assert (report.reporter_id, report.visitor_id) == (aru.visitor_id, target.visitor_id)
    unknown = moderated.send(reporter, p.Report(999_999, "who?"))
    assert [e.code for e in unknown if isinstance(e, p.Error)] == ["bad_field"]
    assert moderated.sim.moderation.handle_report(report.id, "organiser")
    assert moderated.sim.moderation.reports() == []


def test_a_report_round_trips_the_codec():
    message = p.Report(12, "spam")
    assert p.decode_client(p.encode(message)) == message
    with pytest.raises(p.ProtocolError):
        p.decode_client(p.encode(p.Report(12, "x" * 201)))
