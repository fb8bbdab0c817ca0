"""A client across a real restart of the world server: the process killed with SIGKILL and
started again on the same port while the client stays connected-or-reconnecting, walking
before and after. It froze: the input seq carried over while the new session's ack began at
0, so every input was held back as unacknowledged (issue 13, defect 4)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from processes import BIN, free_port, start

from client import events as ev
from client.core import ClientCore
from client.threaded import ClientThread
from client.transport import Backoff
from protocol.limits import POSITION_SCALE


def launch(port: int, data_dir: Path) -> subprocess.Popen:
    return start([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning"],
                 f"http://127.0.0.1:{port}/healthz", log=data_dir / f"server-{time.monotonic_ns()}.log")


def wait_for(what, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError


def walks_north(app: ClientThread, metres: float) -> None:
    """Holding 'forward' north moves the avatar ``metres`` as the server has it (the own state
    of its snapshots, not the client's prediction)."""
    app.set_controls(0.0, 1.0, 1.57, False)
    wait_for(lambda: app.core.own is not None)
    before = app.core.own.state.y
    wait_for(lambda: app.core.own.state.y - before >= metres * POSITION_SCALE, timeout=10.0)
    app.set_controls(0.0, 0.0, 1.57, False)


def test_a_client_walks_again_after_the_server_is_killed_and_restarted(tmp_path):
    port = free_port()
    server = launch(port, tmp_path)
    app = ClientThread(ClientCore("Restarter"), f"ws://127.0.0.1:{port}/", backoff=Backoff(initial=0.1, maximum=0.5))
    try:
        app.start()
        wait_for(lambda: any(isinstance(e, ev.Joined) for e in app.poll_events()))
        walks_north(app, 2.0)
        assert app.core.seq >= 10  # a count a restarted server does not share
        server.kill()
        server.wait()
        server = launch(port, tmp_path)
        events: list[ev.Event] = []
        rejoined = wait_for(lambda: next((e for e in (events.extend(app.poll_events()) or events)
                                          if isinstance(e, ev.Joined)), None), timeout=15.0)
        assert not rejoined.resumed  # the new process knows no resume token
        assert any(isinstance(e, ev.Refused) and e.code == "resume_failed" for e in events)
        walks_north(app, 2.0)
        assert not [e for e in app.poll_events() if isinstance(e, ev.ErrorReceived)]
    finally:
        app.stop()
        server.kill()
        server.wait()
