"""The desktop client as a person runs it, relaunched: a real ``expo-client`` process in a
real (Xvfb) window joins, is killed like a crash, and starts again with the same config
directory; the server must see the same visitor, not a stranger or a refused name. Another
config directory is another visitor, even under the same name."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from client_link import default_expo
from processes import BIN

from client.desktop.local_server import LocalServer
from server.config import ServerConfig

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run")]


def launch(url: str, config_dir: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["xvfb-run", "-a", "-s", "-screen 0 800x600x24", str(BIN / "expo-client"), "--server", url,
         "--name", "Li Wei", "--config-dir", str(config_dir), "--size", "640x360"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def crash(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def connected_visitors(srv: LocalServer) -> dict[str, str]:
    """visitor id -> shown name, of the sessions with a live connection."""
    sessions = list(srv.server.sim.sessions.values())
    return {s.visitor_id: s.name for s in sessions if s.peer is not None}


def wait_for(predicate, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError("the client did not join in time")


def test_a_relaunched_client_is_the_same_visitor(tmp_path):
    config = ServerConfig(port=0, data_dir=tmp_path / "server", watch_world=False)
    mine, theirs = tmp_path / "config-mine", tmp_path / "config-theirs"
    with LocalServer(default_expo(), config) as srv:
        identity = mine / "identity.json"
        first = launch(srv.url, mine, tmp_path / "first.log")
        try:
            (visitor,) = wait_for(lambda: connected_visitors(srv))
            wait_for(identity.exists, 30)  # the client keeps what the Welcome gave it
        finally:
            crash(first)
        assert stat.S_IMODE(identity.stat().st_mode) == 0o600
        wait_for(lambda: not connected_visitors(srv), 30)  # the server noticed the crash

        again = launch(srv.url, mine, tmp_path / "again.log")
        other = launch(srv.url, theirs, tmp_path / "other.log")
        try:
            joined = wait_for(lambda: (found if len(found := connected_visitors(srv)) == 2 else None))
        finally:
            crash(again)
            crash(other)
        assert visitor in joined  # the same visitor, back on the avatar it left
        (stranger,) = set(joined) - {visitor}
        assert joined[visitor] == "Li Wei" and joined[stranger].startswith("Li Wei #")
