"""Line numbers for key paths, which ``tomllib`` does not give.

``KeyLines`` walks the text of a document that ``tomllib`` has already accepted (so it can
assume valid syntax) and remembers the line where every key, table, array-of-tables entry
and array element starts, under the same key paths the checker reports:
``catalogue[2].display.colour``, ``halls[0].portals[1]``, ``staff[0]``.
A path the file does not contain (a missing key) falls back to its nearest enclosing
table that it does contain, which is where the exhibitor has to add it.
"""

from __future__ import annotations

import bisect
import re
import tomllib

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_LAST_STEP = re.compile(r"(\.[^.\[\]]*|\[\d+\])$")


def join(path: str, key: str | int) -> str:
    """The key path of ``key`` inside ``path``; ints index arrays."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class KeyLines:
    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._lines: dict[str, int] = {}
        self._scan()

    def line(self, path: str) -> int | None:
        """The 1-based line of ``path`` or of its nearest enclosing table in the file."""
        while path:
            if path in self._lines:
                return self._lines[path]
            shorter = _LAST_STEP.sub("", path)
            if shorter == path:
                return None
            path = shorter
        return None

    # -- scanning ---------------------------------------------------------------------

    def _lineno(self, pos: int) -> int:
        return bisect.bisect_right(self._line_starts, pos)

    def _peek(self, n: int = 1) -> str:
        return self._text[self._pos : self._pos + n]

    def _record(self, path: str, pos: int) -> None:
        self._lines.setdefault(path, self._lineno(pos))

    def _skip(self, newlines: bool) -> None:
        """Skip spaces and comments, and newlines too when ``newlines``."""
        text = self._text
        while self._pos < len(text):
            c = text[self._pos]
            if c in " \t" or (newlines and c in "\r\n"):
                self._pos += 1
            elif c == "#":
                end = text.find("\n", self._pos)
                self._pos = len(text) if end < 0 else end
            else:
                return

    def _scan(self) -> None:
        table = ""
        array_lengths: dict[str, int] = {}  # concrete path of an array of tables -> entries
        while True:
            self._skip(newlines=True)
            if self._pos >= len(self._text):
                return
            start = self._pos
            if self._peek(2) == "[[" or self._peek() == "[":
                is_array = self._peek(2) == "[["
                self._pos += 2 if is_array else 1
                parts = self._key()
                self._skip(newlines=False)
                self._pos += 2 if is_array else 1
                table = ""
                for n, part in enumerate(parts):
                    table = join(table, part)
                    last = n == len(parts) - 1
                    if last and is_array:
                        array_lengths[table] = array_lengths.get(table, 0) + 1
                    if table in array_lengths:
                        self._record(table, start)
                        table = join(table, array_lengths[table] - 1)
                    self._record(table, start)
            else:
                path = self._key_and_equals(table, start)
                self._value(path)

    def _key_and_equals(self, table: str, start: int) -> str:
        path = table
        for part in self._key():
            path = join(path, part)
            self._record(path, start)
        self._skip(newlines=False)
        self._pos += 1  # "="
        return path

    def _key(self) -> list[str]:
        parts = []
        while True:
            self._skip(newlines=False)
            c = self._peek()
            if c in "\"'":
                raw_start = self._pos
                self._string()
                parts.append(tomllib.loads("k = " + self._text[raw_start : self._pos])["k"])
            else:
                match = _BARE_KEY.match(self._text, self._pos)
                assert match, "tomllib accepted this document, so a key starts here"
                parts.append(match.group())
                self._pos = match.end()
            self._skip(newlines=False)
            if self._peek() != ".":
                return parts
            self._pos += 1

    def _string(self) -> None:
        text = self._text
        quote = text[self._pos]
        if self._peek(3) == quote * 3:
            self._pos += 3
            while self._peek(3) != quote * 3:
                self._pos += 2 if quote == '"' and text[self._pos] == "\\" else 1
            self._pos += 3
            while self._peek() == quote:  # up to two quotes may end the content
                self._pos += 1
            return
        self._pos += 1
        while text[self._pos] != quote:
            self._pos += 2 if quote == '"' and text[self._pos] == "\\" else 1
        self._pos += 1

    def _value(self, path: str) -> None:
        self._skip(newlines=False)
        c = self._peek()
        if c in "\"'":
            self._string()
        elif c == "[":
            self._pos += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if self._peek() == "]":
                    self._pos += 1
                    return
                self._record(join(path, index), self._pos)
                self._value(join(path, index))
                self._skip(newlines=True)
                if self._peek() == ",":
                    self._pos += 1
                index += 1
        elif c == "{":
            self._pos += 1
            while True:
                self._skip(newlines=False)
                if self._peek() == "}":
                    self._pos += 1
                    return
                if self._peek() == ",":
                    self._pos += 1
                    continue
                self._value(self._key_and_equals(path, self._pos))
        else:  # number, boolean, date or time: ends at a delimiter
            text = self._text
            while self._pos < len(text) and text[self._pos] not in ",]}\r\n#":
                self._pos += 1
