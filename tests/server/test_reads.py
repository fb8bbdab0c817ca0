"""A joined client's frames as its socket reads them (server.connection.SocketPeer into
server.app.ExpoServer): a read that is exactly one small frame (nearly every read: an Input)
takes a short path, which must keep every check, error, limit and count of the long one."""

from __future__ import annotations

import asyncio
import socket

import msgpack
import pytest
from support import HANDSHAKE, client_frame, server_frames, small_expo

import protocol as p
from server.app import ExpoServer
from server.clock import ManualClock
from server.config import ServerConfig
from server.connection import SocketPeer
from server.link import LinkState

HELLO = p.encode(p.Hello(p.PROTOCOL_VERSION, "Aru", 0x123456, 0))


class Client:
    """A connection past its handshake and Hello, over a socket pair, whose reads the test
    makes itself (``read``); ``replies`` decodes what the server wrote since the last call."""

    def __init__(self, srv: ExpoServer, conn: SocketPeer, theirs: socket.socket) -> None:
        self.srv, self.conn, self.theirs = srv, conn, theirs
        self.stream = b""
        self.seen = 0
        self.long_reads = 0  # reads that went through the splitter's loop
        whole_data = conn.splitter.data

        def data(chunk: bytes) -> None:
            self.long_reads += 1
            whole_data(chunk)

        conn.splitter.data = data  # type: ignore[method-assign]

    def read(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self.conn.data_received(chunk)

    def frames(self) -> list[tuple[int, bytes]]:
        """The (opcode, payload) frames the server wrote since the last call."""
        while True:
            try:
                got = self.theirs.recv(65536)
            except BlockingIOError:
                break
            if not got:
                break
            self.stream += got
        _, frames = server_frames(self.stream, partial=True)
        new, self.seen = frames[self.seen:], len(frames)
        return new

    def replies(self) -> list[p.Message]:
        return [p.decode_server(payload) for opcode, payload in self.frames() if opcode == 0x2]


@pytest.fixture
async def connect():
    """Joined clients, each on a server of its own with its clock stopped (identical replies)."""
    loop = asyncio.get_running_loop()
    sockets: list[socket.socket] = []

    async def make() -> Client:
        srv = ExpoServer(small_expo(), ServerConfig(max_clients=4), ManualClock(100.0))
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        sockets.extend((ours, theirs))
        conn = SocketPeer(srv, loop.time)
        await loop.connect_accepted_socket(lambda: conn, ours)
        conn.data_received(HANDSHAKE)
        conn.data_received(client_frame(HELLO))
        assert conn.state is LinkState.JOINED
        client = Client(srv, conn, theirs)
        assert isinstance(client.replies()[0], p.Welcome)
        return client

    yield make
    for sock in sockets:
        sock.close()


def bad_input(**field) -> bytes:
    """An Input's msgpack array with one field out of its range (the codec refuses it)."""
    values = {"seq": 1, "move_x": 0.0, "move_y": 0.0, "yaw": 0.0, "run": False, "ticks": 1, **field}
    return msgpack.packb([p.Input.TYPE, *values.values()])


def cut(frame: bytes) -> tuple[bytes, bytes]:
    return frame[:3], frame[3:]


FRAMES = [
    p.encode(p.Input(1, 1.0, 0.0, 0.0, False, 5)),
    p.encode(p.Ping(2.5)),
    bad_input(seq=2, move_x=5.0),  # bad_field
    p.encode(p.Input(1, 0.0, 1.0, 0.0, False)),  # its seq is not after the last: bad_field
    b"\xc1garbage",  # not msgpack: bad_frame
    msgpack.packb([250, 1]),  # no such type
    p.encode(p.Hello(p.PROTOCOL_VERSION, "Bea", 0, 0)),  # already joined
    p.encode(p.Input(3, 0.0, -1.0, 1.0, True, 20)),
]


async def test_a_read_of_one_frame_is_answered_as_a_frame_cut_across_reads(connect):
    short, long = await connect(), await connect()
    for frame in FRAMES:
        short.read(client_frame(frame))
        long.read(*cut(client_frame(frame)))
    assert short.long_reads == 0 and long.long_reads == 2 * len(FRAMES)
    replies = short.replies()
    assert replies == long.replies()
    assert [(r.code, r.ref) for r in replies if isinstance(r, p.Error)] == [
        ("bad_field", p.Input.TYPE), ("bad_field", p.Input.TYPE), ("bad_frame", 0), ("unknown_type", 250),
        ("already_joined", p.Hello.TYPE)]
    assert [type(r) for r in replies if not isinstance(r, p.Error)] == [p.Pong]
    for client in (short, long):
        assert client.conn.session is not None and client.conn.session.last_input_seq == 3
        assert client.conn.splitter.split_frames == 1 + len(FRAMES)  # the Hello's, then each
        assert client.srv._frames_in == 1 + len(FRAMES)
        assert client.srv._bytes_in == len(HELLO) + sum(map(len, FRAMES))


async def test_bad_inputs_on_the_short_path_count_to_the_close(connect):
    short, long = await connect(), await connect()
    frame = client_frame(bad_input(move_y=-2.0))
    for _ in range(10):  # the bad frames' burst: each answered, the connection kept
        short.read(frame)
        long.read(*cut(frame))
    assert short.conn.state is LinkState.JOINED
    assert [r.code for r in short.replies()] == ["bad_field"] * 10
    short.read(frame)
    long.read(*cut(frame))
    assert short.long_reads == 0
    for client in (short, long):
        assert client.conn.state is LinkState.CLOSING and client.conn.close_request[0] is p.ErrorCode.FLOOD
    frames = short.frames()
    assert frames == long.frames()[-len(frames):]
    assert [p.decode_server(payload).code for opcode, payload in frames if opcode == 0x2] == ["bad_field", "flood"]
    assert frames[-1][0] == 0x8  # the close frame, as the long path writes it


async def test_the_frame_limits_hold_on_the_short_path(connect):
    short, long = await connect(), await connect()
    for i in range(130):  # over frame_burst: dropped, said once; then over flood_burst: closed
        frame = client_frame(p.encode(p.Input(i + 1, 0.0, 0.0, 0.0, False)))
        short.read(frame)
        long.read(*cut(frame))
    assert short.long_reads == 0
    assert short.replies() == long.replies() == [
        p.Error("rate_limited", "too many frames; some were dropped", 0)]
    assert short.conn.session.last_input_seq == long.conn.session.last_input_seq == 119  # the burst, less the hello
    for _ in range(300):
        short.read(client_frame(p.encode(p.Ping(1.0))))
    assert short.conn.close_request[0] is p.ErrorCode.FLOOD


async def test_frames_cut_anyhow_are_each_handled_once_in_order(connect):
    client = await connect()
    one, two, ping = (client_frame(p.encode(m)) for m in (p.Input(1, 1.0, 0.0, 0.0, False, 4),
                                                          p.Input(2, 0.0, 1.0, 0.0, False, 4), p.Ping(7.0)))
    client.read(one[:1], one[1:6], one[6:])  # split across three reads
    assert client.conn.session.last_input_seq == 1
    client.read(two + ping)  # two frames in one read: the long path, both
    client.read(ping[:-1], ping[-1:] + client_frame(p.encode(p.Input(3, 0.0, 0.0, 0.0, False))))
    assert client.long_reads == 6
    assert client.conn.session.last_input_seq == 3
    assert [type(r) for r in client.replies()] == [p.Pong, p.Pong]
    client.read(client_frame(p.encode(p.Input(4, 0.0, 0.0, 0.0, False))))  # one frame again: short
    assert client.long_reads == 6 and client.conn.session.last_input_seq == 4


async def test_once_the_server_closes_an_input_read_whole_is_the_protocols(connect):
    """A keepalive failure closes the WebSocket with the link still joined: what the client
    sends after it goes to websockets' parser (which drops it), not to the simulation."""
    client = await connect()
    client.conn.fail(1011, "keepalive ping timeout")
    assert client.conn.state is LinkState.JOINED and client.frames()[-1][0] == 0x8
    client.read(client_frame(p.encode(p.Input(1, 1.0, 0.0, 0.0, False))))
    assert client.long_reads == 1 and client.conn.session.last_input_seq == 0  # as the Hello left it
    assert client.srv._frames_in == 1  # the Hello's alone


async def test_a_text_frame_read_whole_is_the_protocols_and_refused(connect):
    client = await connect()
    client.read(client_frame(b"hello", opcode=0x1))
    assert client.long_reads == 1
    assert [(r.code, r.ref) for r in client.replies()] == [("bad_frame", 0)]
