"""Fixtures shared across packages."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from processes import BIN, free_port, scratch_dir, start, stop

from server.cluster.local import PostgresServer


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    """The numba kernels compiled once, here, into their disk cache (seconds on a fresh
    clone, well under one when cached) before any test starts a server: servers started side
    by side then load them instead of each compiling the same code on the same two cores."""
    from server import interest, snapshots
    from world import motion

    motion.warm()
    interest.warm()
    snapshots.warm()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """An expo-server with the default expo on a free loopback port, for the whole session."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc = start([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(log.parent)],
                 f"http://127.0.0.1:{port}/healthz", log=log)
    yield f"ws://127.0.0.1:{port}/"
    stop(proc)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL for the session; tests that need a clean slate use ``fresh_database``."""
    root = scratch_dir("expo-pg-")
    server = PostgresServer(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_database(postgres: PostgresServer) -> Iterator[str]:
    """A database of its own for one test; yields its DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres.dsn.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres.dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
