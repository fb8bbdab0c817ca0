"""Visitor identity at Hello: the id a token proves, namesakes, relaunches, tickets, seats."""

from __future__ import annotations

import os
import stat

import pytest
from support import Harness

import protocol as p
from server.identity import VisitorPasses, load_secret, load_tickets, tag_of, tagged


def hello(name: str, **fields) -> p.Hello:
    return p.Hello(p.PROTOCOL_VERSION, name, 0x336699, 1, **fields)


def join(h: Harness, name: str, **fields):
    peer = h.connect()
    replies = h.send(peer, hello(name, **fields))
    return peer, replies[0]


def test_two_visitors_may_share_a_name_and_the_second_is_tagged(harness: Harness):
    _, first = join(harness, "Li Wei")
    _, second = join(harness, "li wei")
    assert isinstance(first, p.Welcome) and isinstance(second, p.Welcome)
    assert first.visitor_id != second.visitor_id
    assert first.display_name == "Li Wei"
    assert second.display_name == f"li wei #{tag_of(second.visitor_id)}"
    shown = {info.name for info in harness.sim.avatars.info if info is not None}
    assert shown == {"Li Wei", second.display_name}


def test_a_tag_fits_the_longest_name():
    name = "x" * p.limits.MAX_NAME_LEN
    assert len(tagged(name, "vis_1")) == p.limits.MAX_NAME_LEN and tagged(name, "vis_1").endswith(tag_of("vis_1"))


def test_a_relaunch_with_the_token_takes_over_the_detached_avatar(harness: Harness):
    peer, welcome = join(harness, "Aru")
    harness.sim.on_disconnect(peer)  # the client crashed
    _, again = join(harness, "Aru", visitor_token=welcome.visitor_token)
    assert (again.visitor_id, again.session_id, again.entity) == (welcome.visitor_id, welcome.session_id, welcome.entity)
    assert len(harness.sim.sessions) == 1


def test_the_same_visitor_again_while_connected_replaces_the_old_connection(harness: Harness):
    old, welcome = join(harness, "Aru")
    new, again = join(harness, "Aru", visitor_token=welcome.visitor_token)
    assert again.session_id == welcome.session_id
    assert [m.code for m in old.take() if isinstance(m, p.Closing)] == ["replaced"]
    renamed, third = join(harness, "Aru K", visitor_token=welcome.visitor_token)  # another name: a new avatar
    assert third.visitor_id == welcome.visitor_id and third.session_id != welcome.session_id
    assert [m.code for m in new.take() if isinstance(m, p.Closing)] == ["replaced"]
    assert len(harness.sim.sessions) == 1


def test_a_token_that_does_not_verify_is_a_new_visitor(harness: Harness):
    _, welcome = join(harness, "Aru")
    forged = welcome.visitor_token[:-4] + "AAAA"
    other_server = VisitorPasses(b"another server's secret!").token(welcome.visitor_id)
    for token in (forged, other_server, "garbage", f"v1.{welcome.visitor_id}"):
        _, again = join(harness, "Mallory", visitor_token=token)
        assert isinstance(again, p.Welcome) and again.visitor_id != welcome.visitor_id
        assert VisitorPasses.verify(harness.sim.passes, again.visitor_token) == again.visitor_id


def test_admission_by_ticket():
    h = Harness()
    h.sim.tickets = load_tickets(["TKT-1  # Aru's", "", "TKT-2"])
    _, refused = join(h, "Aru")
    assert isinstance(refused, p.Refused) and refused.code == "ticket_invalid"
    _, wrong = join(h, "Aru", ticket="TKT-9")
    assert wrong.code == "ticket_invalid"
    peer, welcome = join(h, "Aru", ticket="TKT-1")
    assert isinstance(welcome, p.Welcome)
    h.sim.on_disconnect(peer)
    _, by_token = join(h, "Aru", visitor_token=welcome.visitor_token)  # admitted before: the token is enough
    assert by_token.visitor_id == welcome.visitor_id
    _, same_ticket = join(h, "Someone", ticket="TKT-1")  # one ticket is one visitor
    assert same_ticket.visitor_id == welcome.visitor_id
    _, plain = join(h, "Bea", visitor_token=VisitorPasses.token(h.sim.passes, "vis_plain"))
    assert plain.code == "ticket_invalid"  # a visitor never admitted by ticket


def test_at_the_cap_the_longest_detached_seat_goes_to_a_newcomer():
    h = Harness(max_clients=3)
    peers = [join(h, name)[0] for name in ("One", "Two", "Three")]
    h.sim.on_disconnect(peers[1])
    h.tick()
    h.sim.on_disconnect(peers[0])
    _, welcome = join(h, "Four")
    assert isinstance(welcome, p.Welcome)
    assert sorted(s.chosen_name for s in h.sim.sessions.values()) == ["Four", "One", "Three"]  # Two left first
    _, full = join(h, "Five")  # One is detached still: its seat goes too
    assert isinstance(full, p.Welcome)
    _, refused = join(h, "Six")
    assert refused.code == "server_full"  # everyone is connected


def test_near_the_cap_detached_avatars_wait_only_briefly():
    h = Harness(max_clients=10, near_cap_share=0.5, near_cap_grace=2.0, resume_grace=30.0)
    peers = [join(h, f"V{i}")[0] for i in range(4)]
    h.sim.on_disconnect(peers[0])
    h.tick(int(3.0 / h.config.dt))
    assert len(h.sim.sessions) == 4  # 4 of 10: not crowded, the full 30 s grace
    peers.append(join(h, "V4")[0])
    h.tick(int(3.0 / h.config.dt))
    assert len(h.sim.sessions) == 4  # 5 of 10 is crowded: V0 went after 2 s


def test_the_visitor_secret_is_made_once_private_and_kept(tmp_path):
    path = tmp_path / "data" / "visitor.secret"
    secret = load_secret(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret(path) == secret and len(secret) >= 32
    path.write_text("short\n")
    with pytest.raises(ValueError):
        load_secret(path)
