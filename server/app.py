"""The I/O shell around the simulation: a listening socket whose connections are
server.connection's (websockets' sans-I/O protocol driven by our own asyncio protocol),
one task for the tick, one for the connections' timers.

The tick never awaits a client: its frames are handed to the send thread
(server.sendthread) or written straight into each connection's transport, and a client with
too many bytes queued is skipped (see Simulation). Plain HTTP
on the same port serves ``/healthz`` and ``/metrics`` to operators, and whatever is
mounted with ``mount`` (an admin console).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from world import motion
from world.model import Expo

from . import interest, kernelsample, sendthread, snapshots
from .clock import Clock, SystemClock
from .config import ServerConfig
from .connection import SocketPeer
from .exhibitors import ExhibitorServices
from .identity import passes_for, tickets_for
from .link import LinkState
from .metrics import ServerMetrics
from .moderation import Moderation, open_moderation
from .readrounds import PERIOD, ReadRounds
from .sendstate import TickFrames
from .sendthread import SendThread
from .simulation import Simulation
from .world_watch import WorldWatcher

if TYPE_CHECKING:
    import uvicorn

    from .cluster.gate import ClusterGate
    from .collectibles import Collectibles
    from .commerce import Commerce
    from .deals.service import DealService

log = logging.getLogger("expo.server")

OPEN_TIMEOUT = 10.0  # seconds to finish the HTTP handshake (slowloris)
PING_INTERVAL = 20.0  # seconds of silence from a client before it is pinged
PING_TIMEOUT = 20.0  # seconds a ping may go unanswered before the connection is failed (1011)
LISTEN_BACKLOG = 1024  # connections the kernel queues before accept (asyncio's 100 overflowed
# under 1,300 attackers connecting at once: a visitor's SYN dropped is a 1 s retry, issue 14)
CLOSE_TIMEOUT = 2.0  # seconds a closing handshake may take before the socket is aborted
TIMER_PERIOD = 0.5  # how often the connections' timers are looked at
KERNEL_SAMPLE_TICKS = 10  # each connection's kernel send queue is read every this many ticks...
KERNEL_WATCH_SHARE = 8  # ...and every tick once it held more than 1/8 of skip_backlog (a reader falling behind)
BATCH_WAIT = 0.005  # seconds the tick may wait for the send thread's last batch (see SendThread.finish)

HttpHandler = Callable[[Request], Response]


class ExpoServer:
    def __init__(self, expo: Expo, config: ServerConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        self.clock = clock or SystemClock()
        self.sim = Simulation(expo, config, self.clock, self.metrics,
                              passes=passes_for(config.visitor_secret, config.data_dir),
                              tickets=tickets_for(config.tickets_file))
        # read when /metrics is scraped, not set every tick (a pass over every session)
        self.metrics.clients.set_function(lambda: self.sim.connected)
        self.metrics.avatars.set_function(lambda: len(self.sim.avatars))
        self.started_at = self.clock.wall()
        self._server: asyncio.Server | None = None
        self._tick_task: asyncio.Task | None = None
        self._timer_task: asyncio.Task | None = None
        self._sender: SendThread | None = None  # with --send-thread
        self._rounds: ReadRounds | None = None  # with --read-rounds
        self._connections: set[SocketPeer] = set()
        self._sampling: list[SocketPeer] = []  # the connections in the order their kernels are sampled
        self._kernel_sample = kernelsample.KernelSampler()
        self._watched: set[SocketPeer] = set()  # sampled every tick: their kernels held a share of skip_backlog
        self._per_address: Counter[str] = Counter()
        # frames and bytes received since they were last added to their Prometheus counters
        # (once a tick and before a scrape: a counter's inc takes a lock, twice a frame was
        # a few per cent of reading one)
        self._frames_in = self._bytes_in = 0
        self._webhooks: tuple[uvicorn.Server, asyncio.Task] | None = None  # with --webhook-port: the server, its task
        self._watcher: WorldWatcher | None = None
        self._watch_task: asyncio.Task | None = None
        self.commerce: Commerce | None = None  # when a bank is configured
        self.deals: DealService | None = None  # B2B deals, with the bank too
        self.collectibles: Collectibles | None = None  # certificates with purchases, with the bank too
        self._exhibitors: ExhibitorServices | None = None
        self._console: Any = None  # console.app.ConsoleServer when --console-port is given
        self.moderation: Moderation | None = None  # from start(): mutes, bans, reports (the console writes them)
        self._moderation_task: asyncio.Task | None = None  # --db: the other processes' decisions, reloaded
        self._routes: dict[str, HttpHandler] = {"/healthz": self._healthz, "/metrics": self._metrics}
        self._mounts: list[tuple[str, HttpHandler]] = []
        self.cluster: ClusterGate | None = None  # when --cluster: seats through the cluster's directory
        if config.cluster_url:
            from .cluster.gate import ClusterGate

            self.cluster = ClusterGate.for_config(self.sim, config)
            self.cluster.flush = self._after_frame

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def mount(self, prefix: str, handler: HttpHandler) -> None:
        """Serve plain HTTP requests whose path starts with ``prefix`` (e.g. ``/admin/``)
        with ``handler``, on the WebSocket port; a WebSocket upgrade is never routed."""
        if not prefix.startswith("/"):
            raise ValueError(f"a mount point is a path, not {prefix!r}")
        self._mounts.append((prefix, handler))

    async def start(self) -> None:
        """Settle commerce with the bank first, then listen: once /healthz answers, every
        order the bank finished while we were down is fulfilled. The motion, interest and
        snapshot kernels are compiled (or loaded from their disk cache) before anything
        else: the first tick must not stall for the JIT (seconds each) with clients connected."""
        log.info("motion kernel ready", extra={"seconds": round(motion.warm(), 2)})
        log.info("interest kernel ready", extra={"seconds": round(interest.warm(), 2)})
        log.info("snapshot kernel ready", extra={"seconds": round(snapshots.warm(), 2)})
        loop = asyncio.get_running_loop()
        self.moderation = self.sim.moderation = open_moderation(self.config.db_url, self.config.data_dir, self.clock.wall)
        if self.config.db_url:
            self._moderation_task = asyncio.create_task(self._refresh_moderation(), name="moderation")
        log.info("kernel sample ready", extra={"seconds": round(kernelsample.warm(), 2)})
        if self.config.send_thread:
            log.info("send kernel ready", extra={"seconds": round(sendthread.warm(), 2)})
            self._sender = SendThread(loop)
        if self.config.bank_url:
            await self._start_commerce(self.config.bank_url)
        self._exhibitors = ExhibitorServices(self.sim, self.config)
        await self._exhibitors.start()
        if self.collectibles is not None:
            self._exhibitors.service.exchange_hooks.append(self.collectibles.cards_exchanged)
        self.sim.sendstate.clock = loop.time  # the connections' clock, which their rows are timed with
        sender = self._sender
        rounds = self._rounds = ReadRounds() if self.config.read_rounds else None
        self._server = await loop.create_server(
            lambda: SocketPeer(self, loop.time, self.config.socket_send_buffer, sender, rounds),
            self.config.host, self.config.port, reuse_address=True,
            backlog=LISTEN_BACKLOG)
        if self.cluster is not None:
            await self.cluster.start(self.config.public_url or f"ws://{self.config.host}:{self.port}/")
        self._tick_task = asyncio.create_task(self._tick_loop(), name="tick")
        self._timer_task = asyncio.create_task(self._timers(), name="connection-timers")
        if self.config.world is not None and self.config.watch_world:
            self._watcher = WorldWatcher(Path(self.config.world), self.apply_world)
            self._watch_task = asyncio.create_task(self._watcher.run(), name="world-watch")
        if self.config.console_port is not None:
            from console.app import start_console  # the one import of console/, a startup hook

            self._console = await start_console(self, self.config.host, self.config.console_port)
        log.info("listening", extra={"host": self.config.host, "port": self.port, "expo": self.sim.expo.name})

    async def _refresh_moderation(self) -> None:
        """The sanctions as every hall process decided them, every few seconds (off the loop)."""
        from .moderation_pg import REFRESH

        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(REFRESH)
            assert self.moderation is not None
            try:
                await loop.run_in_executor(None, self.moderation.refresh)
            except Exception as exc:  # PostgreSQL away: keep the last known, say it, try again
                log.warning("sanctions not reloaded", extra={"error": repr(exc)})
                continue
            banned = [(s, ban) for s in list(self.sim.sessions.values()) if (ban := self.moderation.banned(s.visitor_id))]
            for session, ban in banned:  # banned at another process's console while here
                self.sim.kick(session, f"banned: {ban.reason}")
            if banned:
                self.flush()

    async def _start_commerce(self, bank_url: str) -> None:
        from bank.client import PlatformClient

        from .commerce import Commerce
        from .storage import open_commerce_store

        cfg = self.config
        if not cfg.bank_platform_key:
            raise SystemExit("a bank URL needs the platform key (EXPO_BANK_PLATFORM_KEY)")
        commerce = Commerce(self.sim, open_commerce_store(cfg),
                            PlatformClient(bank_url, cfg.bank_platform_key), cfg, self.clock, self.metrics)
        await commerce.start()
        self.commerce = self.sim.commerce = commerce
        from .deals.service import DealService
        from .deals.store import open_deal_store

        async def account_of(visitor: str) -> str | None:
            return await commerce.db.run(commerce.store.payer, visitor)

        self.deals = DealService(self.sim, open_deal_store(cfg.db_url, cfg.data_dir),
                                 PlatformClient(bank_url, cfg.bank_platform_key), account_of=account_of)
        await self.deals.start()
        self.sim.deals = self.deals
        from .collectibles import Collectibles, open_collectibles_store, verify_page

        async def merchant_of(booth: str, currency: str) -> str | None:
            return await commerce.db.run(commerce.store.merchant, booth, currency)

        async def fulfilled_of(booth: str, sku: str) -> list[tuple[str, str, float]]:
            return await commerce.db.run(commerce.store.fulfilled_orders, booth, sku)

        async def visitors_of(account: str) -> list[str]:
            return await commerce.db.run(commerce.store.visitors_of, account)

        def console_url() -> str | None:
            """--console-url, else the console's own address if people can be sent there (the
            console starts after commerce, hence asked at each link)."""
            if cfg.console_url or self._console is None or cfg.host in ("", "0.0.0.0", "::"):
                return cfg.console_url
            host = cfg.host if ":" not in cfg.host else f"[{cfg.host}]"
            return f"http://{host}:{self._console.port}"

        self.collectibles = Collectibles(self.sim, open_collectibles_store(cfg.db_url, cfg.data_dir),
                                         PlatformClient(bank_url, cfg.bank_platform_key), verify_page(console_url, bank_url),
                                         account_of, merchant_of, fulfilled_of, visitors_of)
        commerce.fulfilment_hooks.append(self.collectibles.order_fulfilled)
        commerce.gift_hooks.append(self.collectibles.item_gifted)
        self.collectibles.catch_up_soon()  # what a crash (or the start's reconciliation) left uncertified
        self.sim.collectibles = self.collectibles
        if cfg.webhook_port is not None:
            from .webhooks import serve_webhooks

            self._webhooks = await serve_webhooks(
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
        if self._server is not None:
            self._server.close()  # no new connections
        self.sim.shutdown()
        self._flush_all()
        for task in (self._tick_task, self._timer_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_TIMEOUT + 1.0
        while self._connections and loop.time() < deadline:  # the closing handshakes
            await asyncio.sleep(0.02)
        for conn in list(self._connections):
            conn.abort()
        if self._sender is not None:
            self._sender.stop()
        if self._rounds is not None:
            self._rounds.close()
        if self.cluster is not None:
            await self.cluster.stop()
        if self._server is not None:
            await self._server.wait_closed()
        if self._webhooks is not None:
            webhooks, task = self._webhooks
            webhooks.should_exit = True
            await task
        if self.deals is not None:
            await self.deals.close()
        if self.collectibles is not None:
            await self.collectibles.close()
        if self.commerce is not None:
            await self.commerce.close()
        if self._exhibitors is not None:
            await self._exhibitors.stop()
        if self.moderation is not None:
            if self._moderation_task is not None:
                self._moderation_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._moderation_task
            self.moderation.close()  # PostgreSQL's lock lets a reload still on its thread finish first
        log.info("stopped")

    # ------------------------------------------------------------------ connections (server.connection.Host)

    def admit(self, conn: SocketPeer) -> str | None:
        """Count a new TCP connection in, or say why not: caps on connections in total and
        per address, before a byte of it is parsed (sessions have their own cap)."""
        cfg = self.config
        if len(self._connections) >= cfg.max_connections:
            self.metrics.rejected.labels("too_many_connections").inc()
            return f"the server has {cfg.max_connections} connections open: try again later"
        if self._per_address[conn.address] >= cfg.max_connections_per_address:
            self.metrics.rejected.labels("too_many_connections").inc()
            return f"{cfg.max_connections_per_address} connections from your address are open already"
        self._connections.add(conn)
        self._per_address[conn.address] += 1
        return None

    def opened(self, conn: SocketPeer) -> None:
        self.sim.open_peer(conn)

    def frame(self, conn: SocketPeer, data: bytes | str) -> None:
        self._frames_in += 1
        self._bytes_in += len(data)
        if conn.closing:
            return
        if conn.held is not None:  # a cluster admission is in flight: keep the frames' order
            conn.held.append(data)
            return
        if self.cluster is not None and conn.session is None:
            conn.hold()  # a Hello may wait for a seat from the cluster's directory
            asyncio.create_task(self._admit(conn, data), name="cluster-admission")
            return
        joined = conn.state is LinkState.JOINED
        self.sim.on_frame(conn, data)
        if joined and conn.state is LinkState.JOINED and not conn.outbox:
            return  # an Input of a joined client: nothing to answer, joined() was done when it joined
        self._after_frame(conn)

    def _after_frame(self, conn: SocketPeer) -> None:
        if conn.state is LinkState.JOINED:
            conn.joined()
        if conn.outbox:  # most frames (Inputs) are answered in the tick's message, not now
            self._count_out(*conn.flush())
        if conn.state is LinkState.CLOSING:
            conn.settle()

    async def _admit(self, conn: SocketPeer, data: bytes | str) -> None:
        """A frame of a connection that has not joined, through the cluster's gate (which
        seats a fresh Hello); the frames that came meanwhile follow in order."""
        assert self.cluster is not None
        try:
            await self.cluster.on_frame(conn, data)
        except Exception:
            log.exception("cluster admission failed")
        self._after_frame(conn)
        for later in conn.release():
            self.frame(conn, later)

    def lost(self, conn: SocketPeer) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self._per_address[conn.address] -= 1
            if not self._per_address[conn.address]:
                del self._per_address[conn.address]
        if conn.websocket_open:
            self.sim.on_disconnect(conn)

    async def _timers(self) -> None:
        """Every connection's deadlines, looked at twice a second in one pass: the opening
        handshake, keepalive pings and the closing handshake."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TIMER_PERIOD)
            now = loop.time()
            for conn in list(self._connections):
                if conn.close_started_at is not None:
                    if now - conn.close_started_at > CLOSE_TIMEOUT:
                        conn.abort()
                elif not conn.websocket_open:
                    if now - conn.connected_at > OPEN_TIMEOUT:
                        conn.abort()
                elif conn.ping_sent_at is not None:
                    if now - conn.ping_sent_at > PING_TIMEOUT:
                        conn.fail(1011, "keepalive ping timeout")
                elif now - conn.last_heard > PING_INTERVAL:
                    conn.ping()

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        dt = self.config.dt
        next_at = loop.time()
        while True:
            next_at += dt
            due = loop.time()
            self._read_round()  # the Inputs that came since the last round (reading is not the tick's time)
            started = loop.time()
            try:
                if self._sender is not None:  # judged in flight, a connection takes the per-session rules
                    self._sender.finish(BATCH_WAIT)
                self._sample_kernels()
                self.sim.tick()
                self._flush_all()
            except Exception:  # the tick must survive anything; a bug is logged, not fatal
                log.exception("tick failed")
            self._count_in()
            finished = loop.time()
            self.metrics.tick_seconds.observe(finished - started)
            if finished > next_at + 5 * dt:  # hopelessly behind: drop the backlog of ticks
                next_at = finished
            self.metrics.tick_lag_seconds.set(max(0.0, due - (next_at - dt)))
            while self._rounds and next_at - loop.time() > PERIOD:  # until the next tick, a round every PERIOD
                await asyncio.sleep(PERIOD)
                self._read_round()
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def _read_round(self) -> None:
        """Read the joined clients' sockets (server.readrounds); like the tick, it survives anything."""
        if self._rounds:
            try:
                self._rounds.round()
            except Exception:
                log.exception("read round failed")

    def _sample_kernels(self) -> None:
        """Refresh what the kernels hold for a share of the connections (all of them over
        KERNEL_SAMPLE_TICKS ticks), and every tick for those whose kernel held more than a
        share of ``skip_backlog`` at the last look: the slow-reader rules count them with
        the transport's. Not every tick for any byte held: on loopback most sockets hold a
        tick's bytes not yet acknowledged at any moment, and 1,000 system calls a tick were
        ~1 ms of it; a reader that stops is seen within KERNEL_SAMPLE_TICKS ticks, long
        before its backlog nears ``skip_backlog``. Only the sampled connections are looked
        at (a pass over all of them each tick was ~1.5 % of the process at 1,000)."""
        phase = self.sim.tick_count % KERNEL_SAMPLE_TICKS
        if not phase:
            self._sampling = list(self._connections)
        watch = self.config.skip_backlog // KERNEL_WATCH_SHARE
        watched, connections, state = self._watched, self._connections, self.sim.sendstate
        joined: list[SocketPeer] = []
        slots: list[int] = []
        fds: list[int] = []
        for conn in (*self._sampling[phase::KERNEL_SAMPLE_TICKS], *watched):
            if conn not in connections:  # gone since the list was made
                watched.discard(conn)
            elif conn.fd >= 0 and state.owns(conn.slot, conn):  # its row: the compiled loop's
                joined.append(conn)
                slots.append(conn.slot)
                fds.append(conn.fd)
            else:
                conn.sample_kernel()
                if conn.kernel_unsent > watch:
                    watched.add(conn)
                else:
                    watched.discard(conn)
        if not joined:
            return
        rows = np.array(slots, np.int64)
        self._kernel_sample(np.array(fds, np.int32), rows, state.unsent, state.acked, state.acked_at, joined[0].clock())
        for conn, over in zip(joined, (state.unsent[rows] > watch).tolist(), strict=True):
            if over:
                watched.add(conn)
            else:
                watched.discard(conn)

    def _flush_all(self) -> None:
        """Every connection's outbox to its socket, then the tick's frames to the direct
        connections (server.sendstate): with the send thread (when it is alive and its last
        batch is back) as one batch, descriptors and offsets into the tick's buffer, no
        Python per connection; the others' by their transports, after their outboxes."""
        frames = size = 0
        closing = LinkState.CLOSING
        connections = self._connections
        for conn in self.sim.take_written():  # the peers written or closing, not every connection
            if not isinstance(conn, SocketPeer) or conn not in connections:
                continue
            try:
                if conn.outbox:
                    n, b = conn.flush()
                    frames += n
                    size += b
                if conn.state is closing:
                    conn.settle()  # after its last frames
            except Exception:  # a broken socket is that client's problem only
                log.warning("flush failed", exc_info=True)
        tick = self.sim.sendstate.take_frames()
        if tick is not None:
            frames += len(tick.slots)
            size += int(tick.at[-1] - tick.at[0])
            self._send_tick(tick)
        self._count_out(frames, size)

    def _send_tick(self, tick: TickFrames) -> None:
        """The tick's frames of the direct slots: those still direct now that their outboxes
        went (a transport that buffered some is not) go by the send thread, the rest by
        their connections' one write path."""
        state = self.sim.sendstate
        sender = self._sender
        slots, at = tick.slots, tick.at
        if sender is None or not sender.alive or not sender.finish(BATCH_WAIT):
            go = np.zeros(len(slots), bool)
        else:
            go = state.direct[slots] & ~state.flying[slots] & (state.fd[slots] >= 0)
        rest = np.flatnonzero(~go)
        if len(rest):
            view = tick.data.data
            owner = state.owner
            starts, ends = at[:-1], at[1:]
            for i in rest.tolist():
                peer = owner[slots[i]]
                if isinstance(peer, SocketPeer):  # only they report direct
                    peer.outbox.append(view[starts[i]:ends[i]])
                    peer.flush()
        if len(rest) < len(slots):
            assert sender is not None
            sent = slots[go]
            state.flying[sent] = True

            def back() -> None:
                state.flying[sent] = False

            sender.submit(state.fd[sent], tick.data, at[:-1][go], at[1:][go], back)

    def _count_in(self) -> None:
        if self._frames_in:
            self.metrics.frames_in.inc(self._frames_in)
            self.metrics.bytes_in.inc(self._bytes_in)
            self._frames_in = self._bytes_in = 0

    def _count_out(self, frames: int, size: int) -> None:
        if frames:
            self.metrics.frames_out.inc(frames)
            self.metrics.bytes_out.inc(size)

    # ------------------------------------------------------------------ HTTP

    def http(self, request: Request) -> Response | None:
        """A plain HTTP answer, or None: go on with the WebSocket handshake (any path)."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        path = request.path.split("?", 1)[0]
        handler = self._routes.get(path)
        if handler is None:
            handler = next((h for prefix, h in self._mounts if path.startswith(prefix)), None)
        if handler is None:
            return _response(HTTPStatus.NOT_FOUND, b"not found: try a WebSocket, /healthz or /metrics\n", "text/plain")
        try:
            return handler(request)
        except Exception:
            log.exception("HTTP handler failed", extra={"path": path})
            return _response(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n", "text/plain")

    def _healthz(self, request: Request) -> Response:
        body = json.dumps({
            "status": "ok",
            "expo": self.sim.expo.name,
            "clients": self.sim.connected,
            "connections": len(self._connections),
            "avatars": len(self.sim.avatars),
            "tick": self.sim.tick_count,
            "uptime_s": round(self.clock.wall() - self.started_at, 1),
            **({} if self.cluster is None else {"cluster": self.cluster.health()}),
            **({} if self._sender is None else {"send_thread": self._sender.health()}),
        }).encode()
        joining = self.cluster is not None and not self.cluster.ready  # not healthy before it can seat anyone
        return _response(HTTPStatus.SERVICE_UNAVAILABLE if joining else HTTPStatus.OK, body, "application/json")

    def _metrics(self, request: Request) -> Response:
        self._count_in()
        return _response(HTTPStatus.OK, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")


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
    # What start made (the world, manifests, compiled kernels' Python objects: ~150,000
    # tracked objects) lives as long as the process: out of the cyclic collector's sight, a
    # full collection walks only what came later. Measured at 1,000 bots on the busy
    # machine: full collections of 194-290 ms before, 40-104 ms after (inside ticks).
    gc.collect()
    gc.freeze()
    if ready is not None:
        ready(server)
    try:
        await stop.wait()
    finally:
        await server.stop()
