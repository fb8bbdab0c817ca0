"""Field validators: each checks one wire value and returns it in its model form.

Every inbound value passes through one of these, so a bad frame becomes a ProtocolError
with a code and the field's name, never an exception deeper in the server.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from typing import Any

from .errors import ErrorCode, ProtocolError

Validator = Callable[[Any, str], Any]


def _bad(name: str, why: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_FIELD, f"{name}: {why}")


def integer(lo: int, hi: int) -> Validator:
    def check(value: Any, name: str) -> int:
        if type(value) is not int:  # bool is an int subclass; refuse it too
            raise _bad(name, f"expected an integer, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise _bad(name, f"{value} is outside [{lo}, {hi}]")
        return value

    return check


def number(lo: float, hi: float) -> Validator:
    """A finite float (ints accepted) within [lo, hi]."""

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


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text)


def text(max_len: int, min_len: int = 0, *, single_line: bool = True, strip: bool = False) -> Validator:
    """A string of at most max_len characters with no control or unassigned characters."""

    def check(value: Any, name: str) -> str:
        if type(value) is not str:
            raise _bad(name, f"expected a string, got {type(value).__name__}")
        if strip:
            value = value.strip()
        if len(value) > max_len:
            raise _bad(name, f"longer than {max_len} characters")
        if len(value) < min_len:
            raise _bad(name, f"shorter than {min_len} characters")
        if single_line and _has_control(value):
            raise _bad(name, "contains control characters")
        return value

    return check


def optional(inner: Validator) -> Validator:
    def check(value: Any, name: str) -> Any:
        return None if value is None else inner(value, name)

    return check


def sequence(item: Validator, max_items: int) -> Validator:
    def check(value: Any, name: str) -> tuple:
        if type(value) not in (list, tuple):
            raise _bad(name, f"expected an array, got {type(value).__name__}")
        if len(value) > max_items:
            raise _bad(name, f"more than {max_items} items")
        return tuple(item(v, f"{name}[{i}]") for i, v in enumerate(value))

    return check


def mapping(value: Any, name: str) -> dict:
    if type(value) is not dict:
        raise _bad(name, f"expected a map, got {type(value).__name__}")
    return value


def any_value(value: Any, name: str) -> Any:
    return value
