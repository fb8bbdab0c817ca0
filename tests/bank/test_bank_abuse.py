"""Nothing free exhausts the bank: bodies are bounded before they are read, anonymous account
opening is rate-limited, welcome grants stop at the expo's budget, and a vanished peer is one
JSON log line. The body tests run against a real `expo-bank serve` over a real socket."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from bankutil import BASE, PLATFORM_KEY, key, platform_headers
from processes import BIN

from bank.api import create_app
from bank.clock import ManualClock
from bank.ratelimit import Limit
from bank.service import Bank, BankConfig
from bank.sqlite_store import SQLiteStorage

BIG = 64 * 1024 * 1024


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def read_response(sock: socket.socket, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def request_head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Idempotency-Key: {uuid.uuid4()}", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_declared_64_mib_body_is_refused_before_it_is_read(serve_bank) -> None:
    url, proc, _ = serve_bank()
    before = rss_kib(proc.pid)
    with connect(url) as sock:
        sock.sendall(request_head("/v1/accounts", Content_Length=str(BIG)))
        status, headers, body = read_response(sock)  # not one byte of the body sent yet
        assert status == 413
        assert json.loads(body)["error"]["code"] == "body_too_large"
        sent = 0
        try:  # the server stops reading: pushing the body fails or stalls, it never takes 64 MiB
            sock.settimeout(2)
            block = b"x" * (1024 * 1024)
            while sent < BIG:
                sock.sendall(block)
                sent += len(block)
        except OSError:
            pass
    assert sent < BIG
    assert rss_kib(proc.pid) - before < 8 * 1024, "RSS grew by 8 MiB or more"
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_chunked_body_is_cut_at_the_limit(serve_bank) -> None:
    url, proc, _ = serve_bank("--max-body-bytes", "4096")
    before = rss_kib(proc.pid)
    status = None
    with connect(url) as sock:
        sock.sendall(request_head("/v1/merchant_accounts", Transfer_Encoding="chunked",
                                  Authorization=f"Bearer {PLATFORM_KEY}"))
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < BIG:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                if select.select([sock], [], [], 0)[0]:
                    break
        except OSError:
            pass
        status, _, body = read_response(sock)
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"
    assert sent < BIG
    assert rss_kib(proc.pid) - before < 8 * 1024


def test_small_bodies_still_work_on_every_post(serve_bank) -> None:
    url, _, _ = serve_bank("--max-body-bytes", "300")
    ok = httpx.post(f"{url}/v1/accounts", json={"display_name": "Aru", "currency": "KZT"}, headers=key())
    assert ok.status_code == 201
    padded = httpx.post(f"{url}/v1/merchant_accounts", headers=platform_headers(),
                        json={"display_name": "x" * 80, "currency": "MYR", "reference": "r" * 100,
                              "pad": "p" * 300})
    assert padded.status_code == 413 and padded.json()["error"]["code"] == "body_too_large"


def test_a_peer_that_vanishes_mid_body_is_one_json_line(serve_bank) -> None:
    url, _, log = serve_bank()
    with connect(url) as sock:
        sock.sendall(request_head("/v1/accounts", Content_Length="500") + b'{"display_name": ')
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "client_disconnect" not in log.read_text():
        time.sleep(0.05)
    text = log.read_text()
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if "client_disconnect" in line]
    assert len(lines) == 1, text
    event = json.loads(lines[0])  # the whole line is JSON
    assert event["event"] == "client_disconnect" and event["path"] == "/v1/accounts"
    assert httpx.get(f"{url}/healthz").status_code == 200


# -- anonymous opening: rate limits and the welcome budget (in-process, a manual clock)

def _app(tmp_path: Path, clock: ManualClock, **config: object):
    storage = SQLiteStorage(tmp_path / "bank.sqlite3")
    return create_app(Bank(storage, clock, BankConfig(**config)), PLATFORM_KEY, background=False), storage


async def _open(app, address: str, currency: str = "MYR") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        return await client.post("/v1/accounts", json={"display_name": "v", "currency": currency}, headers=key())


async def test_one_address_cannot_open_accounts_without_limit(tmp_path: Path) -> None:
    clock = ManualClock()
    app, storage = _app(tmp_path, clock, open_per_address=Limit(5, 0.5), open_overall=Limit(100, 100))
    try:
        assert [(await _open(app, "10.0.0.1")).status_code for _ in range(5)] == [201] * 5
        refused = await _open(app, "10.0.0.1")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await _open(app, "10.0.0.2")).status_code == 201  # another address is not affected
        clock.advance(2)  # one token back at 0.5/s
        assert (await _open(app, "10.0.0.1")).status_code == 201
        assert (await _open(app, "10.0.0.1")).status_code == 429
        with storage.reading() as tx:
            assert sum(1 for a in tx.accounts() if a.kind == "visitor") == 7
    finally:
        storage.close()


async def test_many_addresses_together_hit_the_overall_limit(tmp_path: Path) -> None:
    clock = ManualClock()
    app, storage = _app(tmp_path, clock, open_per_address=Limit(5, 1), open_overall=Limit(10, 1))
    try:
        codes = [(await _open(app, f"10.1.0.{n}")).status_code for n in range(30)]
        assert codes == [201] * 10 + [429] * 20
    finally:
        storage.close()


async def test_welcome_grants_stop_at_the_expo_budget(tmp_path: Path) -> None:
    clock = ManualClock()
    app, storage = _app(tmp_path, clock, welcome_usd=1000, welcome_budget_usd=2500)
    try:
        opened = [(await _open(app, f"10.2.0.{n}", "USD")).json() for n in range(4)]
        assert [o["welcome_usd"] for o in opened] == [1000, 1000, 0, 0]
        assert [o["account"]["balance"] for o in opened] == [100_000, 100_000, 0, 0]
    finally:
        storage.close()
    shown = subprocess.run([str(BIN / "expo-bank"), "accounts", "--db", str(tmp_path / "bank.sqlite3")],
                           capture_output=True, text=True, check=True).stdout
    assert "welcome grants: USD 2,000 granted in all" in shown


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        Limit(0, 1)
    with pytest.raises(ValueError):
        Limit(1, 0)
    bad = subprocess.run([str(BIN / "expo-bank"), "serve", "--open-limit", "lots"], capture_output=True, text=True)
    assert bad.returncode == 2 and "BURST/PER_SECOND" in bad.stderr
