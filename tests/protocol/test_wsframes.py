"""The frame splitter against websockets' own parser: the same byte stream, cut anywhere,
gives the application the same messages in the same order and the peer the same answers."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from protocol.wsframes import FrameSplitter, Mode, unmask

MAX_SIZE = 64 * 1024


def open_client() -> tuple[ClientProtocol, bytes]:
    """A client past its handshake, and the request it sent (the head of the stream)."""
    client = ClientProtocol(parse_uri("ws://127.0.0.1/"))
    client.send_request(client.connect())
    head = b"".join(client.data_to_send())
    scratch = ServerProtocol()
    scratch.receive_data(head)
    scratch.send_response(scratch.accept(scratch.events_received()[0]))
    client.receive_data(b"".join(scratch.data_to_send()))
    assert client.state is State.OPEN
    return client, head


def masked(b0: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    return bytes((b0, 0x80 | len(payload))) + mask + unmask(payload, mask)


def send(sender: ClientProtocol | ServerProtocol, kind: str, arg) -> None:
    """A well-formed op through websockets' own framing (a client masks, a server does not)."""
    if kind == "fragments":
        text, parts = arg
        (sender.send_text if text else sender.send_binary)(parts[0], fin=False)
        for i, part in enumerate(parts[1:], 1):
            sender.send_continuation(part, fin=i == len(parts) - 1)
    elif kind == "close":
        sender.send_close(1000, "bye")
    else:
        {"binary": sender.send_binary, "text": lambda a: sender.send_text(a.encode()),
         "ping": sender.send_ping, "pong": sender.send_pong}[kind](arg)


def stream(ops: list[tuple]) -> tuple[bytes, int]:
    """What a client sends: its handshake, then a frame (or a fragmented message) per op; and
    where the handshake ends (a client waits for the answer before it sends a frame)."""
    client, head = open_client()
    raw: list[bytes] = [head]
    for kind, arg in ops:
        if client.state is not State.OPEN:  # after its close: what a client that goes on would send
            raw.append(masked(0x82, arg[:125]))
        elif kind == "reserved":  # RSV1 set: no extension was negotiated, so a protocol error
            raw.append(b"".join(client.data_to_send()) + masked(0xC2, arg))
            continue
        elif kind == "interleaved":  # a new message inside a fragmented one: a protocol error
            raw.append(b"".join(client.data_to_send()) + masked(0x02, arg) + masked(0x82, arg))
            continue
        elif kind == "unmasked":  # a client's frame must be masked
            raw.append(b"".join(client.data_to_send()) + bytes((0x82, len(arg))) + arg)
            continue
        elif kind == "unmasked head":  # refused on its first two bytes, before its 64-bit length
            raw.append(b"".join(client.data_to_send()) + bytes((0x82, 0x7F)))
            continue
        else:
            send(client, kind, arg)
        raw.append(b"".join(client.data_to_send()))
    return b"".join(raw), len(head)


class Side:
    """A protocol and the splitter in front of it (or not), as a connection drives them."""

    protocol: ServerProtocol | ClientProtocol
    splitter: FrameSplitter

    def __init__(self) -> None:
        self.messages: list[tuple[int, bool, bytes]] = []
        self.answers: list[bytes] = []

    def handle_events(self) -> None:
        self.messages += [(e.opcode.value, e.fin, bytes(e.data)) for e in self.protocol.events_received()
                          if isinstance(e, Frame)]

    def feed(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self.handle_events()

    def deliver(self, payload: bytes) -> None:
        self.messages.append((Opcode.BINARY.value, True, payload))

    whole = False  # try FrameSplitter.whole on each read first, as the server's connection does

    def receive(self, chunks: list[bytes], eof: bool) -> None:
        for chunk in chunks:
            payload = self.splitter.whole(chunk) if self.whole else None
            if payload is not None:
                state = self.protocol.state
                self.deliver(payload)
                assert self.protocol.data_to_send() == [] and self.protocol.state is state  # fed nothing
                continue
            self.splitter.data(chunk)
            self.answers.extend(self.protocol.data_to_send())
        if eof:
            self.splitter.eof()
            self.protocol.receive_eof()
            self.handle_events()
            self.answers.extend(self.protocol.data_to_send())


class Server(Side):
    """A ServerProtocol as the expo's connection drives it, with or without the splitter."""

    def __init__(self, split: bool, whole: bool = False) -> None:
        super().__init__()
        self.whole = whole
        self.protocol: ServerProtocol = ServerProtocol(max_size=MAX_SIZE)
        self.splitter = FrameSplitter(masked=True, feed=self.feed, deliver=self.deliver,
                                      is_open=lambda: self.protocol.state is State.OPEN, split=split)

    def handle_events(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, Request):
                self.protocol.send_response(self.protocol.accept(event))
                self.protocol.data_to_send()  # the 101 (its Date header may differ between runs)
            elif isinstance(event, Frame):
                self.messages.append((event.opcode.value, event.fin, bytes(event.data)))


def cut(data: bytes, head: int, points: list[int]) -> list[bytes]:
    edges = sorted({0, head, len(data), *(p % (len(data) + 1) for p in points if p % (len(data) + 1) > head)})
    return [data[a:b] for a, b in zip(edges, edges[1:])]


small = st.binary(max_size=140)
ops = st.lists(st.one_of(
    st.tuples(st.just("binary"), small),
    st.tuples(st.just("binary"), st.binary(min_size=126, max_size=400)),
    st.tuples(st.just("text"), st.text(max_size=60)),
    st.tuples(st.just("ping"), st.binary(max_size=20)),
    st.tuples(st.just("pong"), st.binary(max_size=20)),
    st.tuples(st.just("fragments"), st.tuples(st.booleans(), st.lists(st.binary(max_size=40), min_size=2, max_size=4))),
), max_size=25)
endings = st.sampled_from([[], [("close", None)], [("reserved", b"x")], [("unmasked", b"y")], [("interleaved", b"z")],
                           [("binary", bytes(MAX_SIZE + 1))], [("unmasked head", None)]])


@settings(max_examples=300, deadline=None)
@given(ops=ops, ending=endings, points=st.lists(st.integers(min_value=0), max_size=12), eof=st.booleans(),
       tail=st.lists(st.tuples(st.just("binary"), small), max_size=3))
def test_the_splitter_gives_what_websockets_alone_gives(ops, ending, points, eof, tail):
    data, head = stream(ops + ending + tail)
    chunks = cut(data, head, points)
    alone, split = Server(split=False), Server(split=True)
    alone.receive(chunks, eof)
    split.receive(chunks, eof)
    assert split.messages == alone.messages
    assert b"".join(split.answers) == b"".join(alone.answers)  # pongs, close frames
    assert split.protocol.state is alone.protocol.state
    assert split.protocol.close_rcvd == alone.protocol.close_rcvd and split.protocol.close_sent == alone.protocol.close_sent


def frame_edges(data: bytes, head: int) -> list[int]:
    """Where each frame of a client's stream (after its handshake) starts, and where the
    stream ends: reads cut there are each exactly one frame."""
    edges, at = [head], head
    while len(data) - at >= 2:
        n, header = data[at + 1] & 0x7F, 2 + (4 if data[at + 1] & 0x80 else 0)
        if n >= 126:
            width = 2 if n == 126 else 8
            if len(data) - at < header + width:
                break
            n, header = int.from_bytes(data[at + 2:at + 2 + width], "big"), header + width
        at += header + n
        edges.append(min(at, len(data)))
    return [*edges, len(data)]


@settings(max_examples=300, deadline=None)
@given(ops=ops, ending=endings, points=st.lists(st.integers(min_value=0), max_size=6), eof=st.booleans(),
       tail=st.lists(st.tuples(st.just("binary"), small), max_size=3))
def test_reads_of_one_frame_each_give_what_websockets_alone_gives(ops, ending, points, eof, tail):
    """FrameSplitter.whole, tried first on each read, on reads that are mostly one frame each
    (a few cut elsewhere): the messages, answers and states of the protocol alone."""
    data, head = stream(ops + ending + tail)
    chunks = cut(data, head, frame_edges(data, head) + points)
    alone, split = Server(split=False), Server(split=True, whole=True)
    alone.receive(chunks, eof)
    split.receive(chunks, eof)
    assert split.messages == alone.messages
    assert b"".join(split.answers) == b"".join(alone.answers)
    assert split.protocol.state is alone.protocol.state
    assert split.protocol.close_rcvd == alone.protocol.close_rcvd and split.protocol.close_sent == alone.protocol.close_sent


def test_whole_takes_a_read_of_exactly_one_small_final_binary_frame():
    server = Server(split=True)
    data, head = stream([])
    server.splitter.data(data[:head])
    frame = masked(0x82, b"input")
    assert server.splitter.whole(frame) == b"input" and server.splitter.split_frames == 1
    for read in (frame + frame, frame[:-1], masked(0x81, b"text"), masked(0x02, b"part"), bytes((0x82, 5)) + b"input",
                 masked(0x89, b"ping")):  # two frames, a part, text, not final, unmasked, a ping
        assert server.splitter.whole(read) is None
    server.splitter.data(frame[:3])  # a frame's start held: the next read is not one alone
    assert server.splitter.whole(frame[3:]) is None
    assert server.splitter.split_frames == 1 and not server.messages


def test_small_final_binary_frames_skip_the_parser_and_others_do_not():
    server = Server(split=True)
    data, head = stream([("binary", b"in-1"), ("ping", b"p"), ("binary", b"in-2"), ("binary", bytes(300))])
    server.receive([data[:head], data[head:]], eof=False)
    assert server.splitter.split_frames == 2 and server.splitter.mode is Mode.SPLIT
    assert server.messages == [(2, True, b"in-1"), (9, True, b"p"), (2, True, b"in-2"), (2, True, bytes(300))]
    assert server.answers and server.answers[0][0] == 0x8A  # the pong, from the protocol


def test_after_a_bad_frame_every_byte_is_the_protocols():
    server = Server(split=True)
    data, head = stream([("binary", b"ok"), ("unmasked", b"bad"), ("binary", b"late")])
    server.receive([data[:head], data[head:]], eof=False)
    assert server.protocol.state is State.CLOSING and server.protocol.close_sent.code == 1002
    assert server.splitter.mode is Mode.PASS and [m[2] for m in server.messages] == [b"ok"]


def test_a_bad_header_is_refused_on_its_first_two_bytes_as_by_the_parser_alone():
    server = Server(split=True)
    data, head = stream([("binary", b"ok"), ("unmasked head", None)])  # its length never comes
    server.receive([data[:head], data[head:]], eof=False)
    assert server.protocol.state is State.CLOSING and server.protocol.close_sent.code == 1002
    assert server.splitter.mode is Mode.PASS


def test_a_client_splits_the_servers_16_bit_frames_up_to_its_limit():
    got: list[bytes] = []
    fed: list[bytes] = []
    splitter = FrameSplitter(masked=False, feed=fed.append, deliver=got.append, is_open=lambda: True, max_split=1000)
    frames = [bytes((0x82, 126)) + n.to_bytes(2, "big") + bytes([n % 251]) * n for n in (126, 1000, 1001)]
    splitter.data(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    stream = b"".join(frames)
    for i in range(0, len(stream), 7):  # a header cut in every way
        splitter.data(stream[i:i + 7])
    assert got == [frames[0][4:], frames[1][4:]]
    assert b"".join(fed[1:]) == frames[2]  # over the limit: the protocol's, every byte


def test_a_plain_http_request_is_the_protocols_alone():
    server = Server(split=True)
    server.protocol = ServerProtocol()
    server.splitter.data(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert server.splitter.mode is Mode.PASS  # the answer was not an upgrade (the harness accepts: 426)


def test_unmask_is_rfc_6455s_xor():
    mask = b"\x01\x02\x03\x04"
    assert unmask(b"", mask) == b""
    assert unmask(bytes(6), mask) == b"\x01\x02\x03\x04\x01\x02"
    assert unmask(unmask(b"expo input", mask), mask) == b"expo input"


# ----------------------------------------------------------------- a client reading a server


def server_stream(ops: list[tuple]) -> tuple[ClientProtocol, bytes, int]:
    """A client that sent its request, and what a server sends it: the 101, then a frame (or a
    fragmented message) per op, unmasked as a server's are; and where the 101 ends."""
    client = ClientProtocol(parse_uri("ws://127.0.0.1/"), max_size=None)  # as client.connection's
    client.send_request(client.connect())
    server = ServerProtocol(max_size=None)
    server.receive_data(b"".join(client.data_to_send()))
    server.send_response(server.accept(server.events_received()[0]))
    raw = [b"".join(server.data_to_send())]
    head = len(raw[0])
    for kind, arg in ops:
        before = b"".join(server.data_to_send())
        if server.state is not State.OPEN:  # after its close: what a server that goes on would send
            raw.append(before + bytes((0x82, len(arg[:125]))) + arg[:125])
        elif kind == "masked":  # a server's frame must not be masked
            raw.append(before + masked(0x82, arg))
        elif kind == "reserved":
            raw.append(before + bytes((0xC2, len(arg))) + arg)
        elif kind == "interleaved":
            raw.append(before + bytes((0x02, len(arg))) + arg + bytes((0x82, len(arg))) + arg)
        elif kind == "masked head":  # refused on its first two bytes, before its 64-bit length
            raw.append(before + bytes((0x82, 0xFF)))
        else:
            send(server, kind, arg)
        raw.append(b"".join(server.data_to_send()))
    return client, b"".join(raw), head


def client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """A client's frames (masked with random keys, so compared unmasked): first byte, payload."""
    frames, pos = [], 0
    while pos < len(data):
        b0, n = data[pos], data[pos + 1] & 0x7F
        pos += 2
        if n == 126:
            n, pos = int.from_bytes(data[pos:pos + 2], "big"), pos + 2
        elif n == 127:
            n, pos = int.from_bytes(data[pos:pos + 8], "big"), pos + 8
        frames.append((b0, unmask(data[pos + 4:pos + 4 + n], data[pos:pos + 4])))
        pos += 4 + n
    return frames


class Client(Side):
    """A ClientProtocol as client.connection drives it, with or without the splitter."""

    def __init__(self, protocol: ClientProtocol, split: bool) -> None:
        super().__init__()
        self.protocol: ClientProtocol = protocol
        self.splitter = FrameSplitter(masked=False, feed=self.feed, deliver=self.deliver, max_split=65535,
                                      is_open=lambda: self.protocol.state is State.OPEN, split=split)


server_ops = st.lists(st.one_of(
    st.tuples(st.just("binary"), small),
    st.tuples(st.just("binary"), st.binary(min_size=126, max_size=3000)),  # 16-bit lengths: the tick's messages
    st.tuples(st.just("binary"), st.binary(min_size=65536, max_size=65600)),  # 64-bit: the protocol's
    st.tuples(st.just("text"), st.text(max_size=60)),
    st.tuples(st.just("ping"), st.binary(max_size=20)),
    st.tuples(st.just("pong"), st.binary(max_size=20)),
    st.tuples(st.just("fragments"), st.tuples(st.booleans(), st.lists(st.binary(max_size=40), min_size=2, max_size=4))),
), max_size=20)
server_endings = st.sampled_from([[], [("close", None)], [("reserved", b"x")], [("masked", b"y")],
                                  [("interleaved", b"z")], [("masked head", None)]])


@settings(max_examples=200, deadline=None)
@given(ops=server_ops, ending=server_endings, points=st.lists(st.integers(min_value=0), max_size=12),
       eof=st.booleans(), tail=st.lists(st.tuples(st.just("binary"), small), max_size=3))
def test_a_client_splitting_gets_what_websockets_alone_gets(ops, ending, points, eof, tail):
    sides = []
    for split in (False, True):
        protocol, data, head = server_stream(ops + ending + tail)  # each its own handshake (its key)
        side = Client(protocol, split)
        side.receive(cut(data, head, points), eof)
        sides.append(side)
    alone, split_ = sides
    assert split_.messages == alone.messages
    assert client_frames(b"".join(split_.answers)) == client_frames(b"".join(alone.answers))  # pongs, close
    assert split_.protocol.state is alone.protocol.state
    assert split_.protocol.close_rcvd == alone.protocol.close_rcvd
    assert split_.protocol.close_sent == alone.protocol.close_sent
