"""The simulation records booth analytics exactly: a visitor walked along a known path by
Inputs, tick by tick on a ManualClock, makes the events the path implies, to the tick."""

from __future__ import annotations

import pytest
from support import FakePeer, small_expo

import protocol as p
from server.analytics.aggregate import Funnel, booth_figures
from server.analytics.events import EventKind
from server.clock import ManualClock
from server.config import ServerConfig
from server.simulation import Simulation
from server.staff import issue_pass

K = EventKind
DT = 0.05
STEP = 2.5 * DT  # walking pace, metres a tick


class Walker:
    def __init__(self, sim: Simulation, name: str, staff_pass: str | None = None) -> None:
        self.sim = sim
        self.peer = FakePeer()
        sim.open_peer(self.peer)
        sim.on_frame(self.peer, p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0, None, staff_pass)))
        self.session = self.peer.session
        self.seq = 0

    def put(self, x: float, y: float) -> None:
        self.sim.avatars.pos[self.session.slot] = (x, y)

    def step(self, move_y: float) -> None:
        self.seq += 1
        self.sim.on_frame(self.peer, p.encode(p.Input(self.seq, 0.0, move_y, 1.57, False, 1)))


def run(sim: Simulation, clock: ManualClock, walkers: dict[Walker, list[float]]) -> None:
    """Each walker's list of moves (move_y per tick) applied tick by tick."""
    for i in range(max(len(moves) for moves in walkers.values())):
        for walker, moves in walkers.items():
            if i < len(moves):
                walker.step(moves[i])
        clock.advance(DT)
        sim.tick()


def test_a_known_walk_makes_the_exact_visit():
    clock = ManualClock(1000.0, 1000.0)
    sim = Simulation(small_expo(), ServerConfig(max_clients=8), clock)
    ana, bo, cy = Walker(sim, "Ana"), Walker(sim, "Bo"), Walker(sim, "Cy")
    # kz-honey's footprint is x 26..34, y 27..33, open to the south
    ana.put(30.0, 10.0)  # walks in, stands 5 s, walks out
    bo.put(30.0, 10.0)  # walks to 8 m short of the booth: passes by only
    cy.put(90.0, 10.0)  # far away the whole time
    start = clock.monotonic()
    ana_moves = [1.0] * 160 + [0.0] * 100 + [-1.0] * 160
    run(sim, clock, {ana: ana_moves, bo: [1.0] * 72 + [0.0] * 348, cy: [1.0] * 160})
    events, _, _ = sim.activity.drain()
    name = {w.session.visitor_id: who for w, who in ((ana, "ana"), (bo, "bo"), (cy, "cy"))}
    at = {(name[e.visitor], e.kind): e for e in events}
    # y = 10 + 0.125 k after k ticks: 10 m off (passing) at k = 56, 3 m off (in) at k = 112;
    # on the way back 4 m off is passed (out) after 57 ticks south
    assert [(name[e.visitor], e.kind) for e in events] == [("ana", K.BOOTH_PASSED), ("bo", K.BOOTH_PASSED),
                                                     ("ana", K.BOOTH_ENTERED), ("ana", K.BOOTH_LEFT)]
    assert at["ana", K.BOOTH_PASSED].at == pytest.approx(start + 56 * DT, abs=1e-9)  # ticks add up in floats
    assert at["ana", K.BOOTH_ENTERED].at == pytest.approx(start + 112 * DT, abs=1e-9)
    assert at["ana", K.BOOTH_LEFT].dwell == round((160 - 112 + 100 + 57) * DT, 3) == 10.25
    f = booth_figures(events, "kz-honey")
    assert (f.visits, f.unique_visitors, f.dwell_p50, f.funnel) == (1, 1, 10.25, Funnel(2, 1, 0, 0, 0))


def test_catalogue_views_and_a_leaving_visitor_are_recorded():
    clock = ManualClock(1000.0, 1000.0)
    sim = Simulation(small_expo(), ServerConfig(max_clients=8), clock)
    ana = Walker(sim, "Ana")
    ana.put(30.0, 30.0)
    run(sim, clock, {ana: [0.0] * 20})
    sim.on_frame(ana.peer, p.encode(p.QueryStock("kz-honey")))
    sim.on_frame(ana.peer, p.encode(p.ViewProduct("kz-honey", "HONEY-1")))
    sim.on_frame(ana.peer, p.encode(p.ViewProduct("kz-honey", "NOPE")))
    assert ana.peer.take()[-1] == p.Error("unknown_product", "Altai Honey sells no 'NOPE'", p.ViewProduct.TYPE)
    clock.advance(2.0)
    sim.on_frame(ana.peer, p.encode(p.Bye()))
    events, samples, _ = sim.activity.drain()
    assert [e.kind for e in events] == [K.BOOTH_PASSED, K.BOOTH_ENTERED, K.CATALOGUE_OPENED, K.PRODUCT_VIEWED,
                                        K.BOOTH_LEFT]
    assert events[-1].dwell == 2.95  # in from the first tick (1000.05) to the Bye (1003.0)
    assert events[3].sku == "HONEY-1"
    assert [s.at for s in sim.activity.samples] == [] and [b.at for b in samples] == [1000.0, 1001.0]
    assert [row.hall for row in samples[0].rows(sim.activity.hall_ids)] == ["main"]


def test_booth_staff_are_not_visitors_of_anything():
    clock = ManualClock(1000.0, 1000.0)
    config = ServerConfig(max_clients=8, staff_secret="s3cret")
    sim = Simulation(small_expo(), config, clock)
    staff = Walker(sim, "Aigerim", issue_pass("s3cret", "kz-honey"))
    assert staff.session.staff_of == "kz-honey"
    ana = Walker(sim, "Ana")
    staff.put(30.0, 30.0)
    ana.put(30.0, 30.0)
    run(sim, clock, {staff: [0.0] * 30, ana: [0.0] * 30})
    sim.on_frame(staff.peer, p.encode(p.Bye()))
    sim.on_frame(ana.peer, p.encode(p.Bye()))
    events, samples, _ = sim.activity.drain()
    assert {e.visitor for e in events} == {ana.session.visitor_id}
    assert samples and [len(batch) for batch in samples] == [1] * len(samples)  # Ana alone, not her host
