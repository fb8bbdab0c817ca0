"""The I/O shell around the simulation: websockets for sockets, one task for the tick.

The tick never awaits a client: its frames are handed to the sender thread (server.sender),
or with ``send_thread`` off written straight into each connection's transport, and a client
with too many bytes queued is skipped (see Simulation).
HTTP on the same port serves ``/healthz`` and ``/metrics`` to operators.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

import protocol as p
from world import motion
from world.model import Expo

from . import interest, sender, snapshots
from .clock import Clock, MonotonicClock
from .config import ServerConfig
from .exhibitors import ExhibitorServices
from .metrics import ServerMetrics
from .sender import Sender, SendingTransport
from .simulation import Peer, Simulation
from .world_watch import WorldWatcher

if TYPE_CHECKING:
    from .cluster.gate import ClusterGate
    from .commerce import Commerce

log = logging.getLogger("expo.server")

MAX_FRAME = 64 * 1024  # websockets closes (1009) above this; below it the codec answers


_SHORT_HEADERS = [bytes((0x82, n)) for n in range(126)]


def binary_frames(payloads: list[bytes]) -> bytes:
    """The payloads as WebSocket frames from a server, back to back: final, binary,
    unmasked (RFC 6455, 5.2). websockets' ``send_binary`` makes the same bytes through a
    Frame object per message, about 4 us each: with two or three messages per client per
    tick that was 8 % of the server at 1,000 clients, against a fraction of a microsecond
    here. Every frame is whole, so they interleave safely with websockets' own writes
    (pings, pongs, the close frame) on this one event loop."""
    parts = []
    for payload in payloads:
        n = len(payload)
        if n < 126:
            parts.append(_SHORT_HEADERS[n])
        elif n < 65536:
            parts.append(b"\x82\x7e" + n.to_bytes(2, "big"))
        else:
            parts.append(b"\x82\x7f" + n.to_bytes(8, "big"))
        parts.append(payload)
    return b"".join(parts)


class SocketPeer(Peer):
    def __init__(self, connection: ServerConnection) -> None:
        super().__init__()
        self.connection = connection
        self.closing_task: asyncio.Task | None = None
        transport = connection.transport
        self.channel = transport.channel if isinstance(transport, SendingTransport) else None

    def backlog(self) -> int:
        channel = self.channel
        return channel.queued if channel is not None else self.connection.transport.get_write_buffer_size()

    def flush(self, batch: list | None = None) -> tuple[int, int]:
        """Write the outbox to the socket without awaiting, in one write: a tick costs one
        send system call per client however many messages it carries. With the sender
        thread, a tick passes ``batch`` to collect its writes for one hand-over.
        Returns the frames and payload bytes written, for the caller's counters."""
        if not self.outbox:
            return 0, 0
        frames, self.outbox = self.outbox, []
        conn = self.connection
        if conn.protocol.state is not State.OPEN:
            return 0, 0
        if batch is not None and self.channel is not None:
            batch.append((self.channel, binary_frames(frames)))
        else:
            conn.transport.write(binary_frames(frames))
        return len(frames), sum(map(len, frames))

    def settle_close(self) -> None:
        """Start the closing handshake the simulation asked for, once, after its last frames
        were written (a Bye queues none, and must close all the same)."""
        if self.close_request is None or self.closing_task is not None:
            return
        conn = self.connection
        code, reason = self.close_request
        if code is p.ErrorCode.TOO_SLOW:  # no closing handshake fits through a full buffer
            conn.transport.abort()
            self.closing_task = asyncio.ensure_future(asyncio.sleep(0))
            return
        close_code = 1000 if code in (None, p.ErrorCode.SHUTDOWN) else 1008
        if code is p.ErrorCode.SHUTDOWN:
            close_code = 1001
        self.closing_task = asyncio.ensure_future(conn.close(close_code, reason[:120]))


class ExpoServer:
    def __init__(self, expo: Expo, config: ServerConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        self.clock = clock or MonotonicClock()
        self.sim = Simulation(expo, config, self.clock, self.metrics)
        self.started_at = time.time()
        self._server: Server | None = None
        self._tick_task: asyncio.Task | None = None
        self._socket_peers: set[SocketPeer] = set()
        self._webhook_server = None
        self._watcher: WorldWatcher | None = None
        self._watch_task: asyncio.Task | None = None
        self._sender: Sender | None = None
        self.commerce: Commerce | None = None  # when a bank is configured
        self._exhibitors: ExhibitorServices | None = None
        self._console: Any = None  # console.app.ConsoleServer when --console-port is given
        self.cluster: ClusterGate | None = None  # when --cluster: seats through the cluster's directory
        if config.cluster_url:
            from .cluster.gate import ClusterGate

            self.cluster = ClusterGate.for_config(self.sim, config)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        """Settle commerce with the bank first, then listen: once /healthz answers, every
        order the bank finished while we were down is fulfilled. The motion, interest and
        snapshot kernels are compiled (or loaded from their disk cache) before anything
        else: the first tick must not stall for the JIT (seconds each) with clients connected."""
        log.info("motion kernel ready", extra={"seconds": round(motion.warm(), 2)})
        log.info("interest kernel ready", extra={"seconds": round(interest.warm(), 2)})
        log.info("snapshot kernel ready", extra={"seconds": round(snapshots.warm(), 2)})
        if self.config.send_thread:
            log.info("send kernel ready", extra={"seconds": round(sender.warm(), 2)})
        if self.config.bank_url:
            await self._start_commerce()
        self._exhibitors = ExhibitorServices(self.sim, self.config)
        await self._exhibitors.start()
        if self.config.send_thread:
            self._sender = Sender(asyncio.get_running_loop(), self.metrics.send_seconds.observe)
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._http,
            compression=None,  # small binary frames: deflate costs CPU and memory per client
            max_size=MAX_FRAME,
            max_queue=64,
            write_limit=(self.config.hard_backlog * 4, None),  # never make the tick wait
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            logger=logging.getLogger("expo.server.ws"),
        )
        if self.cluster is not None:
            await self.cluster.start(self.config.public_url or f"ws://{self.config.host}:{self.port}/")
        self._tick_task = asyncio.create_task(self._tick_loop(), name="tick")
        if self.config.world is not None and self.config.watch_world:
            self._watcher = WorldWatcher(Path(self.config.world), self.apply_world)
            self._watch_task = asyncio.create_task(self._watcher.run(), name="world-watch")
        if self.config.console_port is not None:
            from console.app import start_console  # the one import of console/, a startup hook

            self._console = await start_console(self, self.config.host, self.config.console_port)
        log.info("listening", extra={"host": self.config.host, "port": self.port, "expo": self.sim.expo.name})

    async def _start_commerce(self) -> None:
        from bank.client import PlatformClient

        from .commerce import Commerce
        from .storage import open_commerce_store

        cfg = self.config
        if not cfg.bank_platform_key:
            raise SystemExit("a bank URL needs the platform key (EXPO_BANK_PLATFORM_KEY)")
        commerce = Commerce(self.sim, open_commerce_store(cfg),
                            PlatformClient(cfg.bank_url, cfg.bank_platform_key), cfg, self.clock, self.metrics)
        await commerce.start()
        self.commerce = self.sim.commerce = commerce
        if cfg.webhook_port is not None:
            from .webhooks import serve_webhooks

            self._webhook_server, self._webhook_task = await serve_webhooks(
                commerce.on_webhook, cfg.host, cfg.webhook_port, self._flush_all)

    async def apply_world(self, expo: Expo) -> None:
        """Swap in changed world files (called by the watcher); commerce learns new booths."""
        if self.commerce is not None:
            previous = self.sim.expo
            self.sim.expo = expo
            try:
                await self.commerce.prepare_booths()
            except Exception:
                self.sim.expo = previous
                log.exception("new booths could not get bank accounts; keeping the running world")
                return
        self.sim.reload(expo)
        self._flush_all()

    @property
    def exhibitors(self) -> ExhibitorServices | None:
        return self._exhibitors

    @property
    def watcher(self) -> WorldWatcher | None:
        return self._watcher

    def flush(self) -> None:
        """Send what the simulation queued now rather than at the next tick (console actions)."""
        self._flush_all()

    async def stop(self) -> None:
        """Tell every client, close every connection, then stop listening."""
        if self._watch_task is not None:
            self._watch_task.cancel()
        if self._console is not None:
            await self._console.stop()
        self.sim.shutdown()
        self._flush_all()
        if self._tick_task:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        tasks = [peer.closing_task for peer in self._socket_peers if peer.closing_task]
        if tasks:
            await asyncio.wait(tasks, timeout=3)
        if self.cluster is not None:
            await self.cluster.stop()
        if self._server:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        if self._webhook_server is not None:
            self._webhook_server.should_exit = True
            await self._webhook_task
        if self.commerce is not None:
            await self.commerce.close()
        if self._exhibitors is not None:
            await self._exhibitors.stop()
        if self._sender is not None:
            self._sender.stop()
        log.info("stopped")

    # ------------------------------------------------------------------ websocket

    async def _handle(self, connection: ServerConnection) -> None:
        if self.config.socket_send_buffer:
            sock = connection.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.socket_send_buffer)
        sending = None
        if self._sender is not None:
            if not await _drained(connection.transport):  # the handshake's response goes first
                connection.transport.abort()
                return
            sending = connection.transport = SendingTransport(connection.transport, self._sender)
        peer = SocketPeer(connection)
        self.sim.open_peer(peer)
        self._socket_peers.add(peer)
        try:
            async for data in connection:
                self.metrics.frames_in.inc()
                self.metrics.bytes_in.inc(len(data))
                if self.cluster is None:
                    self.sim.on_frame(peer, data)
                else:
                    await self.cluster.on_frame(peer, data)
                self._count_out(*peer.flush())
                peer.settle_close()
                if peer.close_request is not None:
                    break
        except ConnectionClosed:
            pass
        finally:
            self.sim.on_disconnect(peer)
            self._socket_peers.discard(peer)
            self.metrics.clients.set(self.sim.connected)
        if peer.closing_task is not None:
            with contextlib.suppress(Exception):
                await peer.closing_task
        if sending is not None:
            sending.release()

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        dt = self.config.dt
        next_at = loop.time()
        while True:
            next_at += dt
            started = loop.time()
            try:
                self.sim.tick()
                self._flush_all()
            except Exception:  # the tick must survive anything; a bug is logged, not fatal
                log.exception("tick failed")
            finished = loop.time()
            self.metrics.tick_seconds.observe(finished - started)
            self.metrics.clients.set(self.sim.connected)
            self.metrics.avatars.set(len(self.sim.avatars))
            if finished > next_at + 5 * dt:  # hopelessly behind: drop the backlog of ticks
                next_at = finished
            self.metrics.tick_lag_seconds.set(max(0.0, started - (next_at - dt)))
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def _flush_all(self) -> None:
        frames = size = 0
        batch: list = []
        for peer in list(self._socket_peers):
            try:
                n, b = peer.flush(batch)
                frames += n
                size += b
            except Exception:  # a broken socket is that client's problem only
                log.warning("flush failed", exc_info=True)
        if batch:
            self._sender.submit(batch)
        for peer in list(self._socket_peers):  # after the batch: a close frame goes last
            if peer.close_request is not None:
                peer.settle_close()
        self._count_out(frames, size)

    def _count_out(self, frames: int, size: int) -> None:
        if frames:
            self.metrics.frames_out.inc(frames)
            self.metrics.bytes_out.inc(size)

    # ------------------------------------------------------------------ HTTP

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            body = json.dumps({
                "status": "ok",
                "expo": self.sim.expo.name,
                "clients": self.sim.connected,
                "avatars": len(self.sim.avatars),
                "tick": self.sim.tick_count,
                "uptime_s": round(time.time() - self.started_at, 1),
                **({} if self.cluster is None else {"cluster": self.cluster.health()}),
            }).encode()
            joining = self.cluster is not None and not self.cluster.ready  # not healthy before it can seat anyone
            return _response(HTTPStatus.SERVICE_UNAVAILABLE if joining else HTTPStatus.OK, body, "application/json")
        if path == "/metrics":
            return _response(HTTPStatus.OK, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _response(HTTPStatus.NOT_FOUND, b"not found: try a WebSocket, /healthz or /metrics\n", "text/plain")
        return None


async def _drained(transport: asyncio.Transport, timeout: float = 5.0) -> bool:
    """Wait until the transport has no bytes of its own queued (rarely any: the handshake's
    response is small), so that the sender thread's bytes cannot overtake them. False when
    the client did not take them in time, or went."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while transport.get_write_buffer_size():
        if transport.is_closing() or loop.time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))), ("Connection", "close")])
    return Response(status.value, status.phrase, headers, body)


async def run_server(expo: Expo, config: ServerConfig, ready: Any = None) -> None:
    """Serve until cancelled or signalled, then shut down gracefully."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    server = ExpoServer(expo, config)
    await server.start()
    if ready is not None:
        ready(server)
    try:
        await stop.wait()
    finally:
        await server.stop()
