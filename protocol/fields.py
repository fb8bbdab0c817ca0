"""The wire's field types, each declared once: a Python type with its bounds (msgspec's
``Meta``) and, for text, the character rule msgspec has no word for.

A message's field annotation is that field's whole specification: msgspec checks the type
and bounds while it decodes (a bool is no int, an int is a valid float, NaN and infinities
fail every bound), and ``protocol.codec`` applies the ``Text`` rules after, so a bad value
becomes a ProtocolError naming the field, never an exception deeper in the server.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Annotated, TypeAlias

from msgspec import Meta

from .limits import MAX_COORD, MAX_ID_LEN, MAX_NAME_LEN, MAX_TOKEN_LEN, POSITION_SCALE, YAW_STEPS

_REFUSED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn"))


@dataclass(frozen=True, slots=True)
class Text:
    """No control (Cc), format (Cf), surrogate (Cs), private-use (Co) or unassigned (Cn)
    character. With ``strip`` the value is trimmed of spaces first and its length bounds
    are counted after, which is why a trimmed field carries them here and not in ``Meta``
    (msgspec would count the spaces)."""

    strip: bool = False
    min_len: int = 0
    max_len: int = 0

    def check(self, value: str) -> str:
        """The value as the message keeps it; ValueError says what is wrong."""
        if self.strip:
            value = value.strip()
            if len(value) > self.max_len:
                raise ValueError(f"longer than {self.max_len} characters")
            if len(value) < self.min_len:
                raise ValueError(f"shorter than {self.min_len} characters")
        # isprintable() is false for every refused category (and for spaces other than " "),
        # so only text it doubts is looked at character by character
        if not value.isprintable() and any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in value):
            raise ValueError("contains control characters")
        return value


CLEAN = Text()


def stripped(min_len: int, max_len: int) -> Text:
    return Text(True, min_len, max_len)


U8: TypeAlias = Annotated[int, Meta(ge=0, le=255)]
U16: TypeAlias = Annotated[int, Meta(ge=0, le=2**16 - 1)]
U32: TypeAlias = Annotated[int, Meta(ge=0, le=2**32 - 1)]
I32: TypeAlias = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
ENTITY: TypeAlias = Annotated[int, Meta(ge=0, le=2**31 - 1)]
TIME: TypeAlias = Annotated[float, Meta(ge=0.0, le=1e12)]  # seconds
UNIT: TypeAlias = Annotated[float, Meta(ge=-1.0, le=1.0)]
QPOS: TypeAlias = Annotated[int, Meta(ge=0, le=int(MAX_COORD * POSITION_SCALE))]  # a quantised coordinate, cm
YAW_Q: TypeAlias = Annotated[int, Meta(ge=0, le=YAW_STEPS - 1)]
MOTION: TypeAlias = Annotated[int, Meta(ge=0, le=2)]
COLOUR: TypeAlias = Annotated[int, Meta(ge=0, le=0xFFFFFF)]  # 0xRRGGBB
CHANNEL: TypeAlias = Annotated[int, Meta(ge=0, le=2)]
ID: TypeAlias = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LEN), CLEAN]  # booth ids, skus
TOKEN: TypeAlias = Annotated[str, Meta(min_length=1, max_length=MAX_TOKEN_LEN), CLEAN]
NAME: TypeAlias = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_LEN), CLEAN]  # a name as the server sends it
CODE: TypeAlias = Annotated[str, Meta(min_length=1, max_length=32), CLEAN]  # an ErrorCode's value
MESSAGE: TypeAlias = Annotated[str, Meta(max_length=512), CLEAN]  # words for a person
MONEY: TypeAlias = Annotated[str, Meta(min_length=1, max_length=32), CLEAN]  # a decimal string, major units: "12.50"
CURRENCY: TypeAlias = Annotated[str, Meta(min_length=3, max_length=3), CLEAN]  # ISO 4217
