"""Fixtures for the bank: a temp SQLite file, a manual clock, the app over ASGI, typed clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from bankutil import BASE, PLATFORM_KEY
from processes import BIN, free_port, start, stop

from bank.api import create_app
from bank.client import PlatformClient, VisitorClient
from bank.clock import ManualClock
from bank.service import Bank, BankConfig
from bank.sqlite_store import SQLiteStorage


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bank.sqlite3"


@pytest.fixture
def config() -> BankConfig:
    return BankConfig()


@pytest.fixture
def storage(db_path: Path) -> Iterator[SQLiteStorage]:
    s = SQLiteStorage(db_path)
    yield s
    s.close()


@pytest.fixture
def bank(storage: SQLiteStorage, clock: ManualClock, config: BankConfig) -> Bank:
    return Bank(storage, clock, config)


@pytest.fixture
def app(bank: Bank):
    return create_app(bank, PLATFORM_KEY, background=False)


@pytest.fixture
async def http(app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


@pytest.fixture
async def platform(app) -> AsyncIterator[PlatformClient]:
    async with PlatformClient(BASE, PLATFORM_KEY, transport=httpx.ASGITransport(app=app)) as client:
        yield client


@pytest.fixture
async def new_visitor(app):
    """Opens visitor accounts through the API; returns their VisitorClients (closed at teardown)."""
    clients: list[VisitorClient] = []

    async def make(currency: str = "MYR", name: str = "Visitor") -> VisitorClient:
        client = VisitorClient(BASE, transport=httpx.ASGITransport(app=app), retries=0)
        await client.open_account(name, currency)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()



@pytest.fixture
def serve_bank(tmp_path: Path):
    """Starts real `expo-bank serve` processes on free loopback ports; returns (url, process, log path)."""
    started: list = []

    def make(*extra: str) -> tuple[str, object, Path]:
        port = free_port()
        log = tmp_path / f"bank-{port}.log"
        proc = start([str(BIN / "expo-bank"), "serve", "--db", str(tmp_path / f"bank-{port}.sqlite3"),
                      "--port", str(port), "--platform-key", PLATFORM_KEY, *extra],
                     f"http://127.0.0.1:{port}/healthz", log=log)
        started.append(proc)
        return f"http://127.0.0.1:{port}", proc, log

    yield make
    for proc in started:
        stop(proc)
