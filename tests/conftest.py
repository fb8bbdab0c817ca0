"""Fixtures shared across packages."""

from __future__ import annotations

import pytest
from processes import BIN, free_port, start, stop


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """An expo-server with the default expo on a free loopback port, for the whole session."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc = start([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(log.parent)],
                 f"http://127.0.0.1:{port}/healthz", log=log)
    yield f"ws://127.0.0.1:{port}/"
    stop(proc)
