"""The kernel sample of the tick's connections (what each socket's send queue holds, and
what the client's kernel acknowledged while bytes wait) as one compiled loop over their
descriptors, numba calling libc ``ioctl`` and ``getsockopt`` by symbol as
``server.sendthread.send_all`` calls ``send``: the per-connection Python (fcntl.ioctl,
socket.getsockopt, the struct unpack, three attributes) was ~0.46 us a visitor-tick at 1,000.

It writes ``server.sendstate.SendState``'s rows, the one copy of these figures while a
connection is joined (server.connection.SocketPeer reads them from there).
"""

from __future__ import annotations

import socket
import termios
import time
from typing import Any

import numpy as np
from numba import types

from world.jit import compiled

# ioctl is variadic; its third argument is a pointer, passed in a register as a fixed one would be
_ioctl: Any = types.ExternalFunction("ioctl", types.int32(types.int32, types.uint64, types.voidptr))
_getsockopt: Any = types.ExternalFunction(
    "getsockopt", types.int32(types.int32, types.int32, types.int32, types.voidptr, types.voidptr))
_OUTQ = int(termios.TIOCOUTQ)
_TCP = int(socket.IPPROTO_TCP)
_TCP_INFO = int(socket.TCP_INFO)
INFO_LEN = 136  # bytes of struct tcp_info asked for
_ACKED_WORD = 15  # tcpi_bytes_acked: the 64-bit word at byte 120 (Linux >= 4.1)


@compiled()
def sample(fds: np.ndarray, slots: np.ndarray, unsent: np.ndarray, acked: np.ndarray, acked_at: np.ndarray,
           now: float, outq: np.ndarray, info: np.ndarray, info_len: np.ndarray) -> None:
    """For each i, slot ``slots[i]``'s row from descriptor ``fds[i]``, as
    ``SocketPeer.sample_kernel``: ``unsent`` from TIOCOUTQ (0 if the call fails); when
    bytes wait, ``acked`` from TCP_INFO, and ``acked_at = now`` when it moved or bytes
    began to wait. ``outq`` (int32[1]), ``info`` (uint64[INFO_LEN // 8]) and ``info_len``
    (uint32[1]) are the calls' buffers."""
    for i in range(fds.shape[0]):
        fd, slot = fds[i], slots[i]
        if _ioctl(fd, _OUTQ, outq.ctypes.data) != 0:
            unsent[slot] = 0
            continue
        waited = unsent[slot]
        unsent[slot] = outq[0]
        if outq[0]:
            info_len[0] = INFO_LEN
            if (_getsockopt(fd, _TCP, _TCP_INFO, info.ctypes.data, info_len.ctypes.data) == 0
                    and info_len[0] >= (_ACKED_WORD + 1) * 8):
                got = np.int64(info[_ACKED_WORD])
                if got != acked[slot] or not waited:
                    acked[slot] = got
                    acked_at[slot] = now


class KernelSampler:
    """``sample``'s buffers, made once (the event loop is one thread)."""

    def __init__(self) -> None:
        self.outq = np.zeros(1, np.int32)
        self.info = np.zeros(INFO_LEN // 8, np.uint64)
        self.info_len = np.zeros(1, np.uint32)

    def __call__(self, fds: np.ndarray, slots: np.ndarray, unsent: np.ndarray, acked: np.ndarray,
                 acked_at: np.ndarray, now: float) -> None:
        sample(fds, slots, unsent, acked, acked_at, now, self.outq, self.info, self.info_len)


def warm() -> float:
    """Compile ``sample`` before the first tick needs it; returns the seconds it took."""
    started = time.perf_counter()
    empty = np.zeros(0, np.int64)
    KernelSampler()(np.zeros(0, np.int32), empty, empty, empty.copy(), np.zeros(0), 0.0)
    return time.perf_counter() - started
