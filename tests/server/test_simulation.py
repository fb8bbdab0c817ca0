"""The simulation driven by plain calls: joins, movement, view, chat, limits, resume."""

import math
from collections import deque

import numpy as np
import pytest
from support import Harness, entered, left

import protocol as p
from protocol.limits import CHAT_PROXIMITY_RADIUS
from server.link import LinkState
from server.staff import issue_pass
from world.motion import AVATAR_RADIUS, RUN_SPEED, WALK_SPEED


def of(messages, kind):
    return [m for m in messages if isinstance(m, kind)]


def test_join_gets_welcome_with_manifest_and_own_state(harness):
    peer, welcome = harness.join("Aru")
    assert welcome.tick_rate == 20
    assert welcome.manifest["name"] == "Test Expo"
    assert welcome.own.hall == 0
    assert (welcome.own.state.x, welcome.own.state.y) == (5000, 500)  # the spawn point in cm
    assert welcome.resume_token and welcome.session_id


def test_second_visitor_enters_then_moves_by_deltas(harness):
    a, wa = harness.join("Aru")
    b, wb = harness.join("Bea")
    harness.tick()
    enters = entered(a.take())
    assert [e.entity for e in enters] == [wb.entity]
    assert enters[0].name == "Bea"
    for seq in range(1, 6):
        harness.send(b, p.Input(seq, 1.0, 0.0, 0.0, False))
        harness.tick()
    snaps = of(a.take(), p.Snapshot)
    assert len(snaps) == 5
    x = enters[0].state.x
    for snap in snaps:
        deltas = np.array(snap.deltas).reshape(-1, 5)
        assert deltas[:, 0].tolist() == [wb.entity]
        x += deltas[0, 1]
    assert x == round((50.0 + 5 * WALK_SPEED / 20) * 100)
    own = of(b.take(), p.Snapshot)[-1]
    assert own.ack == 5 and own.own.state.x == x and own.own.state.motion == p.Motion.WALK


def test_unchanged_avatars_send_no_deltas(harness):
    a, _ = harness.join("Aru")
    harness.join("Bea")
    harness.tick(3)
    snaps = of(a.take(), p.Snapshot)
    assert snaps[-1].deltas == ()


@pytest.mark.parametrize(
    "hello, code",
    [
        (p.Hello(p.PROTOCOL_VERSION + 1, "Aru", 0, 0), p.ErrorCode.VERSION_MISMATCH),
        (p.Hello(p.PROTOCOL_VERSION, "!!", 0, 0), p.ErrorCode.NAME_INVALID),
        (p.Hello(p.PROTOCOL_VERSION, "Zed", 0, 0, "no-such-token"), p.ErrorCode.RESUME_FAILED),
        (p.Hello(p.PROTOCOL_VERSION, "Zed", 0, 0, None, "kz-honey:forged"), p.ErrorCode.NOT_ALLOWED),
    ],
)
def test_refusals_name_the_reason_and_close(harness, hello, code):
    peer = harness.connect()
    replies = harness.send(peer, hello)
    assert replies == [p.Refused(code.value, replies[0].message)]
    assert peer.close_request[0] is code


def test_server_full():
    h = Harness(max_clients=2)
    h.join("One")
    h.join("Two")
    peer = h.connect()
    assert h.send(peer, p.Hello(p.PROTOCOL_VERSION, "Three", 0, 0))[0].code == "server_full"


def test_messages_before_hello_and_second_hello_are_errors(harness):
    peer = harness.connect()
    assert harness.send(peer, p.Ping(1.0)) == [p.Error("not_joined", "send hello first", p.Ping.TYPE)]
    peer, _ = harness.join("Aru")
    assert harness.send(peer, p.Hello(p.PROTOCOL_VERSION, "Aru2", 0, 0))[0].code == "already_joined"


def test_bad_frames_get_errors_then_a_flood_close(harness):
    peer, _ = harness.join("Aru")
    errors = harness.send(peer, b"\xc1garbage")
    assert errors[0].code == "bad_frame" and peer.close_request is None
    for _ in range(12):
        harness.send(peer, b"\xc1")
    assert peer.close_request[0] is p.ErrorCode.FLOOD
    assert of(peer.received, p.Closing)[0].code == "flood"


def test_frame_rate_limit_drops_then_flood_disconnects(harness):
    peer, _ = harness.join("Aru")
    replies = []
    for i in range(130):  # inputs: no per-type limit of their own, only the frame limit
        replies += harness.send(peer, p.Input(i + 1, 0.0, 0.0, 0.0, False))
    assert peer.session.last_input_seq == harness.config.frame_burst - 1  # the burst, less the hello
    assert [e.code for e in of(replies, p.Error)] == ["rate_limited"]  # said once, not per frame
    assert peer.close_request is None
    for _ in range(400):
        harness.send(peer, p.Ping(1.0))
    assert peer.close_request[0] is p.ErrorCode.FLOOD


def test_input_speed_is_clamped_and_run_is_faster(harness):
    walker, ww = harness.join("Walker")
    runner, wr = harness.join("Runner")
    harness.place(wr.entity, 50.0, 30.0)
    harness.send(walker, p.Input(1, 1.0, 1.0, 0.0, False))  # length sqrt(2) is scaled to 1
    harness.send(runner, p.Input(1, 0.0, 1.0, 0.0, True))
    harness.tick()
    av = harness.sim.avatars
    slots = {s.name: s.slot for s in harness.sim.sessions.values()}
    moved = av.pos[slots["Walker"]] - np.array([50.0, 5.0])
    assert math.isclose(np.hypot(*moved), WALK_SPEED / 20)
    assert math.isclose(av.pos[slots["Runner"]][1] - 30.0, RUN_SPEED / 20)


def test_repeated_input_seq_is_rejected(harness):
    peer, _ = harness.join("Aru")
    harness.send(peer, p.Input(5, 1.0, 0.0, 0.0, False))
    assert harness.send(peer, p.Input(5, 1.0, 0.0, 0.0, False))[0].code == "bad_field"


def test_hall_bounds_stop_avatars(harness):
    peer, w = harness.join("Aru")
    harness.place(w.entity, 0.5, 10.0)
    for seq in range(1, 10):
        harness.send(peer, p.Input(seq, -1.0, 0.0, 0.0, True))
        harness.tick()
    slot = harness.sim.sessions[w.session_id].slot
    assert harness.sim.avatars.pos[slot][0] == AVATAR_RADIUS


def test_booth_back_wall_blocks_and_open_front_admits(harness):
    # booth kz-honey: x 26..34, y 27..33, open to the south
    peer, w = harness.join("Aru")
    slot = harness.sim.sessions[w.session_id].slot
    harness.place(w.entity, 30.0, 36.0)  # north of the back wall, walking south
    for seq in range(1, 40):
        harness.send(peer, p.Input(seq, 0.0, -1.0, 0.0, False))
        harness.tick()
    assert harness.sim.avatars.pos[slot][1] >= 33.0 + AVATAR_RADIUS - 1e-9
    harness.place(w.entity, 30.0, 24.0)  # south of the open front, walking north
    for seq in range(40, 80):
        harness.send(peer, p.Input(seq, 0.0, 1.0, 0.0, False))
        harness.tick()
    y = harness.sim.avatars.pos[slot][1]
    assert 27.0 < y <= 33.0 - 0.2 - AVATAR_RADIUS + 1e-9  # inside, stopped by the back wall
    assert harness.sim.booth_at(slot) == "kz-honey"


def test_portal_moves_avatar_to_the_other_hall_and_views_follow(harness):
    traveller, wt = harness.join("Traveller")
    watcher, _ = harness.join("Watcher")
    harness.place(wt.entity, 92.0, 30.0)
    harness.tick()
    harness.tick()
    watcher.take()
    seq = 0
    while harness.sim.avatars.hall[harness.sim.sessions[wt.session_id].slot] == 0:
        seq += 1
        assert seq < 20
        harness.send(traveller, p.Input(seq, 1.0, 0.0, 0.0, False))
        harness.tick()
    snap = of(traveller.take(), p.Snapshot)[-1]
    assert snap.own.hall == 1 and (snap.own.state.x, snap.own.state.y) == (500, 2000)
    harness.tick()
    # the watcher stays in the main hall, 42 m away: the traveller left its view long ago
    assert all(e.entity != wt.entity for e in entered(watcher.take()))


def test_far_avatars_are_not_seen_and_hysteresis_keeps_edge_avatars():
    harness = Harness(interest_every=1)  # the rule's edges, run every tick (the cadence: below)
    a, wa = harness.join("Aru")
    b, wb = harness.join("Bea")
    harness.place(wa.entity, 10.0, 30.0)
    harness.place(wb.entity, 10.0 + 25.0, 30.0)
    harness.tick()
    assert not entered(a.take())
    harness.place(wb.entity, 10.0 + 19.9, 30.0)
    harness.tick()
    assert entered(a.take())
    harness.place(wb.entity, 10.0 + 21.0, 30.0)  # past the radius, inside the leave radius
    harness.tick()
    assert not left(a.take())
    harness.place(wb.entity, 10.0 + 24.0, 30.0)
    harness.tick()
    assert left(a.take()) == [wb.entity]


def test_visible_set_is_capped_nearest_first():
    h = Harness(max_visible=3)
    peer, w = h.join("Centre")
    h.place(w.entity, 50.0, 30.0)
    others = []
    for i in range(6):
        _, wo = h.join(f"Other{i}")
        h.place(wo.entity, 50.0 + 1.0 + i, 30.0)
        others.append(wo.entity)
    h.tick()
    seen = [e.entity for e in entered(peer.take())]
    assert sorted(seen) == sorted(others[:3])


def test_slow_reader_skips_snapshots_then_catches_up_then_is_dropped(harness):
    a, _ = harness.join("Aru")
    b, wb = harness.join("Bea")
    harness.tick()
    entered_x = entered(a.take())[0].state.x
    a.pending = harness.config.skip_backlog + 1
    for seq in range(1, 4):
        harness.send(b, p.Input(seq, 1.0, 0.0, 0.0, False))
        harness.tick()
    assert a.take() == []  # skipped while its buffer is full
    a.pending = 0
    harness.tick()
    snap = of(a.take(), p.Snapshot)[0]
    # the one delta covers all three skipped steps: it is against what was really sent
    assert snap.deltas[0] == wb.entity and entered_x + snap.deltas[1] == round((50 + 3 * WALK_SPEED / 20) * 100)
    a.pending = harness.config.skip_backlog + 1
    harness.tick(int(harness.config.stuck_timeout * 20) + 2)
    assert a.close_request[0] is p.ErrorCode.TOO_SLOW
    a.pending = harness.config.hard_backlog + 1
    b.pending = harness.config.hard_backlog + 1
    harness.tick()
    assert b.close_request[0] is p.ErrorCode.TOO_SLOW


def test_proximity_chat_reaches_only_those_near(harness):
    a, wa = harness.join("Aru")
    near, _ = harness.join("Near")
    far, wf = harness.join("Far")
    harness.place(wf.entity, 50.0, 5.0 + CHAT_PROXIMITY_RADIUS + 1)
    own = harness.send(a, p.Chat(p.Channel.PROXIMITY, "hello there"))
    line = of(near.take(), p.ChatLine)[0]
    assert (line.name, line.text, line.entity) == ("Aru", "hello there", wa.entity)
    assert of(own, p.ChatLine) == [line]  # the speaker sees their own line
    assert not of(far.take(), p.ChatLine)


def test_booth_channel_and_announcements():
    harness = Harness(staff_secret="a test's own secret")
    visitor, wv = harness.join("Visitor")
    staff, ws = harness.join("Aigerim", staff_pass=issue_pass(harness.config.staff_secret, "kz-honey"))
    elsewhere, _ = harness.join("Elsewhere")
    assert harness.send(visitor, p.Chat(p.Channel.BOOTH, "anyone?"))[0].code == "not_allowed"
    harness.place(wv.entity, 30.0, 28.0)
    harness.place(ws.entity, 31.0, 29.0)
    harness.send(visitor, p.Chat(p.Channel.BOOTH, "is it organic?"))
    assert of(staff.take(), p.ChatLine)[0].booth == "kz-honey"
    assert not of(elsewhere.take(), p.ChatLine)
    assert harness.send(visitor, p.Chat(p.Channel.ANNOUNCEMENT, "free stuff"))[0].code == "not_allowed"
    harness.send(staff, p.Chat(p.Channel.ANNOUNCEMENT, "Tasting at 3 pm!"))
    assert of(elsewhere.take(), p.ChatLine)[0].text == "Tasting at 3 pm!"


def test_staff_appear_at_their_booth_facing_the_aisle_and_visitors_at_the_spawn():
    harness = Harness(staff_secret="a test's own secret")
    visitor, _ = harness.join("Visitor")
    staff, _ = harness.join("Aigerim", staff_pass=issue_pass(harness.config.staff_secret, "kz-honey"))
    harness.tick()
    (seen_by_visitor,) = of(visitor.take(), p.Snapshot)
    (seen_by_staff,) = of(staff.take(), p.Snapshot)
    # kz-honey: an 8 x 6 m booth centred on (30, 30), open to the south
    assert (seen_by_staff.own.hall, seen_by_staff.own.x, seen_by_staff.own.y) == (0, 3000, 3150)
    assert seen_by_staff.own.yaw == 3 * 65536 // 4  # -pi/2: looking south, out of the booth
    assert (seen_by_visitor.own.x, seen_by_visitor.own.y, seen_by_visitor.own.yaw) == (5000, 500, 0)


def test_a_server_without_a_staff_secret_takes_no_pass(harness):
    """No secret has a public default: a pass signed with the one the source used to carry,
    or with any other, is refused where the operator configured none."""
    for forged in (issue_pass("silk-road-staff", "kz-honey"), issue_pass("", "kz-honey"), "kz-honey:"):
        peer = harness.connect()
        [refused] = harness.send(peer, p.Hello(p.PROTOCOL_VERSION, "Mallory", 0, 0, None, forged))
        assert refused == p.Refused("not_allowed", "that staff pass is not valid")


def test_chat_is_rate_limited(harness):
    a, _ = harness.join("Aru")
    replies = []
    for i in range(7):
        replies += harness.send(a, p.Chat(0, f"line {i}"))
    assert len(of(replies, p.ChatLine)) == 5
    assert of(replies, p.Error)[0].code == "rate_limited"
    harness.clock.advance(1.0)
    assert of(harness.send(a, p.Chat(0, "later")), p.ChatLine)


def test_resume_within_grace_keeps_the_avatar(harness):
    a, wa = harness.join("Aru")
    watcher, _ = harness.join("Watcher")
    harness.tick()
    harness.sim.on_disconnect(a)
    harness.tick(20)
    assert not left(watcher.take())  # still standing there
    again = harness.connect()
    welcome = harness.send(again, p.Hello(p.PROTOCOL_VERSION, "Aru", 0, 0, wa.resume_token))[0]
    assert welcome.entity == wa.entity and welcome.session_id == wa.session_id
    harness.tick()
    assert entered(again.take())  # the view starts afresh


def test_resume_replaces_a_live_connection(harness):
    a, wa = harness.join("Aru")
    b = harness.connect()
    harness.send(b, p.Hello(p.PROTOCOL_VERSION, "Aru", 0, 0, wa.resume_token))
    assert a.close_request[0] is p.ErrorCode.REPLACED


def test_avatar_is_removed_after_grace_and_on_bye(harness):
    a, wa = harness.join("Aru")
    b, wb = harness.join("Bea")
    watcher, _ = harness.join("Watcher")
    harness.tick()
    watcher.take()
    harness.sim.on_disconnect(a)
    harness.clock.advance(harness.config.resume_grace + 1)
    harness.tick()
    assert left(watcher.take()) == [wa.entity]
    assert harness.send(harness.connect(), p.Hello(p.PROTOCOL_VERSION, "Xavi", 0, 0, wa.resume_token))[0].code == "resume_failed"
    harness.send(b, p.Bye())
    assert b.close_request == (None, "goodbye")
    harness.tick()
    assert left(watcher.take()) == [wb.entity]


def test_hello_timeout_closes_silent_connections(harness):
    peer = harness.connect()
    harness.clock.advance(harness.config.hello_timeout + 1)
    harness.sim.tick()
    assert peer.close_request[0] is p.ErrorCode.TIMEOUT


def test_a_hello_held_by_the_cluster_gate_is_not_timed_out_as_missing(harness):
    """The gate holds a Hello while it finds a seat (a loaded directory: seconds); the Hello
    came, so the hello deadline is met: the gate refuses with its own reason when it must
    (it was closed here as 'no hello within 10 s', and the gate's refusal then raised)."""
    held, silent = harness.connect(), harness.connect()
    held.hello_held = True
    harness.clock.advance(harness.config.hello_timeout + 1)
    harness.sim.tick()
    assert held.state is LinkState.JOINING and held.close_request is None
    assert silent.close_request[0] is p.ErrorCode.TIMEOUT
    held.hello_held = False  # the gate is done with it and it still has not joined: the deadline is back
    harness.sim.tick()
    assert held.close_request[0] is p.ErrorCode.TIMEOUT


def test_shutdown_tells_everyone(harness):
    a, _ = harness.join("Aru")
    harness.sim.shutdown()
    assert of(a.take(), p.Closing)[0].code == "shutdown"


def test_purchases_without_a_bank_are_refused_clearly(harness):
    a, _ = harness.join("Aru")
    assert harness.send(a, p.Order("kz-honey", "HONEY-1", 1, "k1"))[0].code == "not_allowed"
    stock = harness.send(a, p.QueryStock("kz-honey"))[0]
    assert stock == p.Stock("kz-honey", (("HONEY-1", 10), ("CARPET-1", 1)))
    assert harness.send(a, p.QueryStock("nope"))[0].code == "unknown_booth"


def test_a_backlog_of_inputs_drains_but_sending_faster_gains_little(harness):
    steady, ws = harness.join("Steady")
    greedy, wg = harness.join("Greedy")
    harness.place(wg.entity, 50.0, 30.0)
    for seq in (1, 2, 3):  # a burst after a hiccup: three inputs at once
        harness.send(steady, p.Input(seq, 1.0, 0.0, 0.0, False))
    seq = 3
    for _ in range(30):  # then one a tick, as a client holding for one tick does
        seq += 1
        harness.send(steady, p.Input(seq, 1.0, 0.0, 0.0, False))
        harness.tick()
    assert harness.sim.sessions[ws.session_id].inputs == deque()  # the backlog is gone
    greedy_seq = 0
    for _ in range(40):  # two inputs every tick: twice the allowed rate
        for _ in range(2):
            greedy_seq += 1
            harness.send(greedy, p.Input(greedy_seq, 0.0, 1.0, 0.0, False))
        harness.tick()
    slot = harness.sim.sessions[wg.session_id].slot
    walked = harness.sim.avatars.pos[slot][1] - 30.0
    assert walked <= 40 * 1.1 * WALK_SPEED / 20 + WALK_SPEED / 20 * 2  # at most 10 % over, plus the saved credit


def _x(harness, welcome) -> float:
    return float(harness.sim.avatars.pos[harness.sim.sessions[welcome.session_id].slot][0])


def _ack(peer) -> int:
    return of(peer.take(), p.Snapshot)[-1].ack


def test_a_held_input_takes_one_step_a_tick_for_its_ticks_then_stops(harness):
    a, wa = harness.join("Aru")
    step = WALK_SPEED / 20
    harness.send(a, p.Input(1, 1.0, 0.0, 0.0, False, 5))
    acks = []
    for _ in range(8):  # spare credit never runs the input in force ahead of the ticks
        harness.tick()
        acks.append(_ack(a))
    assert acks == [1, 2, 3, 4, 5, 5, 5, 5]
    assert _x(harness, wa) == pytest.approx(50.0 + 5 * step)


def test_the_next_input_cuts_a_hold_short_and_the_ticks_between_stand_still(harness):
    a, wa = harness.join("Aru")
    step = WALK_SPEED / 20
    harness.send(a, p.Input(1, 1.0, 0.0, 0.0, False, 20))
    harness.tick(3)
    harness.send(a, p.Input(4, -1.0, 0.0, 0.0, False, 2))  # turn back at tick 4, for two ticks
    harness.tick(2)
    assert _x(harness, wa) == pytest.approx(50.0 + step)
    harness.send(a, p.Input(10, 1.0, 0.0, 0.0, False, 1))  # ticks 6..9 were standing still
    harness.tick(5)
    assert _ack(a) == 10 and _x(harness, wa) == pytest.approx(50.0 + 2 * step)


def test_a_late_input_skips_the_ticks_spent_on_the_one_before(harness):
    a, wa = harness.join("Aru")
    harness.send(a, p.Input(1, 1.0, 0.0, 0.0, False, 20))
    harness.tick(5)  # ticks 1..5 applied; the client turned at its tick 4
    harness.send(a, p.Input(4, 0.0, 1.0, 0.0, False, 3))
    harness.tick(4)
    session = harness.sim.sessions[wa.session_id]
    assert _ack(a) == 6 and session.inputs == deque()  # ticks 4 and 5 were walked east already
    harness.send(a, p.Input(7, 1.0, 0.0, 0.0, False, 20))
    harness.tick(3)
    a.take()
    assert harness.send(a, p.Input(8, 0.0, 0.0, 0.0, False, 1)) == []  # wholly spent already: nothing to do
    assert session.inputs == deque()
    harness.tick()
    assert _ack(a) == 9


def test_a_backlog_behind_a_held_input_is_capped_at_four_ticks(harness):
    a, wa = harness.join("Aru")
    harness.send(a, p.Input(1, 1.0, 0.0, 0.0, False, 20))
    harness.send(a, p.Input(15, 0.0, 1.0, 0.0, False, 20))  # 14 ticks behind: a long hiccup
    harness.tick()
    assert _ack(a) == 11  # ticks 1..10 dropped: four of backlog remain behind the newest
    harness.tick(3)
    assert _ack(a) == 14  # no credit was saved: one tick of input a tick
    harness.tick(3)
    assert _ack(a) == 17  # then the newest input runs one tick a tick
    session = harness.sim.sessions[wa.session_id]
    assert [(h.next_seq, h.end_seq) for h in session.inputs] == [(18, 35)]


def test_a_backlog_after_standing_still_never_leaps_more_than_two_ticks_at_once(harness):
    a, wa = harness.join("Aru")
    harness.tick(40)  # standing still saves credit, but at most two ticks' worth
    step = WALK_SPEED / 20
    harness.send(a, p.Input(1, 1.0, 0.0, 0.0, False, 20))
    harness.send(a, p.Input(15, 0.0, 1.0, 0.0, False, 20))  # 14 ticks of backlog, 4 kept
    a.take()
    xs, acks = [_x(harness, wa)], []
    for _ in range(6):
        harness.tick()
        xs.append(_x(harness, wa))
        acks.append(_ack(a))
    assert acks == [12, 13, 14, 15, 16, 17]  # two ticks at first, then one a tick
    assert max(b - a for a, b in zip(xs, xs[1:])) == pytest.approx(2 * step)
    assert xs[-1] - xs[0] == pytest.approx(4 * step)  # the four kept ticks of the backlog, all walked


def test_a_growing_backlog_drains_ten_percent_faster_than_real_time(harness):
    a, wa = harness.join("Aru")
    seq = 0
    applied = []
    for _ in range(100):  # a client that sends two ticks of input every tick
        for _ in range(2):
            seq += 1
            harness.send(a, p.Input(seq, 1.0, 0.0, 0.0, False, 1))
        before = _x(harness, wa)
        harness.tick()
        applied.append(round((_x(harness, wa) - before) / (WALK_SPEED / 20)))
    assert sum(applied[20:]) == 88  # 1.1 ticks of input a tick (the rest dropped as stale)
    assert max(applied) == 2


def test_a_hold_is_forgotten_when_the_client_goes(harness):
    a, wa = harness.join("Aru")
    harness.send(a, p.Input(1, 1.0, 0.0, 0.0, False, 20))
    harness.tick()
    harness.sim.on_disconnect(a)
    harness.tick(5)
    assert _x(harness, wa) == pytest.approx(50.0 + WALK_SPEED / 20)


def test_the_shell_is_told_which_peers_were_written_or_began_to_close(harness):
    """The shell flushes these instead of looking at every connection each tick."""
    a, _ = harness.join("Aru")
    b, _ = harness.join("Bea")
    assert set(harness.sim.take_written()) == {a, b}  # their Welcomes
    assert harness.sim.take_written() == []
    harness.tick()  # their snapshots (peers of their own kind: to their outboxes)
    assert set(harness.sim.take_written()) == {a, b}
    b.begin_close(None, "bye")  # nothing queued, but it closes after its last frames
    assert harness.sim.take_written() == [b]
    harness.sim.shutdown()
    assert harness.sim.take_written() == [a]  # b was closing already


@pytest.mark.parametrize("start", [30.0, 30.03, 30.05])
def test_a_visitor_walking_into_view_enters_within_a_tick_of_the_every_tick_rule(start):
    """Who sees whom is recomputed every second tick (protocol/README.md, View): Bea walking
    west towards Aru enters Aru's snapshots at most one tick later than with the rule run
    every tick, and her deltas from then on are every tick's."""
    def first_enter(every: int) -> tuple[int, list[int]]:
        h = Harness(interest_every=every)
        a, wa = h.join("Aru")
        b, wb = h.join("Bea")
        h.place(wa.entity, 10.0, 12.0)
        h.place(wb.entity, 10.0 + start, 12.0)  # south of the booth: a clear walk west
        h.tick()
        a.take()
        for tick in range(1, 300):
            h.send(b, p.Input(tick, -1.0, 0.0, math.pi, False))
            h.tick()
            snaps = of(a.take(), p.Snapshot)
            if snaps[-1].enters:
                assert [e.entity for e in snaps[-1].enters] == [wb.entity]
                xs = []
                for _ in range(3):
                    h.send(b, p.Input(tick := tick + 1, -1.0, 0.0, math.pi, False))
                    h.tick()
                    xs += [d[1] for d in np.array(of(a.take(), p.Snapshot)[-1].deltas).reshape(-1, 5)]
                return tick, xs
        raise AssertionError("Bea never entered")

    each, moves_each = first_enter(1)
    second, moves = first_enter(2)
    assert 0 <= second - each <= 1
    assert len(moves) == len(moves_each) == 3 and all(dx < 0 for dx in moves + moves_each)
