"""Real nats-server and PostgreSQL for the cluster tests: free loopback ports, data in a
temporary directory, stopped (and the directory removed) after."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.cluster.local import NatsServer, PostgresServer


def _scratch(prefix: str) -> Path:
    """Under /tmp itself: pytest's tmp_path is 0700 root, which the postgres user cannot enter."""
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL for the session; tests that need a clean slate use ``fresh_database``."""
    root = _scratch("expo-pg-")
    server = PostgresServer(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_database(postgres: PostgresServer) -> Iterator[str]:
    """A database of its own for one test; yields its DSN."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres.dsn.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres.dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def nats_factory() -> Iterator[Callable[[], NatsServer]]:
    """Start as many nats-servers as a test wants (each in its own directory); all stopped after."""
    started: list[tuple[NatsServer, Path]] = []

    def make() -> NatsServer:
        root = _scratch("expo-nats-")
        server = NatsServer(root).start()
        started.append((server, root))
        return server

    yield make
    for server, root in started:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def nats_server(nats_factory) -> NatsServer:
    return nats_factory()
