"""`make run`: the bank and the world server with the default expo, wired together.

Starts ``expo-bank serve`` (its database, platform key and webhook secret under the data
directory), waits for it, then ``expo-server`` with the bank's URL and credentials, and
stops both on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from world.loader import default_expo_path

BIN = Path(sys.executable).parent
LOOPBACK_CONNECTIONS = 2500  # the server's default total cap


def _wait(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:g} s")


def _in_use(host: str, port: int) -> bool:
    """Something already listens on ``host:port`` (a connect succeeds)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _already_running(host: str, ports: dict[str, int]) -> str | None:
    """Why starting would fail, in words: which of our ports is taken and by what (an expo
    that answers /healthz is most likely a first `make run`)."""
    taken = [(what, port) for what, port in ports.items() if _in_use(host, port)]
    if not taken:
        return None
    what, port = taken[0]
    try:
        with urllib.request.urlopen(f"http://{host}:{ports['world server']}/healthz", timeout=2):
            return (f"Silk Road Expo is already running on ws://{host}:{ports['world server']}/ "
                    f"(stop it with Ctrl-C where it runs, or choose other ports: make run PORT=... BANK_PORT=...)")
    except OSError:
        pass
    return f"the {what} port {host}:{port} is in use by another program; choose another (e.g. make run PORT=... BANK_PORT=...)"


def _working_copy_of_default_expo(target: Path) -> Path:
    """The expo `make run` serves: the packaged one, copied once, so that exhibitors' edits
    made in the console (which rewrite booth files) stay with the run's data."""
    if not target.is_dir():
        shutil.copytree(default_expo_path(), target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.devrun", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="world server (WebSocket, /healthz, /metrics)")
    parser.add_argument("--bank-port", type=int, default=8766)
    parser.add_argument("--webhook-port", type=int, default=None,
                        help="where the server hears the bank's webhooks (default: --port + 2, 8767)")
    parser.add_argument("--console-port", type=int, default=None,
                        help="the organisers' and exhibitors' web console (default: --port + 3, 8768)")
    parser.add_argument("--data-dir", type=Path, default=Path("var"))
    parser.add_argument("--world", type=Path, default=None,
                        help="the expo to serve (default: a copy of the packaged expo under DATA_DIR/world, made on "
                             "first run, so booth edits from the console never touch the repository's files)")
    args, server_args = parser.parse_known_args(argv)

    # beside the world server, as `make cluster`'s: a second `make run PORT=...` clashes with nothing
    args.webhook_port = args.webhook_port or args.port + 2
    args.console_port = args.console_port or args.port + 3
    busy = _already_running(args.host, {"world server": args.port, "bank": args.bank_port, "webhook": args.webhook_port,
                                         "console": args.console_port})
    if busy:
        print(f"make run: {busy}", file=sys.stderr)
        return 1
    data = args.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    bank_url = f"http://{args.host}:{args.bank_port}"
    webhook_secret_file = data / "bank" / "webhook.secret"  # the bank creates it beside its database
    bank = subprocess.Popen([
        str(BIN / "expo-bank"), "serve", "--host", args.host, "--port", str(args.bank_port),
        "--db", str(data / "bank" / "bank.sqlite3"),
        "--webhook-url", f"http://{args.host}:{args.webhook_port}/bank/webhook",
    ])
    procs = [bank]
    try:
        _wait(f"{bank_url}/healthz", bank)
        env = {
            **os.environ,
            "EXPO_BANK_PLATFORM_KEY": (data / "bank" / "platform.key").read_text().strip(),
            "EXPO_BANK_WEBHOOK_SECRET": webhook_secret_file.read_text().strip(),
        }
        command = [
            str(BIN / "expo-server"), "--host", args.host, "--port", str(args.port),
            "--bank-url", bank_url, "--webhook-port", str(args.webhook_port),
            "--data-dir", str(data / "server"), "--console-port", str(args.console_port),
            # everyone here comes from loopback, `make bots` included (200 bots): the per-address
            # cap is for a public server; given again in server_args, the caller's value wins
            "--max-connections-per-address", str(LOOPBACK_CONNECTIONS), *server_args,
        ]
        command += ["--world", str(args.world or _working_copy_of_default_expo(data / "world"))]
        server = subprocess.Popen(command, env=env)
        procs.append(server)
        _wait(f"http://{args.host}:{args.port}/healthz", server, timeout=180)  # a first start compiles the kernels
        print(
            f"\nSilk Road Expo is open.\n"
            f"  world server  ws://{args.host}:{args.port}/   (health: /healthz, metrics: /metrics)\n"
            f"  bank          {bank_url}   (API docs: {bank_url}/docs)\n"
            f"  console       http://{args.host}:{args.console_port}/   (organiser token: {data / 'server' / 'console' / 'organiser.token'})\n"
            f"  next          make client   |   make bots\n"
            f"Ctrl-C stops both.\n",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        return next(p.returncode for p in procs if p.poll() is not None) or 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):  # the server first, so it can finish talking to the bank
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())
