"""The seam between the simulation and commerce: requests go out by visitor id after the
simulation's own checks, answers come back through ``deliver``."""

from __future__ import annotations

from support import Harness

import protocol as p
from server.commerce_port import CommerceRequest


class RecordingDesk:
    """A CommerceDesk that keeps what it was asked (the simulation's side is under test)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, CommerceRequest]] = []

    def submit(self, visitor: str, request: CommerceRequest) -> None:
        self.requests.append((visitor, request))


def test_requests_go_to_commerce_by_visitor_and_answers_come_back(harness: Harness):
    desk = harness.sim.commerce = RecordingDesk()
    peer, _ = harness.join("Aru")
    visitor = harness.sim.sessions[peer.session.id].visitor_id
    order = p.Order("kz-honey", "HONEY-1", 1, "k1")
    assert harness.send(peer, order) == []  # nothing yet: commerce answers later
    assert harness.send(peer, p.QueryInventory()) == []
    assert desk.requests == [(visitor, order), (visitor, p.QueryInventory())]
    harness.sim.deliver(visitor, p.Inventory(()))
    assert peer.take() == [p.Inventory(())]


def test_unknown_booths_and_products_are_refused_before_commerce(harness: Harness):
    desk = harness.sim.commerce = RecordingDesk()
    peer, _ = harness.join("Aru")
    (error,) = harness.send(peer, p.Order("nowhere", "HONEY-1", 1, "k1"))
    assert (error.code, error.ref) == ("unknown_booth", p.Order.TYPE)
    (error,) = harness.send(peer, p.Order("kz-honey", "NOPE", 1, "k2"))
    assert error.code == "unknown_product"
    (error,) = harness.send(peer, p.QueryStock("nowhere"))
    assert error.code == "unknown_booth"
    assert desk.requests == []


def test_deliver_to_a_visitor_without_a_connection_is_dropped(harness: Harness):
    peer, _ = harness.join("Aru")
    visitor = peer.session.visitor_id
    harness.sim.on_disconnect(peer)
    harness.sim.deliver(visitor, p.Inventory(()))  # detached: nobody to tell, nothing raised
    harness.sim.deliver("someone-else", p.Inventory(()))
    assert peer.take() == []


def test_each_request_type_is_rate_limited_per_visitor(harness: Harness):
    desk = harness.sim.commerce = RecordingDesk()
    aru, _ = harness.join("Aru")
    bea, _ = harness.join("Bea")
    replies = [harness.send(aru, p.Order("kz-honey", "HONEY-1", 1, f"k{i}")) for i in range(13)]
    refused = [r[0] for r in replies if r]
    assert len(desk.requests) == 10 and len(refused) == 3  # a burst of 10, then 2 a second
    assert all((e.code, e.ref) == ("rate_limited", p.Order.TYPE) for e in refused)
    assert harness.send(aru, p.QueryInventory()) == []  # another type has its own bucket
    assert harness.send(bea, p.Order("kz-honey", "HONEY-1", 1, "b1")) == []  # another visitor too
    harness.clock.advance(1.0)
    assert harness.send(aru, p.Order("kz-honey", "HONEY-1", 1, "later")) == []
    for i in range(20):
        harness.send(aru, p.Ping(float(i)))
    pongs = [m for m in aru.received if isinstance(m, p.Pong)]
    assert len(pongs) == 5  # pings too: a burst of 5
