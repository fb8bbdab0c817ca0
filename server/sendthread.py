"""The tick's writes made by a thread, off the event loop: a transport behind
``SocketPeer.write`` (server.connection), never a second path around it.

On loopback each ``send`` of a few hundred bytes costs several microseconds, because the
receiver's TCP work runs in the sender's call: at 1,000 clients that is 5-9 ms of every
tick on the event loop's thread. ``SendThread`` takes a tick's batch (one pre-framed
message per client whose transport holds nothing) and makes those calls in one compiled
loop (``send_all``, numba calling libc ``send``) without the GIL, on the other core, while
the event loop goes on. A Python thread calling ``socket.send`` would need the GIL after
every call and the event loop would wait out the interpreter's switch interval behind it.

What the thread does not do, the event loop's transport does, as it did before: whatever a
socket did not take (a partial send, a full buffer, an error) is handed back to the loop and
written with ``transport.write``, which buffers it, waits for writability, and closes the
connection on an error. While a connection's batch is in flight, its other writes and its
close wait in the connection (``SocketPeer``) and follow in order once the batch is back.
The thread writes to a duplicate of the socket's descriptor, closed only once nothing is in
flight, so a descriptor the loop closed and the kernel reused is never written by mistake.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numba import types

from world.jit import compiled

log = logging.getLogger("expo.server.sendthread")

# libc's send(2) by its symbol name, which (unlike a ctypes pointer) lets numba cache the loop
_send: Any = types.ExternalFunction("send", types.intp(types.int32, types.voidptr, types.uintp, types.int32))
_FLAGS = int(socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)


@compiled(nogil=True)
def send_all(fds: np.ndarray, blob: np.ndarray, starts: np.ndarray, ends: np.ndarray, sent: np.ndarray) -> None:
    """``send(fds[i], blob[starts[i]:ends[i]])`` for each i, without the GIL; ``sent[i]``
    is what the kernel took, or -1 (the event loop's transport then meets the error)."""
    base = blob.ctypes.data
    for i in range(fds.shape[0]):
        sent[i] = _send(fds[i], base + starts[i], ends[i] - starts[i], _FLAGS)


def warm() -> float:
    """Compile ``send_all`` before the first tick needs it; returns the seconds it took."""
    started = time.perf_counter()
    empty = np.zeros(0, np.int64)
    send_all(np.zeros(0, np.int32), np.zeros(1, np.uint8), empty, empty, empty.copy())
    return time.perf_counter() - started


class Batched(Protocol):
    """A connection whose tick message the thread sends (server.connection.SocketPeer)."""

    send_fd: int

    def batch_done(self, blob: memoryview, start: int, end: int, sent: int) -> None: ...


class SendThread:
    """One thread; one batch in flight at a time (the next tick's waits in its connections)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, observe: Callable[[float], None] = lambda seconds: None) -> None:
        self._loop = loop
        self._observe = observe  # the seconds each batch took to send
        self._wake = threading.Event()  # set without releasing the GIL, unlike a pipe's write
        self._batch: tuple[Sequence[Batched], np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._stopping = False
        self.batches = 0  # sent, for /healthz
        self.last_batch_at: float | None = None  # the loop's clock, when the last batch came back
        self.failed: str | None = None  # why the thread stopped, if it did
        self._thread = threading.Thread(target=self._run, name="expo-send", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.failed is None and not self._stopping

    @property
    def busy(self) -> bool:
        return self._batch is not None

    def submit(self, peers: Sequence[Batched], blob: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        """Send ``blob[starts[i]:ends[i]]`` to each of ``peers`` (whose transports hold
        nothing and which wait for ``batch_done`` before writing anything else)."""
        assert self._batch is None, "one batch at a time"
        fds = np.fromiter((peer.send_fd for peer in peers), np.int32, len(peers))
        self._batch = (peers, fds, blob, starts, ends)
        self._wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    def health(self) -> dict[str, object]:
        return {"alive": self.alive, "batches": self.batches, "in_flight": self.busy,
                **({"failed": self.failed} if self.failed else {})}

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                batch = self._batch
                if batch is None:
                    continue
                peers, fds, blob, starts, ends = batch
                sent = np.empty(len(fds), np.int64)
                started = time.perf_counter()
                send_all(fds, blob, starts, ends, sent)
                self._observe(time.perf_counter() - started)
                self._loop.call_soon_threadsafe(self._done, batch, sent)
        except Exception as exc:  # the loop's transports take over (see _done and SocketPeer)
            if self._stopping or self._loop.is_closed():
                return  # the server stopped under it: nothing is left to hand back
            self.failed = repr(exc)
            log.exception("the send thread stopped")
            if self._batch is not None:
                self._loop.call_soon_threadsafe(self._done, self._batch, None)

    def _done(self, batch: tuple, sent: np.ndarray | None) -> None:
        """On the event loop: each connection gets back what the kernel did not take."""
        peers, _, blob, starts, ends = batch
        self._batch = None
        self.batches += 1
        self.last_batch_at = self._loop.time()
        view = memoryview(blob)
        taken = [0] * len(peers) if sent is None else sent.tolist()
        for peer, start, end, n in zip(peers, starts.tolist(), ends.tolist(), taken, strict=True):
            try:
                peer.batch_done(view, start, end, n)
            except Exception:  # one broken connection is its own problem
                log.warning("after a batch", exc_info=True)
