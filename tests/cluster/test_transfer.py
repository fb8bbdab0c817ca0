"""The protocol's Transfer across real hall processes: `expo-server --cluster --db --halls`
on a real nats-server and PostgreSQL, one process per hall, and the client core (the one
the desktop client and the bots use) crossing between them through the portals.

The test world is the packaged Silk Road expo with the portal to the Maritime hall moved
next to the spawn (and the way back arriving beside it), so a crossing is a few metres'
walk, not a minute's."""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import BIN, free_port, start_one_hall_each, stop, wait_http
from websockets.asyncio.client import connect

import protocol as p
from client import events as ev
from client.core import ClientCore
from client.transport import Transport
from server.cluster.local import NEAR_PORTAL, NEAR_PORTAL_BACK_ARRIVAL, NatsServer, PostgresServer, near_portals_world
from server.cluster.node import ClusterNode

pytestmark = pytest.mark.e2e
PORTAL = NEAR_PORTAL  # silk-road -> maritime, in the test world
BACK = (3.0, 22.0)  # in the maritime -> silk-road portal at (4, 22)
ARRIVE = (7.0, 22.0)
ARRIVE_BACK = NEAR_PORTAL_BACK_ARRIVAL


@pytest.fixture(scope="module")
def hall_processes(postgres: PostgresServer) -> Iterator[tuple[list[str], NatsServer, list[subprocess.Popen]]]:
    """Process a simulates the Silk Road hall only, process b the Maritime hall only."""
    root = Path(tempfile.mkdtemp(prefix="expo-xfer-"))
    nats_server = NatsServer(root / "nats").start()
    world = near_portals_world(root)
    env = {**os.environ, "EXPO_STAFF_SECRET": secrets.token_urlsafe(24),
           "EXPO_VISITOR_SECRET": secrets.token_urlsafe(24)}  # the cluster's visitors are the same people everywhere
    procs: list[subprocess.Popen] = []
    try:
        ports = start_one_hall_each(procs, root, nats_server.url, postgres.dsn, env, "--world", str(world))
        yield [f"ws://127.0.0.1:{port}/" for port in ports], nats_server, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
        nats_server.stop()
        shutil.rmtree(root, ignore_errors=True)


def health(url: str) -> dict:
    with urllib.request.urlopen(url.replace("ws://", "http://") + "healthz", timeout=5) as response:
        return json.loads(response.read())["cluster"]


async def held_seats(nats_url: str) -> dict[str, int]:
    """Seats held in every instance, by instance id."""
    probe = await ClusterNode(nats_url, "ws://probe/", 0, process_id="probe", instances_per_hall=0).start()
    try:
        out = {}
        for hall in ("silk-road", "maritime"):
            for instance in (await probe.hall(hall)).instances:
                seats = await probe.seats(instance.id)
                out[instance.id] = sum(seats.held.values()) if seats else 0
        return out
    finally:
        await probe.stop()


class Walker:
    """The client core over its transport, as a bot drives it, recording what happens."""

    def __init__(self, name: str, url: str) -> None:
        self.core = ClientCore(name)
        self.events: list[tuple[float, ev.Event]] = []
        self.tokens: list[str] = []  # of the Transfers followed
        self.transport = Transport(self.core, url, on_event=self._on_event)
        self.task = asyncio.create_task(self.transport.run())

    def _on_event(self, event: ev.Event) -> None:
        self.events.append((time.monotonic(), event))
        if isinstance(event, ev.Transferring) and self.core.transfer is not None:
            self.tokens.append(self.core.transfer.token)

    def joins(self) -> list[ev.Joined]:
        return [e for _, e in self.events if isinstance(e, ev.Joined)]

    async def until(self, test, timeout: float = 15.0, since: int | None = None):
        """The first event passing ``test`` from event number ``since`` on (default: from now)."""
        deadline = time.monotonic() + timeout
        seen = len(self.events) if since is None else since
        while time.monotonic() < deadline:
            for _, event in self.events[seen:]:
                if test(event):
                    return event
            await asyncio.sleep(0.01)
        raise AssertionError(f"not within {timeout} s; events: {[type(e).__name__ for _, e in self.events[-20:]]}")

    async def servers_known(self, urls: tuple[str, ...], timeout: float = 8.0) -> None:
        """Servers comes after the Welcome and whenever the processes change (a process sees
        the others from its heartbeat's look at the directory: within 2 s of their start)."""
        deadline = time.monotonic() + timeout
        while self.core.servers != urls:
            assert time.monotonic() < deadline, f"Servers said {self.core.servers}, not {urls}"
            await asyncio.sleep(0.05)

    async def walk_into(self, hall: int, x: float, y: float, timeout: float = 20.0) -> None:
        """Run towards (x, y) until the own avatar is in ``hall`` (through the portal there)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            own = self.core.own
            if own is not None and own.hall == hall and self.core.joined:
                self.transport.set_controls()
                return
            if own is not None and self.core.joined:
                dx, dy = x - own.x / 100, y - own.y / 100
                d = max(1e-6, (dx * dx + dy * dy) ** 0.5)
                self.transport.set_controls(dx / d, dy / d, math.atan2(dy, dx), True)
            await asyncio.sleep(0.02)
        raise AssertionError(f"never reached hall {hall}; own {self.core.own}")

    async def close(self) -> None:
        await self.transport.close()
        await asyncio.wait_for(self.task, 10)


async def test_a_visitor_crosses_between_hall_processes_and_stays_who_they_are(hall_processes) -> None:
    (url_a, url_b), nats_server, _ = hall_processes
    walker = Walker("Marco", url_b)  # b has no instance of the spawn hall: it sends us to a
    try:
        first = await walker.until(lambda e: isinstance(e, ev.Joined))
        assert first.transferred and walker.transport.url == url_a  # a Transfer at Hello, not a refusal
        assert any(isinstance(e, ev.Transferring) and e.at_hello for _, e in walker.events)
        visitor = first.welcome.visitor_id
        await walker.servers_known((url_b,))  # where to go should a die

        # through the portal: a hands the avatar to b
        mark = len(walker.events)
        await walker.walk_into(1, *PORTAL)
        crossed = await walker.until(lambda e: isinstance(e, ev.Joined) and e.welcome.own.hall == 1, since=mark)
        assert crossed.transferred and not crossed.resumed and walker.transport.url == url_b
        assert crossed.welcome.visitor_id == visitor  # the same visitor: orders, inventory, bank link follow
        own = crossed.welcome.own
        assert abs(own.x / 100 - ARRIVE[0]) < 0.5 and abs(own.y / 100 - ARRIVE[1]) < 0.5  # where the portal leads
        assert not any(isinstance(e, (ev.Refused, ev.Disconnected, ev.ProtocolViolation)) for _, e in walker.events)
        at_a, at_b = health(url_a)["transfers"], health(url_b)["transfers"]
        assert (at_a["taken"], at_a["sent"], at_a["released"]) == (1, 1, 1), at_a  # took the join, gave the avatar
        assert (at_b["sent"], at_b["taken"]) == (1, 1), at_b  # sent the join to a, took the avatar
        held = await held_seats(nats_server.url)
        assert sum(held.values()) == 1 and held[next(i for i in held if i.startswith("maritime"))] == 1, held

        # chat goes on where the visitor is now
        await walker.transport.command(lambda core: core.chat(p.Channel.PROXIMITY, "arrived in the Maritime hall"))
        line = await walker.until(lambda e: isinstance(e, ev.ChatReceived))
        assert line.line.text == "arrived in the Maritime hall" and line.line.name == "Marco"

        # and back: b hands the avatar to a
        await asyncio.sleep(1.6)  # portals rest for 1.5 s after a visitor arrives through one
        mark = len(walker.events)
        await walker.walk_into(0, *BACK)
        back = await walker.until(lambda e: isinstance(e, ev.Joined) and e.welcome.own.hall == 0, since=mark)
        assert back.transferred and back.welcome.visitor_id == visitor and walker.transport.url == url_a
        assert abs(back.welcome.own.x / 100 - ARRIVE_BACK[0]) < 0.5
        await asyncio.sleep(1.5)  # a reconciliation round
        held = await held_seats(nats_server.url)
        assert sum(held.values()) == 1, held  # one seat, in one instance: nobody doubled
    finally:
        await walker.close()

    # a Transfer token works once
    ws = await connect(url_b, compression=None)
    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Marco", 0, 0, visitor_token=first.welcome.visitor_token,
                                   transfer=walker.tokens[1])))  # the one b took
    refused = p.decode_server(await asyncio.wait_for(ws.recv(), 10))
    assert isinstance(refused, p.Refused) and refused.code == "transfer_failed"
    await ws.close()



async def test_a_transfer_not_taken_leaves_the_avatar_where_it_was(hall_processes) -> None:
    """Nobody lost: a visitor sent a Transfer who presents it as someone else (refused) and
    then goes back resumes the same avatar, which the giving process kept."""
    (url_a, url_b), _, _ = hall_processes
    ws = await connect(url_a, compression=None)
    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Hafiz", 0, 0)))
    welcome = p.decode_server(await asyncio.wait_for(ws.recv(), 10))
    assert isinstance(welcome, p.Welcome)
    for second in range(3):  # north, into the portal at (60, 14): a second's hold each
        await ws.send(p.encode(p.Input(1 + 20 * second, 0.0, 1.0, math.pi / 2, True, 20)))

    async def transfer() -> p.Transfer:
        while True:
            message = p.decode_server(await ws.recv())
            if isinstance(message, p.Transfer):
                return message
    sent = await asyncio.wait_for(transfer(), 10)
    assert sent.url == url_b and sent.hall == "maritime"
    await ws.close()
    other = await connect(url_b, compression=None)  # the token, but not the visitor it is for
    await other.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Hafiz", 0, 0, transfer=sent.token)))
    refused = p.decode_server(await asyncio.wait_for(other.recv(), 10))
    assert isinstance(refused, p.Refused) and refused.code == "transfer_failed"
    await other.close()
    back = await connect(url_a, compression=None)
    await back.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Hafiz", 0, 0, resume_token=welcome.resume_token,
                                     visitor_token=welcome.visitor_token)))
    again = p.decode_server(await asyncio.wait_for(back.recv(), 10))
    assert isinstance(again, p.Welcome) and again.session_id == welcome.session_id  # the same avatar
    assert again.own.hall == 0 and again.own.y / 100 > 11  # standing at the portal it walked into
    await back.send(p.encode(p.Bye()))
    await back.close()


async def test_a_visitor_whose_process_is_killed_is_readmitted_by_another_within_5_s(hall_processes) -> None:
    """Runs last: kill -9 of process b. The client core knows a from b's Servers message and
    goes there by itself, as the same visitor."""
    (url_a, url_b), _, procs = hall_processes
    walker = Walker("Ibn", url_a)
    try:
        first = await walker.until(lambda e: isinstance(e, ev.Joined), since=0)
        mark = len(walker.events)
        await walker.walk_into(1, *PORTAL)
        await walker.until(lambda e: isinstance(e, ev.Joined) and e.welcome.own.hall == 1, since=mark)
        assert walker.transport.url == url_b
        await walker.servers_known((url_a,))
        mark = len(walker.events)
        procs[1].kill()
        killed = time.monotonic()
        again = await walker.until(lambda e: isinstance(e, ev.Joined), timeout=10, since=mark)
        took = next(t for t, e in walker.events[mark:] if e is again) - killed
        assert took < 5.0, f"re-admitted after {took:.2f} s"
        assert walker.transport.url == url_a and again.welcome.visitor_id == first.welcome.visitor_id
        assert again.welcome.own.hall == 0  # a fresh avatar at the spawn of the hall a serves
    finally:
        await walker.close()


async def test_a_hop_inside_one_process_moves_the_seat_with_the_visitor(postgres: PostgresServer, tmp_path) -> None:
    """A process with both halls: a portal hop stays inside it, and the seat goes along."""
    nats_server = NatsServer(tmp_path / "nats").start()
    port = free_port()
    proc = subprocess.Popen([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(tmp_path / "a"),
                             "--world", str(near_portals_world(tmp_path)), "--cluster", nats_server.url,
                             "--db", postgres.dsn, "--no-watch"],
                            stdout=open(tmp_path / "a.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=240, proc=proc)
        walker = Walker("Zheng", f"ws://127.0.0.1:{port}/")
        try:
            await walker.until(lambda e: isinstance(e, ev.Joined))
            held = await held_seats(nats_server.url)
            assert held == {"silk-road-i1": 1, "maritime-i1": 0}, held
            await walker.walk_into(1, *PORTAL)
            deadline = time.monotonic() + 5
            while (held := await held_seats(nats_server.url)) != {"silk-road-i1": 0, "maritime-i1": 1}:
                assert time.monotonic() < deadline, held
                await asyncio.sleep(0.1)
            assert not any(isinstance(e, ev.Transferring) for _, e in walker.events)  # a hop, no hand-off
        finally:
            await walker.close()
    finally:
        stop(proc)
        nats_server.stop()
