"""The abuse soak (issue 14), as benchmarks/abuse.py runs it with smaller counts: every attack
of the issue at once (orders in a burst, throwaway names hoarding stock, join-and-vanish
seats, Hello-less blasters, slowloris, non-reading visitors, fuzzed frames, the bank's
account flood and huge bodies, a namesake, a stranger paying an intent) against real bank
and server processes on loopback, while walkers, joins and /healthz are measured; every
figure within its goal, or the run fails with the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_every_attack_at_once_leaves_walkers_buyers_and_visitors_unharmed(tmp_path):
    report = tmp_path / "abuse.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "abuse.py"), "--scale", "0.3", "--walkers", "10",
                           "--storm-seconds", "15", "--json", str(report)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["failed"] == []
    attacks = result["results"]
    burst = attacks["burst"]["answers"]
    assert "unanswered" not in burst  # every order answered, or the blaster's connection cut
    assert burst.get("rate_limited", 0) + burst.get("busy", 0) + burst.get("failed", 0) > 0  # the burst met a bound
    assert attacks["hoard"]["most_held_by_one"] <= 3  # the cap on open orders per visitor
    assert attacks["nonreaders"]["dropped_too_slow"] == attacks["nonreaders"]["of"]
    assert "never_cut" not in attacks["blasters"] and "never_cut" not in attacks["slowloris"]
    assert attacks["identity"]["ok"] and attacks["intent"]["ok"]
    assert attacks["bank"]["64MiB_to_bank"].startswith("413") and attacks["bank"]["256MiB_to_webhook"].startswith("413")
    assert result["tracebacks"] == {"server": 0, "bank": 0}
