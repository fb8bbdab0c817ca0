"""One client's socket: websockets' sans-I/O ``ServerProtocol`` driven by our own
``asyncio.Protocol``, the integration websockets documents ("Integrate the Sans-I/O
layer"), with every byte to the socket going through ``SocketPeer.write``.

We own the connection so that the tick can write its pre-framed messages straight into
the socket's transport (no task, no future, no Frame object per message) without
touching websockets' private parts, as swapping its transport and overriding its event
processing did before. The sans-I/O protocol parses what comes in (HTTP request, frames,
pings, close), answers pings and closes, and frames what it sends itself, except that the
small final binary frames (the Inputs) are cut out ahead of its parser by
protocol.wsframes, which feeds it every other frame whole and in order; data frames to
the client are written here (``binary_frames``), which is safe because no extension is
ever negotiated: the bytes of a frame are then fixed by RFC 6455.

Behind ``write`` the tick's message may be sent by server.sendthread instead of the
transport: while a batch holds it (``in_flight``), the connection's other writes and its
close wait here, so nothing overtakes it (``batch_done``). Whether the tick's message may go
that way is kept in the simulation's send state (server.sendstate) while the connection is
joined: *direct* while its transport holds nothing (the transport calls ``pause_writing``
as soon as it buffers a byte, ``resume_writing`` once it is empty again), so the tick reads
no transport of a connection that has nothing waiting.

Frames are handed to the host as soon as they are parsed; nothing is queued between the
parser and the simulation, so a connection holds at most one partial frame of input
(at most ``PRE_JOIN_MAX_FRAME`` bytes before it has joined).
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import logging
import os
import socket
import struct
import termios
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Protocol as Interface

from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from protocol.wsframes import FrameSplitter

from .link import LinkState, close_reason_text, close_rule
from .simulation import Peer

if TYPE_CHECKING:
    from .readrounds import ReadRounds
    from .sendstate import SendState
    from .sendthread import SendThread

log = logging.getLogger("expo.server.connection")

MAX_FRAME = 64 * 1024  # a joined client's frames: above this websockets closes (1009); below, the codec answers
PRE_JOIN_MAX_FRAME = 4096  # before Welcome a frame may be no larger than a Hello may be


_SHORT_HEADERS = [bytes((0x82, n)) for n in range(126)]
_OUTQ = array.array("i", [0])  # SIOCOUTQ's answer (one event loop: one buffer)
_TCP_INFO_LEN = 136
_BYTES_ACKED = struct.Struct("=Q")  # struct tcp_info's tcpi_bytes_acked, at byte 120 (Linux >= 4.1)
_BYTES_ACKED_AT = 120


def frame_header(n: int) -> bytes:
    """The header of a final, binary, unmasked frame (RFC 6455, 5.2) of ``n`` bytes."""
    if n < 126:
        return _SHORT_HEADERS[n]
    if n < 65536:
        return b"\x82\x7e" + n.to_bytes(2, "big")
    return b"\x82\x7f" + n.to_bytes(8, "big")


def binary_frames(payloads: list[bytes | memoryview]) -> bytes:
    """The payloads as WebSocket frames from a server, back to back: a fraction of a
    microsecond each, where a websockets Frame object costs ~4 us. A memoryview is a tick's
    Snapshot that the snapshot kernel framed already: it goes as it is."""
    parts: list[bytes | memoryview] = []
    for payload in payloads:
        if type(payload) is not memoryview:
            parts.append(frame_header(len(payload)))
        parts.append(payload)
    return b"".join(parts)


class Host(Interface):
    """What a connection needs from the server around it (server.app.ExpoServer)."""

    def admit(self, conn: SocketPeer) -> str | None: ...  # None, or why the connection is refused
    def http(self, request: Request) -> Response | None: ...  # a plain HTTP answer, or None: a WebSocket
    def opened(self, conn: SocketPeer) -> None: ...
    def frame(self, conn: SocketPeer, data: bytes | str) -> None: ...
    def lost(self, conn: SocketPeer) -> None: ...


class SocketPeer(asyncio.Protocol, Peer):
    """A client's connection: the asyncio protocol of its socket, and the Peer the
    simulation fills. ``state`` (server.link) is the connection's one state; websockets'
    own ``protocol.state`` only says where the WebSocket handshakes are."""

    def __init__(self, host: Host, clock: Callable[[], float], send_buffer: int | None = None,
                 sender: SendThread | None = None, rounds: ReadRounds | None = None) -> None:
        """``sender``: the tick's messages may be sent by that server.sendthread (a
        duplicate of the socket's descriptor is kept for it); ``rounds``: once joined, the
        socket is read by those server.readrounds (with a duplicate of its own)."""
        Peer.__init__(self)
        self.host = host
        self.clock = clock
        self.send_buffer = send_buffer
        self.sender = sender
        self.send_fd = -1  # the send thread's duplicate of the descriptor
        self.rounds = rounds
        self.read_fd = -1  # the read rounds' duplicate of the descriptor, while they read it
        self._waiting: list[bytes | memoryview] = []  # written while in flight, in order
        self._waiting_bytes = 0
        self._close_after: str | None = None  # "close" or "abort", asked for while in flight
        self._lost = False
        self._paused = False  # the transport holds bytes (pause_writing)
        ws_log = logging.getLogger("expo.server.ws")
        self.protocol = ServerProtocol(
            extensions=None,  # every offered extension declined: a frame's bytes must be ours to write
            subprotocols=None,
            max_size=PRE_JOIN_MAX_FRAME,
            logger=ws_log,
        )
        # the Inputs cut out ahead of websockets' parser; with its debug log on, it parses every frame
        self.splitter = FrameSplitter(masked=True, feed=self._feed, deliver=self._on_data,
                                      is_open=self._is_open, split=not ws_log.isEnabledFor(logging.DEBUG))
        self.transport: asyncio.Transport | None = None
        self.address: str = ""
        self.connected_at = clock()
        self.websocket_open = False  # the WebSocket handshake succeeded and the host was told
        self.close_started_at: float | None = None  # when our close frame (or EOF) went out
        self.last_heard = self.connected_at  # any bytes from the client, pongs included
        self.ping_sent_at: float | None = None
        self.held: list[bytes | str] | None = None  # frames waiting behind an admission (see hold)
        self.fd = -1
        # the kernel figures while not joined; while joined, the send state's row holds them
        self._unsent = 0  # bytes the kernel holds for the client, as last sampled
        self._acked = -1  # bytes the client's kernel acknowledged (TCP_INFO), while some wait
        self._acked_at = 0.0  # when kernel_acked last moved, or bytes began to wait
        self._sock: socket.socket | None = None
        self._fragments: list[bytes] = []  # a fragmented message so far
        self._fragment_text = False  # whether it started as a text frame

    # ------------------------------------------------------------------ asyncio's calls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        peer = transport.get_extra_info("peername")
        self.address = peer[0] if peer else ""
        # told as soon as the transport buffers a byte, and once it is empty again (asyncio's
        # documented meaning of a zero high-water mark): what makes a connection direct
        transport.set_write_buffer_limits(high=0)  # type: ignore[attr-defined]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.fd = sock.fileno()
            self._sock = sock
            if self.sender is not None:
                self.send_fd = os.dup(self.fd)
                self.sender.register(self)
            if self.send_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        refusal = self.host.admit(self)
        if refusal is not None:
            self.protocol.send_response(self.protocol.reject(503, refusal + "\n"))
            self._write_protocol()

    def data_received(self, data: bytes) -> None:
        self.last_heard = self.clock()
        payload = self.splitter.whole(data)
        if payload is not None:  # nearly every read: one Input or Ping, split off without a loop
            # the parser was fed nothing: it has nothing to send and its state did not move
            # (what we send ourselves is written as it is made: write, settle, ping, fail)
            if self.state is LinkState.JOINED:  # not closing: _on_data's check, without its calls
                self.host.frame(self, payload)
            else:
                self._on_data(payload)
            return
        self.splitter.data(data)
        self._write_protocol()
        if self.slot >= 0 and self.protocol.state is not State.OPEN:  # the client closed
            self._report()

    def eof_received(self) -> bool | None:
        self.splitter.eof()
        self.protocol.receive_eof()
        self._handle_events()
        self._write_protocol()
        self._report()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self.rounds is not None:
            self.rounds.give_back(self)
        self._report()
        if self.in_flight:
            self._later()
        else:
            self._close_send_fd()
        self.host.lost(self)

    def pause_writing(self) -> None:
        self._paused = True
        self._report()

    def resume_writing(self) -> None:
        self._paused = False
        self._report()

    def _close_send_fd(self) -> None:
        if self.send_fd >= 0:
            if self.sender is not None:
                self.sender.unregister(self.send_fd)
            os.close(self.send_fd)
            self.send_fd = -1

    # ------------------------------------------------------------------ the send state

    def attached(self, state: SendState, slot: int) -> None:
        """The kernel figures move to the row (server.kernelsample samples them there)."""
        Peer.attached(self, state, slot)
        state.unsent[slot], state.acked[slot], state.acked_at[slot] = self._unsent, self._acked, self._acked_at
        self._report()

    def released(self, state: SendState, slot: int) -> None:
        """The row is about to be cleared: its kernel figures come back here."""
        self._unsent, self._acked, self._acked_at = self.kernel_figures()

    def kernel_figures(self) -> tuple[int, int, float]:
        """(bytes the kernel holds, bytes acknowledged, when that moved): the send state's
        row while joined, else this connection's own."""
        state, slot = self.sendstate, self.slot
        if state is not None and state.owns(slot, self):
            return int(state.unsent[slot]), int(state.acked[slot]), float(state.acked_at[slot])
        return self._unsent, self._acked, self._acked_at

    @property
    def kernel_unsent(self) -> int:
        return self.kernel_figures()[0]

    @property
    def kernel_acked(self) -> int:
        return self.kernel_figures()[1]

    def _report(self) -> None:
        """Keep this connection's row of the send state (while joined) true: direct while
        the tick's message may be written with nothing in front of it."""
        state, slot = self.sendstate, self.slot
        if state is None or not state.owns(slot, self):
            return
        transport = self.transport
        state.direct[slot] = (self.state is LinkState.JOINED and not self._lost and not self._paused
                              and transport is not None and not transport.is_closing()
                              and self.protocol.state is State.OPEN and self._close_after is None)
        state.fd[slot] = self.send_fd

    @property
    def in_flight(self) -> bool:
        """A batch of the send thread holds bytes for this connection (see batch_done)."""
        return self.sender is not None and self.sender.holds(self.send_fd)

    def _later(self) -> None:
        assert self.sender is not None
        self.sender.later(self)

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes | memoryview) -> None:
        """The one way bytes go to this socket: the tick's frames and replies, after
        whatever the sans-I/O protocol has queued (the handshake's response first)."""
        self._write_protocol()
        self._put(data)

    def _put(self, data: bytes | memoryview) -> None:
        if self.in_flight:  # behind the tick's message, which the send thread holds
            if not self._waiting:
                self._later()
            self._waiting.append(data)
            self._waiting_bytes += len(data)
            return
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def batch_done(self, blob: memoryview, start: int, end: int, sent: int) -> None:
        """The send thread is done with this connection's message, ``blob[start:end]``
        (called only when the kernel did not take it whole, or something waits): what the
        kernel did not take (all of it on an error: the transport meets the error and
        closes), then what was written meanwhile, go to the transport in order; then a
        close asked for meanwhile."""
        self._waiting_bytes = 0
        if self._lost:
            self._waiting = []
            self._close_send_fd()
            return
        if sent < end - start:
            self._put(blob[start + max(sent, 0):end])
        if self._waiting:
            waiting, self._waiting = self._waiting, []
            for item in waiting:
                self._put(item)
        if self._close_after is not None:
            how, self._close_after = self._close_after, None
            if how == "abort":
                self.abort()
            else:
                self._close_transport()
        self._report()

    def _close_transport(self) -> None:
        if self.in_flight:
            self._close_after = self._close_after or "close"
            self._later()
        elif self.transport is not None:
            self.transport.close()
        self._report()

    def backlog(self) -> int:
        """Bytes written and not yet taken by the client: those the transport holds, those
        in flight or waiting behind them, and those the kernel held when last sampled
        (``sample_kernel``). On loopback the kernel's buffers grow to megabytes, so a client
        that stops reading was never seen as slow."""
        if self.transport is None:
            return 0
        flying = self.sender.in_flight_bytes(self.send_fd) if self.sender is not None else 0
        return self.transport.get_write_buffer_size() + self.kernel_unsent + self._waiting_bytes + flying

    def sample_kernel(self) -> None:
        """Read the bytes still in the socket's send queue (SIOCOUTQ: not yet acknowledged
        by the client's kernel, so not in its receive buffer). A system call of a few
        microseconds: the host samples each connection every few ticks, not every tick, and
        the joined ones by server.kernelsample's loop; this is for the others."""
        if self.fd < 0:
            return
        try:
            fcntl.ioctl(self.fd, termios.TIOCOUTQ, _OUTQ, True)
        except OSError:  # closed meanwhile
            self._set(0, *self.kernel_figures()[1:])
            return
        waited, acked, acked_at = self.kernel_figures()
        unsent = _OUTQ[0]
        if unsent and self._sock is not None:
            try:
                info = self._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
            except OSError:
                info = b""
            if len(info) >= _BYTES_ACKED_AT + 8:
                got = _BYTES_ACKED.unpack_from(info, _BYTES_ACKED_AT)[0]
                if got != acked or not waited:
                    acked, acked_at = got, self.clock()
        self._set(unsent, acked, acked_at)

    def _set(self, unsent: int, acked: int, acked_at: float) -> None:
        state, slot = self.sendstate, self.slot
        if state is not None and state.owns(slot, self):
            state.unsent[slot], state.acked[slot], state.acked_at[slot] = unsent, acked, acked_at
        else:
            self._unsent, self._acked, self._acked_at = unsent, acked, acked_at

    def stalled(self, timeout: float) -> bool:
        """Bytes wait for the client and its kernel has acknowledged none of them for
        ``timeout`` s: it stopped reading (its receive window is shut), however few bytes
        wait. With little traffic the backlog rules alone took ~40 s to see it (issue 14)."""
        unsent, acked, acked_at = self.kernel_figures()
        return bool(unsent) and acked >= 0 and self.clock() - acked_at > timeout

    def flush(self) -> tuple[int, int]:
        """Write the outbox to the socket in one write, as frames; returns the frames and
        payload bytes written, for the caller's counters."""
        if not self.outbox:
            return 0, 0
        frames, self.outbox = self.outbox, []
        if self.protocol.state is not State.OPEN:
            return 0, 0
        data: bytes | memoryview
        if len(frames) == 1 and type(frames[0]) is memoryview:  # most ticks: the Snapshot alone
            data = frames[0]
        else:
            data = binary_frames(frames)
        self.write(data)
        return len(frames), sum(map(len, frames))

    def _write_protocol(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self._put(data)
            else:  # SEND_EOF: a server closes the TCP connection
                self._close_transport()

    # ------------------------------------------------------------------ reading

    def _is_open(self) -> bool:
        return self.protocol.state is State.OPEN

    def _feed(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._handle_events()

    def _handle_events(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, Request):
                self._on_request(event)
            elif isinstance(event, Frame):
                self._on_frame(event)

    def _on_request(self, request: Request) -> None:
        answer = self.host.http(request)
        if answer is None:
            answer = self.protocol.accept(request)
        self.protocol.send_response(answer)
        if self.protocol.state is State.OPEN:
            assert not self.protocol.extensions, "no extension may be negotiated: the tick writes frames itself"
            self.websocket_open = True
            self.host.opened(self)

    def _on_frame(self, frame: Frame) -> None:
        if not self.websocket_open:
            return  # parsed behind a request that was answered over plain HTTP
        opcode = frame.opcode
        if opcode is Opcode.PONG:
            self.ping_sent_at = None
            return
        if opcode is Opcode.CLOSE:
            if self.close_started_at is None:
                self.close_started_at = self.clock()
            return
        if opcode is Opcode.CONT:  # websockets checked the sequence and the total size
            self._fragments.append(bytes(frame.data))  # bytes from the parser: no copy
            if not frame.fin:
                return
            data, text, self._fragments = b"".join(self._fragments), self._fragment_text, []
        elif opcode is Opcode.BINARY or opcode is Opcode.TEXT:
            data, text = bytes(frame.data), opcode is Opcode.TEXT
            if not frame.fin:
                self._fragments, self._fragment_text = [data], text
                return
        else:
            return  # a ping: the protocol answered it
        self._on_data(data.decode(errors="replace") if text else data)

    def _on_data(self, data: bytes | str) -> None:
        """A whole message, from the protocol's parser or split off ahead of it (both only once
        the WebSocket is open)."""
        assert self.websocket_open, "a message before the handshake"
        if not self.closing:
            self.host.frame(self, data)

    # ------------------------------------------------------------------ the state machine's shell

    def joined(self) -> None:
        """The simulation welcomed this connection: a joined client may send larger frames,
        and its socket is read in rounds."""
        self.protocol.max_message_size = MAX_FRAME
        if self.rounds is not None:
            self.rounds.take(self)

    def transition(self, to: LinkState) -> None:
        Peer.transition(self, to)
        if self.rounds is not None and to is not LinkState.JOINED:  # its closing is read as it comes
            self.rounds.give_back(self)

    def settle(self) -> None:
        """Once the simulation moved the connection to CLOSING and its last frames were
        written: close as server.link's table says, once."""
        if self.state is not LinkState.CLOSING or self.close_started_at is not None:
            return
        code, message = self.close_request or (None, "")
        rule = close_rule(code)
        self.close_started_at = self.clock()
        if not rule.handshake or self.protocol.state is not State.OPEN:
            self.abort()
            return
        self.protocol.send_close(rule.code, close_reason_text(message))
        self._write_protocol()

    def hold(self) -> None:
        """Keep the frames parsed from now on in ``held``, and read no more from the
        socket, until ``release``: the host is waiting for something before the frame it has."""
        self.held = []
        if self.transport is not None:
            self.transport.pause_reading()

    def release(self) -> list[bytes | str]:
        held, self.held = self.held or [], None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        return held

    def ping(self) -> None:
        if self.protocol.state is State.OPEN and self.ping_sent_at is None:
            self.ping_sent_at = self.clock()
            self.protocol.send_ping(b"")
            self._write_protocol()

    def fail(self, code: int, reason: str) -> None:
        """Close for a reason of the connection's own (keepalive), not the simulation's."""
        if self.protocol.state is State.OPEN:
            self.protocol.fail(code, reason)
            self._write_protocol()
            self.close_started_at = self.clock()
        else:
            self.abort()

    def abort(self) -> None:
        if self.in_flight:  # the send thread has the descriptor's duplicate: after it
            self._close_after = "abort"
            self._later()
        elif self.transport is not None:
            self.transport.abort()
        self._report()
