"""`expo-server --cluster --db` as an operator types it: two hall processes on a real
nats-server and PostgreSQL share the spawn hall's seats; a full process names the one with
room; a visitor who leaves gives the seat back; a process that stops leaves the directory."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from processes import BIN, free_port, stop, wait_http
from websockets.asyncio.client import connect

import protocol as p
from server.cluster.local import NatsServer, PostgresServer
from server.cluster.node import ClusterNode

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_halls(nats_server: NatsServer, postgres: PostgresServer, tmp_path):
    """Both started at once (each compiles or loads its kernels first: seconds on a busy machine)."""
    procs, ports = [], [free_port(), free_port()]
    for name, port in zip("ab", ports):
        log = open(tmp_path / f"{name}.log", "wb")
        procs.append(subprocess.Popen([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(tmp_path / name),
                                       "--cluster", nats_server.url, "--db", postgres.dsn, "--instance-cap", "2",
                                       "--no-watch"], stdout=log, stderr=subprocess.STDOUT))
    for proc, port in zip(procs, ports):
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120, proc=proc)
    yield [f"ws://127.0.0.1:{port}/" for port in ports], procs
    for proc in procs:
        if proc.poll() is None:
            stop(proc)


async def hello(url: str, name: str):
    ws = await connect(url, compression=None)
    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0)))
    return ws, p.decode_server(await asyncio.wait_for(ws.recv(), 10))


async def seats_of(nats_url: str) -> dict[str, dict[str, int]]:
    probe = await ClusterNode(nats_url, "ws://probe/", 0, process_id="probe", instances_per_hall=0).start()
    try:
        hall = await probe.hall("silk-road")
        return {i.process: (await probe.seats(i.id)).held for i in hall.instances}
    finally:
        await probe.stop()


async def test_two_processes_share_the_hall(two_halls, nats_server: NatsServer) -> None:
    (url_a, url_b), procs = two_halls
    ana, welcome = await hello(url_a, "Ana")
    assert isinstance(welcome, p.Welcome)
    bo, welcome = await hello(url_a, "Bo")
    assert isinstance(welcome, p.Welcome)
    cy, refused = await hello(url_a, "Cy")  # a's instance of the hall is full
    assert isinstance(refused, p.Refused) and refused.code == "server_full"
    assert f"{url_b} has room" in refused.message
    await cy.close()
    cy, welcome = await hello(url_b, "Cy")
    assert isinstance(welcome, p.Welcome)
    held = await seats_of(nats_server.url)
    assert sorted(sum(h.values()) for h in held.values()) == [1, 2]
    await ana.send(p.encode(p.Bye()))
    await ana.close()
    for _ in range(50):  # the seat comes back within a reconciliation (1 s)
        if sorted(sum(h.values()) for h in (await seats_of(nats_server.url)).values()) == [1, 1]:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"Ana's seat was not given back: {await seats_of(nats_server.url)}")
    dee, welcome = await hello(url_a, "Dee")
    assert isinstance(welcome, p.Welcome)
    stop(procs[1])  # b leaves: its instance goes from the directory at once
    assert len(await seats_of(nats_server.url)) == 1
    for ws in (bo, cy, dee):
        await ws.close()


def test_help_says_how_to_join_from_another_machine() -> None:
    out = subprocess.run([str(BIN / "expo-server"), "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "another machine" in out and "--public-url ws://THIS-MACHINE:8765/" in out
