"""An ExpoServer on a thread of its own, for previews, tests and benchmarks in one process.

The server is asyncio; the Panda3D frame loop owns the main thread. Each gets its own
thread and event loop, and they meet only over a loopback socket, as in production.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

from server.app import ExpoServer
from server.config import ServerConfig
from world.model import Expo


class LocalServer:
    def __init__(self, expo: Expo, config: ServerConfig | None = None) -> None:
        config = config or ServerConfig()
        self.server = ExpoServer(expo, replace(config, host="127.0.0.1", port=config.port if config.port else 0))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="expo-local-server", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/"

    def call(self, coro, timeout: float = 30.0):
        """Run a coroutine on the server's loop and wait for it (setup and teardown only)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> str:
        self._thread.start()
        self.call(self.server.start())
        return self.url

    def stop(self) -> None:
        if self._thread.is_alive():
            try:
                self.call(self.server.stop(), timeout=10)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
