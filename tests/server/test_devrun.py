"""`make run` as typed twice: the second one says the expo is already running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest
from processes import ROOT, free_port, wait_http

from server.devrun import _in_use


def test_a_second_make_run_says_it_is_already_running(tmp_path):
    ports = [free_port(), free_port(), free_port(), free_port()]
    args = [sys.executable, "-m", "server.devrun", "--port", str(ports[0]), "--bank-port", str(ports[1]),
            "--webhook-port", str(ports[2]), "--console-port", str(ports[3])]
    # SIGINT as a terminal's Ctrl-C delivers it, also when the tests run in a background job
    # (which starts with SIGINT ignored, and a Python started so never installs its handler)
    first = subprocess.Popen([*args, "--data-dir", str(tmp_path / "first")], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_http(f"http://127.0.0.1:{ports[0]}/healthz", timeout=90, proc=first)
        second = subprocess.run([*args, "--data-dir", str(tmp_path / "second")], cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 1
        assert "Traceback" not in second.stderr + second.stdout
        assert f"already running on ws://127.0.0.1:{ports[0]}/" in second.stderr
        assert not (tmp_path / "second").exists()  # nothing was started or created
    finally:
        first.send_signal(signal.SIGINT)
        try:
            first.wait(45)  # devrun gives the server and then the bank 15 s each before it kills them
        finally:  # whatever happened, no server or bank of this test outlives it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.pid, signal.SIGKILL)


@pytest.mark.parametrize("which", ["bank", "console"])
def test_a_port_taken_by_another_program_is_named(tmp_path, which):
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        ports = {"bank": free_port(), "console": free_port(), which: port}
        out = subprocess.run([sys.executable, "-m", "server.devrun", "--port", str(free_port()),
                              "--bank-port", str(ports["bank"]), "--console-port", str(ports["console"]),
                              "--data-dir", str(tmp_path / "d")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"the {which} port 127.0.0.1:{port} is in use by another program" in out.stderr


def test_the_console_and_the_webhooks_sit_beside_the_chosen_port(tmp_path):
    """`make run PORT=...` moves the console and the webhook listener with it (before, they
    stayed on 8768 and 8767, so a second expo on other ports clashed with the first)."""
    port = free_port()
    while any(_in_use("127.0.0.1", p) for p in (port, port + 2, port + 3)):
        port = free_port()
    run = subprocess.Popen([sys.executable, "-m", "server.devrun", "--port", str(port), "--bank-port", str(free_port()),
                            "--data-dir", str(tmp_path / "var")], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert run.stdout is not None
        printed: list[str] = []
        while not printed or "Ctrl-C stops both" not in printed[-1]:  # the banner, once all is up
            line = run.stdout.readline()
            assert line, printed  # it ended before saying it was open
            if not line.startswith("{"):  # the logs aside
                printed.append(line)
        assert any(f"console       http://127.0.0.1:{port + 3}/" in line for line in printed), printed
        wait_http(f"http://127.0.0.1:{port + 3}/login", timeout=10, proc=run)  # the console
        assert _in_use("127.0.0.1", port + 2)  # the bank's webhooks are heard there
    finally:
        run.send_signal(signal.SIGINT)
        try:
            run.communicate(timeout=45)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
