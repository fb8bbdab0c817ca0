"""What is wrong with a set of world files, said so an exhibitor can fix it.

Checking never stops at the first problem: every check appends to a list, and the list is
what the CLI prints and what ``WorldError`` carries.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing to fix: where (file, key path, line) and what."""

    file: str  # as the user named it, e.g. "world/expos/silk-road/booths/kz-honey.toml"
    key: str  # key path such as "catalogue[2].price"; "" for the file as a whole
    line: int | None  # 1-based; None when the file has no line for it (a missing key)
    message: str
    column: int | None = None  # only TOML syntax errors know the column

    def __str__(self) -> str:
        """GCC style, ``file:line:col: key: message``, so editors jump to the spot."""
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class WorldError(Exception):
    """Raised by ``load_expo`` with every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        n = len(self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in the world files:\n"
                         + "\n".join(map(str, self.problems)))
