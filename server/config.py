"""Server settings: one frozen record, filled from flags and EXPO_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    world: Path | None = None  # None: the packaged default expo
    watch_world: bool = True  # apply edits to the world files while running
    tick_rate: int = 20
    view_radius: float = 20.0
    max_visible: int = 64  # the cap on each client's visible set, nearest first
    interest_every: int = 2  # ticks between recomputations of who sees whom (server.interest; at once on a join, leave or hall change)
    max_clients: int = 2000
    resume_grace: float = 30.0  # seconds an avatar waits for its client to resume
    near_cap_share: float = 0.9  # from this share of max_clients on, detached avatars wait only...
    near_cap_grace: float = 5.0  # ...this long; at the cap the longest-detached one gives its seat
    hello_timeout: float = 10.0
    stuck_timeout: float = 5.0  # a client that cannot take snapshots this long is dropped
    skip_backlog: int = 64 * 1024  # bytes queued to a client above which snapshots are skipped
    hard_backlog: int = 1024 * 1024  # bytes queued to a client that drop it at once
    socket_send_buffer: int | None = None  # SO_SNDBUF for client sockets; None: the OS default
    send_thread: bool = True  # the tick's messages sent by server.sendthread, off the event loop (--no-send-thread: by the loop)
    read_rounds: bool = True  # joined clients' sockets read by server.readrounds (--no-read-rounds: as frames come)
    max_connections: int = 2500  # TCP connections at once, joined or not (sessions: max_clients)
    max_connections_per_address: int = 50  # from one IP address (a venue's NAT shares one)
    frame_rate: float = 60.0  # sustained frames per second a client may send
    frame_burst: float = 120.0
    flood_rate: float = 120.0  # beyond this sustained rate the client is disconnected
    flood_burst: float = 400.0
    chat_rate: float = 1.0
    chat_burst: float = 5.0
    bank_url: str | None = None  # the bank visitors pay through, told to clients at welcome
    bank_platform_key: str | None = None
    webhook_secret: str | None = None
    order_ttl: float = 120.0  # seconds a visitor has to pay an order; its stock is reserved that long
    max_open_orders: int = 3  # orders one visitor may have awaiting payment at once
    bank_concurrency: int = 8  # bank calls in flight at once
    bank_queue: int = 64  # bank calls in hand (running or waiting); visitors get `busy` beyond
    webhook_port: int | None = None  # where the bank's webhooks are heard (POST /bank/webhook)
    staff_secret: str | None = None  # signs staff passes (see server.staff); None: no pass is valid
    data_dir: Path = Path("var")
    visitor_secret: str | None = None  # signs visitor tokens; None: data_dir/visitor.secret, made at first start
    tickets_file: Path | None = None  # ticket codes, one a line: only their holders are admitted
    db_url: str | None = None  # postgresql://...: commerce state shared by a cluster; None: SQLite in data_dir
    cluster_url: str | None = None  # nats://host:port: join a cluster (server.cluster); None: one process
    console_port: int | None = None  # the organisers' and exhibitors' web console (console/), off by default
    console_url: str | None = None  # where people reach the console (certificates' links); None: http://host:console_port
    public_url: str | None = None  # where visitors reach this process (cluster); None: ws://host:port/
    instance_cap: int | None = None  # seats in each hall instance of this process (cluster); None: max_clients
    halls: tuple[str, ...] | None = None  # the halls this process opens an instance of (cluster); None: every hall

    @property
    def dt(self) -> float:
        return 1.0 / self.tick_rate
