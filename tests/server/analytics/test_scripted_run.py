"""The scripted check, as a person runs it: expo-bank, expo-server, ``expo-bots --script``
with bots told exactly where to walk and how long to stay, then ``expo-report``.

The figures are the ones the script implies: visits, unique visitors and the funnel
exactly. Dwell times twice: exactly (to a tick) the ones the positions the server sent each
bot imply (``--tracks``), and no less than the plan (walking in and out at 2.5 m/s
plus the stay, and at most 5 s more: a bot notices its arrival a snapshot and a poll late,
and on a loaded machine steers late). The leads CSV has one row per lead, the other booth's report none of them; the
heatmap and charts are PNG images."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from processes import BIN, ROOT, free_port, start, stop

pytestmark = pytest.mark.e2e

BOOTH = "cn-yunnan-tea"  # footprint x 22..30, y 15..21 in hall silk-road, open to the south
SKU = "CN-PUER-357"
PLATFORM_KEY = "scripted-run-platform-key"
WEBHOOK_SECRET = "scripted-run-webhook-secret"
IN = [26, 17]  # inside the booth; the way in and out is straight along x = 26
AVENUE = 3  # y of the path along the hall's south wall: 12 m from the booth, not passing it


def plan() -> dict:
    away = lambda x: [["walk", x, AVENUE]]  # noqa: E731
    approach = [["walk", 26, AVENUE], ["walk", *IN]]
    return {"bots": [
        {"name": "stayer", "steps": approach + [["stay", 6]] + away(26) + away(60)},
        {"name": "buyer", "steps": approach + [["stay", 3]] + away(26) + [
            ["catalogue", BOOTH], ["view", BOOTH, SKU], ["buy", BOOTH, SKU]] + away(60)},
        {"name": "passer", "steps": [["walk", 26, AVENUE], ["walk", 26, 7], ["walk", 26, AVENUE], ["walk", 60, AVENUE]]},
        {"name": "twice", "steps": approach + [["stay", 2], ["walk", 26, 8], ["walk", *IN], ["stay", 3]] + away(26) + away(60)},
        {"name": "far", "steps": [["walk", 80, AVENUE], ["walk", 60, AVENUE]]},
    ]}


# walking pace 2.5 m/s; in at 3 m off the footprint (y = 12), out past 4 m (y = 11);
# a bot stops within 0.6 m of its target, so "at IN" is y = 16.4
WALK_IN = (16.4 - 12) / 2.5
WALK_OUT = (16.4 - 11) / 2.5
STAYS = {"stayer": [6], "buyer": [3], "twice": [2, 3]}


def off_booth(x: float, y: float) -> float:
    """Metres outside the booth's footprint, as the square-cornered zones count them."""
    return max(22 - x, x - 30, 15 - y, y - 21, 0.0)


def visits_in(track: list) -> list[float]:
    """The visits a track of (server_time, hall, x, y) makes: in at 3 m, out past 4 m."""
    visits, since = [], None
    for t, hall, x, y in track:
        d = off_booth(x, y) if hall == 0 else float("inf")
        if since is None and d <= 3:
            since = t
        elif since is not None and d > 4:
            visits.append(t - since)
            since = None
    return visits


@pytest.mark.slow  # 57 s; the analytics figures are checked in make test by the simulation-level tests
def test_a_scripted_run_gives_exactly_the_figures_it_implies(tmp_path: Path):
    bank_port, webhook_port, port = free_port(), free_port(), free_port()
    bank = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", str(tmp_path / "bank.sqlite3"),
                  "--platform-key", PLATFORM_KEY, "--webhook-secret", WEBHOOK_SECRET,
                  "--webhook-url", f"http://127.0.0.1:{webhook_port}/bank/webhook"],
                 f"http://127.0.0.1:{bank_port}/healthz", log=tmp_path / "bank.log")
    data = tmp_path / "server"
    server = start([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(data), "--no-watch",
                    "--bank-url", f"http://127.0.0.1:{bank_port}", "--webhook-port", str(webhook_port)],
                   f"http://127.0.0.1:{port}/healthz", log=tmp_path / "server.log",
                   env={"EXPO_BANK_PLATFORM_KEY": PLATFORM_KEY, "EXPO_BANK_WEBHOOK_SECRET": WEBHOOK_SECRET})
    try:
        script = tmp_path / "script.json"
        script.write_text(json.dumps(plan()))
        bots = subprocess.run([str(BIN / "expo-bots"), "--server", f"ws://127.0.0.1:{port}/", "--script", str(script),
                               "--tracks", str(tmp_path / "tracks.json")],
                              cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert bots.returncode == 0, bots.stdout + bots.stderr
        assert "errors: none" in bots.stdout
    finally:
        stop(server)  # a clean stop: the writer's last batch goes to the log
        stop(bank)

    out = tmp_path / "report"
    report = subprocess.run([str(BIN / "expo-report"), "--booth", BOOTH, "--out", str(out), "--data-dir", str(data)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    figures = dict(csv.reader(io.StringIO((out / f"{BOOTH}-figures.csv").read_bytes().decode("utf-8-sig"))))
    assert (figures["visits"], figures["unique_visitors"]) == ("4", "3")
    funnel = [figures[f"funnel_{s}"] for s in ("passed", "entered", "opened_catalogue", "ordered", "paid")]
    assert funnel == ["4", "3", "1", "1", "1"]  # passer passed by; only the buyer looked, ordered and paid
    assert figures["revenue_CNY"] == "198.00" and figures["orders"] == "1"

    rows = sqlite3.connect(data / "events.sqlite3").execute(
        "SELECT visitor, dwell FROM events WHERE booth = ? AND kind = 'booth_left' ORDER BY seq", (BOOTH,)).fetchall()
    tracks = json.loads((tmp_path / "tracks.json").read_text())
    from_tracks = {name: visits_in(track) for name, track in tracks.items()}
    assert {name: len(v) for name, v in from_tracks.items()} == {"stayer": 1, "buyer": 1, "passer": 0, "twice": 2, "far": 0}
    visitor_of = {}  # the server's join lines name each visitor id
    for line in (tmp_path / "server.log").read_text().splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("event") == "join":
                visitor_of[record["display_name"]] = record["visitor"]
    for name, visits in from_tracks.items():
        measured = [dwell for visitor, dwell in rows if visitor == visitor_of.get(name)]
        assert len(measured) == len(visits)
        for m, t in zip(measured, visits):
            assert abs(m - t) <= 0.06, (name, measured, visits)  # a tick, and the tick's own jitter
    for name, stays in STAYS.items():  # and each visit holds its stay and the walk in and out
        measured = [dwell for visitor, dwell in rows if visitor == visitor_of.get(name)]
        for m, stay in zip(measured, stays, strict=True):
            assert WALK_IN + stay + WALK_OUT - 0.3 <= m <= WALK_IN + stay + WALK_OUT + 5, (name, measured, stays)

    leads = list(csv.DictReader(io.StringIO((out / f"{BOOTH}-leads.csv").read_bytes().decode("utf-8-sig"))))
    assert [(r["name"], r["sources"], r["orders"], r["looked_at"]) for r in leads] == [
        ("buyer", "order", "1", f"catalogue;{SKU}")]
    for name in ("heatmap", "charts"):
        assert (out / f"{BOOTH}-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = subprocess.run([str(BIN / "expo-report"), "--booth", "kz-altai-honey", "--out", str(tmp_path / "honey"),
                            "--data-dir", str(data)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert other.returncode == 0
    assert "buyer" not in (tmp_path / "honey" / "kz-altai-honey-leads.csv").read_text(encoding="utf-8-sig")
