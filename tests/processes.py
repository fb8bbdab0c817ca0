"""Real processes on loopback for tests: free ports, start and wait for health, stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def scratch_dir(prefix: str) -> Path:
    """Under /tmp itself: pytest's tmp_path is 0700 root, which the postgres user cannot enter."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def start(args: list[str], health_url: str, env: dict | None = None, log: Path | None = None,
          timeout: float = 120.0) -> subprocess.Popen:
    """``args`` started, once ``health_url`` answers. The first server of a fresh checkout
    compiles its numba kernels before it listens (20-30 s on two busy cores), hence the
    generous wait; a process that exits fails at once."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(health_url, timeout, proc=proc)
    except Exception:
        proc.kill()
        raise
    return proc


def start_many(*specs: dict) -> list[subprocess.Popen]:
    """``start(**spec)`` for each spec at once: the processes load side by side, on two cores in
    about the time of one; if one fails, the others are stopped and its error is raised."""
    with ThreadPoolExecutor(len(specs)) as pool:
        futures = [pool.submit(start, **spec) for spec in specs]
    started = [f.result() for f in futures if f.exception() is None]
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        stop(*started)
        raise failed[0]
    return started


def stop(*procs: subprocess.Popen) -> None:
    """Each told to stop (SIGTERM) at once, then waited for: killed after 10 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()



def start_one_hall_each(procs: list[subprocess.Popen], root: Path, nats_url: str, dsn: str, env: dict,
                        *extra: str, halls: tuple[str, ...] = ("silk-road", "maritime")) -> list[int]:
    """A cluster expo-server per hall of ``halls`` (``--halls``), appended to ``procs`` as each
    starts (so the caller's cleanup stops them even when a later one fails), logs in
    ``root/<a, b, ...>.log``; returns their ports once each answers /healthz."""
    ports = [free_port() for _ in halls]
    for name, port, hall in zip("abcdefgh", ports, halls, strict=False):
        log = open(root / f"{name}.log", "wb")
        procs.append(subprocess.Popen(
            [str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(root / name), "--cluster", nats_url,
             "--db", dsn, "--halls", hall, "--no-watch", *extra], stdout=log, stderr=subprocess.STDOUT, env=env))
    for proc, port in zip(procs[-len(halls):], ports, strict=True):
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=240, proc=proc)
    return ports
