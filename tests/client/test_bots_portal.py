"""`expo-bots --mix portal=1` as typed, against a cluster of two hall processes that serve one
hall each (the Silk Road hall and the Maritime hall, on a real nats-server and PostgreSQL):
the bots run from the spawn to the packaged expo's portal, are handed off to the other
process, and walk back. The report shows the hand-off's p99, crossings made, none failed,
and every bot still connected as the visitor it was at the end."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import BIN, ROOT, scratch_dir, start_one_hall_each, stop

from client.bots.bot import Crossing
from server.cluster.local import NatsServer, PostgresServer
from world.model import Portal, Vec2

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def two_hall_processes(postgres: PostgresServer) -> Iterator[str]:
    """The first process serves the Silk Road hall (where visitors arrive), the second the Maritime hall."""
    root = scratch_dir("expo-portalbots-")
    nats = NatsServer(root / "nats").start()
    env = {**os.environ, "EXPO_STAFF_SECRET": secrets.token_urlsafe(24), "EXPO_VISITOR_SECRET": secrets.token_urlsafe(24),
           "EXPO_LOG_LEVEL": "warning"}
    procs: list[subprocess.Popen] = []
    try:
        ports = start_one_hall_each(procs, root, nats.url, postgres.dsn, env)
        yield f"ws://127.0.0.1:{ports[0]}/"
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
        nats.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_bots_walk_through_portals_between_two_processes(two_hall_processes: str, tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    done = subprocess.run(
        [str(BIN / "expo-bots"), "--server", two_hall_processes, "--count", "8", "--spawn-rate", "8",
         "--mix", "portal=1", "--duration", "30", "--json", str(report_file), "--threshold", "handoff_p99<2000",
         "--threshold", "portal_failed==0", "--threshold", "bots_unconnected==0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    handoff = [line for line in out.splitlines() if line.startswith("handoff ")]
    assert handoff, out  # the table's row: metric, unit, count, mean, p50, p95, p99, max
    assert handoff[0].split()[1] == "ms" and float(handoff[0].split()[6]) > 0, handoff
    report = json.loads(report_file.read_text())
    portals = report["portals"]
    assert portals["crossings"] >= 8 and portals["transferred"] == portals["crossings"], portals
    assert portals["failed"] == 0 and portals["bots_unconnected"] == 0 and portals["bots_identity_changed"] == 0, portals
    assert report["metrics"]["handoff"]["count"] == portals["crossings"], report["metrics"]["handoff"]
    assert report["bots"]["joined"] == 8 and report["error_total"] == 0, report["errors"]
    assert "threshold handoff_p99<2000:" in out and "BROKEN" not in out, out


@pytest.mark.slow
def test_a_portal_threshold_that_fails_sets_the_exit_code(two_hall_processes: str) -> None:
    """``handoff_p99<0`` cannot hold: the run says BROKEN and exits non-zero (the figure is real)."""
    done = subprocess.run(
        [str(BIN / "expo-bots"), "--server", two_hall_processes, "--count", "2", "--mix", "portal=1",
         "--duration", "20", "--threshold", "handoff_p99<0"],
        cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "threshold handoff_p99<0:" in done.stdout and "BROKEN" in done.stdout, done.stdout


def test_a_crossing_times_the_hand_off_from_the_portal_entered() -> None:
    """The first snapshot in the portal's circle starts the clock, the first in the new hall
    stops it; a hop within one process that no snapshot saw in the circle counts from the
    last snapshot in the old hall."""
    door = Portal("to-maritime", Vec2(116, 36), 2.0, "maritime", Vec2(7, 22))
    walk = Crossing(door, from_hall=0)
    assert walk.on_snapshot(0, 100.0, 36.0, now=1.00) is None  # still on the way
    assert walk.on_snapshot(0, 114.5, 36.0, now=1.05) is None  # in the circle: entered
    assert walk.on_snapshot(0, 114.6, 36.0, now=1.10) is None  # held there while the Transfer is made
    assert walk.on_snapshot(1, 7.0, 22.0, now=1.30) == pytest.approx(0.25)
    assert walk.arrived.is_set() and walk.on_snapshot(1, 7.0, 22.0, now=1.35) is None  # timed once
    hop = Crossing(door, from_hall=0)
    hop.on_snapshot(0, 112.0, 36.0, now=2.00)  # 4 m short; the next tick hops it
    assert hop.on_snapshot(1, 7.0, 22.0, now=2.05) == pytest.approx(0.05)
