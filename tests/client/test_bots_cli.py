"""expo-bots end to end against a real expo-server process, and its parts."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cancelling import ends_when_cancelled
from processes import BIN

from client.bots.behaviours import parse_mix
from client.bots.bot import Bot
from client.bots.cli import main
from client.bots.stats import Recorder, Threshold, check, summarise
from client.bots.swarm import Swarm, SwarmConfig, bot_name, bot_rng


def test_a_small_run_reports_every_figure(server_url, tmp_path):
    out = io.StringIO()
    report_file = tmp_path / "report.json"
    code = main(["--server", server_url, "--count", "20", "--spawn-rate", "20", "--duration", "6", "--seed", "5",
                 "--progress", "1", "--json", str(report_file), "--threshold", "rtt_p99<500",
                 "--threshold", "errors==0"], out=out)
    text = out.getvalue()
    report = json.loads(report_file.read_text())
    assert code == 0, text
    assert report["bots"] == {"joined": 20, "resumed": 0, "failed": 0}
    assert report["errors"] == {} and report["passed"]
    for name in ("connect", "rtt", "ack", "delivery", "snapshot_interval", "snapshot_jitter",
                 "bytes_in_per_bot", "bytes_out_per_bot"):
        m = report["metrics"][name]
        assert m["count"] > 0 and 0 <= m["p50"] <= m["p95"] <= m["p99"] <= m["max"], (name, m)
    assert report["metrics"]["connect"]["count"] == 20
    assert 40 <= report["metrics"]["snapshot_interval"]["p50"] <= 60  # 20 Hz
    assert report["messages_in"]["Snapshot"] > 20 * 3 * 15 and report["messages_out"]["Hello"] == 20
    assert report["messages_out"]["Bye"] == 20
    assert "bots 20/20 connected" in text and "p99" in text and "threshold rtt_p99<500" in text
    assert set(report["purchases"]) >= {"settled", "failed", "skipped_no_bank"}


def test_a_broken_threshold_fails_the_run_across_processes(server_url, tmp_path):
    out = io.StringIO()
    code = main(["--server", server_url, "--count", "6", "--procs", "2", "--spawn-rate", "30", "--duration", "3",
                 "--mix", "wander", "--quiet", "--name-prefix", "split", "--json", str(tmp_path / "r.json"),
                 "--threshold", "rtt_p99<0.000001", "--threshold", "bots_joined>=6"], out=out)
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 1, out.getvalue()
    assert [t["ok"] for t in report["thresholds"]] == [False, True]
    assert report["bots"]["joined"] == 6  # both processes' bots merged
    assert "BROKEN" in out.getvalue()


def test_bad_arguments_exit_with_usage_errors(capsys):
    for argv in (["--threshold", "nonsense_p99<1"], ["--threshold", "rtt<<1"], ["--mix", "dance=1"], ["--staff", "kz-altai-honey"]):
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == 2


def test_thresholds_compare_in_milliseconds_and_missing_samples_fail():
    rec = Recorder()
    for v in (0.010, 0.020, 0.030):
        rec.sample("rtt", v)
    summaries = summarise(rec)
    assert check(Threshold.parse("rtt_max<=30"), summaries, {}) == (pytest.approx(30.0), True)
    assert check(Threshold.parse("rtt_p50 < 19.5"), summaries, {})[1] is False
    assert check(Threshold.parse("ack_p99<100"), summaries, {})[1] is False  # no samples: not a pass
    assert check(Threshold.parse("error_rate_limited==0"), summaries, {})[1] is True


def test_mix_and_seed_make_runs_reproducible():
    assert parse_mix("wander=3, booth=4,chat") == {"wander": 3.0, "booth": 4.0, "chat": 1.0}
    assert bot_rng(9, 3).random() == bot_rng(9, 3).random() != bot_rng(9, 4).random()
    assert len(bot_name("a-very-long-prefix-indeed", 123456, 1000)) <= 24


async def test_order_keys_replay_with_the_seed_but_not_across_runs():
    """A seed replays a run's choices; its order keys must still be new to a server that saw
    the last run, or the server answers each order with the old one's outcome."""
    def keys(run_id: str) -> list[str]:
        bot = Bot(0, "Keys", "ws://127.0.0.1:9/", random.Random(7), Recorder(), lambda: 0.0, run_id=run_id)
        return [bot.purchase_key() for _ in range(3)]

    assert keys("aa11") == keys("aa11")
    assert not set(keys("aa11")) & set(keys("bb22"))
    assert len(set(keys("aa11"))) == 3


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_swarm_takes_its_worker_processes_with_it(server_url, tmp_path):
    swarm = subprocess.Popen([str(BIN / "expo-bots"), "--server", server_url, "--count", "4", "--procs", "2",
                              "--spawn-rate", "20", "--duration", "120", "--mix", "wander", "--quiet",
                              "--name-prefix", "orphan"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline:  # the two workers (and multiprocessing's tracker)
            workers = {pid for pid in _children(swarm.pid) if b"spawn_main" in (Path("/proc") / str(pid) / "cmdline").read_bytes()}
            time.sleep(0.2)
        assert len(workers) == 2, workers
        time.sleep(2.0)  # their bots are walking
        os.kill(swarm.pid, signal.SIGKILL)
        swarm.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "a worker outlived its killed swarm"
    finally:
        if swarm.poll() is None:
            swarm.kill()
            swarm.wait()


class _JoiningBot:
    """What Swarm._live touches of a bot that wanders."""

    def __init__(self) -> None:
        self.joined = asyncio.Event()
        self.rng = random.Random(1)

    def random_point(self) -> tuple[float, float]:
        return 1.0, 1.0

    async def walk_to(self, x: float, y: float, run: bool = False) -> bool:
        await asyncio.sleep(0.01)
        return True


@pytest.mark.parametrize("turns", range(6))
def test_a_bot_that_joins_as_the_swarm_stops_stops(turns):
    """The swarm's stop cancels every bot's live task and waits for them: one whose join
    lands in the same turn of the loop as the cancel must end too (asyncio.wait_for on
    Python 3.11 swallowed that cancel, and under load the last bots hung the swarm)."""
    async def scenario() -> bool:
        swarm = Swarm(SwarmConfig(url="ws://127.0.0.1:1/", indices=(0,), spawn_rate=1.0, duration=1.0, seed=1,
                                  mix={"wander": 1.0}))
        bot = _JoiningBot()
        live = asyncio.create_task(swarm._live(bot))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # waiting for its join
        bot.joined.set()
        return await ends_when_cancelled(live, turns)

    assert asyncio.run(scenario())
