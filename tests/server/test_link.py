"""The connection state table: every allowed transition, nothing else; one close rule per reason."""

from __future__ import annotations

import pytest

import protocol as p
from server.link import TRANSITIONS, BadTransition, LinkState, check_transition, close_reason_text, close_rule


def test_only_the_table_s_transitions_are_allowed():
    for current in LinkState:
        for to in LinkState:
            if to in TRANSITIONS[current]:
                check_transition(current, to)
            else:
                with pytest.raises(BadTransition):
                    check_transition(current, to)
    assert not TRANSITIONS[LinkState.CLOSED]  # closed is final


def test_close_codes_come_from_one_table():
    assert close_rule(None).code == 1000
    assert close_rule(p.ErrorCode.SHUTDOWN).code == 1001
    assert not close_rule(p.ErrorCode.TOO_SLOW).handshake  # no closing handshake fits a full buffer
    assert close_rule(p.ErrorCode.NAME_TAKEN).code == 1008


def test_a_close_reason_fits_a_close_frame_on_a_character_boundary():
    assert len(close_reason_text("é" * 100).encode()) <= 120
    assert close_reason_text("é" * 100) == "é" * 60
