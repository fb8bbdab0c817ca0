"""By slot, what the shell knows of each joined connection's sending, so that the
snapshot step decides for every connection at once and the tick's frames reach the send
thread as offsets into one buffer, with no Python call per connection.

A connection that reports here (server.connection.SocketPeer) keeps its row true while it
is *direct*: joined, open, and holding nothing in front of a tick frame (its transport's
buffer empty, no batch of it in flight), so its backlog is the kernel's alone, as last
sampled (``unsent``). Every other connection (another kind of Peer, one with bytes waiting,
one in flight) goes through the per-session rules as before (``Peer.backlog``,
``Peer.stalled``), which say the same for a direct row: the rows are a shortcut, not a
second set of rules. py-spy at 1,000 bots put those per-connection passes (the backlog
rules, the outbox appends, the flush, the batch's return) at ~40 % of the process.

Sans-I/O: numbers and the peer objects that own the rows; the shell fills them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .simulation import Peer


@dataclass(frozen=True, slots=True)
class TickFrames:
    """A tick's messages to the direct slots: slot ``slots[i]``'s whole WebSocket frame is
    ``data[at[i]:at[i + 1]]``. The shell sends each after whatever that connection's outbox
    holds (queued before the tick)."""

    slots: np.ndarray  # int64
    data: np.ndarray  # uint8
    at: np.ndarray  # int64, len(slots) + 1


class SendState:
    def __init__(self, capacity: int, clock: Callable[[], float]) -> None:
        """``clock``: the one the peers time kernel acknowledgements with (``acked_at``)."""
        self.capacity = capacity
        self.clock = clock
        self.owner: list[Peer | None] = [None] * capacity  # the joined connection of each slot
        self.direct = np.zeros(capacity, bool)  # the owner says: its backlog is ``unsent``, nothing waits
        self.flying = np.zeros(capacity, bool)  # a batch holds the slot's tick frame (set by the shell)
        self.fd = np.full(capacity, -1, np.int32)  # where the send thread may write the slot's frames
        self.unsent = np.zeros(capacity, np.int64)  # bytes the kernel held for the client, last sampled
        self.acked = np.full(capacity, -1, np.int64)  # bytes the client's kernel acknowledged, while some wait
        self.acked_at = np.zeros(capacity)  # when ``acked`` last moved, or bytes began to wait (``clock``)
        self.frames: TickFrames | None = None  # the last tick's, until the shell takes them

    def attach(self, slot: int, peer: Peer) -> None:
        """``peer`` joined on ``slot``: the row is its own, not direct until it says so."""
        self.owner[slot] = peer
        self._clear(slot)
        peer.attached(self, slot)

    def detach(self, slot: int, peer: Peer | None = None) -> None:
        """The slot's connection left it (``peer``: only if it still owns it; None: whoever)."""
        owner = self.owner[slot]
        if owner is not None and (peer is None or owner is peer):
            owner.released(self, slot)
        if peer is None or owner is peer:
            self.owner[slot] = None
            self._clear(slot)

    def owns(self, slot: int, peer: Peer) -> bool:
        return 0 <= slot < self.capacity and self.owner[slot] is peer

    def _clear(self, slot: int) -> None:
        self.direct[slot] = self.flying[slot] = False
        self.fd[slot] = -1
        self.unsent[slot] = 0
        self.acked[slot] = -1
        self.acked_at[slot] = 0.0

    def stalled(self, timeout: float) -> np.ndarray:
        """By slot, as ``Peer.stalled``: bytes wait and none was acknowledged for ``timeout`` s."""
        return (self.unsent > 0) & (self.acked >= 0) & (self.clock() - self.acked_at > timeout)

    def take_frames(self) -> TickFrames | None:
        frames, self.frames = self.frames, None
        return frames
