"""Bytes <-> messages. Pure functions: no sockets, no asyncio.

``decode_client`` is what the server runs on every inbound frame: anything that is not
exactly one well-formed client message raises ProtocolError with a code for the reply.
msgspec decodes and checks types and bounds in one pass; this module adds what it cannot
say (an exact field count although Python callers may leave trailing fields to their
defaults, the text rules, no extension types) and turns its errors into our codes, naming
the field.
"""

from __future__ import annotations

import functools
import operator
import re
import types
import typing
from collections.abc import Callable
from typing import Any, NoReturn

import msgpack
import msgspec

from .collectibles import COLLECTIBLES_CLIENT_MESSAGES  # and the collectibles messages
from .deals import DEALS_CLIENT_MESSAGES  # and the deals messages
from .errors import ErrorCode, ProtocolError
from .fields import Text
from .limits import MAX_INBOUND_FRAME, PROTOCOL_VERSION
from .messages import CLIENT_MESSAGES, SERVER_MESSAGES, Hello, Message, Record
from .people import PEOPLE_CLIENT_MESSAGES  # registers the people messages before the tables are read

assert PEOPLE_CLIENT_MESSAGES[0].TYPE in CLIENT_MESSAGES and DEALS_CLIENT_MESSAGES[0].TYPE in CLIENT_MESSAGES
assert COLLECTIBLES_CLIENT_MESSAGES[0].TYPE in CLIENT_MESSAGES

_encoder = msgspec.msgpack.Encoder()


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def _refuse_ext(code: int, data: memoryview) -> NoReturn:
    raise ProtocolError(ErrorCode.BAD_FRAME, f"msgpack extension type {code} is not allowed")


# --------------------------------------------------------------------------- text rules

Check = Callable[[Any, str], Any]  # (value, field name) -> the value to keep


def _checker(hint: Any) -> Check | None:
    """What the Text rules need of a value of this type, or None when nothing: built once
    per message type from its annotations, so a message without text costs nothing."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        rule = next((a for a in args[1:] if isinstance(a, Text)), None)
        inner = _checker(args[0])
        if rule is None:
            return inner

        def text(value: Any, name: str) -> Any:
            try:
                return rule.check(value)
            except ValueError as exc:
                raise ProtocolError(ErrorCode.BAD_FIELD, f"{name}: {exc}") from None

        return text
    if origin in (typing.Union, types.UnionType):
        options = [_checker(a) for a in args if a is not type(None)]
        inner_check = next((c for c in options if c is not None), None)
        if inner_check is None:
            return None
        return lambda value, name: None if value is None else inner_check(value, name)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _checker(args[0])
            return None if item is None else (
                lambda value, name: tuple(item(v, f"{name}[{i}]") for i, v in enumerate(value)))
        items = [_checker(a) for a in args]
        if not any(items):
            return None
        return lambda value, name: tuple(c(v, f"{name}[{i}]") if c else v for i, (c, v) in enumerate(zip(items, value)))
    if isinstance(hint, type) and issubclass(hint, Record):
        return _record_checker(hint)
    return None


def _record_checker(cls: type[Record]) -> Check | None:
    hints = typing.get_type_hints(cls, include_extras=True)
    checks = [(n, c) for n in cls.__struct_fields__ if (c := _checker(hints[n])) is not None]
    if not checks:
        return None

    def check(value: Any, name: str) -> Any:
        for field, field_check in checks:
            old = getattr(value, field)
            new = field_check(old, f"{name}.{field}")
            if new is not old:  # a trimmed text: the message keeps it trimmed
                msgspec.structs.force_setattr(value, field, new)
        return value

    return check


# --------------------------------------------------------------------------- decoding


LATER_FIELDS = {Hello.TYPE: 1}  # message type -> trailing fields added after it was published


class _Direction:
    """One direction's catalogue: a tagged-union decoder and, per type, the field count and
    the text checks."""

    def __init__(self, table: dict[int, type[Message]]) -> None:
        self.table = table
        self.decoder = msgspec.msgpack.Decoder(functools.reduce(operator.or_, table.values()), ext_hook=_refuse_ext)
        # msgspec accepts a shorter array when trailing fields have defaults: the count is ours to check
        self.arity = {tag: len(cls.__struct_fields__) for tag, cls in table.items() if cls.__struct_defaults__}
        # the counts a message may also come with: fields added to it later, which a client
        # written before them leaves out (Hello.transfer, for clusters)
        self.also = {tag: frozenset(range(n - LATER_FIELDS.get(tag, 0), n)) for tag, n in self.arity.items()}
        self.text = {tag: _record_checker(cls) for tag, cls in table.items()}

    def decode(self, data: bytes, max_size: int) -> Message:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ProtocolError(ErrorCode.BAD_FRAME, "frames must be binary, not text")
        if len(data) > max_size:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"frame of {len(data)} bytes exceeds {max_size}")
        if len(data) > 2 and 0x90 <= data[0] <= 0x9F and data[1] == Hello.TYPE:
            _hello_version(data)
        # [type, ...] as a fixarray (every message with defaults has under 15 fields; a longer
        # array of one is refused by msgspec as too long): the count msgspec would let pass
        if len(data) > 1 and 0x90 <= data[0] <= 0x9F and (arity := self.arity.get(data[1])) is not None \
                and data[0] - 0x90 != arity + 1 and data[0] - 0x91 not in self.also[data[1]]:
            raise ProtocolError(ErrorCode.BAD_FIELD, f"{self.table[data[1]].__name__} takes {arity} fields, "
                                f"got {data[0] - 0x91}")
        try:
            message = self.decoder.decode(data)
        except ProtocolError:
            raise
        except msgspec.ValidationError as exc:  # a subclass of DecodeError: first
            tag = data[1] if len(data) > 1 and 0x90 <= data[0] <= 0x9F else None
            raise _validation_error(str(exc), self.table.get(tag) if tag is not None else None) from None
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, ValueError, TypeError) as exc:
            raise ProtocolError(ErrorCode.BAD_FRAME, f"not a msgpack message ({exc})") from None
        check = self.text[message.TYPE]
        if check is not None:
            check(message, type(message).__name__)
        return message


def _hello_version(data: bytes) -> None:
    """A Hello of another version is judged by its version alone: its fields may differ
    from ours, and the client should hear ``version_mismatch``, not ``bad_field``."""
    try:
        items = msgspec.msgpack.decode(data)
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError):
        return  # the real decode says what is wrong
    version = items[1] if isinstance(items, list) and len(items) > 1 else None
    if type(version) is int and version != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.VERSION_MISMATCH, f"server speaks protocol {PROTOCOL_VERSION}, client sent {version}")


_PATH = re.compile(r" - at `\$\[(\d+)\](.*)`$")


def _validation_error(why: str, cls: type[Message] | None) -> ProtocolError:
    """msgspec's words as our code, the field named: ``Input.move_x: Expected `float` <= 1.0``."""
    if why.startswith("Invalid value") and why.endswith("`$[0]`"):
        return ProtocolError(ErrorCode.UNKNOWN_TYPE, f"no message type {why.split()[2]} in this direction")
    if why.endswith("`$[0]`") or why.startswith("Expected `array`, got") or "got `ext`" in why \
            or why == "Expected `array` of at least length 1, got 0":
        return ProtocolError(ErrorCode.BAD_FRAME, f"a message is a msgpack array [type, ...]: {why}")
    at = _PATH.search(why)
    if at is not None and cls is not None and 0 < int(at[1]) <= len(cls.__struct_fields__):
        why = f"{cls.__name__}.{cls.__struct_fields__[int(at[1]) - 1]}{at[2]}: {why[:at.start()]}"
    return ProtocolError(ErrorCode.BAD_FIELD, why)


_CLIENT = _Direction(CLIENT_MESSAGES)
_SERVER = _Direction(SERVER_MESSAGES)


def decode_client(data: bytes, max_size: int = MAX_INBOUND_FRAME) -> Message:
    """Decode and validate one client->server frame."""
    return _CLIENT.decode(data, max_size)


def decode_server(data: bytes, max_size: int = 64 * 1024 * 1024) -> Message:
    """Decode and validate one server->client frame (welcome frames carry the manifest)."""
    return _SERVER.decode(data, max_size)


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
