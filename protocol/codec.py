"""Bytes <-> messages. Pure functions: no sockets, no asyncio.

``decode_client`` is what the server runs on every inbound frame: anything that is not
exactly one well-formed client message raises ProtocolError with a code for the reply.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import ErrorCode, ProtocolError
from .limits import MAX_INBOUND_FRAME
from .messages import CLIENT_MESSAGES, SERVER_MESSAGES, Message

_packer_options = {"use_bin_type": True}


def encode(message: Message) -> bytes:
    return msgpack.packb(message.to_wire(), **_packer_options)


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(ErrorCode.BAD_FRAME, f"msgpack extension type {code} is not allowed")


def _unpack(data: bytes, max_size: int) -> list[Any]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(ErrorCode.BAD_FRAME, "frames must be binary, not text")
    if len(data) > max_size:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"frame of {len(data)} bytes exceeds {max_size}")
    try:
        items = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            use_list=True,
        )
    except ProtocolError:
        raise
    except msgpack.ExtraData:
        raise ProtocolError(ErrorCode.BAD_FRAME, "trailing bytes after the message") from None
    except (ValueError, TypeError, msgpack.UnpackException, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"not a msgpack message ({type(exc).__name__})") from None
    if type(items) is not list or not items:
        raise ProtocolError(ErrorCode.BAD_FRAME, "a message is a non-empty msgpack array [type, ...]")
    if type(items[0]) is not int:
        raise ProtocolError(ErrorCode.BAD_FRAME, "the first element must be the integer message type")
    return items


def _decode(data: bytes, table: dict[int, type[Message]], max_size: int) -> Message:
    items = _unpack(data, max_size)
    cls = table.get(items[0])
    if cls is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"no message type {items[0]} in this direction")
    return cls.from_wire(items[1:])


def decode_client(data: bytes, max_size: int = MAX_INBOUND_FRAME) -> Message:
    """Decode and validate one client->server frame."""
    return _decode(data, CLIENT_MESSAGES, max_size)


def decode_server(data: bytes, max_size: int = 64 * 1024 * 1024) -> Message:
    """Decode and validate one server->client frame (welcome frames carry the manifest)."""
    return _decode(data, SERVER_MESSAGES, max_size)


def peek_type(data: bytes) -> int:
    """The message type of a frame that failed to decode, for the error's ``ref`` (0 if unknown)."""
    try:
        first = msgpack.Unpacker(max_buffer_size=len(data) or 1)
        first.feed(data)
        header = first.read_array_header()
        if header:
            value = first.unpack()
            if type(value) is int and 0 <= value <= 255:
                return value
    except Exception:  # noqa: BLE001 - any garbage just has no type
        pass
    return 0
