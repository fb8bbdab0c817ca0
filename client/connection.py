"""The client's socket: websockets' sans-I/O ``ClientProtocol`` driven by our own
``asyncio.Protocol`` (websockets' documented "Integrate the Sans-I/O layer" way).

Each whole message goes to ``on_message`` as soon as it is parsed, with no future and no
task wake-up per message (those were a third of a bot's CPU at twenty snapshots a second),
and frames are written synchronously, so they keep their order from every sender (inputs,
pings, commands) without a lock. No extension is offered: the expo's messages are small
and binary, and deflate would cost CPU and memory per connection on both sides.

Once the handshake is done, the link splits the server's final, unmasked binary frames
itself: websockets' generator parser cost a bot 15 % of its CPU at a frame a tick. Every
other frame (control, text, fragments, reserved bits, masking, anything while the
protocol is not OPEN) goes to the protocol's ``receive_data`` whole and in order, as soon
as its bytes arrive, so the protocol object sees a stream of whole frames and keeps its
state: it answers pings and closes, checks fragments and fails on bad frames as before.
The take-over point is exact: before the handshake the protocol is fed the bytes up to
the end of the response head (the first empty line) and no further, so its parser is at a
frame boundary with nothing buffered when the link starts splitting. After a frame that
leaves the protocol not OPEN (a close, a failure) every later byte is the protocol's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

log = logging.getLogger("expo.client")


class ServerLink(asyncio.Protocol):
    """One connection to the server. ``opened`` resolves when the WebSocket handshake
    succeeded (or raises why not); ``closed`` when the socket is gone."""

    def __init__(self, url: str, on_message: Callable[[bytes], None]) -> None:
        loop = asyncio.get_running_loop()
        ws_log = logging.getLogger("expo.client.ws")
        self.protocol = ClientProtocol(parse_uri(url), extensions=None, max_size=None, logger=ws_log)
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._fragments: list[bytes] = []
        # The handshake's last bytes (up to 3), to find the end of the response head across reads;
        # None once the handshake's bytes are all fed.
        self._tail: bytes | None = b""
        # Debug logging shows each frame as websockets parses it: then every frame is parsed by it.
        self._may_split = not ws_log.isEnabledFor(logging.DEBUG)
        self._splitting = False
        self._pending = b""  # bytes of the frame being received, not yet delivered
        self._given = 0  # of them, how many the protocol has (the head of a frame of its)
        self._owed = 0  # bytes still to come of a frame the protocol is being fed
        self.frames_split = 0  # messages delivered without the protocol's parser

    @property
    def open(self) -> bool:
        return self.protocol.state is State.OPEN

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason

    # ------------------------------------------------------------------ asyncio's calls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        self.protocol.send_request(self.protocol.connect())
        self.send_data()

    def data_received(self, data: bytes) -> None:
        if self._splitting:
            self._split(data)
        elif self._tail is not None:
            self._handshake_data(data)
        else:
            self._feed(data)
        self.send_data()

    def eof_received(self) -> bool | None:
        if self._splitting:  # the protocol gets what was left of a frame, as it would have had it
            self._splitting = False
            if len(self._pending) > self._given:
                self._feed(self._pending[self._given:])
            self._pending = b""
        self.protocol.receive_eof()
        self._handle_events()
        self.send_data()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"the connection closed before the handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    # ------------------------------------------------------------------ both ways

    def send_binary(self, data: bytes) -> None:
        """Queue one binary message; ``send_data`` writes what is queued."""
        self.protocol.send_binary(data)

    def send_data(self) -> None:
        transport = self.transport
        for data in self.protocol.data_to_send():
            if transport is None or transport.is_closing():
                return
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()

    async def close(self, timeout: float = 2.0) -> None:
        """The closing handshake, then the socket; a server that does not answer in time
        has the socket aborted."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(1000)
            self.send_data()
        with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow a cancel on 3.11
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.closed)
        if self.transport is not None and not self.closed.done():
            self.transport.abort()
            await self.closed

    def close_now(self) -> None:
        """Say goodbye (a close frame) and close the socket without waiting for the answer:
        for leaving a process whose answer does not matter (a Transfer: the client's wait
        for the next process should not include this one's round trip)."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(1000)
            self.send_data()
        if self.transport is not None:
            self.transport.close()  # after what is buffered

    def _feed(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._handle_events()

    def _handshake_data(self, data: bytes) -> None:
        """Feed the protocol up to the end of the response head; if that opened the
        connection, split what follows."""
        assert self._tail is not None
        seen = self._tail + data
        end = seen.find(b"\r\n\r\n")
        if end < 0:
            self._tail = seen[-3:]
            self._feed(data)
            return
        cut = end + 4 - len(self._tail)  # >= 1: the tail alone is too short to hold the separator
        self._tail = None
        self._feed(data[:cut])
        rest = data[cut:]
        if self._may_split and self.protocol.state is State.OPEN:
            self._splitting = True
            if rest:
                self._split(rest)
        elif rest:
            self._feed(rest)

    def _split(self, data: bytes) -> None:
        """Deliver the final binary frames in ``data`` (with what was pending), feed the
        protocol every other frame's bytes as they come."""
        buf = self._pending + data if self._pending else data
        pos, end, given = 0, len(buf), self._given
        protocol = self.protocol
        while pos < end:
            if self._owed:  # the rest of a frame of the protocol's
                n = min(self._owed, end - pos)
                self._feed(buf[pos:pos + n])
                self._owed -= n
                pos += n
                if protocol.state is not State.OPEN:
                    break
                continue
            if end - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            header = (2 if n < 126 else 4 if n == 126 else 10) + (4 if b1 & 0x80 else 0)
            # FIN, no reserved bits, binary; unmasked; not inside a fragmented message
            mine = (b0 == 0x82 and b1 < 0x80 and not given and not self._fragments
                    and protocol.state is State.OPEN)
            if end - pos < header:  # the length is not known yet
                if not mine:  # the protocol checks a header's first bytes as they come
                    self._feed(buf[pos + given:end])
                    given = end - pos
                break
            length = n if n < 126 else int.from_bytes(buf[pos + 2:pos + (4 if n == 126 else 10)], "big")
            stop = pos + header + length
            if mine:
                if stop > end:
                    break
                self.frames_split += 1
                self._deliver(buf[pos + header:stop])
            else:
                have = min(stop, end)
                self._feed(buf[pos + given:have])
                self._owed, given = stop - have, 0
                stop = have
                if protocol.state is not State.OPEN:
                    pos = stop
                    break
            pos = stop
        if self._splitting and protocol.state is not State.OPEN and not self._owed:
            # closing or failed: from here on, every byte is the protocol's (it discards them)
            self._splitting = False
            if end > pos + given:
                self._feed(buf[pos + given:])
            self._pending, self._given = b"", 0
            return
        self._pending, self._given = buf[pos:], given

    def _handle_events(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.opened.done():
                    continue
                if self.protocol.handshake_exc is not None:
                    self.opened.set_exception(self.protocol.handshake_exc)
                else:
                    self.opened.set_result(None)
            elif isinstance(event, Frame):
                self._on_frame(event)

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))  # bytes from the parser: no copy
            if not frame.fin:
                return
            data, self._fragments = b"".join(self._fragments), []
        elif frame.opcode is Opcode.BINARY or frame.opcode is Opcode.TEXT:
            if not frame.fin:
                self._fragments = [bytes(frame.data)]
                return
            data = bytes(frame.data)
        else:
            return  # ping (answered by the protocol), pong, close (answered too)
        self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        try:
            self.on_message(data)
        except Exception:  # a bug in handling one message must not take the connection down
            log.exception("handling a message failed")


async def open_link(url: str, on_message: Callable[[bytes], None], timeout: float) -> ServerLink:
    """Connect and finish the WebSocket handshake within ``timeout`` seconds; raises
    OSError, TimeoutError or InvalidHandshake."""
    loop = asyncio.get_running_loop()
    uri = parse_uri(url)
    link: ServerLink | None = None

    def made() -> ServerLink:
        nonlocal link
        link = ServerLink(url, on_message)
        return link

    async with asyncio.timeout(timeout):
        await loop.create_connection(made, uri.host, uri.port, ssl=True if uri.secure else None)
        assert link is not None
        try:
            await link.opened
        except BaseException:
            if link.transport is not None:
                link.transport.abort()
            raise
    return link

