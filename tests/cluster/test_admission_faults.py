"""`expo-server --cluster` admitting visitors when the directory misbehaves, as a visitor
sees it over the protocol (a real hall process on a real nats-server and PostgreSQL): a
process whose directory record expired (a late heartbeat on a loaded machine) still admits
newcomers to its instance, which has room; and a Hello whose seat cannot be had because NATS
does not answer gets a Refused that says so, not silence and a 'no hello' timeout."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import nats
import pytest
from processes import BIN, free_port, scratch_dir, stop, wait_http
from websockets.asyncio.client import connect

import protocol as p
from server.cluster.local import NatsServer
from server.cluster.node import PROCESSES

pytestmark = pytest.mark.e2e


@pytest.fixture
def hall_process(nats_factory, fresh_database: str):
    nats_server: NatsServer = nats_factory()
    root = scratch_dir("expo-admission-")
    port = free_port()
    proc = subprocess.Popen([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(root / "data"),
                             "--cluster", nats_server.url, "--db", fresh_database, "--no-watch"],
                            stdout=open(root / "server.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=240, proc=proc)
        yield f"ws://127.0.0.1:{port}/", nats_server, root / "server.log"
    finally:
        if nats_server.proc is not None and nats_server.proc.poll() is None:
            os.kill(nats_server.proc.pid, signal.SIGCONT)
        stop(proc)


async def first_answer(url: str, name: str, timeout: float) -> p.Message:
    """Hello, then the first message other than Servers (what the client core acts on)."""
    async with connect(url, compression=None, max_queue=None) as ws:
        await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0)))
        while True:
            message = p.decode_server(await asyncio.wait_for(ws.recv(), timeout))
            if not isinstance(message, p.Servers):
                return message


async def test_a_process_whose_record_expired_admits_newcomers(hall_process):
    url, nats_server, _ = hall_process
    nc = await nats.connect(nats_server.url)
    try:
        kv = await nc.jetstream().key_value(PROCESSES)
        for key in await kv.keys():
            await kv.delete(key)  # as the TTL does when the process's heartbeat comes late
        answer = await first_answer(url, "Aigerim", 10)
    finally:
        await nc.close()
    assert isinstance(answer, p.Welcome), answer


async def test_a_hello_the_directory_cannot_seat_is_refused_with_the_reason(hall_process):
    url, nats_server, log = hall_process
    assert nats_server.proc is not None
    os.kill(nats_server.proc.pid, signal.SIGSTOP)  # NATS takes the requests and answers none
    try:
        answer = await first_answer(url, "Bolat", 12)  # under the server's 10 s hello deadline, plus slack
    finally:
        os.kill(nats_server.proc.pid, signal.SIGCONT)
    assert isinstance(answer, p.Refused), answer
    assert answer.code == p.ErrorCode.SERVER_FULL.value and "directory" in answer.message, answer
    assert "cluster admission failed" not in Path(log).read_text()
    answer = await first_answer(url, "Bolat", 20)  # NATS is back: so are seats
    assert isinstance(answer, p.Welcome), answer
