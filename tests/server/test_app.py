"""The server over real sockets on loopback: HTTP routes, limits, slow readers, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import socket
import time
import urllib.request

import msgpack
import pytest
import websockets
from support import HANDSHAKE, client_frame, read_to_end, server_frames, small_expo
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

import protocol as p
from server.app import ExpoServer
from server.config import ServerConfig
from server.connection import binary_frames
from world import load_expo


@pytest.fixture(params=[False, True], ids=["loop-sends", "send-thread"])
async def server(request):
    """Each test twice: the tick's messages written by the event loop, and by the send thread."""
    srv = ExpoServer(small_expo(), ServerConfig(port=0, max_clients=64, stuck_timeout=1.0, skip_backlog=2048,
                                                socket_send_buffer=4096, send_thread=request.param))
    await srv.start()
    yield srv
    await srv.stop()


def url(srv: ExpoServer) -> str:
    return f"ws://127.0.0.1:{srv.port}/"


async def join(srv: ExpoServer, name: str, **kw):
    ws = await connect(url(srv), compression=None, **kw)
    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0x123456, 0)))
    welcome = p.decode_server(await ws.recv())
    assert isinstance(welcome, p.Welcome), welcome
    return ws, welcome


async def recv_until(ws, kind, timeout: float = 3.0):
    async with asyncio.timeout(timeout):
        while True:
            message = p.decode_server(await ws.recv())
            if isinstance(message, kind):
                return message


def http_get(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


async def test_healthz_and_metrics_on_the_same_port(server):
    ws, _ = await join(server, "Aru")
    await recv_until(ws, p.Snapshot)
    status, ctype, body = await asyncio.to_thread(http_get, server.port, "/healthz")
    assert status == 200 and ctype == "application/json" and '"clients": 1' in body
    status, ctype, body = await asyncio.to_thread(http_get, server.port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    for name in ("expo_clients 1.0", "expo_tick_seconds_bucket", "expo_bytes_out_total", "expo_skipped_snapshots_total"):
        assert name in body
    status, _, body = await asyncio.to_thread(http_get, server.port, "/nope")
    assert status == 404
    await ws.close()


async def test_metrics_count_every_frame_received(server):
    """The inbound counters are added up between ticks: a scrape still counts every frame."""
    ws, _ = await join(server, "Aru")
    frames = [p.encode(p.Hello(p.PROTOCOL_VERSION, "Aru", 0x123456, 0))]  # the join's
    for i in range(3):
        frames.append(p.encode(p.Ping(float(i))))
        await ws.send(frames[-1])
        await recv_until(ws, p.Pong)
    status, _, body = await asyncio.to_thread(http_get, server.port, "/metrics")
    assert status == 200
    assert f"expo_frames_in_total {float(len(frames))}" in body
    assert f"expo_bytes_in_total {float(sum(map(len, frames)))}" in body
    await ws.close()


async def test_the_send_thread_sends_the_ticks_and_says_so_in_healthz():
    srv = ExpoServer(small_expo(), ServerConfig(port=0, send_thread=True))
    await srv.start()
    try:
        ws, _ = await join(srv, "Aru")
        ticks = [(await recv_until(ws, p.Snapshot)).tick for _ in range(5)]
        assert ticks == list(range(ticks[0], ticks[0] + 5))
        deadline = time.monotonic() + 5  # the fifth tick's bytes can arrive before its batch is handed back
        while True:
            status, _, body = await asyncio.to_thread(http_get, srv.port, "/healthz")
            health = json.loads(body)["send_thread"]
            assert status == 200 and health["alive"], health
            if health["batches"] >= 5 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert health["batches"] >= 5, health
        await ws.close()
    finally:
        await srv.stop()
    assert srv._sender is not None and not srv._sender.alive  # stopped with the server


async def test_two_clients_see_each_other_over_sockets(server):
    a, wa = await join(server, "Aru")
    b, wb = await join(server, "Bea")
    async with asyncio.timeout(3):
        while not (snap := await recv_until(a, p.Snapshot)).enters:
            pass
    assert snap.enters[0].entity == wb.entity
    await b.send(p.encode(p.Input(1, 0.0, 1.0, 0.0, True)))
    async with asyncio.timeout(3):
        while True:
            snap = await recv_until(a, p.Snapshot)
            if snap.deltas:
                assert snap.deltas[0] == wb.entity and snap.deltas[2] == 30  # 6 m/s for 1/20 s
                break
    await a.close()
    await b.close()


async def test_oversize_frames(server):
    ws, _ = await join(server, "Aru")
    await ws.send(b"\x00" * 10_000)
    assert (await recv_until(ws, p.Error)).code == "too_large"
    await ws.send(b"\x00" * 100_000)
    with pytest.raises(websockets.ConnectionClosed) as info:
        await recv_until(ws, p.Error)
    assert info.value.rcvd.code == 1009


async def test_flooding_client_is_disconnected_and_others_carry_on(server):
    calm, _ = await join(server, "Calm")
    flood, _ = await join(server, "Flood")
    with pytest.raises(websockets.ConnectionClosed) as info:
        for i in range(5000):
            await flood.send(p.encode(p.Ping(float(i))))
        await recv_until(flood, p.Closing)
        await flood.recv()
    assert info.value.rcvd is None or info.value.rcvd.code == 1008
    ticks = [(await recv_until(calm, p.Snapshot)).tick for _ in range(5)]
    assert ticks == list(range(ticks[0], ticks[0] + 5))  # no skipped ticks for the calm client
    await calm.close()


@pytest.mark.parametrize("send_thread", [False, True], ids=["loop-sends", "send-thread"])
async def test_slow_reader_is_dropped_and_server_stays_healthy(send_thread):
    # the default expo's welcome (40 kB of manifest) alone overfills the small socket buffers
    server = ExpoServer(load_expo(), ServerConfig(port=0, stuck_timeout=1.0, skip_backlog=2048, socket_send_buffer=4096,
                                                  send_thread=send_thread))
    await server.start()
    reader, _ = await join(server, "Reader")
    # A raw socket that completes the WebSocket handshake and then never reads.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    hello = p.encode(p.Hello(p.PROTOCOL_VERSION, "Sloth", 0, 0))
    mask = b"\x00\x00\x00\x00"
    sock.sendall(bytes([0x82, 0x80 | len(hello)]) + mask + hello)
    async with asyncio.timeout(10):
        while server.sim.connected < 2:  # the sloth joins...
            await recv_until(reader, p.Snapshot)
        while server.sim.connected > 1:  # ...and is dropped, while the reader is served
            await recv_until(reader, p.Snapshot)
    assert server.metrics.slow_drops._value.get() == 1
    assert len(server.sim.sessions) == 2  # dropped, but its avatar waits for a resume
    assert server.metrics.skipped_snapshots._value.get() > 0
    sock.setblocking(False)  # the server let go of the socket: the sloth reads its end
    await read_to_end(sock)
    sock.close()
    await reader.close()
    await server.stop()


async def test_graceful_shutdown_tells_clients():
    srv = ExpoServer(small_expo(), ServerConfig(port=0))
    await srv.start()
    ws, _ = await join(srv, "Aru")
    stopping = asyncio.create_task(srv.stop())
    closing = await recv_until(ws, p.Closing)
    assert closing.code == "shutdown"
    with pytest.raises(websockets.ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd.code == 1001
    await stopping


async def test_resume_after_a_dropped_connection(server):
    ws, welcome = await join(server, "Aru")
    ws.transport.abort()  # the network fails: no close frame
    await asyncio.sleep(0.2)
    again = await connect(url(server), compression=None)
    await again.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Aru", 0, 0, welcome.resume_token)))
    resumed = p.decode_server(await again.recv())
    assert isinstance(resumed, p.Welcome) and resumed.entity == welcome.entity
    await again.close()


async def test_random_and_mutated_frames_never_break_the_server(server):
    watcher, _ = await join(server, "Watcher")
    rng = random.Random(7)
    samples = [p.encode(m) for m in (p.Hello(p.PROTOCOL_VERSION, "Fuzz", 1, 1), p.Input(1, 0.5, 0.5, 1.0, True),
                                      p.Chat(0, "hello"), p.Order("kz-honey", "HONEY-1", 1, "k"), p.Ping(1.0))]
    sent = 0
    while sent < 600:
        async with connect(url(server), compression=None) as fuzz:
            try:
                for _ in range(100):
                    choice = rng.random()
                    if choice < 0.3:
                        frame = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
                    elif choice < 0.9:
                        frame = bytearray(rng.choice(samples))
                        for _ in range(rng.randrange(1, 4)):
                            frame[rng.randrange(len(frame))] = rng.randrange(256)
                        frame = bytes(frame)
                    else:
                        frame = msgpack.packb([rng.randrange(12), *[rng.random() for _ in range(rng.randrange(6))]])
                    await fuzz.send(frame)
                    sent += 1
                await asyncio.sleep(0.05)
            except websockets.ConnectionClosed:
                pass
    tick_before = (await recv_until(watcher, p.Snapshot)).tick
    await asyncio.sleep(0.3)
    assert (await recv_until(watcher, p.Snapshot)).tick > tick_before  # still ticking
    fresh, _ = await join(server, "Fresh")
    await fresh.close()
    await watcher.close()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_binary_frames_are_the_bytes_websockets_makes(size):
    payloads = [bytes(range(256)) * (size // 256) + b"x" * (size % 256), b"\x92\x44\x01"]
    want = b"".join(Frame(Opcode.BINARY, payload).serialize(mask=False) for payload in payloads)
    assert binary_frames(payloads) == want


async def test_bye_closes_with_1000_and_a_close_frame_on_a_raw_socket():
    srv = ExpoServer(small_expo(), ServerConfig(port=0))
    await srv.start()
    try:
        sock = socket.create_connection(("127.0.0.1", srv.port))
        sock.sendall(HANDSHAKE + client_frame(p.encode(p.Hello(p.PROTOCOL_VERSION, "Aru", 0, 0))))
        await asyncio.sleep(0.3)  # a few snapshots come
        sock.sendall(client_frame(p.encode(p.Bye())))
        sock.setblocking(False)
        stream = await read_to_end(sock, answer_close=True)
        head, frames = server_frames(stream)
        assert head.startswith(b"HTTP/1.1 101")
        assert frames[-1] == (0x8, (1000).to_bytes(2, "big") + b"goodbye")
        assert all(opcode == 0x2 for opcode, _ in frames[:-1])
        assert not srv.sim.sessions  # the avatar is gone at once
    finally:
        sock.close()
        await srv.stop()


async def test_offered_extensions_are_declined_and_the_connection_works(server):
    ws = await connect(url(server), compression="deflate")  # offers permessage-deflate
    assert "Sec-WebSocket-Extensions" not in ws.response.headers
    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Plain", 0, 0)))
    assert isinstance(p.decode_server(await ws.recv()), p.Welcome)
    await ws.close()


async def test_before_hello_a_frame_may_be_no_larger_than_a_hello(server):
    ws = await connect(url(server), compression=None)
    await ws.send(b"\x00" * 5000)  # joined, this would be answered with Error(too_large)
    with pytest.raises(websockets.ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd.code == 1009


async def test_connections_are_capped_per_address_and_in_total():
    srv = ExpoServer(small_expo(), ServerConfig(port=0, max_connections=5, max_connections_per_address=3))
    await srv.start()
    try:
        held = [await connect(url(srv), compression=None) for _ in range(3)]
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(url(srv), compression=None)
        assert info.value.response.status_code == 503 and b"from your address" in info.value.response.body
        assert (await asyncio.to_thread(http_get, srv.port, "/healthz"))[0] == 503  # HTTP counts too
        await held.pop().close()
        await asyncio.sleep(0.1)
        again = await connect(url(srv), compression=None)  # a slot freed is a slot again
        await again.close()
        for ws in held:
            await ws.close()
    finally:
        await srv.stop()
    assert not srv._connections and not srv._per_address


async def test_mounted_http_handlers_share_the_port(server):
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    server.mount("/admin/", lambda request: Response(200, "OK", Headers([("Content-Length", "2")]), b"hi"))
    assert (await asyncio.to_thread(http_get, server.port, "/admin/x"))[::2] == (200, "hi")
    assert (await asyncio.to_thread(http_get, server.port, "/adminx"))[0] == 404


async def test_one_message_a_tick_and_a_version_2_client_is_refused(server):
    ws, _ = await join(server, "Aru")
    other, wo = await join(server, "Bea")
    ticks = []
    async with asyncio.timeout(3):
        while len(ticks) < 10:
            message = p.decode_server(await ws.recv())
            assert isinstance(message, p.Snapshot)  # nothing else comes on a quiet tick
            ticks.append(message.tick)
    assert ticks == list(range(ticks[0], ticks[0] + 10))
    await other.send(p.encode(p.Bye()))  # the avatar goes at once
    async with asyncio.timeout(3):
        while wo.entity not in (await recv_until(ws, p.Snapshot)).leaves:
            pass
    old = await connect(url(server), compression=None)
    await old.send(msgpack.packb([1, 2, "Oldie", 0, 0, None, None]))  # a protocol 2 Hello
    refused = p.decode_server(await old.recv())
    assert refused == p.Refused("version_mismatch", "server speaks protocol 4, client sent 2")
    with pytest.raises(websockets.ConnectionClosed):
        await old.recv()
    await ws.close()


@pytest.mark.parametrize("send_thread", [False, True], ids=["loop-sends", "send-thread"])
async def test_a_client_that_stops_reading_is_dropped_though_the_kernel_holds_its_bytes(send_thread):
    """Issue 14: on loopback the kernel's send buffer (autotuned to megabytes) absorbed
    everything, so the backlog rules never saw a client that stopped reading. A real client
    with a small receive buffer joins and stops reading; the server keeps its default send
    buffer, and drops it by the rule (too_slow), long before the keepalive would."""
    srv = ExpoServer(small_expo(), ServerConfig(port=0, stuck_timeout=1.0, skip_backlog=4096, send_thread=send_thread))
    await srv.start()
    try:
        reader, _ = await join(srv, "Reader")
        crowd = [await join(srv, f"Walker{i}") for i in range(6)]  # moving avatars: bytes every tick
        walking = [asyncio.create_task(_walk(ws, 1.0 if i % 2 else -1.0)) for i, (ws, _) in enumerate(crowd)]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(HANDSHAKE + client_frame(p.encode(p.Hello(p.PROTOCOL_VERSION, "Sloth", 0, 0))))
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(20):
            while not (sloth := [s for s in srv.sim.sessions.values() if s.name == "Sloth"]) or sloth[0].peer is not None:
                await recv_until(reader, p.Snapshot)  # the others are served meanwhile
        assert loop.time() - started < 15  # the keepalive alone takes 40 s
        assert srv.metrics.slow_drops._value.get() == 1  # the sloth, by the rule; its avatar waits for a resume
        for task in walking:
            task.cancel()
        for ws, _ in crowd:
            await ws.close()
        await reader.close()
    finally:
        sock.close()
        await srv.stop()


async def test_a_client_that_stops_reading_in_a_quiet_hall_is_dropped_within_seconds():
    """Issue 14: with one other visitor about, a client that stopped reading gets a few
    hundred bytes a second; the backlog took ~40 s to pass the skip threshold, and the
    keepalive closed it first (1011). Its kernel acknowledging nothing for 5 s is the sign."""
    srv = ExpoServer(load_expo(), ServerConfig(port=0))  # the default expo: its Welcome fills 4 KiB at once
    await srv.start()
    sock = socket.socket()
    try:
        reader, _ = await join(srv, "Reader")
        walking = asyncio.create_task(_walk(reader, 1.0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(HANDSHAKE + client_frame(p.encode(p.Hello(p.PROTOCOL_VERSION, "Sloth", 0, 0))))
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not (sloth := [s for s in srv.sim.sessions.values() if s.name == "Sloth"]) or sloth[0].peer is not None:
            assert loop.time() - started < 15, "not dropped"
            await asyncio.sleep(0.2)
        assert srv.metrics.slow_drops._value.get() == 1
        assert srv.sim.sessions[reader_session(srv, "Reader")].peer is not None  # the reader, reading, stays
        walking.cancel()
        await reader.close()
    finally:
        sock.close()
        await srv.stop()


def reader_session(srv: ExpoServer, name: str) -> str:
    return next(sid for sid, s in srv.sim.sessions.items() if s.name == name)


async def _walk(ws, east: float) -> None:
    """Walk back and forth, reading everything (a client that keeps up)."""
    async def read() -> None:
        async for _ in ws:
            pass

    reading = asyncio.create_task(read())
    try:
        for n in itertools.count():
            await ws.send(p.encode(p.Input(1 + 20 * n, east if n % 4 < 2 else -east, 0.5, 0.0, True, 20)))
            await asyncio.sleep(1.0)
    finally:
        reading.cancel()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def test_300_connections_that_never_say_hello_hold_little_memory(tmp_path):
    """Issue 14: each Hello-less WebSocket could make the server queue 64 frames of 64 KiB
    (RSS 190 MB to 1,036 MB for 300). Before Welcome a frame may be 4 KiB and nothing is
    queued between the parser and the simulation: 300 connections pushing all they may
    (garbage frames until the bad-frame rule closes them, a big frame's first bytes held
    open) add a few tens of MB at most, to a real expo-server process."""
    from processes import BIN, free_port, start, stop

    port = free_port()
    proc = start([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(tmp_path), "--log-level", "warning",
                  "--max-connections-per-address", "400"], f"http://127.0.0.1:{port}/healthz", log=tmp_path / "server.log")
    try:
        before = _rss_kib(proc.pid)
        garbage = client_frame(b"\xc1" * 4000)
        big_start = b"\x82\xff" + (60_000).to_bytes(8, "big")  # a 60 kB frame's header: refused pre-join
        held = b"\x82\xfe" + (4000).to_bytes(2, "big") + b"\x00" * 4 + b"x" * 3000  # 3 kB of a 4 kB frame
        writers = []
        for i in range(300):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(HANDSHAKE + (garbage * 12 if i % 3 == 0 else big_start if i % 3 == 1 else held))
            writers.append(writer)
        await asyncio.sleep(3)
        grown = _rss_kib(proc.pid) - before
        status = json.loads((await asyncio.to_thread(http_get, port, "/healthz"))[2])
        assert status["connections"] <= 300
        assert grown < 40 * 1024, f"RSS grew by {grown} KiB"
        for writer in writers:
            writer.close()
    finally:
        stop(proc)
