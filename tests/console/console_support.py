"""A world server with its console on loopback, in this process (the console reads the
simulation on the server's loop, as in production), a copy of the default expo to edit,
and browsers' and visitors' ends of real sockets."""

from __future__ import annotations

import asyncio
import re
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

import protocol as p
from server.app import ExpoServer
from server.config import ServerConfig
from world import default_expo_path, load_expo

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def copy_expo(tmp_path: Path) -> Path:
    root = tmp_path / "expo"
    shutil.copytree(default_expo_path(), root)
    return root


@asynccontextmanager
async def running_server(tmp_path: Path, **config):
    root = copy_expo(tmp_path)
    server = ExpoServer(load_expo(root), ServerConfig(port=0, world=root, console_port=0, data_dir=tmp_path / "data", **config))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def console_url(server: ExpoServer) -> str:
    return f"http://127.0.0.1:{server._console.port}"


def organiser_token(server: ExpoServer) -> str:
    return (server.config.data_dir / "console" / "organiser.token").read_text().strip()


class Browser:
    """An httpx client that keeps its cookie and posts forms with the page's CSRF token."""

    def __init__(self, base: str, source: str = "127.0.0.1") -> None:
        self.http = httpx.AsyncClient(base_url=base, transport=httpx.AsyncHTTPTransport(local_address=source),
                                      follow_redirects=False, timeout=10)
        self.csrf: str | None = None

    async def close(self) -> None:
        await self.http.aclose()

    async def login(self, token: str) -> httpx.Response:
        """As a browser does: the login page first (its CSRF cookie and field), then the form."""
        form = await self.http.get("/login")
        response = await self.http.post("/login", data={"token": token, "csrf": CSRF.search(form.text)[1]})
        if response.status_code == 303:
            page = await self.http.get(response.headers["location"])
            self.csrf = CSRF.search(page.text)[1]
        return response

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def post(self, path: str, data: dict[str, str], csrf: bool = True) -> httpx.Response:
        return await self.http.post(path, data={**data, **({"csrf": self.csrf} if csrf and self.csrf else {})})


async def hello(server: ExpoServer, name: str, visitor_token: str | None = None) -> p.Message:
    """The server's answer to one Hello (a Welcome or a Refused), on a socket closed after."""
    async with connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
        await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0, visitor_token=visitor_token)))
        return p.decode_server(await ws.recv())


async def visitor(server: ExpoServer, name: str, visitor_token: str | None = None) -> tuple[ClientConnection, p.Welcome]:
    """A visitor's socket after its Welcome; ``visitor_token`` (from an earlier Welcome) says who they are."""
    # max_queue=None: reads on while the test looks away (a full queue stops reading; close() then waits 10 s)
    ws = await connect(f"ws://127.0.0.1:{server.port}/", compression=None, max_queue=None)
    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0x336699, 0, visitor_token=visitor_token)))
    welcome = p.decode_server(await ws.recv())
    assert isinstance(welcome, p.Welcome), welcome
    return ws, welcome


async def next_of(ws: ClientConnection, kind: type, timeout: float = 5.0, where=lambda m: True):
    """The next message of ``kind`` (that ``where`` accepts), skipping snapshots and the like."""
    async with asyncio.timeout(timeout):
        while True:
            message = p.decode_server(await ws.recv())
            if isinstance(message, kind) and where(message):
                return message


async def none_of(ws: ClientConnection, kind: type, seconds: float, where=lambda m: True) -> None:
    try:
        message = await next_of(ws, kind, seconds, where)
    except TimeoutError:
        return
    raise AssertionError(f"did not expect {message}")
