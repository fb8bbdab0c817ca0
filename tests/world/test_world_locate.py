"""Key paths -> line numbers, for the shapes of TOML an exhibitor may write."""

from __future__ import annotations

import tomllib

import pytest

from world.locate import KeyLines

DOC = '''\
id = "x"   # a comment with key = "value"
description = """
fake = 1
[[catalogue]]
"""
size = [
  8,  # width
  6,
]
staff = [ { name = "A", role = "B" },
  { name = "C", role = "D" } ]
"quoted.key" = 3
a.b.c = 1
'literal' = "x # not a comment"
[[catalogue]]
sku = 'A'
display = { primitive = "box", colour = "#ffffff" }
[[catalogue]]
sku = "B"
[catalogue.display]
colour = "#000000"
[[halls]]
id = 1
[[halls.portals]]
x = 1
[[halls.portals]]
x = 2
[halls.theme]
floor = 1
[[halls]]
[[halls.portals]]
x = 3
'''


@pytest.mark.parametrize("path, line", [
    ("id", 1), ("description", 2), ("size", 6), ("size[1]", 8), ("staff[0]", 10),
    ("staff[1]", 11), ("staff[1].role", 11), ("quoted.key", 12), ("a.b.c", 13), ("a", 13),
    ("literal", 14), ("catalogue", 15), ("catalogue[0]", 15), ("catalogue[0].sku", 16),
    ("catalogue[0].display.colour", 17), ("catalogue[1]", 18), ("catalogue[1].display", 20),
    ("catalogue[1].display.colour", 21), ("halls[0].portals[1].x", 27), ("halls[0].theme.floor", 29),
    ("halls[1]", 30), ("halls[1].portals[0].x", 32),
])
def test_lines_of_key_paths(path, line):
    tomllib.loads(DOC)  # the locator only sees documents tomllib accepted
    assert KeyLines(DOC).line(path) == line


@pytest.mark.parametrize("path, line", [
    ("catalogue[1].price", 18),  # a missing key: the header of its table
    ("catalogue[0].display.scale", 17),  # missing inside an inline table: the table's line
    ("halls[1].portals[0].target.x", 31),
    ("fake", None),  # text inside a multi-line string is not a key
    ("nothing", None),
    ("catalogue[5].sku", 15),
])
def test_missing_paths_fall_back_to_the_nearest_table(path, line):
    assert KeyLines(DOC).line(path) == line


def test_crlf_line_endings_and_escaped_quotes():
    doc = 'a = "say \\"b = 1\\""\r\nb = 2\r\n[t]\r\nc = """x\\"""\r\n"""\r\nd = 4\r\n'
    assert tomllib.loads(doc)["t"]["d"] == 4
    lines = KeyLines(doc)
    assert [lines.line(p) for p in ("a", "b", "t.c", "t.d")] == [1, 2, 4, 6]


def test_multi_line_string_ending_in_quotes():
    doc = 'a = """x""""\nb = 1\nc = \'\'\'y\'\'\'\'\nd = 2\n'
    assert tomllib.loads(doc)["a"] == 'x"'
    lines = KeyLines(doc)
    assert (lines.line("b"), lines.line("d")) == (2, 4)
