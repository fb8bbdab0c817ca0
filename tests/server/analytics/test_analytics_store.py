"""The SQLite event log: round trips, append-only, all-or-nothing batches, and no
acknowledged event lost when the writing process is SIGKILLed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from processes import ROOT

from server.analytics.aggregate import all_booth_figures
from server.analytics.events import Event, EventKind, PositionSecond
from server.analytics.store import SQLiteEventLog

K = EventKind


def sample_log() -> list[Event]:
    return [
        Event(10.0, K.BOOTH_PASSED, "a", "b1", "main"),
        Event(11.0, K.BOOTH_ENTERED, "a", "b1", "main"),
        Event(20.5, K.BOOTH_LEFT, "a", "b1", "main", dwell=9.5),
        Event(21.0, K.PRODUCT_VIEWED, "a", "b1", "main", sku="TEA-1"),
        Event(22.0, K.ORDER_PAID, "a", "b1", "main", sku="TEA-1", ref="o1", amount_minor=1250, currency="CNY"),
        Event(23.0, K.CARD_EXCHANGED, "a", "b2", "annex", ref="x1", other="staff-b2"),
    ]


def test_events_round_trip_in_order_with_their_seq(tmp_path: Path):
    log = SQLiteEventLog(tmp_path / "events.db")
    stored = log.append(sample_log()[:3], [PositionSecond.of(10.0, "main", np.array([[1.5, 2.5], [3.0, 4.0]]))])
    stored += log.append(sample_log()[3:])
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5, 6]
    log.close()
    again = SQLiteEventLog(tmp_path / "events.db")
    assert again.events() == stored
    assert again.events("b2") == stored[5:] and again.events(after_seq=4) == stored[4:]
    assert all_booth_figures(again.events()) == all_booth_figures(sample_log())
    assert again.positions("main").tolist() == [[1.5, 2.5], [3.0, 4.0]]
    assert again.positions("main", start=10.5).shape == (0, 2) and len(again.positions("annex")) == 0
    assert again.booths() == ["b1", "b2"]


def test_the_log_refuses_updates_and_deletes(tmp_path: Path):
    log = SQLiteEventLog(tmp_path / "events.db")
    log.append(sample_log())
    for sql in ("UPDATE events SET dwell = 0", "DELETE FROM events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            log.db.execute(sql)
    assert len(log.events()) == 6


def test_a_batch_is_stored_whole_or_not_at_all(tmp_path: Path):
    log = SQLiteEventLog(tmp_path / "events.db")
    (first,) = log.append(sample_log()[:1])
    with pytest.raises(ValueError, match="stored already"):
        log.append([*sample_log()[1:3], first])
    log.db.execute("CREATE TRIGGER refuse_annex BEFORE INSERT ON events WHEN NEW.hall = 'annex' "
                   "BEGIN SELECT RAISE(ABORT, 'no annex'); END")
    with pytest.raises(sqlite3.IntegrityError, match="no annex"):
        log.append(sample_log()[1:], [PositionSecond.of(1.0, "main", np.zeros((1, 2)))])
    assert log.events() == [first] and len(log.positions("main")) == 0


def test_no_acknowledged_event_is_lost_when_the_writer_is_killed(tmp_path: Path):
    path = tmp_path / "events.db"
    for round_ in range(3):  # the same file, killed three times at different points
        proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("append_events.py")), str(path)],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
        acked: list[int] = []
        for line in proc.stdout:
            acked += [int(s) for s in line.split(",")]
            if len(acked) >= 150 + 50 * round_:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log = SQLiteEventLog(path)
        stored = {e.seq: e for e in log.events()}
        missing = [seq for seq in acked if seq not in stored]
        assert missing == [], f"round {round_}: acknowledged and lost: {missing[:10]}"
        assert all(stored[s].kind is K.BOOTH_LEFT for s in acked)
        assert sorted(stored) == list(range(1, len(stored) + 1))  # no holes: batches are whole
        log.close()


def test_position_samples_older_than_the_retention_go_once_an_hour_and_events_stay(tmp_path: Path):
    """The retention rule: the heatmap's samples are kept 30 days, pruned at most hourly;
    the event log (visits, dwell, the funnel) is never pruned."""
    import asyncio

    from server.analytics.recorder import ActivityRecorder
    from server.analytics.store import POSITION_RETENTION
    from server.analytics.writer import PRUNE_EVERY, ActivityWriter
    from server.dbthread import DatabaseThread
    from world.loader import default_expo_path, load_expo

    day, now = 86400.0, 100 * 86400.0
    log = SQLiteEventLog(tmp_path / "events.db")
    log.append(sample_log(), [PositionSecond.of(at, "main", np.array([[1.0, at]]))
                              for at in (now - 31 * day, now - 30 * day - 1, now - 30 * day + 1, now - 1)])
    clock = [now]
    db = DatabaseThread("test-db")
    writer = ActivityWriter(ActivityRecorder(load_expo(default_expo_path()), 8, lambda: clock[0]), log, db, wall=lambda: clock[0])
    try:
        assert writer.retention == POSITION_RETENTION == 30 * day
        assert asyncio.run(writer.prune()) == 2
        assert sorted(log.positions("main")[:, 1]) == [now - 30 * day + 1, now - 1]
        clock[0] = now + 2 * day  # two more days, but within the hour of the last pruning nothing runs
        writer._pruned_at = clock[0] - PRUNE_EVERY / 2
        assert asyncio.run(writer.prune()) == 0 and len(log.positions("main")) == 2
        clock[0] += PRUNE_EVERY
        assert asyncio.run(writer.prune()) == 1  # the sample now 32 days old
        assert len(log.events()) == len(sample_log())  # every event kept
    finally:
        db.close()
        log.close()
