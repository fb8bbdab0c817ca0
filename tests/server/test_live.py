"""The organiser's live view of several hall processes added up: each process's avatars
named apart, counts and crowd squares summed, and a frame read back as it was sent."""

from __future__ import annotations

import json

import pytest

from server.cluster.live import decode, encode
from server.live import Census, LiveFrame, merged


def frame(rows: list[list[int]], names: dict, per_hall: dict, per_booth: dict, cells: list) -> LiveFrame:
    return LiveFrame({"silk-road": rows, "maritime": []}, names, Census(per_hall, per_booth, cells))


OWN = frame([[7, 100, 200, 0]], {7: "Aru"}, {"silk-road": 1, "maritime": 0}, {"kz-honey": 1}, [("silk-road", 1, 2, 25)])
OTHER = frame([[7, 105, 210, 1]], {7: "Bea"}, {"silk-road": 1, "maritime": 0}, {"kz-honey": 1, "cn-tea": 0},
              [("silk-road", 1, 2, 20), ("silk-road", 4, 4, 1)])


def test_each_process_numbers_its_own_avatars_and_the_counts_add_up():
    view = merged(OWN, [("b1", OTHER)])
    assert view.positions["silk-road"] == [[7, 100, 200, 0], ["b1:7", 105, 210, 1]]  # two entity 7s, apart
    assert view.names == {7: "Aru", "b1:7": "Bea"}
    assert view.census.per_hall == {"silk-road": 2, "maritime": 0}
    assert view.census.per_booth == {"kz-honey": 2, "cn-tea": 0}
    assert view.census.cells == [("silk-road", 1, 2, 45), ("silk-road", 4, 4, 1)]  # 25 + 20 in one square: a crowd
    assert merged(OWN, []) == LiveFrame(OWN.positions, OWN.names, OWN.census)


def test_a_frame_reads_back_as_sent_and_anything_else_is_refused():
    sent = json.loads(json.dumps({"origin": "b1", **encode(OTHER)}))
    assert decode(sent) == OTHER
    for broken in ({**sent, "positions": {"silk-road": [["x", 1, 2, 0]]}}, {**sent, "cells": [[1, 2]]},
                   {k: v for k, v in sent.items() if k != "names"}):
        with pytest.raises((ValueError, KeyError, TypeError)):
            decode(broken)
