"""The client core without sockets: handshake, the view, deltas, resume, the cheap mode."""

from __future__ import annotations

import dataclasses
import math

import pytest
from client_link import Link, World, snapshot_bytes

import protocol as p
from client import events as ev
from client.core import ClientCore, ClientState, NotJoined


def test_hello_carries_identity_and_welcome_joins():
    core = ClientCore("Aigerim", 0x336699, 7, staff_pass=None)
    core.connection_made(now=5.0, opened_at=4.9)
    [hello] = [p.decode_client(f) for f in core.data_to_send()]
    assert hello == p.Hello(p.PROTOCOL_VERSION, "Aigerim", 0x336699, 7, None, None)
    world = World()
    link = Link(world, ClientCore("Aigerim"))
    [joined] = link.of(ev.Joined)
    assert link.core.state is ClientState.JOINED and not joined.resumed
    assert joined.expo.halls[0].id == world.sim.expo.halls[0].id  # the manifest rebuilt into the model
    assert link.core.entity == joined.welcome.entity and link.core.resume_token


def test_commands_need_an_avatar():
    core = ClientCore("Early")
    with pytest.raises(NotJoined):
        core.send_input(1.0, 0.0, 0.0, False, now=0.0)
    with pytest.raises(NotJoined):
        core.chat(0, "hello")


def test_refusals_and_what_they_leave_behind():
    world = World()
    second = Link(world, ClientCore("--"))
    assert second.of(ev.Refused)[0].code == "name_invalid"
    assert second.core.state is ClientState.CLOSED  # retrying cannot help
    stale = Link(world, ClientCore("Stale", resume_token="no-such-token"))
    assert stale.of(ev.Refused)[0].code == "resume_failed"
    assert stale.core.resume_token is None and stale.core.state is ClientState.JOINING  # the next try joins afresh


def test_others_enter_move_by_deltas_and_leave():
    world = World()
    a, b = world.join("Ann"), world.join("Ben")
    world.tick()
    [entered] = a.of(ev.Entered)
    assert [i.entity for i in entered.entities] == [b.core.entity]
    for _ in range(10):
        b.core.send_input(0.6, 0.8, 2.0, False, now=world.clock.monotonic())
        world.tick()
    server = world.server_pos(b)
    seen = a.core.view.state[b.core.entity]
    assert (seen.x, seen.y) == (p.quantise_position(server[0]), p.quantise_position(server[1]))
    assert seen.yaw == p.quantise_yaw(2.0) and seen.motion == p.Motion.WALK
    world.tick()
    assert a.core.view.state[b.core.entity].motion == p.Motion.WALK  # the last input holds
    b.core.send_input(0.0, 0.0, 2.0, False, now=world.clock.monotonic())
    world.tick()
    assert a.core.view.state[b.core.entity].motion == p.Motion.IDLE  # until one stands still
    b.core.bye()
    b.pump()
    world.tick()
    assert a.of(ev.Left)[0].entities == (b.core.entity,) and len(a.core.view) == 0


def test_yaw_deltas_wrap_and_unknown_entities_are_violations():
    core = ClientCore("Solo", predict=False)
    world = World()
    Link(world, core)
    own = core.own
    info = p.EntityInfo(999, "Ghost", 0, 0, None, p.EntityState(100, 100, 65000, 0))
    core.receive(p.encode(p.Snapshot(1, 20.0, 0, own, (), (info,), (999, 5, -3, 1000, 1))), now=11.0)
    assert core.view.state[999] == p.EntityState(105, 97, (65000 + 1000) % 65536, 1)
    events = core.receive(snapshot_bytes(2, 20.05, own, [12345, 1, 1, 0, 1]), now=11.05)
    assert isinstance(events[0], ev.ProtocolViolation)
    assert isinstance(core.receive(b"\x91\x7f", now=11.1)[0], ev.ProtocolViolation)  # unknown type 127


def test_cheap_mode_reads_snapshots_without_keeping_a_view():
    world = World()
    watcher = world.join("Watcher", view=False, predict=False)
    mover = world.join("Mover")
    for _ in range(5):
        mover.core.send_input(1.0, 0.0, 0.0, False, now=world.clock.monotonic())
        world.tick()
    snaps = watcher.of(ev.SnapshotReceived)
    assert watcher.core.view is None and watcher.core.predictor is None
    assert sum(s.changed for s in snaps) >= 4 and snaps[-1].tick == world.sim.tick_count
    assert watcher.core.own_pose().x == watcher.core.own.state.x / 100
    [entered] = watcher.of(ev.Entered)
    assert entered == ev.Entered((), 1)  # the mover, counted: no records without a view


def test_ack_latency_and_delivery_come_from_the_clocks():
    world = World()
    link = world.join("Timer")
    link.core.send_input(1.0, 0.0, 0.0, False, now=world.clock.monotonic())
    sent_at = world.clock.monotonic()
    world.tick()
    snap = link.of(ev.SnapshotReceived)[-1]
    assert snap.ack == 1 and snap.ack_latency == pytest.approx(world.clock.monotonic() - sent_at)
    link.core.ping(world.clock.monotonic())
    link.pump()
    [pong] = link.of(ev.PongReceived)
    assert pong.rtt == 0.0 and pong.offset == 0.0  # the same ManualClock on both sides
    world.tick()
    assert link.of(ev.SnapshotReceived)[-1].delivery == pytest.approx(0.0)


def test_resume_brings_back_the_same_avatar_and_a_fresh_view():
    world = World()
    a, b = world.join("Stayer"), world.join("Leaver")
    for _ in range(4):
        b.core.send_input(0.0, 1.0, 0.0, False, now=world.clock.monotonic())
        world.tick()
    entity, seq = b.core.entity, b.core.seq
    b.drop()
    world.tick(3)
    again = Link(world, b.core)
    [joined] = again.of(ev.Joined)
    assert joined.resumed and b.core.entity == entity
    world.tick()
    assert [i.entity for e in again.of(ev.Entered) for i in e.entities] == [a.core.entity]
    b.core.send_input(0.0, 1.0, 0.0, False, now=world.clock.monotonic())  # seqs go on, past the hold sent
    world.tick()
    assert b.core.seq == b.core.hold_ticks + 1 > seq and b.core.ack == b.core.seq
    assert not again.of(ev.ErrorReceived)


def test_a_resume_continues_after_ticks_the_server_applied_unseen():
    """The client's timer stalls while the server goes on applying its held input, and the
    snapshots saying so are lost with the connection: the first Input after the resume must
    still come after them (it was refused as stale when seqs went on from the client's count)."""
    world = World()
    walker = world.join("Walker")
    walker.core.send_input(1.0, 0.0, 0.0, False, now=world.clock.monotonic())  # holds for hold_ticks
    walker.pump()
    for _ in range(6):  # the server ticks on, the client neither ticks nor reads
        world.clock.advance(world.config.dt)
        world.sim.tick()
    assert walker.core.seq == 1 and world.session_of(walker).acked_seq == 6
    walker.drop()
    again = Link(world, walker.core)
    assert again.of(ev.Joined)[0].resumed and walker.core.unacknowledged == 0
    walker.core.send_input(0.0, 1.0, 0.0, False, now=world.clock.monotonic())
    world.tick()
    assert not again.of(ev.ErrorReceived) and walker.core.ack == walker.core.seq == walker.core.hold_ticks + 1


def test_a_fresh_join_after_a_server_restart_counts_inputs_from_one():
    """A restarted server knows neither the token nor the seqs: the client is refused the
    resume, joins afresh, and its inputs start at 1 again, acknowledged from the first."""
    world = World()
    walker = world.join("Walker")
    for _ in range(30):
        walker.core.send_input(1.0, 0.0, 0.0, False, now=world.clock.monotonic())
        world.tick()
    assert walker.core.ack == 30
    walker.drop()
    restarted = World()
    refused = Link(restarted, walker.core)
    assert refused.of(ev.Refused)[0].code == "resume_failed"
    refused.drop()
    fresh = Link(restarted, walker.core)
    assert not fresh.of(ev.Joined)[0].resumed
    assert (walker.core.seq, walker.core.ack, walker.core.unacknowledged) == (0, 0, 0)
    start = restarted.server_pos(fresh)
    for _ in range(5):
        walker.core.send_input(1.0, 0.0, 0.0, False, now=restarted.clock.monotonic())
        restarted.tick()
    assert walker.core.seq == walker.core.ack == 5 and not fresh.of(ev.ErrorReceived)
    assert restarted.server_pos(fresh)[0] > start[0]


def test_closing_replaced_ends_the_old_connection_for_good():
    world = World()
    first = world.join("Twin")
    token = first.core.resume_token
    second = Link(world, ClientCore("Twin", resume_token=token))
    assert second.of(ev.Joined)[0].resumed is False  # a new core: it never saw that session
    first.pump()
    [closed] = first.of(ev.Closed)
    assert closed.code == "replaced" and not closed.resumable
    assert first.core.state is ClientState.CLOSED


def test_scene_draws_others_in_the_past_between_real_states():
    world = World()
    a, b = world.join("Viewer"), world.join("Runner")
    world.tick()
    a.core.ping(world.clock.monotonic())
    a.pump()
    for _ in range(10):
        b.core.send_input(1.0, 0.0, 0.0, True, now=world.clock.monotonic())
        world.tick()
    scene = a.core.scene(world.clock.monotonic())
    [other] = scene.others
    assert scene.render_time == pytest.approx(world.clock.monotonic() - 2 * world.config.dt)
    x_now = world.server_pos(b)[0]
    assert other.pose.x == pytest.approx(x_now - 2 * 0.3, abs=0.006)  # two ticks of running behind
    assert scene.own.x == a.core.predictor.x and math.isfinite(scene.own.yaw)


def test_a_world_edit_replaces_the_expo_and_the_prediction_walls():
    world = World()
    link = world.join("Editor")
    old = link.core.expo
    booth = old.booths[0]
    moved = dataclasses.replace(booth, tagline="Edited while you were here")
    world.sim.reload(dataclasses.replace(old, booths=(moved, *old.booths[1:])))
    link.pump()
    [changed] = link.of(ev.ExpoChanged)
    assert changed.previous is old and changed.expo.booth(booth.id).tagline == "Edited while you were here"
    assert link.core.expo is changed.expo
    assert link.core.predictor.geometry is link.core.geometry  # new walls for the prediction too
    assert not link.of(ev.ProtocolViolation)


def test_a_broken_expo_update_is_a_violation_and_keeps_the_expo():
    world = World()
    link = world.join("Editor")
    old = link.core.expo
    [event] = link.core.receive(p.encode(p.ExpoUpdate({"halls": "nope"})), world.clock.monotonic())
    assert isinstance(event, ev.ProtocolViolation) and "ExpoUpdate" in event.detail
    assert link.core.expo is old


def test_a_transfer_is_followed_with_its_token_and_the_same_identity():
    """Cluster hand-off, sans I/O: the core answers a Transfer with a Hello carrying its
    token and visitor token but no resume token; the Welcome there is a new session of the
    same visitor. Two simulations sharing the visitor secret stand for two hall processes."""
    here, there = World(), World()
    there.sim.passes = here.sim.passes  # a cluster's processes share the visitor secret
    link = here.join("Marco")
    core = link.core
    visitor, token = core.visitor_id, core.visitor_token
    link.peer.send(p.Transfer("ws://there/", "seat-1", 12.0, "maritime"))
    [moving] = [e for e in link.pump() if isinstance(e, ev.Transferring)]
    assert (moving.url, moving.hall, moving.at_hello) == ("ws://there/", "maritime", False)
    link.drop()
    arrived = Link(there, core)
    [joined] = arrived.of(ev.Joined)
    assert joined.transferred and not joined.resumed and core.transfer is None
    assert joined.welcome.visitor_id == visitor and core.visitor_token == token


def test_a_refused_transfer_goes_back_to_the_avatar_kept_where_it_was():
    here = World()
    link = here.join("Marco")
    core, session = link.core, link.core.session_id
    link.peer.send(p.Transfer("ws://there/", "seat-1", 12.0, "maritime"))
    link.pump()
    link.drop()
    core.connection_made(now=1.0)
    [hello] = [p.decode_client(f) for f in core.data_to_send()]
    assert (hello.transfer, hello.resume_token, hello.visitor_token) == ("seat-1", None, core.visitor_token)
    [refused] = core.receive(p.encode(p.Refused("transfer_failed", "that transfer was used already")), 1.1)
    assert isinstance(refused, ev.Refused) and core.transfer is None and core.state is ClientState.JOINING
    core.connection_lost()
    back = Link(here, core)  # the transport goes back to where it came from
    [joined] = back.of(ev.Joined)
    assert joined.resumed and core.session_id == session and not joined.transferred
