"""`expo-server` as an operator types it: the help, staff passes and their secret (issue 13,
defects 2 and 3: --staff-pass crashed, and the secret had a public default)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess

import pytest
from processes import BIN, free_port, start, stop
from websockets.asyncio.client import connect

import protocol as p
from server.staff import issue_pass

SERVER = str(BIN / "expo-server")
BOOTH = "kz-altai-honey"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EXPO_")}
    return subprocess.run([SERVER, *args], capture_output=True, text=True, timeout=60, env={**environ, **(env or {})})


def test_help_says_each_default_once():
    out = run("--help").stdout
    assert "(default: None)" not in out and "(default: False)" not in out
    assert out.count("(default: the packaged Silk Road expo)") == 1
    assert "(default: info)" in out and "(default: 8765)" in out


def test_a_pass_is_signed_with_a_secret_made_at_first_use_and_kept(tmp_path):
    first = run("--staff-pass", BOOTH, "--data-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    key = tmp_path / "staff.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = key.read_text().strip()
    assert len(secret) >= 40 and first.stdout.strip() == issue_pass(secret, BOOTH)
    again = run("--staff-pass", BOOTH, "--data-dir", str(tmp_path))
    assert again.stdout == first.stdout  # the same secret, so passes outlive a restart
    elsewhere = run("--staff-pass", BOOTH, "--data-dir", str(tmp_path / "other"))
    assert elsewhere.stdout != first.stdout  # no secret is shared by default


def test_a_secret_from_the_environment_is_used_and_no_file_made(tmp_path):
    out = run("--staff-pass", BOOTH, "--data-dir", str(tmp_path), env={"EXPO_STAFF_SECRET": "s3cret-from-ops"})
    assert out.stdout.strip() == issue_pass("s3cret-from-ops", BOOTH)
    assert not (tmp_path / "staff.key").exists()


def test_a_booth_the_expo_lacks_gets_the_nearest_ids_and_no_pass(tmp_path):
    out = run("--staff-pass", "kz-altai-hony", "--data-dir", str(tmp_path))
    assert out.returncode == 2 and out.stdout == ""
    assert "no booth 'kz-altai-hony'" in out.stderr and BOOTH in out.stderr


def test_an_empty_secret_file_is_a_clear_error(tmp_path):
    (tmp_path / "staff.key").write_text("\n")
    out = run("--staff-pass", BOOTH, "--data-dir", str(tmp_path))
    assert out.returncode == 1 and "staff.key is empty" in out.stderr and "Traceback" not in out.stderr


@pytest.fixture
def served(tmp_path):
    """A server started as an operator would, with a pass printed beforehand for the same data."""
    staff_pass = run("--staff-pass", BOOTH, "--data-dir", str(tmp_path)).stdout.strip()
    port = free_port()
    proc = start([SERVER, "--port", str(port), "--data-dir", str(tmp_path), "--log-level", "warning"],
                 f"http://127.0.0.1:{port}/healthz", log=tmp_path / "server.log")
    yield f"ws://127.0.0.1:{port}/", staff_pass
    stop(proc)


async def hello(url: str, name: str, staff_pass: str):
    # max_queue=None: reads on while the test looks away (a full queue stops reading; close() then waits 10 s)
    ws = await connect(url, compression=None, max_queue=None)
    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0x336699, 0, None, staff_pass)))
    return ws, p.decode_server(await ws.recv())


async def test_a_printed_pass_makes_its_holder_staff_and_any_other_is_refused(served):
    url, staff_pass = served
    ws, welcome = await hello(url, "Aigerim", staff_pass)
    assert isinstance(welcome, p.Welcome)
    await ws.send(p.encode(p.Chat(p.Channel.ANNOUNCEMENT, "Tasting at 3 pm!")))
    async with asyncio.timeout(5):
        while not isinstance(message := p.decode_server(await ws.recv()), p.ChatLine | p.Error):
            pass
    assert isinstance(message, p.ChatLine) and message.booth == BOOTH
    await ws.close()
    for forged in ("x:y", f"{BOOTH}:000000000000000000000000", "李:伟", ":", f"{BOOTH}:é"):
        ws, refused = await hello(url, "Mallory", forged)
        assert refused == p.Refused("not_allowed", "that staff pass is not valid"), forged
        await ws.wait_closed()
        assert ws.close_code != 1011, forged


def test_a_console_url_that_is_not_http_is_refused_before_anything_starts(tmp_path):
    out = run("--console-url", "expo.example.org/console", "--data-dir", str(tmp_path))
    assert out.returncode == 2 and "--console-url takes an http:// or https:// URL" in out.stderr
    assert not (tmp_path / "staff.key").exists()  # nothing started, nothing made
