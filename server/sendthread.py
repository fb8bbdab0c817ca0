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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numba import types

from world.jit import compiled

log = logging.getLogger("expo.server.sendthread")

# libc's send(2) by its symbol name, which (unlike a ctypes pointer) lets numba cache the loop
_send: Any = types.ExternalFunction("send", types.intp(types.int32, types.voidptr, types.uintp, types.int32))
_FLAGS = int(socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)


@compiled(nogil=True)
def send_all(fds: np.ndarray, blob: np.ndarray, starts: np.ndarray, ends: np.ndarray, sent: np.ndarray,
             finished: np.ndarray) -> None:
    """``send(fds[i], blob[starts[i]:ends[i]])`` for each i, without the GIL; ``sent[i]``
    is what the kernel took, or -1 (the event loop's transport then meets the error);
    then ``finished[0] = 1``, which the event loop can see before this thread has the GIL
    again (``SendThread.finish``)."""
    base = blob.ctypes.data
    for i in range(fds.shape[0]):
        sent[i] = _send(fds[i], base + starts[i], ends[i] - starts[i], _FLAGS)
    finished[0] = 1


def warm() -> float:
    """Compile ``send_all`` before the first tick needs it; returns the seconds it took."""
    started = time.perf_counter()
    empty = np.zeros(0, np.int64)
    send_all(np.zeros(0, np.int32), np.zeros(1, np.uint8), empty, empty, empty.copy(), np.zeros(1, np.int8))
    return time.perf_counter() - started


class Batched(Protocol):
    """A connection whose tick messages the thread sends (server.connection.SocketPeer)."""

    send_fd: int

    def batch_done(self, blob: memoryview, start: int, end: int, sent: int) -> None: ...


@dataclass(frozen=True, slots=True)
class _Batch:
    fds: np.ndarray
    blob: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    done: Callable[[], None] | None
    sent: np.ndarray  # what the kernel took of each, written by the thread
    finished: np.ndarray  # [1] once the thread's sends are over


class SendThread:
    """One thread; one batch in flight at a time (the next tick's waits in its connections).

    A batch is descriptors and offsets into one buffer, with no Python object per
    connection: which connections are in it is read by descriptor (``holds``), and only
    those the kernel did not take whole, and those that wrote or closed meanwhile
    (``later``), are called back (``Batched.batch_done``) when it is back."""

    def __init__(self, loop: asyncio.AbstractEventLoop, observe: Callable[[float], None] = lambda seconds: None) -> None:
        self._loop = loop
        self._observe = observe  # the seconds each batch took to send
        self._wake = threading.Event()  # set without releasing the GIL, unlike a pipe's write
        self._batch: _Batch | None = None
        self._peers: dict[int, Batched] = {}  # by send_fd: the connections that may be in a batch
        self._lengths = np.zeros(1024, np.int64)  # by send_fd: bytes of it in the batch in flight
        self._later: set[Batched] = set()  # in the batch, and something of theirs waits for it
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

    def register(self, peer: Batched) -> None:
        """``peer.send_fd`` may be in batches from now on (until ``unregister``)."""
        self._peers[peer.send_fd] = peer
        if peer.send_fd >= len(self._lengths):
            self._lengths = np.concatenate((self._lengths, np.zeros(peer.send_fd + 1, np.int64)))

    def unregister(self, fd: int) -> None:
        """Before ``fd`` is closed, never while a batch holds it."""
        assert not self.holds(fd), "a descriptor in flight is closed only after its batch"
        self._peers.pop(fd, None)

    def holds(self, fd: int) -> bool:
        """Whether the batch in flight has bytes for ``fd``."""
        return self._batch is not None and 0 <= fd < len(self._lengths) and bool(self._lengths[fd])

    def in_flight_bytes(self, fd: int) -> int:
        return int(self._lengths[fd]) if self.holds(fd) else 0

    def later(self, peer: Batched) -> None:
        """``peer``, in the batch, has writes or a close waiting: call it back when it is back."""
        self._later.add(peer)

    def submit(self, fds: np.ndarray, blob: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               done: Callable[[], None] | None = None) -> None:
        """Send ``blob[starts[i]:ends[i]]`` to ``fds[i]`` (registered descriptors, one item
        each, whose transports hold nothing; their connections wait while ``holds``);
        ``done`` runs on the loop once the batch is back and handed over."""
        assert self._batch is None, "one batch at a time"
        fds = np.ascontiguousarray(fds, np.int32)
        starts = np.ascontiguousarray(starts, np.int64)
        ends = np.ascontiguousarray(ends, np.int64)
        self._lengths[fds] = ends - starts
        self._batch = _Batch(fds, blob, starts, ends, done, np.zeros(len(fds), np.int64), np.zeros(1, np.int8))
        self._wake.set()

    def finish(self, timeout: float) -> bool:
        """Whether no batch is in flight, after waiting up to ``timeout`` s (without the
        GIL) for the one that is: a batch whose sends are over is handed back now, not
        when the thread next gets the GIL to say so. The thread waits for the GIL while
        the tick's compiled kernels hold it, and a batch not back by the next tick sent
        that tick's messages by the loop's transports, a Python call per connection."""
        batch = self._batch
        if batch is None:
            return True
        deadline = time.perf_counter() + timeout
        while not batch.finished[0]:
            if time.perf_counter() >= deadline or not self.alive:
                return False
            time.sleep(0.0002)
        self._done(batch, batch.sent)
        return True

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
                started = time.perf_counter()
                send_all(batch.fds, batch.blob, batch.starts, batch.ends, batch.sent, batch.finished)
                self._observe(time.perf_counter() - started)
                self._loop.call_soon_threadsafe(self._done, batch, batch.sent)
        except Exception as exc:  # the loop's transports take over (see _done and SocketPeer)
            if self._stopping or self._loop.is_closed():
                return  # the server stopped under it: nothing is left to hand back
            self.failed = repr(exc)
            log.exception("the send thread stopped")
            if self._batch is not None:
                self._loop.call_soon_threadsafe(self._done, self._batch, None)

    def _done(self, batch: _Batch, sent: np.ndarray | None) -> None:
        """On the event loop: the connections the kernel did not take whole, and those
        with something waiting, get back what is theirs; the others need nothing. Once
        per batch (``finish`` may have handed it back already)."""
        if self._batch is not batch:
            return
        fds, blob, starts, ends, done = batch.fds, batch.blob, batch.starts, batch.ends, batch.done
        self._batch = None
        self._lengths[fds] = 0
        self.batches += 1
        self.last_batch_at = self._loop.time()
        if sent is None:
            sent = np.zeros(len(fds), np.int64)
        later, self._later = self._later, set()
        short = np.flatnonzero(sent != ends - starts).tolist()
        back: dict[Batched, int] = {}  # connection -> its item
        for i in short:
            peer = self._peers.get(int(fds[i]))
            if peer is not None:
                back[peer] = i
        for peer in later:
            if peer not in back:
                found = np.flatnonzero(fds == peer.send_fd)
                if len(found):
                    back[peer] = int(found[0])
        view = blob.data
        for peer, i in back.items():
            try:
                peer.batch_done(view, int(starts[i]), int(ends[i]), int(sent[i]))
            except Exception:  # one broken connection is its own problem
                log.warning("after a batch", exc_info=True)
        if done is not None:
            done()
