"""The transport over real sockets against an in-process server on loopback."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from client_link import default_expo
from websockets.asyncio.server import serve

import protocol as p
from client import events as ev
from client.core import ClientCore, ClientState
from client.threaded import ClientThread
from client.transport import Backoff, InputSchedule, Transport
from server.app import ExpoServer
from server.config import ServerConfig
from world.manifest import to_manifest

FAST = Backoff(initial=0.05, maximum=0.2)


@pytest.fixture
async def server():
    srv = ExpoServer(default_expo(), ServerConfig(port=0, max_clients=32))
    await srv.start()
    yield srv
    await srv.stop()


def url(srv: ExpoServer) -> str:
    return f"ws://127.0.0.1:{srv.port}/"


async def next_event(transport: Transport, kind: type, timeout: float = 5.0):
    async with asyncio.timeout(timeout):
        while True:
            event = await transport.events.get()
            if isinstance(event, kind):
                return event


def queued(transport: Transport, kind: type) -> list:
    """Events of a kind waiting in the queue, without consuming them."""
    return [e for e in list(transport.events._queue) if isinstance(e, kind)]


async def test_a_shared_schedule_drives_every_member_and_survives_a_failing_one(server):
    schedule = InputSchedule()
    walkers = [Transport(ClientCore(name), url(server), backoff=FAST, schedule=schedule) for name in ("Ada", "Ben", "Cy")]
    runs = [asyncio.create_task(t.run()) for t in walkers]
    for t in walkers:
        await t.wait_joined(5)
        t.set_controls(1.0, 0.0, 0.0, False)
    broken = walkers[0]

    def explode(now: float) -> None:
        raise RuntimeError("a driver bug")

    broken.before_input = explode
    await asyncio.sleep(0.6)
    assert broken.core.seq == 0 and all(t.core.ack >= 8 for t in walkers[1:])  # ~12 ticks each
    assert schedule.dt == 0.05 and [t.get_name() for t in asyncio.all_tasks()].count("inputs") == 1
    with pytest.raises(ValueError, match="ticks every"):
        schedule.add(broken, 0.1)
    for t in walkers:
        await t.close()
    await asyncio.gather(*runs)
    assert schedule._task is None  # the last member's leaving stops the timer


def drop_all(srv: ExpoServer) -> None:
    """The network fails under every client (no close handshake)."""
    for conn in list(srv._connections):
        conn.abort()


async def test_two_visitors_walk_and_see_each_other(server):
    a = Transport(ClientCore("Alma"), url(server), backoff=FAST)
    b = Transport(ClientCore("Bruno"), url(server), backoff=FAST)
    runs = [asyncio.create_task(t.run()) for t in (a, b)]
    await a.wait_joined(5)
    await b.wait_joined(5)
    b.set_controls(0.0, 1.0, 1.57, False)
    await asyncio.sleep(1.0)
    assert a.core.view.state[b.core.entity].y > 600 + 150  # b walked north about 2.5 m/s
    assert b.core.timing.synced and b.core.timing.rtt < 0.05
    assert b.core.ack > 10 and not queued(b, ev.PredictionCorrected)
    b.set_controls()
    await asyncio.sleep(0.3)
    seq = b.core.seq
    await asyncio.sleep(0.3)
    assert b.core.seq == seq  # standing still sends nothing
    await a.close()
    await b.close()
    await asyncio.gather(*runs)
    assert a.core.state is ClientState.CLOSED


async def test_reconnects_and_resumes_after_the_socket_drops(server):
    t = Transport(ClientCore("Resumer"), url(server), backoff=FAST, rng=random.Random(1))
    run = asyncio.create_task(t.run())
    first = await next_event(t, ev.Joined)
    t.set_controls(1.0, 0.0, 0.0, False)
    await asyncio.sleep(0.3)
    drop_all(server)
    gone = await next_event(t, ev.Disconnected)
    assert gone.retry_in is not None and gone.retry_in <= FAST.initial
    again = await next_event(t, ev.Joined)
    assert again.resumed and again.welcome.entity == first.welcome.entity
    acked = t.core.ack
    await asyncio.sleep(0.3)
    assert t.core.ack > acked  # inputs flow again, seqs still increasing
    assert not queued(t, ev.ErrorReceived)
    await t.close()
    await run


async def test_a_dead_session_joins_afresh(server):
    t = Transport(ClientCore("Phoenix"), url(server), backoff=FAST)
    run = asyncio.create_task(t.run())
    first = await next_event(t, ev.Joined)
    server.sim._remove_session(next(iter(server.sim.sessions.values())), "test")  # e.g. the grace ran out
    drop_all(server)
    refused = await next_event(t, ev.Refused)
    assert refused.code == "resume_failed"
    again = await next_event(t, ev.Joined)
    assert not again.resumed and again.welcome.entity != first.welcome.entity
    await t.close()
    await run


async def test_gives_up_on_a_refusal_retrying_cannot_fix(server):
    nameless = Transport(ClientCore("--"), url(server))
    await asyncio.wait_for(nameless.run(), 5)  # returns by itself
    assert (await next_event(nameless, ev.Refused)).code == "name_invalid"
    assert (await next_event(nameless, ev.Disconnected)).retry_in is None


async def test_backoff_grows_with_jitter_and_a_cap():
    rng = random.Random(7)
    b = Backoff(initial=0.5, maximum=4.0, factor=2.0, jitter=0.5)
    delays = [b.delay(n, rng) for n in range(8)]
    for n, d in enumerate(delays):
        top = min(4.0, 0.5 * 2**n)
        assert top / 2 <= d <= top
    assert len(set(delays)) == len(delays)


async def test_the_thread_runner_serves_an_app_on_another_thread(server):
    app = ClientThread(ClientCore("Panda"), url(server))
    app.start()
    joined = await asyncio.to_thread(_wait_for_scene, app)
    assert joined.own.x == pytest.approx(60.0)
    app.set_controls(0.0, 1.0, 1.57, True)
    await asyncio.sleep(0.5)
    scene = app.scene()
    assert scene.own.y > 6.0 + 2.0
    await asyncio.to_thread(app.command, lambda core: core.chat(0, "hello from the app thread"))
    await asyncio.sleep(0.2)
    lines = [e for e in app.poll_events() if isinstance(e, ev.ChatReceived)]
    assert lines and lines[0].line.text == "hello from the app thread"
    await asyncio.to_thread(app.stop)
    assert not app._thread.is_alive()


def _wait_for_scene(app: ClientThread, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scene = app.scene()
        if scene is not None:
            return scene
        time.sleep(0.02)
    raise TimeoutError


async def test_fragmented_messages_are_reassembled():
    """Our server never fragments, but a proxy may: a message in two frames (from websockets'
    own server) reaches the core whole, by the same path as any other."""
    welcome = None

    async def handler(ws):
        await ws.recv()  # Hello
        await ws.send(welcome)
        await ws.send([line[:3], line[3:]])  # one message in two frames
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        line = p.encode(p.ChatLine(0, 1, "Frag", "in two frames", None, 1.5))
        welcome = p.encode(p.Welcome("s", 1, 20, 1.0, "tok", 20.0, p.OwnState.of(0, p.EntityState(0, 0, 0, 0)), None,
                                     to_manifest(default_expo()), "vis_1", "v1.vis_1.mac", "Frag"))
        transport = Transport(ClientCore("Frag"), f"ws://127.0.0.1:{port}/", reconnect=False)
        run = asyncio.create_task(transport.run())
        await next_event(transport, ev.Joined)
        chat = await next_event(transport, ev.ChatReceived)
        assert chat.line.text == "in two frames" and transport.traffic.frames_in == 2
        await transport.close()
        await run


async def test_leaving_while_the_connection_is_being_made_ends_the_run(server):
    """close() before the link exists had nothing to close: the session that followed ran
    for ever (a swarm told to stop mid-reconnect never finished)."""
    t = Transport(ClientCore("Hasty"), url(server), backoff=FAST)
    run = asyncio.create_task(t.run())
    await asyncio.sleep(0)  # the run is opening its connection
    assert t.connection is None
    await t.close()
    await asyncio.wait_for(run, 5)
    assert (await next_event(t, ev.Disconnected)).retry_in is None
    await asyncio.sleep(0.1)
    assert not server.sim.sessions  # it never joined
