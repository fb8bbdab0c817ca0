"""An exhibitor's booth form <-> its TOML world file, checked exactly as `expo-world check` does.

The form edits what an exhibitor owns (tagline, description, each product's name,
description, price, stock and limit; products added and removed); everything else in the
file (place, size, colours, staff, displays) is carried over as it is. The new text is
checked with the whole expo by ``world.check_files`` (the checker behind `expo-world check`),
so an edit that breaks the expo (a duplicate sku, a price with too many decimals for the
currency) is refused with every problem next to its field, and the file is not touched.
Input is written as typed: "12x" as a stock goes into the check as a string, and the
checker says what a stock must be.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from world import Problem, check_files
from world.assets import assets_root
from world.loader import BOOTHS_DIR, EXPO_FILE
from world.model import Booth

PRODUCT_FIELDS = ("sku", "name", "description", "price", "stock", "max_per_visitor")
NEW = "new"  # the form row for a product being added
_INTEGER = re.compile(r"[+-]?\d{1,12}")


@dataclass(frozen=True, slots=True)
class Edit:
    """A checked edit: the new file text, or the problems keyed by form field name."""

    text: str
    errors: dict[str, str]  # form field name -> message; "" for problems of no one field
    values: dict[str, str]  # what the form showed, to redisplay it as typed

    @property
    def ok(self) -> bool:
        return not self.errors


def form_values(data: Mapping[str, Any]) -> dict[str, str]:
    """The form's fields from a booth file's table: ``tagline``, ``p0.price``, ..."""
    values = {"tagline": str(data.get("tagline", "")), "description": str(data.get("description", ""))}
    for i, row in enumerate(data.get("catalogue", [])):
        for name in PRODUCT_FIELDS:
            values[f"p{i}.{name}"] = "" if row.get(name) is None else str(row.get(name))
    return values


def _typed(text: str) -> Any:
    text = text.strip()
    return int(text) if _INTEGER.fullmatch(text) else text


def apply_form(data: dict[str, Any], form: Mapping[str, str], primary: str) -> tuple[dict[str, Any], list[str]]:
    """The booth table with the form applied, and which form row each catalogue entry came
    from (the checker names entries by their index in the new file)."""
    out = dict(data)
    for key in ("tagline", "description"):
        if key in form:
            out[key] = form[key].strip()
    rows, origin = [], []
    for i, row in enumerate(data.get("catalogue", [])):
        if form.get(f"p{i}.remove"):
            continue
        row = dict(row)
        for name in PRODUCT_FIELDS:
            key = f"p{i}.{name}"
            if key in form:
                row[name] = _typed(form[key]) if name in ("stock", "max_per_visitor") else form[key].strip()
        rows.append(row)
        origin.append(f"p{i}")
    if form.get(f"{NEW}.sku", "").strip():
        row = {name: form.get(f"{NEW}.{name}", "").strip() for name in ("sku", "name", "description", "price")}
        row["stock"] = _typed(form.get(f"{NEW}.stock", ""))
        row["max_per_visitor"] = _typed(form.get(f"{NEW}.max_per_visitor", ""))
        row["display"] = {"primitive": "box", "colour": primary, "scale": 0.4}
        rows.append(row)
        origin.append(NEW)
    out["catalogue"] = rows
    return out, origin


# -- TOML out --------------------------------------------------------------------------

def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def to_toml(data: Mapping[str, Any], header: str = "") -> str:
    """A booth table as TOML: plain keys first, then tables, then arrays of tables (each
    entry's own tables inline). ``header`` is the file's leading comment, kept."""
    plain = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_tables(v)}
    lines = [header.rstrip("\n")] if header.strip() else []
    lines += [f"{_key(k)} = {_value(v)}" for k, v in plain.items()]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{_key(k)}]", *(f"{_key(kk)} = {_value(vv)}" for kk, vv in v.items())]
    for k, v in data.items():
        if _is_tables(v):
            for row in v:
                lines += ["", f"[[{_key(k)}]]", *(f"{_key(kk)} = {_value(vv)}" for kk, vv in row.items())]
    return "\n".join(lines) + "\n"


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


# -- checking and saving ---------------------------------------------------------------

def booth_file(root: Path, booth: Booth) -> Path:
    path = (root / booth.source).resolve()
    assert path.is_relative_to((root / BOOTHS_DIR).resolve()), path  # the manifest names files under booths/
    return path


class Unreadable(Exception):
    """The booth's file does not load (edited by hand, removed): the form cannot stand on it."""


def load(root: Path, booth: Booth) -> tuple[str, dict[str, Any]]:
    """The booth file's text and its TOML data; Unreadable says what is wrong with it."""
    path = booth_file(root, booth)
    try:
        original = path.read_text(encoding="utf-8")
        return original, tomllib.loads(original)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise Unreadable(f"{booth.source} does not load ({exc}): fix the file itself; visitors see the booth "
                         "as it was when the file last loaded") from None


def check_edit(root: Path, booth: Booth, form: Mapping[str, str]) -> Edit:
    """Apply the form to the booth's file and check the whole expo with it."""
    original, data = load(root, booth)
    new, origin = apply_form(data, form, booth.primary.hex)
    text = to_toml(new, _header(original))
    values = {**form_values(data), **{k: v for k, v in form.items() if k != "csrf"}}
    problems = _check(root, booth.source, text.encode())
    errors: dict[str, str] = {}
    for problem in problems:
        name = _field_of(problem, booth.source, origin) if problem.file.endswith(booth.source) else ""
        errors[name] = f"{errors[name]}; {problem.message}" if name in errors else problem.message
    return Edit(text, errors, values)


def _check(root: Path, source: str, text: bytes) -> list[Problem]:
    expo_file = root / EXPO_FILE
    booths = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / BOOTHS_DIR).rglob("*.toml"))}
    booths[source] = text
    assets = assets_root(root)
    _, problems = check_files(root, expo_file.read_bytes() if expo_file.is_file() else None, booths,
                              lambda a: (assets / a).is_file())
    return problems


def _field_of(problem: Problem, source: str, origin: list[str]) -> str:
    """The form field a problem belongs to: ``catalogue[2].price`` -> ``p3.price`` when the
    third entry of the new file came from the form's fourth row."""
    key = problem.key
    if key in ("tagline", "description"):
        return key
    match = re.fullmatch(r"catalogue\[(\d+)\](?:\.([a-z_]+))?.*", key)
    if match and int(match[1]) < len(origin):
        row = origin[int(match[1])]
        name = match[2] if match[2] in PRODUCT_FIELDS else "sku"
        return f"{row}.{name}"
    return ""


def save(root: Path, booth: Booth, text: str) -> None:
    """Replace the booth's file in one rename: the watcher never reads half a file."""
    path = booth_file(root, booth)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".console-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
