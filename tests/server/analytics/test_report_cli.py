"""expo-report as typed: a report from a data directory written by the stores, and clear
errors (exit 2) for an unknown booth, a directory with no event log, a bad --db."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import numpy as np
from processes import BIN, ROOT

from server.analytics.events import Event, EventKind, PositionSecond
from server.analytics.store import SQLiteEventLog
from server.exhibitors import EVENTS_FILE, PEOPLE_FILE
from server.people.cards import make_card
from server.people.leads import LeadSource, Touch
from server.people.store import SQLitePeopleStore

K = EventKind


def report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "expo-report"), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_a_report_from_a_data_directory(tmp_path: Path):
    log = SQLiteEventLog(tmp_path / EVENTS_FILE)
    log.append([Event(100.0, K.BOOTH_PASSED, "li", "cn-yunnan-tea", "silk-road"),
                Event(101.0, K.BOOTH_ENTERED, "li", "cn-yunnan-tea", "silk-road"),
                Event(131.0, K.BOOTH_LEFT, "li", "cn-yunnan-tea", "silk-road", dwell=30.0),
                Event(125.0, K.QUOTE_REQUESTED, "li", "cn-yunnan-tea", "silk-road", sku="PUER-1", ref="deal_1")],
               [PositionSecond.of(100.0 + t, "silk-road", np.array([[26.0, 17.0]])) for t in range(30)])
    people = SQLitePeopleStore(tmp_path / PEOPLE_FILE)
    people.set_card("li", make_card("李伟", "Silk Co", "CN", "Buyer", "zh-Hans", email="li@example.cn"), 100.0)
    people.add_touch(Touch("cn-yunnan-tea", "li", "Li", 120.0, LeadSource.CARD, "xch_1"))
    done = report("--booth", "cn-yunnan-tea", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "1 visits by 1 visitors" in done.stdout and "1 leads" in done.stdout
    assert "0 meetings booked, 1 quotes requested" in done.stdout  # the B2B side in the summary too
    leads = list(csv.DictReader(io.StringIO((tmp_path / "out" / "cn-yunnan-tea-leads.csv").read_text("utf-8-sig"))))
    assert [(r["name"], r["email"], r["sources"]) for r in leads] == [("李伟", "li@example.cn", "card")]
    figures = dict(csv.reader(io.StringIO((tmp_path / "out" / "cn-yunnan-tea-figures.csv").read_text("utf-8-sig"))))
    assert figures["dwell_p50_seconds"] == "30.000" and figures["funnel_passed"] == "1"


def test_bad_arguments_are_refused_with_a_reason(tmp_path: Path):
    SQLiteEventLog(tmp_path / EVENTS_FILE).close()
    unknown = report("--booth", "no-such-booth", "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path))
    assert unknown.returncode == 2 and "no booth 'no-such-booth'" in unknown.stderr and "cn-yunnan-tea" in unknown.stderr
    empty = report("--booth", "cn-yunnan-tea", "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path / "nothing"))
    assert empty.returncode == 2 and "no event log" in empty.stderr
    bad_db = report("--booth", "cn-yunnan-tea", "--out", str(tmp_path / "o"), "--db", "mysql://x")
    assert bad_db.returncode == 2 and "postgresql://" in bad_db.stderr
    cell = report("--booth", "cn-yunnan-tea", "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path), "--cell", "0")
    assert cell.returncode == 2 and "--cell" in cell.stderr
    assert not (tmp_path / "o").exists()  # nothing written for a refused report
