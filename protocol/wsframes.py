"""The expo's small binary frames split off a WebSocket byte stream ahead of websockets' parser.

websockets' sans-I/O parser costs about 4.7 us a frame (a generator step and a Frame per
frame); almost every frame of the expo is a final binary frame (from a client an Input of
under 126 bytes, from the server a tick's message of a few hundred), which takes 1-2 us to
cut out by hand. ``FrameSplitter`` takes exactly those (RFC 6455 5.2: FIN set, no reserved
bits, opcode 2, a 7- or 16-bit length up to ``max_split``, masked if and only if it comes
from a client, not inside a fragmented message) and feeds
every other frame's bytes to the protocol's ``receive_data`` in order, starting at a frame
boundary. So the protocol object sees a stream of whole frames, only fewer of them: it
answers pings and closes, checks fragments, sizes and masking and fails on bad frames as
it did. Once the protocol is no longer open (a close, a failure) every later byte is its.

It starts in the handshake: until the end of the HTTP head (the first empty line) the
protocol is fed the bytes up to it and no further, so its parser holds nothing when
splitting starts; if the handshake did not open the WebSocket, everything is the protocol's.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

_FIN_BINARY = 0x82
_MASKED = 0x80
_SHORT = 126  # lengths below this fit in the second byte
_MAX_HEADER = 14  # 2 + 8 (64-bit length) + 4 (mask)
_MAX_SPLIT = 65535  # the largest 16-bit length
_END_OF_HEAD = b"\r\n\r\n"


class Mode(Enum):
    HEAD = "head"  # the HTTP handshake: the protocol is fed up to the empty line
    SPLIT = "split"
    PASS = "pass"  # everything to the protocol


def unmask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 5.3: each byte XOR the mask's byte at its offset modulo 4 (as one integer)."""
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class FrameSplitter:
    """One connection's incoming bytes: ``deliver`` gets each small final binary frame's
    payload, ``feed`` (the protocol's ``receive_data`` and its events) the bytes of the rest.

    ``masked``: the peer is a client, whose frames must be masked; ``is_open``: the
    protocol's state is OPEN. ``max_split``: the largest payload taken (the server's 125
    keeps every larger frame under the protocol's size limit; a client, with no limit, takes
    up to 65,535). Holds at most one frame's start (under ``max_split`` + 8 bytes) between
    reads. The protocol's size limit must allow ``max_split`` bytes: frames that small never
    reach it.
    """

    def __init__(self, *, masked: bool, feed: Callable[[bytes], None], deliver: Callable[[bytes], None],
                 is_open: Callable[[], bool], split: bool = True, max_split: int = _SHORT - 1) -> None:
        assert 0 <= max_split <= _MAX_SPLIT
        self.feed, self.deliver, self.is_open = feed, deliver, is_open
        self._max_split = max_split
        self._mask_bit = _MASKED if masked else 0
        self._head = 6 if masked else 2
        self.mode = Mode.HEAD if split else Mode.PASS
        self._tail = b""  # the handshake's last bytes (up to 3): the empty line may straddle reads
        self._pending = b""  # the start of a frame whose end (or header) has not come yet
        self._given = 0  # of it, the bytes the protocol has had (the start of a header of its)
        self._owed = 0  # bytes still to come of a frame the protocol is being fed
        self._fragmented = False  # a fragmented message is under way: its frames are the protocol's
        self.split_frames = 0  # frames delivered without the protocol's parser

    def data(self, data: bytes) -> None:
        if self.mode is Mode.SPLIT:
            self._split(self._pending + data if self._pending else data)
        elif self.mode is Mode.HEAD:
            self._handshake(data)
        else:
            self.feed(data)

    def whole(self, data: bytes) -> bytes | None:
        """The payload if ``data`` is exactly one frame this splitter takes, nothing of an
        earlier frame is held and the protocol is open (then it is counted as split, as
        ``data`` would have; the caller delivers it); else None and nothing changed: give
        ``data`` to ``data``. The usual read (one Input) without ``_split``'s loop."""
        n = len(data) - self._head
        if (self.mode is not Mode.SPLIT or self._pending or self._owed or self._fragmented
                or not 0 <= n < _SHORT or n > self._max_split
                or data[0] != _FIN_BINARY or data[1] != self._mask_bit | n or not self.is_open()):
            return None
        self.split_frames += 1
        return unmask(data[6:], data[2:6]) if self._mask_bit else data[2:]

    def eof(self) -> None:
        """The peer sent EOF: what was held of a frame goes to the protocol, as it would have."""
        if len(self._pending) > self._given:
            self.feed(self._pending[self._given:])
        self._pending, self._given, self.mode = b"", 0, Mode.PASS

    def _handshake(self, data: bytes) -> None:
        seen = self._tail + data
        end = seen.find(_END_OF_HEAD)
        if end < 0:
            self._tail = seen[-3:]
            self.feed(data)
            return
        cut = end + len(_END_OF_HEAD) - len(self._tail)  # where the head ends in ``data``
        self.feed(data[:cut])
        self.mode = Mode.SPLIT if self.is_open() else Mode.PASS
        if cut < len(data):
            self.data(data[cut:])

    def _split(self, buf: bytes) -> None:
        self._pending = b""
        pos, end = 0, len(buf)
        if not self.is_open():  # closed from our side since the last read
            self.mode = Mode.PASS
            self.feed(buf[self._given:])
            self._given = 0
            return
        while pos < end:
            if self._owed:  # the rest of a frame of the protocol's
                have = min(end, pos + self._owed)
                self.feed(buf[pos:have])
                self._owed -= have - pos
                pos = have
                if not self.is_open():  # a close or a failure: the rest is the protocol's
                    self.mode = Mode.PASS
                    if pos < end:
                        self.feed(buf[pos:])
                    return
                continue
            if end - pos < 2:
                self._pending = buf[pos:]
                return
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            if (b0 == _FIN_BINARY and b1 & _MASKED == self._mask_bit and not self._fragmented
                    and (n < _SHORT or n == _SHORT and self._max_split >= _SHORT)):
                head, length = self._head, n
                if n == _SHORT:  # a 16-bit length
                    if end - pos < 4:
                        self._pending = buf[pos:]
                        return
                    head, length = head + 2, int.from_bytes(buf[pos + 2:pos + 4], "big")
                if length <= self._max_split:
                    stop = pos + head + length
                    if stop > end:
                        self._pending = buf[pos:]
                        return
                    payload = buf[pos + head:stop]
                    self.split_frames += 1
                    self.deliver(unmask(payload, buf[pos + head - 4:pos + head]) if self._mask_bit else payload)
                    pos = stop
                    continue
            header = 2 + (0 if n < _SHORT else 2 if n == _SHORT else 8) + (4 if b1 & _MASKED else 0)
            if end - pos < header:  # where it ends is not known yet
                # the protocol has the bytes now, as it would alone: it refuses a bad frame on its first two
                self.feed(buf[pos + self._given:end])
                if not self.is_open():
                    self.mode, self._given = Mode.PASS, 0
                    return
                self._pending, self._given = buf[pos:], end - pos
                assert len(self._pending) < _MAX_HEADER
                return
            length = n if n < _SHORT else int.from_bytes(buf[pos + 2:pos + (4 if n == _SHORT else 10)], "big")
            opcode = b0 & 0x0F
            if opcode in (0x1, 0x2):  # text or binary: a fragmented message starts unless FIN
                self._fragmented = not b0 & 0x80
            elif opcode == 0x0 and b0 & 0x80:  # the last continuation
                self._fragmented = False
            self._owed = header + length - self._given  # from the byte the protocol has not had
            pos += self._given
            self._given = 0
