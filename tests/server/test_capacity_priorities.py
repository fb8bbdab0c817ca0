"""benchmarks/capacity.py's measuring of the load generator: the bots below the server's
priority however the run is niced, and their CPU read over a window from their process group."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "benchmarks"))  # not a package

from capacity import Priorities, _idle, group_cpu  # noqa: E402


def test_bots_are_niced_below_the_server_and_under_sched_idle_where_nice_runs_out():
    plain = Priorities.for_bots(10, base=0)
    assert (plain.nice, plain.idle) == (10, False)
    assert plain.describe() == "server at nice 0, bots at nice 10"
    niced = Priorities.for_bots(10, base=19)  # `nice -n 19 capacity.py`: nice 29 would be 19, the server's
    assert niced.idle
    assert "bots at nice 19 under SCHED_IDLE" in niced.describe()
    assert not Priorities.for_bots(0, base=19).idle  # --bots-nice 0 asks for the server's equals
    assert not Priorities.for_bots(9, base=10).idle


def test_the_idle_policy_reaches_the_bots_and_their_workers():
    code = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import os; print(os.sched_getscheduler(0))'])"
    out = subprocess.run([sys.executable, "-c", code], preexec_fn=_idle, capture_output=True, text=True, check=True)
    assert int(out.stdout) == os.SCHED_IDLE


def test_the_group_cpu_counts_every_live_process_of_the_swarm_group():
    burn = "sum(range(30_000_000)); print('done', flush=True); input()"
    # a leader that starts a worker which burns CPU, both waiting on stdin once done
    leader = ("import subprocess, sys; w = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdout=subprocess.PIPE,"
              " stderr=subprocess.DEVNULL);"
              " print(w.stdout.readline().decode().strip(), flush=True); input(); w.kill()")
    proc = subprocess.Popen([sys.executable, "-c", leader, burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "done"
        own = sum(int(f) for f in Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
        cpu = group_cpu(proc.pid)
        assert cpu >= 0.1  # the worker's burn, not only the leader's own start
        assert cpu > own / os.sysconf("SC_CLK_TCK")
    finally:
        proc.kill()
        proc.wait()
