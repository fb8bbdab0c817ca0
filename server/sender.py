"""Client sockets written by a thread of their own, so the tick does not pay for sends.

At 1,000 clients a tick ends with 1,000 ``send`` system calls of a few hundred bytes. On
loopback each costs ~7 us, because the receiver's TCP work runs in the sender's call: 7 ms
of every tick, 40 % of the server's time in the event loop. ``Sender`` hands a tick's writes
to a thread that makes those calls in one compiled loop (``send_all``) without the GIL, on
the machine's other core, while the event loop goes on with the clients' frames.

A Python thread calling ``socket.send`` itself would need the GIL back after every call;
the event loop, wanting it too, then waits out the interpreter's 5 ms switch interval again
and again (the "convoy effect"). So the thread only ever holds the GIL to pick up a batch,
and everything else stays on the event loop as before: a reply or a websockets control
frame goes straight out with one ``send`` when nothing is queued for that socket.

Every byte to a socket goes one way, or frames interleave. ``SendingTransport`` stands in
for the connection's transport after the handshake, so websockets' own writes (pongs, pings,
the closing handshake) and the simulation's frames share one ``Channel`` and its order.
Writes go to a duplicate of the socket's descriptor that only this module closes, so a
descriptor the event loop closed and the kernel reused is never written by mistake. Bytes
the kernel does not take (a client that stops reading) stay queued on the channel, the thread
sends them when the socket is writable again, and ``get_write_buffer_size`` counts them, so
the simulation's slow-client rules see them as they saw the transport's buffer.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

log = logging.getLogger("expo.server.sender")

_libc = ctypes.CDLL(None, use_errno=True)
_send = _libc.send
_send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_send.restype = ctypes.c_ssize_t
_FLAGS = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL
_RETRY_BLOCKED = 0.005  # seconds between looks at sockets that would not take more


@njit(nogil=True)  # not cached: numba cannot cache a call through a ctypes pointer
def send_all(fds: np.ndarray, blob: np.ndarray, ends: np.ndarray, sent: np.ndarray) -> None:
    """``send(fds[i], blob[ends[i-1]:ends[i]])`` for each i, without the GIL; ``sent[i]`` is
    what the kernel took, or -1 (the caller asks the socket again for the reason)."""
    base = blob.ctypes.data
    start = 0
    for i in range(fds.shape[0]):
        sent[i] = _send(fds[i], base + start, ends[i] - start, _FLAGS)
        start = ends[i]


def warm() -> float:
    """Compile ``send_all`` before the first tick needs it; returns the seconds it took."""
    started = time.perf_counter()
    send_all(np.zeros(0, np.int32), np.zeros(1, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return time.perf_counter() - started


class Channel:
    """One socket's bytes in flight. ``pending``, ``queued`` and ``finish`` are shared with
    the thread under the sender's lock; ``unsent`` belongs to the thread."""

    __slots__ = ("sock", "fd", "pending", "unsent", "queued", "dirty", "finish", "closed", "on_closed")

    def __init__(self, sock: socket.socket, on_closed: Callable[[], None]) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.pending: list[bytes] = []  # queued behind bytes not sent yet, in order
        self.unsent = b""  # the part of a write the kernel did not take
        self.queued = 0  # bytes written and not yet taken by the kernel
        self.dirty = False  # listed for the thread's next round
        self.finish: str | None = None  # "eof" or "close" once all is sent; "abort" at once
        self.closed = False  # the duplicate descriptor is closed
        self.on_closed = on_closed  # run on the event loop once a "close" is done


def _drop_queue(channel: Channel) -> None:  # under the sender's lock
    channel.pending.clear()
    channel.queued = 0


def _fail_queue(channel: Channel) -> None:  # under the sender's lock
    """Nothing more reaches a broken socket: drop its queue and close it, unless it is
    already being closed or aborted."""
    _drop_queue(channel)
    if channel.finish not in ("close", "abort"):
        channel.finish = "close"


class Sender:
    """The thread that sends each tick's frames, and drains what sockets did not take."""

    def __init__(self, loop: asyncio.AbstractEventLoop, observe: Callable[[float], None] = lambda seconds: None) -> None:
        self._loop = loop
        self._observe = observe  # told the seconds each tick's batch took to send
        self._lock = threading.Lock()
        self._wake = threading.Event()  # set without releasing the GIL, unlike a pipe's write
        self._batches: list[tuple[list[Channel], np.ndarray, bytes, np.ndarray]] = []
        self._dirty: list[Channel] = []
        self._open: set[Channel] = set()
        self._blocked: set[Channel] = set()  # thread only: waiting to be writable
        self._selector = selectors.DefaultSelector()  # thread only
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="expo-sender", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ event loop side

    def open(self, fileno: int, on_closed: Callable[[], None]) -> Channel:
        sock = socket.socket(fileno=os.dup(fileno))
        sock.setblocking(False)
        channel = Channel(sock, on_closed)
        with self._lock:
            self._open.add(channel)
        return channel

    def write(self, channel: Channel, data: bytes) -> None:
        """Send now when nothing is queued for the socket (nothing can be in flight then);
        otherwise queue behind what is, for the thread."""
        with self._lock:
            if channel.finish is not None:
                return  # written after close or abort: dropped, as asyncio's transports do
            if channel.queued:
                self._queue(channel, data)
                return
        try:
            sent = channel.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # reset or gone; the event loop's reader hears of it too
            self._fail(channel)
            return
        if sent < len(data):
            with self._lock:
                if channel.finish is None:
                    self._queue(channel, data[sent:])

    def submit(self, writes: list[tuple[Channel, bytes]]) -> None:
        """A tick's writes, one per socket, sent by the thread in one compiled loop. A socket
        with bytes still queued gets its write queued behind them instead."""
        channels: list[Channel] = []
        datas: list[bytes] = []
        with self._lock:
            for channel, data in writes:
                if channel.finish is not None:
                    continue
                if channel.queued:
                    self._queue(channel, data)
                else:
                    channel.queued = len(data)
                    channels.append(channel)
                    datas.append(data)
            if channels:
                fds = np.fromiter((c.fd for c in channels), np.int32, len(channels))
                ends = np.cumsum(np.fromiter(map(len, datas), np.int64, len(datas)))
                self._batches.append((channels, fds, b"".join(datas), ends))
        if channels or self._dirty:
            self._wake.set()

    def finish(self, channel: Channel, how: str) -> None:
        """``eof`` or ``close`` once everything queued is sent; ``abort`` drops it now."""
        with self._lock:
            if channel.finish in ("close", "abort") or channel.finish == how:
                return
            channel.finish = how
            if how == "abort":
                _drop_queue(channel)
            self._mark(channel)
        self._wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the sender thread did not stop within %.1f s", timeout)

    def _queue(self, channel: Channel, data: bytes) -> None:  # under the lock
        channel.pending.append(data)
        channel.queued += len(data)
        self._mark(channel)
        self._wake.set()

    def _mark(self, channel: Channel) -> None:  # under the lock
        if not channel.dirty:
            channel.dirty = True
            self._dirty.append(channel)

    def _fail(self, channel: Channel) -> None:
        """The socket is reset or gone: drop its queue and close it (the event loop's
        reader hears of it too)."""
        with self._lock:
            _fail_queue(channel)
            self._mark(channel)
        self._wake.set()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            self._wake.wait(_RETRY_BLOCKED if self._blocked else None)
            self._wake.clear()
            writable = [key.data for key, _ in self._selector.select(0)] if self._blocked else []
            with self._lock:
                batches, self._batches = self._batches, []
                dirty, self._dirty = self._dirty, []
                for channel in dirty:
                    channel.dirty = False
            if self._stopping:
                with self._lock:
                    channels = list(self._open)
                for channel in channels:
                    self._close(channel)
                self._selector.close()
                return
            # Batches first: a channel is in one only if nothing was queued before it.
            for channels, fds, blob, ends in batches:
                started = time.perf_counter()
                sent = np.empty(len(channels), np.int64)
                send_all(fds, np.frombuffer(blob, np.uint8), ends, sent)
                lengths = np.diff(ends, prepend=0)
                for i in np.flatnonzero(sent != lengths):
                    start = int(ends[i] - lengths[i])
                    channel = channels[i]
                    taken = max(0, int(sent[i]))
                    with self._lock:
                        channel.queued = max(0, channel.queued - taken)  # 0 once aborted
                    channel.unsent = blob[start + taken:int(ends[i])]
                    self._send(channel)  # asks the socket why, and waits if it is full
                self._settle(channels, sent, lengths)
                self._observe(time.perf_counter() - started)
            for channel in writable:
                self._send(channel)
            for channel in dirty:
                if channel not in self._blocked or channel.finish == "abort":
                    self._send(channel)

    def _settle(self, channels: list[Channel], sent: np.ndarray, lengths: np.ndarray) -> None:
        """Take the fully sent writes of a batch off their channels' counts."""
        with self._lock:
            for i in np.flatnonzero(sent == lengths):
                channels[i].queued = max(0, channels[i].queued - int(lengths[i]))

    def _send(self, channel: Channel) -> None:
        if channel.closed:
            return
        with self._lock:
            pending, channel.pending = channel.pending, []
            finish = channel.finish
        if finish == "abort":
            self._close(channel)
            return
        data = channel.unsent + b"".join(pending) if pending else channel.unsent
        sent = 0
        if data:
            try:
                sent = channel.sock.send(data)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:  # reset or gone: the event loop hears of it from its reader
                with self._lock:
                    _fail_queue(channel)
                self._close(channel)
                return
        channel.unsent = data[sent:]
        if sent:
            with self._lock:
                channel.queued = max(0, channel.queued - sent)
        if channel.unsent:
            if channel not in self._blocked:
                self._selector.register(channel.sock, selectors.EVENT_WRITE, channel)
                self._blocked.add(channel)
            return
        if channel in self._blocked:
            self._blocked.discard(channel)
            self._selector.unregister(channel.sock)
        if finish == "eof":
            try:
                channel.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        elif finish == "close":
            self._close(channel)

    def _close(self, channel: Channel) -> None:
        if channel.closed:
            return
        if channel in self._blocked:
            self._blocked.discard(channel)
            self._selector.unregister(channel.sock)
        channel.closed = True
        channel.sock.close()
        with self._lock:
            self._open.discard(channel)
        if channel.finish == "close":
            try:
                self._loop.call_soon_threadsafe(channel.on_closed)
            except RuntimeError:  # the loop is closed: nobody is left to tell
                pass


class SendingTransport(asyncio.Transport):
    """A connection's transport whose writes go through the ``Sender``; reading, extra info
    and the rest are the real transport's."""

    def __init__(self, real: asyncio.Transport, sender: Sender) -> None:
        super().__init__()
        self._real = real
        self._sender = sender
        self.channel = sender.open(real.get_extra_info("socket").fileno(), real.close)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._sender.write(self.channel, bytes(data))

    def writelines(self, list_of_data) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        self._sender.finish(self.channel, "eof")

    def can_write_eof(self) -> bool:
        return self._real.can_write_eof()

    def close(self) -> None:
        """Close once the queued bytes are sent (the thread then closes the real transport)."""
        self._sender.finish(self.channel, "close")

    def abort(self) -> None:
        self._sender.finish(self.channel, "abort")
        self._real.abort()

    def is_closing(self) -> bool:
        return self.channel.finish in ("close", "abort") or self._real.is_closing()

    def get_write_buffer_size(self) -> int:
        return self.channel.queued

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._real.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._real.pause_reading()

    def resume_reading(self) -> None:
        self._real.resume_reading()

    def is_reading(self) -> bool:
        return self._real.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._real.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._real.get_protocol()

    def release(self) -> None:
        """The connection is over: free the duplicate descriptor even if nobody closed this
        transport (uvloop closes its own socket when the peer resets it)."""
        self._sender.finish(self.channel, "abort" if self._real.is_closing() else "close")
