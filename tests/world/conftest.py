"""A small valid expo written into tmp_path, which each rule test breaks in one way."""

from __future__ import annotations

from pathlib import Path

import pytest

from world import Problem, check_expo

EXPO = """\
id = "test"
name = "Test Expo"
starts = 2025-09-15
ends = 2025-09-21

[[halls]]
id = "main"
name = "Main Hall"
size = [60, 40]
spawn = [30, 4]
keynote = [30, 34]
theme = { floor = "#d9c7a3", walls = "#7a2e1f", accent = "#d4a017" }

[[halls.portals]]
id = "to-annex"
position = [57, 20]
radius = 2
target_hall = "annex"
target = [5, 10]

[[halls]]
id = "annex"
name = "Annex"
size = [30, 20]
spawn = [15, 3]

[halls.theme]
floor = "#cfe3ea"
walls = "#0e4d64"
accent = "#f2a541"

[[halls.portals]]
id = "to-main"
position = [2, 10]
radius = 1.5
target_hall = "main"
target = [54, 28]
"""

BOOTH = """\
id = "{id}"
exhibitor = "Altai Bee Farms"
country = "KZ"
tagline = "Wildflower honey"
description = "Beekeepers in the Altai."
hall = "main"
position = [{x}, 12]
size = [8, 6]
facing = "south"
primary = "#00afca"
secondary = "#fec50c"
banner = "banners/b.png"
logo = "logos/b.png"
currency = "KZT"

[[staff]]
name = "Aigerim"
role = "Beekeeper"

[[catalogue]]
sku = "HONEY"
name = "Honey, 500 g"
description = "Raw honey."
price = "4500"
stock = 100
max_per_visitor = 5
display = {{ primitive = "cylinder", colour = "#f0a30a", scale = 0.4 }}
image = "products/honey.png"

[[catalogue]]
sku = "COMB"
name = "Honeycomb"
description = "Whole comb."
price = "7800.50"
stock = 20
max_per_visitor = 2
image = "products/honey.png"

[catalogue.display]
primitive = "box"
colour = "#e6b422"
"""

ASSETS = ["banners/b.png", "logos/b.png", "products/honey.png", "flags/kz.png"]


class WorldDir:
    """An expo directory with its own assets; ``edit`` breaks it, ``problem`` finds the report."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "booths").mkdir(parents=True)
        (root / "expo.toml").write_text(EXPO, encoding="utf-8")
        (root / "booths" / "a.toml").write_text(BOOTH.format(id="a", x=14), encoding="utf-8")
        (root / "booths" / "b.toml").write_text(BOOTH.format(id="b", x=26), encoding="utf-8")
        for asset in ASSETS:
            (root / "assets" / asset).parent.mkdir(parents=True, exist_ok=True)
            (root / "assets" / asset).write_bytes(b"")

    def path(self, name: str) -> Path:
        return self.root / name

    def text(self, name: str) -> str:
        return self.path(name).read_text(encoding="utf-8")

    def edit(self, name: str, old: str, new: str, nth: int = 0) -> None:
        """Replaces the ``nth`` occurrence of ``old`` (which must exist) by ``new``."""
        text = self.text(name)
        at = -1
        for _ in range(nth + 1):
            at = text.index(old, at + 1)
        self.path(name).write_text(text[:at] + new + text[at + len(old):], encoding="utf-8")

    def line(self, name: str, snippet: str) -> int:
        """The 1-based number of the one line of ``name`` that contains ``snippet``."""
        hits = [n for n, line in enumerate(self.text(name).splitlines(), 1) if snippet in line]
        assert len(hits) == 1, (snippet, hits)
        return hits[0]

    def problems(self) -> list[Problem]:
        expo, problems = check_expo(self.root)
        assert (expo is None) == bool(problems)
        return problems

    def problem(self, name: str, key: str) -> Problem:
        """The one problem reported for ``key`` of file ``name``."""
        problems = self.problems()
        hits = [p for p in problems if p.file == str(self.root / name) and p.key == key]
        assert len(hits) == 1, "\n".join(map(str, problems))
        return hits[0]


@pytest.fixture
def world(tmp_path: Path) -> WorldDir:
    return WorldDir(tmp_path / "expo")
