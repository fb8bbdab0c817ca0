"""CPU of the desktop client standing still, with the frame cap and without (its peer).

    .venv/bin/python benchmarks/client_idle_cpu.py [--seconds 10] [--size 1280x720]

Runs an expo-server process, Xvfb, and expo-client in a real window (Mesa's software
renderer) joined as a visitor who does nothing; measures the client process's CPU time
(user + system, from /proc) over the interval, once with the default cap (60 fps moving,
6 standing still) and once with ``--max-fps 0`` (no cap, as before the cap). Prints CPU
as a fraction of one core and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "client"))

from processes import BIN, free_port, start, stop  # noqa: E402
from xwindow import ClientWindow, Display  # noqa: E402

from client.desktop.app import ACTIVE_FPS, IDLE_FPS  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(display: Display, url: str, name: str, extra: list[str], seconds: float, scratch: Path, size: str) -> float:
    win = ClientWindow(display, ["--server", url, "--name", name, "--size", size, *extra], scratch / name,
                       scratch / f"{name}.log")
    try:
        time.sleep(8.0)  # join, build the hall, settle into standing still
        before, t0 = cpu_seconds(win.proc.pid), time.monotonic()
        time.sleep(seconds)
        return (cpu_seconds(win.proc.pid) - before) / (time.monotonic() - t0)
    finally:
        win.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        port = free_port()
        server = start([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(scratch / "server")],
                       f"http://127.0.0.1:{port}/healthz", log=scratch / "server.log")
        display = Display(tuple(int(v) for v in args.size.split("x")))
        try:
            url = f"ws://127.0.0.1:{port}/"
            uncapped = measure(display, url, "Uncapped", ["--max-fps", "0"], args.seconds, scratch, args.size)
            capped = measure(display, url, "Capped", [], args.seconds, scratch, args.size)
        finally:
            display.close()
            stop(server)
    print(f"client CPU standing still, {args.size}, software renderer, {args.seconds:g} s")
    print(f"  no frame cap (--max-fps 0)   {uncapped:6.2f} of a core")
    print(f"  frame cap ({ACTIVE_FPS} / {IDLE_FPS} idle)      {capped:6.2f} of a core")
    print(f"  ratio capped / uncapped      {capped / uncapped:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
