"""The codec the protocol had before msgspec, for the client direction: msgpack unpacks the
frame, then a Python validator per field checks each value and a frozen slotted dataclass
holds the message. Kept only as the peer of benchmarks/codec.py, which measured it against
msgspec (the reason for the change) and still compares the two in every run."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import make_dataclass
from typing import Any

import msgpack

from protocol.errors import ErrorCode, ProtocolError
from protocol.limits import (
    MAX_CHAT_LEN,
    MAX_HOLD_TICKS,
    MAX_ID_LEN,
    MAX_INBOUND_FRAME,
    MAX_NAME_LEN,
    MAX_ORDER_QTY,
    MAX_SEQ,
    MAX_TOKEN_LEN,
    MIN_NAME_LEN,
)

Validator = Callable[[Any, str], Any]


def _bad(name: str, why: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_FIELD, f"{name}: {why}")


def integer(lo: int, hi: int) -> Validator:
    def check(value: Any, name: str) -> int:
        if type(value) is not int:
            raise _bad(name, f"expected an integer, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise _bad(name, f"{value} is outside [{lo}, {hi}]")
        return value
    return check


def number(lo: float, hi: float) -> Validator:
    def check(value: Any, name: str) -> float:
        if type(value) not in (int, float):
            raise _bad(name, f"expected a number, got {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value):
            raise _bad(name, "must be finite")
        if not lo <= value <= hi:
            raise _bad(name, f"{value} is outside [{lo}, {hi}]")
        return value
    return check


def boolean(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise _bad(name, f"expected a boolean, got {type(value).__name__}")
    return value


def text(max_len: int, min_len: int = 0, *, strip: bool = False) -> Validator:
    def check(value: Any, name: str) -> str:
        if type(value) is not str:
            raise _bad(name, f"expected a string, got {type(value).__name__}")
        if strip:
            value = value.strip()
        if len(value) > max_len:
            raise _bad(name, f"longer than {max_len} characters")
        if len(value) < min_len:
            raise _bad(name, f"shorter than {min_len} characters")
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in value):
            raise _bad(name, "contains control characters")
        return value
    return check


def optional(inner: Validator) -> Validator:
    return lambda value, name: None if value is None else inner(value, name)


TOKEN, ID, TIME = text(MAX_TOKEN_LEN, 1), text(MAX_ID_LEN, 1), number(0.0, 1e12)
CATALOGUE: dict[int, tuple[str, tuple[tuple[str, Validator], ...]]] = {
    1: ("Hello", (("version", integer(0, 65535)), ("name", text(MAX_NAME_LEN, MIN_NAME_LEN, strip=True)),
                  ("colour", integer(0, 0xFFFFFF)), ("style", integer(0, 255)), ("resume_token", optional(TOKEN)),
                  ("staff_pass", optional(TOKEN)))),
    2: ("Input", (("seq", integer(1, MAX_SEQ)), ("move_x", number(-1.0, 1.0)), ("move_y", number(-1.0, 1.0)),
                  ("yaw", number(-7.0, 7.0)), ("run", boolean), ("ticks", integer(1, MAX_HOLD_TICKS)))),
    3: ("Chat", (("channel", integer(0, 2)), ("text", text(MAX_CHAT_LEN, 1, strip=True)))),
    4: ("Ping", (("client_time", TIME),)),
    5: ("Order", (("booth", ID), ("sku", ID), ("qty", integer(1, MAX_ORDER_QTY)), ("key", TOKEN))),
    6: ("OrderPaid", (("order_id", TOKEN),)),
    7: ("CancelOrder", (("order_id", TOKEN),)),
    8: ("QueryStock", (("booth", ID),)),
    9: ("QueryInventory", ()),
    10: ("Bye", ()),
}
CLASSES = {tag: (make_dataclass(name, [n for n, _ in spec], frozen=True, slots=True), spec)
           for tag, (name, spec) in CATALOGUE.items()}


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(ErrorCode.BAD_FRAME, f"msgpack extension type {code} is not allowed")


def decode_client(data: bytes, max_size: int = MAX_INBOUND_FRAME) -> Any:
    if len(data) > max_size:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"frame of {len(data)} bytes exceeds {max_size}")
    try:
        items = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_refuse_ext, use_list=True)
    except ProtocolError:
        raise
    except msgpack.ExtraData:
        raise ProtocolError(ErrorCode.BAD_FRAME, "trailing bytes after the message") from None
    except (ValueError, TypeError, msgpack.UnpackException, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"not a msgpack message ({type(exc).__name__})") from None
    if type(items) is not list or not items or type(items[0]) is not int:
        raise ProtocolError(ErrorCode.BAD_FRAME, "a message is a non-empty msgpack array [type, ...]")
    found = CLASSES.get(items[0])
    if found is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"no message type {items[0]} in this direction")
    cls, spec = found
    if len(items) - 1 != len(spec):
        raise ProtocolError(ErrorCode.BAD_FIELD, f"{cls.__name__} takes {len(spec)} fields, got {len(items) - 1}")
    return cls(*(check(v, f"{cls.__name__}.{n}") for (n, check), v in zip(spec, items[1:], strict=True)))
