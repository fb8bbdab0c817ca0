"""The gate's refusals, sans I/O: a refused visitor is told why, and a connection that is
closing already (its client went, or the process is stopping) is left to close: refusing it
again is no transition (it raised BadTransition 'closing to closing' under load)."""

from __future__ import annotations

import protocol as p
from server.cluster.gate import _refuse
from server.link import LinkState
from server.simulation import Peer


def test_a_refusal_says_why_and_closes():
    peer = Peer()
    _refuse(peer, "every instance of the hall 'silk-road' is full")
    refused = p.decode_server(peer.outbox[-1])
    assert isinstance(refused, p.Refused) and refused.code == p.ErrorCode.SERVER_FULL.value
    assert refused.message == "every instance of the hall 'silk-road' is full"
    assert peer.state is LinkState.CLOSING and peer.close_request == (p.ErrorCode.SERVER_FULL, refused.message)


def test_refusing_a_connection_that_is_closing_already_does_nothing():
    peer = Peer()
    peer.close(p.ErrorCode.SHUTDOWN, "the expo is closing")
    sent = list(peer.outbox)
    _refuse(peer, "every instance of the hall 'silk-road' is full")
    assert peer.outbox == sent and peer.close_request == (p.ErrorCode.SHUTDOWN, "the expo is closing")
    peer.transition(LinkState.CLOSED)
    _refuse(peer, "the expo's directory does not answer; try again in a few seconds")
    assert peer.state is LinkState.CLOSED and peer.outbox == sent
