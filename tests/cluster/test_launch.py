"""`make cluster`'s launcher as typed: it starts NATS, PostgreSQL, the bank and two hall
processes, prints where they listen, takes visitors on both, and Ctrl-C stops everything."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from processes import ROOT
from websockets.asyncio.client import connect

import protocol as p
from server.cluster.launch import hall_ports, webhook_port
from server.cluster.local import free_port
from server.devrun import _in_use

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_make_cluster_starts_everything_and_stops_it() -> None:
    data = Path(tempfile.mkdtemp(prefix="expo-cluster-"))
    data.chmod(0o755)  # the postgres user goes through it to its own directory
    first = free_port()
    while any(_in_use("127.0.0.1", port) for hall in hall_ports(first, 2) for port in (hall, webhook_port(hall), first + 3)):
        first = free_port()
    ports = {"nats": free_port(), "pg": free_port(), "bank": free_port()}
    proc = subprocess.Popen([sys.executable, "-m", "server.cluster.launch", "--port", str(first), "--bank-port",
                             str(ports["bank"]), "--nats-port", str(ports["nats"]), "--pg-port", str(ports["pg"]),
                             "--data-dir", str(data), "--no-watch"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "EXPO_LOG_LEVEL": "warning"})
    try:
        printed = []
        deadline = time.monotonic() + 240
        while not any("Ctrl-C stops everything" in line for line in printed):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(printed)
            printed.append(line)
            assert time.monotonic() < deadline, "".join(printed)
        text = "".join(printed)
        assert f"nats://127.0.0.1:{ports['nats']}" in text
        assert f"postgresql://expo@127.0.0.1:{ports['pg']}/expo" in text
        for port in hall_ports(first, 2):
            assert f"ws://127.0.0.1:{port}/" in text
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                health = json.load(response)
            assert health["cluster"]["ready"] and health["cluster"]["nats_connected"]

        async def visit(port: int, name: str, token: str | None = None) -> p.Message:
            async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
                await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0, visitor_token=token)))
                return p.decode_server(await asyncio.wait_for(ws.recv(), 10))

        # the console at the first process (on the world's working copy under the data directory,
        # which every process serves), and each process hears the bank's webhooks itself
        assert f"console       http://127.0.0.1:{first + 3}/" in text and f"world         {data / 'world'}" in text
        token = (data / "hall-1" / "console" / "organiser.token").read_text().strip()
        assert token and (data / "world" / "expo.toml").is_file()
        with urllib.request.urlopen(f"http://127.0.0.1:{first + 3}/login", timeout=5) as response:
            assert response.status == 200
        for port in hall_ports(first, 2):
            unsigned = urllib.request.Request(f"http://127.0.0.1:{webhook_port(port)}/bank/webhook", data=b"{}", method="POST")
            with pytest.raises(urllib.error.HTTPError) as refused:  # listening, with the bank's secret to check against
                urllib.request.urlopen(unsigned, timeout=5)
            assert refused.value.code == 400
        welcomes = [asyncio.run(visit(port, f"visitor{i}")) for i, port in enumerate(hall_ports(first, 2))]
        assert all(isinstance(w, p.Welcome) for w in welcomes), welcomes
        # the processes share the visitor secret: a visitor of the first is the same visitor at the second
        again = asyncio.run(visit(hall_ports(first, 2)[1], "visitor0", welcomes[0].visitor_token))
        assert isinstance(again, p.Welcome) and again.visitor_id == welcomes[0].visitor_id
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        for port in [*ports.values(), *hall_ports(first, 2), first + 3, *map(webhook_port, hall_ports(first, 2))]:
            assert not _in_use("127.0.0.1", port), f"port {port} still listens after Ctrl-C"
    finally:
        if proc.poll() is None:  # a failed assertion: still stop it the way Ctrl-C does, so its children go too
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(data, ignore_errors=True)
