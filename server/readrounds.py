"""The joined clients' sockets, read in rounds by the tick's task rather than by a wake-up
of the event loop for each frame.

At 1,000 clients their ~3,400 frames a second each woke the loop from its poll: a context
switch, and every read with cold caches (the profile had the main thread's epoll_pwait
and finish_task_switch at 108 and 61 of its 1,411 samples). An Input waits for the next
tick whenever it is read, so a joined connection's reading moves here: its transport stops
reading (asyncio's ``pause_reading``: the loop no longer watches the socket) and a
duplicate of its descriptor is watched by this object's own epoll, which the tick's task
looks at without waiting just before each tick and every ``PERIOD`` between ticks. What a
round reads goes to the connection's ``data_received``, as the loop's read would have.
On end of file or an error the socket is given back to its transport (``resume_reading``),
which meets the end as it did before.

Nothing here sleeps: between rounds the loop waits on its timers as before. (Holding the
loop for frames to gather was tried and reverted: on a contended machine a loop that
sleeps gets its core back late.)
"""

from __future__ import annotations

import logging
import os
import select
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import SocketPeer

log = logging.getLogger("expo.server.readrounds")

PERIOD = 0.0125  # seconds between rounds: a Pong (or any answer) waits at most this long
READ_SIZE = 256 * 1024  # bytes read from a socket in a round, as uvloop reads at once


class ReadRounds:
    """The sockets of the joined connections, and one round of reading them."""

    def __init__(self) -> None:
        self._poll = select.epoll()
        self._watched: dict[int, SocketPeer] = {}  # our duplicate of its descriptor -> the connection

    def __len__(self) -> int:
        return len(self._watched)

    def take(self, conn: SocketPeer) -> None:
        """Read ``conn`` in rounds from now on (its transport no longer reads)."""
        transport = conn.transport
        if conn.read_fd >= 0 or conn.fd < 0 or transport is None or transport.is_closing():
            return
        fd = os.dup(conn.fd)  # ours until given back: the number cannot be reused meanwhile
        transport.pause_reading()
        self._poll.register(fd, select.EPOLLIN)  # level-triggered: bytes left for the next round stay ready
        conn.read_fd = fd
        self._watched[fd] = conn

    def give_back(self, conn: SocketPeer) -> None:
        """Its transport reads ``conn`` again (it left the joined state, or its socket ended)."""
        fd = conn.read_fd
        if fd < 0:
            return
        conn.read_fd = -1
        del self._watched[fd]
        self._poll.unregister(fd)
        os.close(fd)
        transport = conn.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def round(self) -> int:
        """Read every watched socket that has bytes, once; returns how many were ready."""
        watched = self._watched
        if not watched:
            return 0
        ready = self._poll.poll(0, len(watched))
        for fd, _ in ready:
            conn = watched.get(fd)
            if conn is None:  # given back earlier in this round
                continue
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                continue
            except OSError:  # reset: its transport meets the socket's end
                self.give_back(conn)
                continue
            if not data:  # end of file: its transport reads it and tells the connection
                self.give_back(conn)
                continue
            try:
                conn.data_received(data)
            except Exception:  # as the loop does for a protocol that fails: log, and close
                log.exception("a connection failed on what it sent")
                self.give_back(conn)
                conn.abort()
        return len(ready)

    def close(self) -> None:
        for conn in list(self._watched.values()):
            self.give_back(conn)
        self._poll.close()
