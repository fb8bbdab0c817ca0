"""`make cluster`: the expo as a cluster on this machine: nats-server (JetStream) and
PostgreSQL with their data under the data directory, the bank, and N hall processes joined
through NATS and sharing commerce state in PostgreSQL. Everything listens on loopback;
Ctrl-C (or SIGTERM) stops it all, hall processes first.

The bank posts each webhook to every hall process (one ``--webhook-url`` each): a gift
reaches its holders at whichever process serves them, and a payment is settled by the first
process to hear of it (the state is shared, the unique fulfilment row stops the rest; the
buyer's own process answers its ``OrderPaid`` with the receipt). The sweep stays the
fallback for a delivery that never came.

The first hall process serves the console, on the world's working copy that every process
serves and watches (under the data directory, as `make run`'s): an exhibitor's booth edit
there reaches the visitors of every process, and an edition opened there certifies their
purchases (the collectibles are in PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..devrun import LOOPBACK_CONNECTIONS, _in_use, _wait, _working_copy_of_default_expo
from ..identity import load_secret
from .local import LocalServiceError, NatsServer, PostgresServer, program

BIN = Path(sys.executable).parent


def hall_ports(first: int, count: int) -> list[int]:
    """The first hall process on ``first`` (where `make client` connects), the others 10 apart."""
    return [first + 10 * i for i in range(count)]


def webhook_port(hall_port: int) -> int:
    """Where a hall process hears the bank's webhooks: two above its own port (as `make run`'s)."""
    return hall_port + 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.cluster.launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address everything listens on")
    parser.add_argument("--halls", type=int, default=2, help="hall processes to start")
    parser.add_argument("--port", type=int, default=8765, help="the first hall process; the others 10 apart")
    parser.add_argument("--bank-port", type=int, default=8766)
    parser.add_argument("--nats-port", type=int, default=4222)
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--instance-cap", type=int, default=None, help="visitors per hall instance (default: each process's max)")
    parser.add_argument("--console-port", type=int, default=None,
                        help="the first hall process's web console for organisers and exhibitors (default: --port + 3)")
    parser.add_argument("--world", type=Path, default=None,
                        help="expo directory every hall process serves (default: a working copy of the packaged "
                        "expo under --data-dir, so booth edits from the console never touch the repository's files)")
    parser.add_argument("--data-dir", type=Path, default=Path("var/cluster"))
    parser.add_argument("--process-halls", action="append", default=[], metavar="HALL[,HALL...]",
                        help="the halls the next hall process serves (expo-server --halls), once per process, "
                        "e.g. --process-halls silk-road --process-halls maritime: a portal between them is then a "
                        "hand-off between processes (default: every process serves every hall)")
    args, server_args = parser.parse_known_args(argv)
    if args.halls < 1:
        parser.error("--halls must be at least 1")
    if args.process_halls and len(args.process_halls) != args.halls:
        parser.error(f"--process-halls given {len(args.process_halls)} times for {args.halls} hall processes: "
                     "give it once per process, or not at all")
    console_port = args.console_port or args.port + 3
    ports = {"nats": args.nats_port, "postgresql": args.pg_port, "bank": args.bank_port, "console": console_port,
             **{f"hall process {i + 1}": port for i, port in enumerate(hall_ports(args.port, args.halls))},
             **{f"hall process {i + 1}'s webhooks": webhook_port(port)
                for i, port in enumerate(hall_ports(args.port, args.halls))}}
    if len(set(ports.values())) < len(ports):
        parser.error(f"two of these would share a port: {ports}; choose --port, --console-port and the others apart")
    taken = [f"{what} ({args.host}:{port})" for what, port in ports.items() if _in_use(args.host, port)]
    if taken:
        print(f"make cluster: ports in use: {', '.join(taken)}; is a cluster or `make run` already running? "
              "Choose others with e.g. make cluster PORT=... BANK_PORT=... NATS_PORT=... PG_PORT=...", file=sys.stderr)
        return 1
    data = args.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    nats = NatsServer(data / "nats", port=args.nats_port, host=args.host)
    pg = PostgresServer(data / "postgres", port=args.pg_port, host=args.host)
    procs: list[subprocess.Popen] = []
    stopped = False

    def stop_all() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        for proc in reversed(procs):  # hall processes first, then the bank
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in reversed(procs):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        pg.stop()
        nats.stop()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        try:
            nats.start()
            pg.start()
        except LocalServiceError as exc:
            print(f"make cluster: {exc}", file=sys.stderr)
            return 1
        bank_url = f"http://{args.host}:{args.bank_port}"
        halls = hall_ports(args.port, args.halls)
        hooks = [arg for port in halls for arg in ("--webhook-url", f"http://{args.host}:{webhook_port(port)}/bank/webhook")]
        bank = subprocess.Popen([str(BIN / "expo-bank"), "serve", "--host", args.host, "--port", str(args.bank_port),
                                 "--db", pg.dsn, "--secrets-dir", str(data / "bank"), *hooks])  # its own schema in pg
        procs.append(bank)
        _wait(f"{bank_url}/healthz", bank)
        # One expo, one set of secrets: a visitor's token and a staff pass must hold at every
        # hall process, or a visitor admitted by another process would be a stranger there.
        env = {**os.environ, "EXPO_BANK_PLATFORM_KEY": (data / "bank" / "platform.key").read_text().strip(),
               "EXPO_BANK_WEBHOOK_SECRET": (data / "bank" / "webhook.secret").read_text().strip(),
               "EXPO_VISITOR_SECRET": load_secret(data / "visitor.secret").decode()}
        world = args.world or _working_copy_of_default_expo(data / "world")
        server_args = ["--staff-secret-file", str(data / "staff.key"), "--world", str(world),
                       "--max-connections-per-address", str(LOOPBACK_CONNECTIONS), *server_args]
        for i, port in enumerate(halls):
            command = [str(BIN / "expo-server"), "--host", args.host, "--port", str(port), "--bank-url", bank_url,
                       "--cluster", nats.url, "--db", pg.dsn, "--data-dir", str(data / f"hall-{i + 1}"),
                       "--webhook-port", str(webhook_port(port)), *server_args]
            if i == 0:
                command += ["--console-port", str(console_port)]
            if args.instance_cap:
                command += ["--instance-cap", str(args.instance_cap)]
            if args.process_halls:
                command += ["--halls", args.process_halls[i]]
            procs.append(subprocess.Popen(command, env=env))
        for proc, port in zip(procs[1:], halls, strict=True):
            _wait(f"http://{args.host}:{port}/healthz", proc, timeout=180)
        lines = [
            "",
            f"Silk Road Expo is open as a cluster of {args.halls} hall process{'es' if args.halls > 1 else ''}.",
            f"  nats          {nats.url}   (JetStream store: {nats.root})",
            f"  postgresql    postgresql://expo@{args.host}:{pg.port}/expo   (password: {pg.password_file})",
            f"  bank          {bank_url}   (API docs: {bank_url}/docs)",
            f"  console       http://{args.host}:{console_port}/   (organiser token: "
            f"{data / 'hall-1' / 'console' / 'organiser.token'})",
            f"  world         {world}   (every hall process serves it and reloads its edits)",
            *[f"  hall process  ws://{args.host}:{port}/   (health: http://{args.host}:{port}/healthz)"
              + (f"   halls: {args.process_halls[i]}" if args.process_halls else "") for i, port in enumerate(halls)],
            "  another machine: expo-server --help says how a process there joins this cluster",
            f"  next          make client   |   make bots   (both reach ws://{args.host}:{halls[0]}/)",
            "Ctrl-C stops everything.",
            "",
        ]
        print("\n".join(lines), flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        failed = next(p for p in procs if p.poll() is not None)
        print(f"make cluster: {program(failed)} exited with {failed.returncode}; stopping the rest", file=sys.stderr)
        return failed.returncode or 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
