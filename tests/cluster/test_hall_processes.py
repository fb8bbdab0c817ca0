"""`expo-server --cluster --db` as an operator types it: two hall processes on a real
nats-server and PostgreSQL share the spawn hall's seats; a full process transfers a newcomer
to the one with room; a visitor who leaves gives the seat back; a process that stops leaves the directory."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from processes import BIN, free_port, stop, wait_http
from websockets.asyncio.client import connect

import protocol as p
from server.cluster.local import NatsServer, PostgresServer
from server.cluster.node import ClusterNode
from server.identity import tagged as tagged_name

pytestmark = pytest.mark.e2e
STAFF_SECRET = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def nats_here():
    root = Path(tempfile.mkdtemp(prefix="expo-nats-"))
    server = NatsServer(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def two_halls(nats_here: NatsServer, postgres: PostgresServer, tmp_path_factory):
    """Both started at once (each compiles or loads its kernels first: seconds on a busy
    machine), for the module: the test that stops one runs last."""
    nats_server, tmp_path = nats_here, tmp_path_factory.mktemp("halls")
    procs, ports = [], [free_port(), free_port()]
    env = {**os.environ, "EXPO_STAFF_SECRET": STAFF_SECRET}  # one secret for the cluster's staff passes
    for name, port in zip("ab", ports):
        log = open(tmp_path / f"{name}.log", "wb")
        procs.append(subprocess.Popen([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(tmp_path / name),
                                       "--cluster", nats_server.url, "--db", postgres.dsn, "--instance-cap", "2",
                                       "--no-watch"], stdout=log, stderr=subprocess.STDOUT, env=env))
    for proc, port in zip(procs, ports):
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=240, proc=proc)
    yield [f"ws://127.0.0.1:{port}/" for port in ports], procs
    for proc in procs:
        if proc.poll() is None:
            stop(proc)


async def hello(url: str, name: str, staff_pass: str | None = None):
    # max_queue=None: reads on while the test looks away (a full queue stops reading; close() then waits 10 s)
    ws = await connect(url, compression=None, max_queue=None)
    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0, staff_pass=staff_pass)))
    return ws, p.decode_server(await asyncio.wait_for(ws.recv(), 10))


async def seats_settle(nats_url: str, held: list[int], timeout: float = 15.0) -> None:
    """Wait until the instances of the spawn hall hold ``held`` seats (sorted)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while sorted(sum(h.values()) for h in (await seats_of(nats_url)).values()) != held:
        assert asyncio.get_running_loop().time() < deadline, f"seats are {await seats_of(nats_url)}, not {held}"
        await asyncio.sleep(0.1)


async def next_chat(ws, timeout: float = 5.0) -> p.ChatLine:
    async def wait() -> p.ChatLine:
        while True:
            message = p.decode_server(await ws.recv())
            if isinstance(message, p.ChatLine):
                return message
    return await asyncio.wait_for(wait(), timeout)


async def seats_of(nats_url: str) -> dict[str, dict[str, int]]:
    probe = await ClusterNode(nats_url, "ws://probe/", 0, process_id="probe", instances_per_hall=0).start()
    try:
        hall = await probe.hall("silk-road")
        return {i.process: seats.held if (seats := await probe.seats(i.id)) else {} for i in hall.instances}
    finally:
        await probe.stop()


async def test_an_announcement_reaches_every_instance_of_the_hall(two_halls) -> None:
    (url_a, url_b), _ = two_halls
    staff_pass = subprocess.run([str(BIN / "expo-server"), "--staff-pass", "az-caspian-carpets"], capture_output=True,
                                text=True, timeout=60, env={**os.environ, "EXPO_STAFF_SECRET": STAFF_SECRET},
                                check=True).stdout.strip()
    staff, welcome = await hello(url_a, "Leyla", staff_pass)
    assert isinstance(welcome, p.Welcome)
    here, _ = await hello(url_a, "Near")
    there, _ = await hello(url_b, "Far")
    await staff.send(p.encode(p.Chat(p.Channel.ANNOUNCEMENT, "Carpet auction at noon")))
    near, far = await next_chat(here), await next_chat(there)
    assert (near.text, near.booth, near.entity) == ("Carpet auction at noon", "az-caspian-carpets", welcome.entity)
    assert (far.channel, far.name, far.text, far.booth, far.entity) == (
        p.Channel.ANNOUNCEMENT, "Leyla", "Carpet auction at noon", "az-caspian-carpets", 0)
    await there.send(p.encode(p.Chat(p.Channel.PROXIMITY, "hello from b")))  # proximity stays in its instance
    assert (await next_chat(there)).text == "hello from b"
    with pytest.raises(TimeoutError):
        await next_chat(here, timeout=1.0)
    for ws in (staff, here, there):
        await ws.send(p.encode(p.Bye()))
        await ws.close()


async def next_of(ws, kind: type, timeout: float = 5.0):
    async def wait():
        while True:
            message = p.decode_server(await ws.recv())
            if isinstance(message, kind):
                return message
    return await asyncio.wait_for(wait(), timeout)


async def test_a_direct_message_and_find_a_person_cross_processes(two_halls, nats_here: NatsServer) -> None:
    (url_a, url_b), _ = two_halls
    await seats_settle(nats_here.url, [0, 0])  # the visitors of the test before have gone (cap 2)
    rumi, _ = await hello(url_a, "Rumi")
    shams, _ = await hello(url_b, "Shams")
    await asyncio.sleep(0.3)  # presence is written with the seat, just after the Welcome
    await rumi.send(p.encode(p.FindPerson("shams")))
    assert await next_of(rumi, p.PersonFound) == p.PersonFound("Shams", True, "silk-road")
    await rumi.send(p.encode(p.DirectMessage("Shams", "the caravan leaves at dawn")))
    line = await next_of(shams, p.DirectLine)
    assert (line.name, line.text, line.incoming) == ("Rumi", "the caravan leaves at dawn", True)
    echo = await next_of(rumi, p.DirectLine)
    assert (echo.name, echo.incoming) == ("Shams", False)
    await shams.send(p.encode(p.DirectMessage("Nobody Here", "hello?")))
    error = await next_of(shams, p.Error)
    assert error.code == "unknown" and error.ref == p.DirectMessage.TYPE
    for ws in (rumi, shams):
        await ws.send(p.encode(p.Bye()))
        await ws.close()


@pytest.mark.parametrize("name", ["Li Wei", "Alexandrina Konstantinou"])  # the second: 24, cut to fit its tag
async def test_namesakes_at_two_processes_are_found_and_written_to_apart(two_halls, nats_here: NatsServer,
                                                                       postgres: PostgresServer, tmp_path,
                                                                       name: str) -> None:
    """Two visitors shown as ``name``, one at a and one at b; a third process's visitor
    finds both, is told which name reaches which, and reaches each; one leaving leaves the other."""
    (url_a, url_b), _ = two_halls
    await seats_settle(nats_here.url, [0, 0])
    port = free_port()
    with open(tmp_path / "c.log", "wb") as log:
        proc = subprocess.Popen([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(tmp_path / "c"),
                                 "--cluster", nats_here.url, "--db", postgres.dsn, "--instance-cap", "2", "--no-watch"],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "EXPO_STAFF_SECRET": STAFF_SECRET})
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=240, proc=proc)
        li_a, welcome_a = await hello(url_a, name)
        li_b, welcome_b = await hello(url_b, name)
        asker, _ = await hello(f"ws://127.0.0.1:{port}/", "Asker")
        assert welcome_a.display_name == welcome_b.display_name == name  # namesakes only among a process's own
        tagged = {w.visitor_id: tagged_name(name, w.visitor_id) for w in (welcome_a, welcome_b)}
        await asyncio.sleep(0.3)  # presence is written with the seat, just after the Welcome
        await asker.send(p.encode(p.FindPerson(name.lower())))
        found = [await next_of(asker, p.PersonFound) for _ in range(2)]
        assert found == [p.PersonFound(tagged[v], True, "silk-road") for v in sorted(tagged)]  # by visitor id
        await asker.send(p.encode(p.DirectMessage(name, "which of you?")))
        error = await next_of(asker, p.Error)
        assert error.code == "unknown" and error.ref == p.DirectMessage.TYPE
        assert all(name in error.message for name in tagged.values())
        for ws, welcome in ((li_a, welcome_a), (li_b, welcome_b)):
            await asker.send(p.encode(p.DirectMessage(tagged[welcome.visitor_id], f"for {welcome.visitor_id}")))
            line = await next_of(ws, p.DirectLine)
            assert (line.name, line.text, line.incoming) == ("Asker", f"for {welcome.visitor_id}", True)
            assert (await next_of(asker, p.DirectLine)).incoming is False
        with pytest.raises(TimeoutError):  # each line reached only the one it was for
            await next_of(li_a, p.DirectLine, timeout=0.5)
        await li_a.send(p.encode(p.Bye()))
        await li_a.close()
        probe = await ClusterNode(nats_here.url, "ws://probe/", 0, process_id="probe", instances_per_hall=0).start()
        try:
            deadline = asyncio.get_running_loop().time() + 10
            while len(await probe.find_named(name)) != 1:  # a's reconciliation (1 s) gives the seat back
                assert asyncio.get_running_loop().time() < deadline, f"{name} at a never left"
                await asyncio.sleep(0.1)
        finally:
            await probe.stop()
        await asker.send(p.encode(p.FindPerson(name)))
        assert await next_of(asker, p.PersonFound) == p.PersonFound(name, True, "silk-road")
        await asker.send(p.encode(p.DirectMessage(name, "still here?")))
        assert (await next_of(li_b, p.DirectLine)).text == "still here?"
        for ws in (li_b, asker):
            await ws.send(p.encode(p.Bye()))
            await ws.close()
    finally:
        stop(proc)


def test_help_says_how_to_join_from_another_machine() -> None:
    out = subprocess.run([str(BIN / "expo-server"), "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "another machine" in out and "--public-url ws://THIS-MACHINE:8765/" in out


async def test_two_processes_share_the_hall(two_halls, nats_here: NatsServer) -> None:
    """Runs last: it stops process b."""
    nats_server = nats_here
    (url_a, url_b), procs = two_halls
    await seats_settle(nats_server.url, [0, 0])
    ana, welcome = await hello(url_a, "Ana")
    assert isinstance(welcome, p.Welcome)
    bo, welcome = await hello(url_a, "Bo")
    assert isinstance(welcome, p.Welcome)
    cy, transfer = await hello(url_a, "Cy")  # a's instance of the hall is full: b has the seat
    assert isinstance(transfer, p.Transfer) and transfer.url == url_b and transfer.hall == "silk-road"
    await cy.close()
    # max_queue=None: reads on while the test looks away (a full queue stops reading; close() then waits 10 s)
    cy = await connect(url_b, compression=None, max_queue=None)
    await cy.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Cy", 0, 0, transfer=transfer.token)))
    welcome = p.decode_server(await asyncio.wait_for(cy.recv(), 10))
    assert isinstance(welcome, p.Welcome)
    held = await seats_of(nats_server.url)
    assert sorted(sum(h.values()) for h in held.values()) == [1, 2]
    await ana.send(p.encode(p.Bye()))
    await ana.close()
    await seats_settle(nats_server.url, [1, 1])  # Ana's seat comes back within a reconciliation (1 s)
    dee, welcome = await hello(url_a, "Dee")
    assert isinstance(welcome, p.Welcome)
    stop(procs[1])  # b leaves: its instance goes from the directory at once
    assert len(await seats_of(nats_server.url)) == 1
    for ws in (bo, cy, dee):
        await ws.close()
