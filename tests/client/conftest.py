"""Fixtures of the desktop client's tests: a real bank process to pay with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from processes import BIN, free_port, start, stop

from server.config import ServerConfig

PLATFORM_KEY = "desktop-test-platform-key"
WEBHOOK_SECRET = "desktop-test-webhook-secret"


@dataclass(frozen=True, slots=True)
class Bank:
    url: str
    webhook_port: int
    platform_key: str = PLATFORM_KEY

    def server_config(self, data_dir: Path) -> ServerConfig:
        """An expo server that sells through this bank."""
        return ServerConfig(port=0, bank_url=self.url, bank_platform_key=PLATFORM_KEY, webhook_secret=WEBHOOK_SECRET,
                            webhook_port=self.webhook_port, data_dir=data_dir)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """expo-bank with a small welcome balance (20 USD), so a refusal is easy to reach, and no
    holding period, so a certificate can be given the moment it is held."""
    scratch = tmp_path_factory.mktemp("bank")
    port, webhook_port = free_port(), free_port()
    proc = start([str(BIN / "expo-bank"), "serve", "--port", str(port), "--db", str(scratch / "bank.sqlite3"),
                  "--platform-key", PLATFORM_KEY, "--webhook-secret", WEBHOOK_SECRET, "--welcome-usd", "20",
                  "--holding-days", "0",
                  "--webhook-url", f"http://127.0.0.1:{webhook_port}/bank/webhook"],
                 f"http://127.0.0.1:{port}/healthz", log=scratch / "bank.log")
    yield Bank(f"http://127.0.0.1:{port}", webhook_port)
    stop(proc)
