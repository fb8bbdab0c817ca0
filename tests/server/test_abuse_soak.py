"""The abuse soak (issue 14 item 6), as benchmarks/abuse.py runs it with smaller counts:
real bank and server processes on loopback; every figure within its goal, or the run
fails with the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_abuse_leaves_walkers_buyers_and_visitors_unharmed(tmp_path):
    report = tmp_path / "abuse.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "abuse.py"), "--scale", "0.3", "--walkers", "10",
                           "--json", str(report)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["failed"] == []
    burst = result["results"]["burst"]["answers"]
    assert "unanswered" not in burst  # every order answered, or the blaster's connection cut
    assert burst.get("rate_limited", 0) > 0 or burst.get("busy", 0) > 0  # the burst met a bound
    assert result["results"]["hoard"]["most_held_by_one"] <= 3  # the cap on open orders per visitor
