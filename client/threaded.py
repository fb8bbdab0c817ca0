"""The transport in a thread of its own, for an application whose main thread belongs to
something else (Panda3D's task manager).

The application sets controls, reads the scene to draw and drains events from its own
thread; the network runs on an event loop in a daemon thread. Calls cross over with
``call_soon_threadsafe`` / ``run_coroutine_threadsafe``; the scene is read under the
transport's lock, so it is never torn by a frame being applied.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable

from . import events as ev
from .core import ClientCore, Scene
from .transport import Transport

log = logging.getLogger("expo.client")


class ClientThread:
    """``start()``, then each frame ``set_controls(...)``, ``scene()``, ``poll_events()``;
    ``command(lambda core: core.chat(0, "hello"))`` for the rest; ``stop()`` to leave."""

    def __init__(self, core: ClientCore, url: str, *, clock: Callable[[], float] = time.monotonic, **transport_options) -> None:
        self.core = core
        self.clock = clock
        self._events: queue.Queue[ev.Event] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self.transport = Transport(core, url, on_event=self._events.put_nowait, clock=clock, **transport_options)
        self._thread = threading.Thread(target=self._main, name="expo-network", daemon=True)
        self._done = threading.Event()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.transport.run())
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
            self._done.set()

    def start(self) -> None:
        self._thread.start()

    def set_controls(self, move_x: float = 0.0, move_y: float = 0.0, yaw: float = 0.0, run: bool = False) -> None:
        self.transport.set_controls(move_x, move_y, yaw, run)  # one attribute store: atomic

    def scene(self) -> Scene | None:
        with self.transport.lock:
            return self.core.scene(self.clock())

    def poll_events(self) -> list[ev.Event]:
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def command(self, do: Callable[[ClientCore], object], timeout: float = 5.0) -> None:
        """Run a core command on the network thread; raises what it raised (e.g. NotJoined)."""
        asyncio.run_coroutine_threadsafe(self.transport.command(do), self._loop).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Say Bye and wait for the network thread to end; after ``timeout`` the app goes
        on without it (a daemon thread), as leaving must not fail."""
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self.transport.close(), self._loop).result(timeout)
            except concurrent.futures.TimeoutError:
                log.warning("the network thread did not close within %g s; leaving without it", timeout)
                return
        self._done.wait(timeout)
