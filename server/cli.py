"""`expo-server`: serve an expo's halls over WebSocket, with /healthz and /metrics."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ServerConfig
from .logs import setup_logging
from .staff import SECRET_FILE, StaffSecretError, issue_pass, load_or_create_secret

if TYPE_CHECKING:
    from world.model import Expo


def _env(name: str, default):
    return os.environ.get(f"EXPO_{name}", default)


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Says a flag's default only where there is one to say and its help does not already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help = action.help or ""
        if action.default in (None, False) or "default" in help:
            return help
        return super()._get_help_string(action)


CLUSTER_HELP = """\
cluster: several processes, on one machine or many, share the visitors.
  `make cluster` starts NATS, PostgreSQL, the bank and two hall processes on this machine
  and prints the commands it ran. To add a process on another machine, make NATS and
  PostgreSQL reachable from it (they listen on loopback by default), then run there:
    expo-server --host 0.0.0.0 --port 8765 --public-url ws://THIS-MACHINE:8765/ \\
        --cluster nats://NATS-HOST:4222 --db postgresql://expo:PASSWORD@DB-HOST:5432/expo \\
        --bank-url http://BANK-HOST:8766   (with EXPO_BANK_PLATFORM_KEY set)
  It joins the directory, opens an instance of every hall and takes visitors at once.
  Without --cluster the server is one process with SQLite and no broker (`make run`).
"""


class _HelpFormatter(_DefaultsHelp, argparse.RawDescriptionHelpFormatter):
    """Defaults as _DefaultsHelp says them, and the epilog's lines as written."""


def build_parser() -> argparse.ArgumentParser:
    d = ServerConfig()
    parser = argparse.ArgumentParser(
        prog="expo-server",
        description="Serve the Silk Road Expo halls over WebSocket (msgpack frames). "
        "Every flag has an EXPO_<NAME> environment variable, e.g. EXPO_PORT.",
        formatter_class=_HelpFormatter,
        epilog=CLUSTER_HELP,
    )
    parser.add_argument("--host", default=_env("HOST", d.host), help="address to listen on")
    parser.add_argument("--port", type=int, default=int(_env("PORT", d.port)), help="port for WebSocket and HTTP")
    parser.add_argument("--world", type=Path, default=_env("WORLD", None), help="expo directory (default: the packaged Silk Road expo)")
    parser.add_argument("--no-watch", action="store_true", help="do not apply edits of the world files while running")
    parser.add_argument("--tick-rate", type=int, default=int(_env("TICK_RATE", d.tick_rate)), help="simulation steps per second")
    parser.add_argument("--view-radius", type=float, default=float(_env("VIEW_RADIUS", d.view_radius)), help="metres a visitor sees")
    parser.add_argument("--max-visible", type=int, default=int(_env("MAX_VISIBLE", d.max_visible)), help="cap on avatars sent to one visitor, nearest first")
    parser.add_argument("--interest-every", type=int, default=int(_env("INTEREST_EVERY", d.interest_every)),
                        help="ticks between recomputations of who sees whom (1: every tick); a join, leave or hall change recomputes at once")
    parser.add_argument("--max-clients", type=int, default=int(_env("MAX_CLIENTS", d.max_clients)), help="visitors at once")
    parser.add_argument("--bank-url", default=_env("BANK_URL", None),
                        help="the bank's base URL; enables purchases (the platform key comes from EXPO_BANK_PLATFORM_KEY, "
                        "the webhook secret from EXPO_BANK_WEBHOOK_SECRET)")
    parser.add_argument("--webhook-port", type=int, default=_env("WEBHOOK_PORT", None),
                        help="port for the bank's webhooks, POST /bank/webhook (default: none, the server polls the bank)")
    parser.add_argument("--data-dir", type=Path, default=Path(_env("DATA_DIR", d.data_dir)), help="where orders and stock are kept")
    parser.add_argument("--db", default=_env("DB", None), metavar="postgresql://USER:PASSWORD@HOST:PORT/DB",
                        help="keep orders, stock and inventories in PostgreSQL, shared by every process of a cluster "
                        "(default: SQLite in --data-dir)")
    parser.add_argument("--cluster", default=_env("CLUSTER", None), metavar="nats://HOST:PORT",
                        help="join the cluster whose NATS server (with JetStream) this is; needs --db "
                        "(default: one process, no broker)")
    parser.add_argument("--console-port", type=int, default=_env("CONSOLE_PORT", None),
                        help="port for the organisers' and exhibitors' web console (default: none)")
    parser.add_argument("--console-url", default=_env("CONSOLE_URL", None), metavar="https://HOST/",
                        help="where people reach the console, e.g. behind a proxy: a certificate's verify link "
                        "opens its /certificates page there (default: http://--host:--console-port, or the bank's "
                        "API when --host is a wildcard address)")
    parser.add_argument("--public-url", default=_env("PUBLIC_URL", None), metavar="ws://HOST:PORT/",
                        help="where visitors reach this process, as the cluster's directory tells them "
                        "(default: ws://--host:--port/)")
    parser.add_argument("--instance-cap", type=int, default=_env("INSTANCE_CAP", None),
                        help="visitors in each hall instance of this process before newcomers go to another "
                        "(cluster; default: --max-clients)")
    parser.add_argument("--halls", default=_env("HALLS_HERE", None), metavar="HALL[,HALL...]",
                        help="the halls this process simulates an instance of (cluster; default: every hall): "
                        "a visitor walking into a portal to a hall served elsewhere is transferred there")
    parser.add_argument("--max-connections", type=int, default=int(_env("MAX_CONNECTIONS", d.max_connections)),
                        help="TCP connections at once, joined or not")
    parser.add_argument("--max-connections-per-address", type=int,
                        default=int(_env("MAX_CONNECTIONS_PER_ADDRESS", d.max_connections_per_address)),
                        help="TCP connections at once from one IP address")
    parser.add_argument("--order-ttl", type=float, default=float(_env("ORDER_TTL", d.order_ttl)),
                        help="seconds a visitor has to pay an order (its stock is reserved that long)")
    parser.add_argument("--max-open-orders", type=int, default=int(_env("MAX_OPEN_ORDERS", d.max_open_orders)),
                        help="orders one visitor may have awaiting payment at once")
    parser.add_argument("--tickets", type=Path, default=_env("TICKETS", None), metavar="FILE",
                        help="admit only visitors with a ticket code from FILE (one a line); default: anyone "
                        "(visitor tokens are signed with EXPO_VISITOR_SECRET, else DATA_DIR/visitor.secret)")
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "info"), choices=["debug", "info", "warning", "error"],
                        help="the least severe log lines written (JSON, to stderr)")
    parser.add_argument("--send-thread", action=argparse.BooleanOptionalAction,
                        default=_env("SEND_THREAD", "1" if d.send_thread else "0") not in ("0", "", "no", "false"),
                        help="send each tick's messages from a thread of their own, off the event loop "
                        "(server.sendthread; benchmarks/README.md has the A/B)")
    parser.add_argument("--read-rounds", action=argparse.BooleanOptionalAction,
                        default=_env("READ_ROUNDS", "1" if d.read_rounds else "0") not in ("0", "", "no", "false"),
                        help="read joined clients' sockets a few times a tick rather than as each frame comes "
                        "(server.readrounds; benchmarks/README.md has the A/B)")
    parser.add_argument("--staff-pass", metavar="BOOTH", help="print the staff pass for BOOTH and exit")
    parser.add_argument("--staff-secret-file", type=Path, default=_env("STAFF_SECRET_FILE", None), metavar="PATH",
                        help="the secret that signs staff passes, made there at first start when missing "
                        f"(default: {SECRET_FILE} in --data-dir; EXPO_STAFF_SECRET gives the secret itself)")
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        host=args.host,
        port=args.port,
        world=args.world,
        watch_world=not args.no_watch,
        tick_rate=args.tick_rate,
        view_radius=args.view_radius,
        max_visible=args.max_visible,
        interest_every=args.interest_every,
        max_clients=args.max_clients,
        bank_url=args.bank_url,
        bank_platform_key=os.environ.get("EXPO_BANK_PLATFORM_KEY"),
        webhook_secret=os.environ.get("EXPO_BANK_WEBHOOK_SECRET"),
        webhook_port=int(args.webhook_port) if args.webhook_port else None,
        staff_secret=os.environ.get("EXPO_STAFF_SECRET") or None,  # else read or made at start (main)
        data_dir=args.data_dir,
        db_url=args.db,
        cluster_url=args.cluster,
        console_port=int(args.console_port) if args.console_port else None,
        console_url=args.console_url,
        public_url=args.public_url,
        instance_cap=int(args.instance_cap) if args.instance_cap else None,
        halls=tuple(h.strip() for h in args.halls.split(",") if h.strip()) if args.halls else None,
        max_connections=args.max_connections,
        max_connections_per_address=args.max_connections_per_address,
        order_ttl=args.order_ttl,
        max_open_orders=args.max_open_orders,
        tickets_file=Path(args.tickets) if args.tickets else None,
        visitor_secret=os.environ.get("EXPO_VISITOR_SECRET") or None,
        send_thread=args.send_thread,
        read_rounds=args.read_rounds,
    )


def _print_staff_pass(expo: Expo, secret: str, booth_id: str) -> int:
    """A pass for a booth the expo has; a typo gets the nearest booth ids, not a useless pass."""
    if expo.booth(booth_id) is None:
        close = difflib.get_close_matches(booth_id, [booth.id for booth in expo.booths], n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "`expo-world check` lists them"
        print(f"expo-server: {expo.name} has no booth {booth_id!r}; {hint}", file=sys.stderr)
        return 2
    print(issue_pass(secret, booth_id))
    return 0


def config_problem(config: ServerConfig) -> str | None:
    """What is wrong with the addresses given (--db, --cluster, --console-url), in words,
    before anything starts."""
    if config.console_url and not config.console_url.startswith(("http://", "https://")):
        return f"--console-url takes an http:// or https:// URL, not {config.console_url!r}"
    if config.db_url and not config.db_url.startswith(("postgresql://", "postgres://")):
        return f"--db takes a postgresql:// URL, not {config.db_url.split(':', 1)[0]!r}"
    if config.cluster_url and not config.cluster_url.startswith(("nats://", "tls://")):
        return f"--cluster takes a nats:// URL, not {config.cluster_url.split(':', 1)[0]!r}"
    if config.cluster_url and not config.db_url:
        return "--cluster needs --db postgresql://...: every process of a cluster shares one commerce database"
    if config.halls is not None and not config.cluster_url:
        return "--halls needs --cluster: one process alone simulates every hall"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    problem = None if args.staff_pass else config_problem(config)
    if problem:
        print(f"expo-server: {problem}", file=sys.stderr)
        return 2
    from world.loader import WorldError, default_expo_path, load_expo

    if config.tickets_file is not None:
        from .identity import tickets_for

        try:
            tickets_for(config.tickets_file)
        except (OSError, ValueError) as exc:
            print(f"expo-server: --tickets: {exc}", file=sys.stderr)
            return 2
    setup_logging(args.log_level)
    try:
        secret = config.staff_secret or load_or_create_secret(args.staff_secret_file or config.data_dir / SECRET_FILE)
    except StaffSecretError as exc:
        print(f"expo-server: {exc}", file=sys.stderr)
        return 1
    config = replace(config, staff_secret=secret, world=config.world or default_expo_path())
    try:
        expo = load_expo(config.world)
    except WorldError as exc:
        print(f"expo-server: the world does not load:\n{exc}", file=sys.stderr)
        return 1
    if args.staff_pass:
        return _print_staff_pass(expo, secret, args.staff_pass)
    unknown = sorted(set(config.halls or ()) - {hall.id for hall in expo.halls})
    if unknown or config.halls == ():
        what = f"this expo has no hall {', '.join(map(repr, unknown))}" if unknown else "it names no hall"
        print(f"expo-server: --halls: {what}; its halls are {', '.join(hall.id for hall in expo.halls)}",
              file=sys.stderr)
        return 2
    from .app import run_server

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it exists
        asyncio.run(run_server(expo, config))
    else:
        uvloop.run(run_server(expo, config))
    return 0
