"""Real nats-server for the cluster tests: free loopback ports, data in a temporary directory,
stopped (and the directory removed) after. PostgreSQL (``postgres``, ``fresh_database``) is in
tests/conftest.py: the bank's tests use it too."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from processes import scratch_dir

from server.cluster.local import NatsServer


@pytest.fixture
def nats_factory() -> Iterator[Callable[[], NatsServer]]:
    """Start as many nats-servers as a test wants (each in its own directory); all stopped after."""
    started: list[tuple[NatsServer, Path]] = []

    def make() -> NatsServer:
        root = scratch_dir("expo-nats-")
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
