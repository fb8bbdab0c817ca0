"""The client's socket: websockets' sans-I/O ``ClientProtocol`` driven by our own
``asyncio.Protocol`` (websockets' documented "Integrate the Sans-I/O layer" way).

Each whole message goes to ``on_message`` as soon as it is parsed, with no future and no
task wake-up per message (those were a third of a bot's CPU at twenty snapshots a second),
and frames are written synchronously, so they keep their order from every sender (inputs,
pings, commands) without a lock. No extension is offered: the expo's messages are small
and binary, and deflate would cost CPU and memory per connection on both sides.

The server's final binary frames (a tick's message, a few hundred bytes) are cut out of
each read ahead of websockets' parser (``protocol.wsframes.FrameSplitter``, as the server
does with its clients' Inputs): that generator parser cost a bot 15 % of its CPU at a frame
a tick. Every other frame goes to the protocol whole and in order from a frame boundary,
so it still answers pings and closes, checks fragments and fails on bad frames.
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

from protocol.wsframes import FrameSplitter

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
        # no size limit here, so every 7- and 16-bit frame may be split; with websockets' debug
        # log on (it logs each frame it parses) it parses every frame
        self.splitter = FrameSplitter(masked=False, feed=self._feed, deliver=self._deliver, is_open=lambda: self.open,
                                      split=not ws_log.isEnabledFor(logging.DEBUG), max_split=65535)

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
        self.splitter.data(data)
        self.send_data()

    def eof_received(self) -> bool | None:
        self.splitter.eof()
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

