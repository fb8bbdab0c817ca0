"""An operator stops a hall process while NATS and PostgreSQL are both gone (the machine's
services went first): the process still ends promptly and cleanly, as a real `expo-server`
under its own event loop (uvloop) does it."""

from __future__ import annotations

import shutil
import signal
import time

from processes import BIN, free_port, scratch_dir, start, stop

from server.cluster.local import PostgresServer

PLATFORM_KEY = "shutdown-test-platform-key-0123456789"


def test_sigterm_with_nats_and_postgresql_gone_stops_within_seconds(nats_factory, tmp_path) -> None:
    """Before: nats-py's close raised under uvloop, the server's stop ended there, and each
    store call queued behind a dead PostgreSQL waited out its 30 s: a process left behind
    for as long as the queue lasted (seen: 44 minutes), exit status 1."""
    nats = nats_factory()
    pg_root = scratch_dir("expo-pg-")
    pg = PostgresServer(pg_root, free_port()).start()
    bank_port, port = free_port(), free_port()
    bank = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", str(tmp_path / "bank.sqlite3"),
                  "--platform-key", PLATFORM_KEY], f"http://127.0.0.1:{bank_port}/healthz", log=tmp_path / "bank.log")
    hall = None
    try:
        hall = start([str(BIN / "expo-server"), "--port", str(port), "--cluster", nats.url, "--db", pg.dsn,
                      "--bank-url", f"http://127.0.0.1:{bank_port}", "--data-dir", str(tmp_path / "hall"), "--no-watch"],
                     f"http://127.0.0.1:{port}/healthz", env={"EXPO_BANK_PLATFORM_KEY": PLATFORM_KEY},
                     log=tmp_path / "hall.log", timeout=180)
        pg.stop()
        time.sleep(2.0)  # the hall's sweeps now wait for PostgreSQL to come back
        nats.stop()
        started = time.monotonic()
        hall.send_signal(signal.SIGTERM)
        status = hall.wait(30)
        took = time.monotonic() - started
        log = (tmp_path / "hall.log").read_text()
        assert status == 0 and took < 10, (status, took, log[-3000:])
        assert '"stopped"' in log
    finally:
        if hall is not None and hall.poll() is None:
            hall.kill()
            hall.wait()
        stop(bank)
        pg.stop()
        shutil.rmtree(pg_root, ignore_errors=True)
