"""Prediction of the own avatar against the real server rules: exact when nothing is lost,
corrected when something is."""

from __future__ import annotations

import math

from client_link import World
from hypothesis import given, settings
from hypothesis import strategies as st

import protocol as p
from client import events as ev


def walk(world: World, link, moves, lead: int = 0) -> None:
    """Send one input per tick (``lead`` inputs ahead of the server, as with latency) and
    check after every snapshot that the prediction equals the server's float state."""
    core = link.core
    pending = list(moves)
    for _ in range(lead):
        if pending:
            core.send_input(*pending.pop(0), now=world.clock.monotonic())
    while pending or core.predictor.pending:
        if pending:
            core.send_input(*pending.pop(0), now=world.clock.monotonic())
        world.tick()
        assert core.predictor.confirmed == world.server_pos(link)  # bit for bit, not approximately
        if not core.predictor.pending:
            assert (core.predictor.x, core.predictor.y) == world.server_pos(link)


def test_prediction_matches_the_server_bit_for_bit_through_walls_and_bounds():
    world = World()
    link = world.join("Walker")
    # north-west into a booth, west until its west wall stops the avatar...
    walk(world, link, [(-0.6, 0.8, 2.2, False)] * 120 + [(-1.0, 0.0, math.pi, True)] * 60)
    assert abs(world.server_pos(link)[0] - (46.0 + 0.2 + 0.35)) < 1e-9
    # ...then south-east out of the booth's open side and into the hall's south bound
    walk(world, link, [(0.3, -1.0, -1.0, True)] * 80)
    assert world.server_pos(link)[1] == 0.35
    assert not link.of(ev.PredictionCorrected)


def test_prediction_stays_exact_with_inputs_in_flight():
    world = World()
    link = world.join("Laggy")
    walk(world, link, [(0.0, 1.0, 1.5, False)] * 60 + [(1.0, 1.0, 0.7, True)] * 60, lead=3)
    assert not link.of(ev.PredictionCorrected)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-7, 7), st.booleans()), min_size=1, max_size=60),
       st.integers(0, 3))
def test_any_input_sequence_is_predicted_exactly(moves, lead):
    world = World()
    link = world.join("Fuzz")
    walk(world, link, moves, lead)
    assert not link.of(ev.PredictionCorrected)


def test_inputs_the_server_dropped_are_corrected_from_its_state():
    world = World()
    link = world.join("Burst", hold_ticks=1)  # a client sending an input a tick
    core = link.core
    for _ in range(7):  # more than the server queues (4): it drops the oldest three
        core.send_input(1.0, 0.0, 0.0, True, now=world.clock.monotonic())
    world.tick(8)
    corrections = link.of(ev.PredictionCorrected)
    assert corrections and 0 < corrections[0].error < 7 * 0.3 + 1e-9
    assert not core.predictor.pending
    assert math.dist((core.predictor.x, core.predictor.y), world.server_pos(link)) < 0.005  # within the wire's cm
    # and from there on prediction agrees with the server again (to the centimetre it knows)
    before = len(link.of(ev.PredictionCorrected))
    for _ in range(20):
        core.send_input(0.0, 1.0, 1.0, False, now=world.clock.monotonic())
        world.tick()
    assert len(link.of(ev.PredictionCorrected)) == before


def test_a_portal_snaps_the_prediction_to_the_new_hall():
    world = World()
    link = world.join("Traveller")
    core = link.core
    moves = [(1.0, 0.0, 0.0, True)] * 190 + [(0.0, 1.0, 1.57, True)] * 110
    for move in moves:
        core.send_input(*move, now=world.clock.monotonic())
        world.tick()
        if world.server_hall(link) != 0:
            break
    world.tick(2)
    hops = [c for c in link.of(ev.PredictionCorrected) if c.hall_changed]
    assert len(hops) == 1
    assert core.predictor.hall == world.server_hall(link) == 1
    assert core.scene(world.clock.monotonic()).hall == 1
    assert math.dist((core.predictor.x, core.predictor.y), world.server_pos(link)) < 0.01


def spy_inputs(core) -> list[p.Input]:
    """The Input frames the core sends from now on."""
    sent: list[p.Input] = []
    take = core.data_to_send

    def data_to_send():
        frames = take()
        sent.extend(m for m in map(p.decode_client, frames) if isinstance(m, p.Input))
        return frames

    core.data_to_send = data_to_send
    return sent


def test_a_straight_walk_is_one_frame_a_hold_predicted_exactly_and_a_stop():
    world = World()
    link = world.join("Strider")
    core, sent = link.core, spy_inputs(link.core)
    walk(world, link, [(0.0, 1.0, 1.5, False)] * 50, lead=2)
    assert [(m.seq, m.ticks) for m in sent] == [(1, 20), (21, 20), (41, 20)]
    walk(world, link, [(0.0, 0.0, 1.5, False)])
    assert (sent[-1].seq, sent[-1].ticks, sent[-1].move_y) == (51, 1, 0.0)
    stopped = world.server_pos(link)
    world.tick(5)
    assert world.server_pos(link) == stopped and core.own.state.motion == p.Motion.IDLE
    assert not link.of(ev.PredictionCorrected)


def test_steering_within_the_tolerance_keeps_the_hold_and_the_prediction_exact():
    world = World()
    link = world.join("Steerer")
    sent = spy_inputs(link.core)
    wobble = [(1.0, 0.0, 0.0, False), (0.995, 0.01, 0.01, False)] * 5
    walk(world, link, wobble + [(0.9, 0.4, 0.4, False)] * 3 + [(0.9, 0.4, 0.4, True)] * 3)
    assert [m.seq for m in sent] == [1, 11, 14]  # a new heading, then running
    assert not link.of(ev.PredictionCorrected)


def test_ticks_a_late_timer_skipped_are_counted_from_the_ack():
    world = World()
    link = world.join("Sleepy")
    core = link.core
    core.send_input(1.0, 0.0, 0.0, False, now=world.clock.monotonic())
    world.tick(4)  # the server walks the hold on while the client's timer does not fire
    assert core.ack == 4 and core.seq == 4
    core.send_input(0.0, 0.0, 0.0, False, now=world.clock.monotonic())
    world.tick()
    assert core.ack == 5 and (core.predictor.x, core.predictor.y) == world.server_pos(link)
