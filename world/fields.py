"""Typed reading of TOML tables that notes problems instead of raising.

A builder asks a ``Table`` for each key with a converter; a converter turns the raw TOML
value into a model value or raises ``Bad`` with a message the exhibitor can act on. The
table remembers which keys were asked for, so ``finish`` can name every unknown key with
the closest known one ("did you mean 'tagline'?").
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

from . import iso
from .locate import KeyLines, join
from .model import Colour, Vec2
from .problems import Problem

T = TypeVar("T")
E = TypeVar("E", bound=Enum)


class Bad(ValueError):
    """A value the converter cannot accept; the message goes to the exhibitor."""


class FileReport:
    """Collects the problems of one file, each located by its key path."""

    def __init__(self, file: str, lines: KeyLines | None, sink: list[Problem]) -> None:
        self.file = file
        self.lines = lines
        self._sink = sink

    def __call__(self, key: str, message: str) -> None:
        line = self.lines.line(key) if self.lines else None
        self._sink.append(Problem(self.file, key, line, message))

    def syntax(self, line: int, column: int, message: str) -> None:
        """A problem with no key path: the file does not parse."""
        self._sink.append(Problem(self.file, "", line, message, column))


def toml_type(value: object) -> str:
    """The TOML name of a parsed value's type, for 'expected X, got Y' messages."""
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
                       (dt.datetime, "date-time"), (dt.date, "date"), (dt.time, "time"),
                       (list, "array"), (dict, "table")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _expect(value: object, kinds: tuple[type[T], ...], name: str) -> T:
    """The value, typed as one of ``kinds``; a bool is no number unless asked for (TOML keeps them apart)."""
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise Bad(f"expected {name}, got {toml_type(value)} {value!r}")
    return value


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Table:
    def __init__(self, data: dict[str, Any], path: str, report: FileReport) -> None:
        self.data = data
        self.path = path
        self.report = report
        self.broken = False  # some value could not be read, so no model object is built
        self._asked: list[str] = []

    def key(self, key: str | int) -> str:
        return join(self.path, key)

    def problem(self, key: str | int, message: str) -> None:
        self.report(self.key(key), message)

    def get(self, key: str, convert: Callable[[Any], T], default: T | None = None,
            required: bool = True) -> T | None:
        self._asked.append(key)
        if key not in self.data:
            if required:
                self.broken = True
                self.problem(key, "missing required key")
            return default
        try:
            return convert(self.data[key])
        except Bad as bad:
            self.broken = True
            self.problem(key, str(bad))
            return default

    def table(self, key: str) -> Table | None:
        data = self.get(key, _table)
        return None if data is None else Table(data, self.key(key), self.report)

    def tables(self, key: str, required: bool = True) -> list[Table]:
        """The entries of an array of tables (``[[key]]``), each as a ``Table``."""
        rows = self.get(key, _array_of_tables, None, required) or []
        return [Table(row, self.key(key) + f"[{n}]", self.report) for n, row in enumerate(rows)]

    def need(self, value: T | None) -> T | None:
        """Marks this table broken when a nested part could not be built."""
        if value is None:
            self.broken = True
        return value

    def finish(self) -> None:
        """Reports every key that no one asked for."""
        for key in self.data:
            if key not in self._asked:
                self.problem(key, "unknown key" + suggest(key, self._asked))


# -- converters ------------------------------------------------------------------------

def _table(value: object) -> dict[str, Any]:
    return _expect(value, (dict,), "a table")


def _array_of_tables(value: object) -> list[dict[str, Any]]:
    rows: list[Any] = _expect(value, (list,), "an array of tables ([[...]])")
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise Bad(f"entry {n} should be a table, got {toml_type(row)} {row!r}")
    return rows


def text(value: object) -> str:
    string = _expect(value, (str,), "a string")
    if not string.strip():
        raise Bad("must not be empty")
    return string


_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


def ident(value: object) -> str:
    string = text(value)
    if not _ID.fullmatch(string):
        raise Bad(f"{value!r} should use only lower-case letters, digits, '-' and '_'")
    return string


def number(value: object) -> float:
    real = float(_expect(value, (int, float), "a number"))
    if not math.isfinite(real):
        raise Bad(f"must be a finite number, got {value!r}")
    return real


def positive(value: object) -> float:
    real = number(value)
    if real <= 0:
        raise Bad(f"must be greater than 0, got {value!r}")
    return real


def integer(minimum: int, why: str = "") -> Callable[[object], int]:
    def convert(value: object) -> int:
        whole = _expect(value, (int,), "an integer")
        if whole < minimum:
            raise Bad(f"must be at least {minimum}{why}, got {value!r}")
        return whole
    return convert


def date(value: object) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise Bad(f"expected a date such as 2025-09-15 (no quotes), got {toml_type(value)} {value!r}")
    return value


def pair(convert: Callable[[object], float], what: str) -> Callable[[object], tuple[float, float]]:
    def read(value: object) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise Bad(f"expected [{what}], got {toml_type(value)} {value!r}")
        return convert(value[0]), convert(value[1])
    return read


def point(value: object) -> Vec2:
    x, y = pair(number, "x, y")(value)
    return Vec2(x, y)


size = pair(positive, "width, depth")

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def colour(value: object) -> Colour:
    string = _expect(value, (str,), "a colour string such as \"#c0392b\"")
    if not _COLOUR.fullmatch(string):
        raise Bad(f"colour must look like \"#rrggbb\", got {value!r}")
    return Colour.from_hex(string.lower())


def choice(enum: type[E]) -> Callable[[object], E]:
    names = [member.value for member in enum]

    def convert(value: object) -> E:
        string = _expect(value, (str,), "a string")
        if string not in names:
            raise Bad(f"must be one of {', '.join(names)}, got {value!r}{suggest(string, names)}")
        return enum(string)
    return convert


def country(value: object) -> str:
    code = text(value)
    if code not in iso.countries():
        hint = " (use upper case)" if code.upper() in iso.countries() else ""
        raise Bad(f"unknown country {code!r}: expected an ISO 3166-1 alpha-2 code such as 'KZ'{hint}")
    return code


def currency(value: object) -> str:
    code = text(value)
    why = iso.currency_problem(code)
    if why:
        raise Bad(why)
    return code


def price_text(value: object) -> Decimal:
    """A price as written: a decimal string, so it is exact (floats are not)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise Bad(f"write the price as a string, e.g. \"{value}\", so it stays exact")
    try:
        amount = Decimal(text(value).strip())
    except InvalidOperation:
        raise Bad(f"expected a decimal number such as \"12.50\", got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise Bad(f"price must be greater than 0, got {value!r}")
    return amount


def asset(exists: Callable[[str], bool]) -> Callable[[object], str]:
    """An asset path, relative to the assets directory, that must name a file."""
    def convert(value: object) -> str:
        path = text(value)
        if path.startswith(("/", "\\")) or ".." in path.replace("\\", "/").split("/"):
            raise Bad(f"asset paths are relative to the assets directory and stay inside it, got {path!r}")
        if not exists(path):
            raise Bad(f"asset file {path!r} not found in the assets directory")
        return path
    return convert
