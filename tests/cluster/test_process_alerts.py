"""The organiser's console in cluster mode: a hall process that dies (kill -9, no goodbye) is
an alert on the others' console until dismissed; one that stops cleanly is information; the
page lists the live processes with their instances and load. On real nats-server and
PostgreSQL, with the console read over HTTP as a logged-in organiser."""

from __future__ import annotations

import asyncio
import html
import json
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from processes import BIN, free_port, start, stop

from server.cluster.local import NatsServer
from server.cluster.node import ClusterNode
from server.cluster.watch import Gone

sys.path.insert(0, str(Path(__file__).parent.parent / "console"))
from console_support import Browser  # noqa: E402

pytestmark = pytest.mark.e2e
PROCESS_TTL = 6.0  # the directory's default: a killed process's record expires within it
MARGIN = 10.0  # a heartbeat (TTL / 3) to notice, plus a busy machine


async def test_a_clean_stop_says_goodbye_and_a_silent_one_expires(nats_server: NatsServer) -> None:
    """The node shell tells the two apart from the bucket itself: a deleted record leaves a
    tombstone, an expired one leaves nothing."""
    a = await ClusterNode(nats_server.url, "ws://a.test/", 10, process_id="a", process_ttl=2.0, heartbeat=0.5).start()
    b = await ClusterNode(nats_server.url, "ws://b.test/", 10, process_id="b", heartbeat=0.5).start()
    c = await ClusterNode(nats_server.url, "ws://c.test/", 10, process_id="c", heartbeat=0.5).start()
    try:
        await a.open_instance("silk-road", 5)
        await a.observe_directory()
        assert sorted(lp.record.id for lp in a.watch.processes()) == ["a", "b", "c"]
        assert [i.id for lp in a.watch.processes() if lp.record.id == "a" for i in lp.instances] == ["silk-road-i1"]
        await b.stop()  # goodbye
        assert c._heartbeat_task is not None
        c._heartbeat_task.cancel()  # c falls silent without a goodbye
        await c.nc.close()
        await a.observe_directory()
        assert [(d.process, d.how) for d in a.watch.departures()] == [("b", Gone.LEFT)]
        deadline = time.monotonic() + 2.0 + MARGIN
        while "c" not in {d.process for d in a.watch.departures()}:
            assert time.monotonic() < deadline, "c's record never expired"
            await asyncio.sleep(0.25)
            await a.observe_directory()
        assert {d.process: d.how for d in a.watch.departures()} == {"b": Gone.LEFT, "c": Gone.DOWN}
    finally:
        await a.stop()


def process_id(http_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5) as r:
        return json.loads(r.read())["cluster"]["process"]


async def test_a_killed_process_is_an_alert_on_the_other_console(nats_server: NatsServer, fresh_database, tmp_path) -> None:
    procs, ports, consoles = [], [], []
    try:
        for name in ("a", "b"):
            port, console = free_port(), free_port()
            procs.append(start([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(tmp_path / name),
                                "--no-watch", "--cluster", nats_server.url, "--db", fresh_database,
                                "--console-port", str(console)], f"http://127.0.0.1:{port}/healthz",
                               log=tmp_path / f"{name}.log", timeout=240))
            ports.append(port)
            consoles.append(console)
        a_id, b_id = process_id(ports[0]), process_id(ports[1])
        browser = Browser(f"http://127.0.0.1:{consoles[0]}")
        try:
            token = (tmp_path / "a" / "console" / "organiser.token").read_text().strip()
            assert (await browser.login(token)).status_code == 303
            deadline = time.monotonic() + 10
            while True:  # a's console lists both processes once a heartbeat has read b
                page = html.unescape((await browser.get("/organiser")).text)
                if b_id in page and a_id in page:
                    break
                assert time.monotonic() < deadline, page
                await asyncio.sleep(0.5)
            assert "Live hall processes" in page and f"ws://127.0.0.1:{ports[1]}/" in page
            rows = {row.split("</td>")[0]: row for row in page.split("<tr><td>")[1:]}
            for pid in (a_id, b_id):  # each hall process simulates one instance of every hall, no visitor yet
                assert "0 / " in rows[pid] and "(cap " in rows[pid], rows[pid]
            assert {"-i1 (cap", "-i2 (cap"} <= {m for m in ("-i1 (cap", "-i2 (cap") if m in rows[a_id] + rows[b_id]}
            assert "alert-process-down" not in page

            procs[1].send_signal(signal.SIGKILL)
            procs[1].wait(10)
            killed_at = time.monotonic()
            while True:
                page = html.unescape((await browser.get("/organiser")).text)
                if "alert-process-down" in page:
                    break
                assert time.monotonic() - killed_at < PROCESS_TTL + MARGIN, "no process-down alert in time"
                await asyncio.sleep(0.5)
            assert f"hall process {b_id} (ws://127.0.0.1:{ports[1]}/) is down: last seen" in page
            assert "(no clean stop)" in page
            async with browser.http.stream("GET", "/organiser/live") as live:  # the map's live feed says it too
                async for line in live.aiter_lines():
                    if line.startswith("data: ") and "alerts" in (frame := json.loads(line[6:])):
                        break
            assert {"kind": "process-down", "process": b_id} in [
                {"kind": a["kind"], "process": a["process"]} for a in frame["alerts"]]

            dismissed = await browser.post(f"/organiser/processes/{b_id}/dismiss", {})
            assert dismissed.status_code == 200, dismissed.text
            assert f"Alert about process {b_id} dismissed." in html.unescape(dismissed.text)
            assert "alert-process-down" not in dismissed.text
            again = await browser.post(f"/organiser/processes/{b_id}/dismiss", {})
            assert f"No alert about process {b_id} to dismiss." in html.unescape(again.text)
            forged = await browser.post(f"/organiser/processes/{b_id}/dismiss", {}, csrf=False)
            assert forged.status_code in (400, 403)
        finally:
            await browser.close()
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
