"""Random edits to the default expo's files only ever produce Problems, never a crash."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from world import assets_root, check_files, default_expo_path

ROOT = default_expo_path()
FILES = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in sorted(ROOT.rglob("*.toml"))}
ASSETS = {p.relative_to(assets_root()).as_posix() for p in assets_root().rglob("*") if p.is_file()}

toml_values = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats().map(repr),
    st.sampled_from(["nan", "inf", "-inf", "true", "false", "2025-09-15", "2025-09-15T10:00:00",
                     "10:00:00", "[]", "[1, 2]", "[[1], 2]", '["a", 1]', "{}", '{ a = 1 }', '""',
                     '"#ffzz00"', '"0"', '"-1.5"', '"1e3"', '"  "', '"KZT"', '"south"']),
    st.text(max_size=12).map(lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'),
)
junk = st.text(alphabet=st.sampled_from('[]{}=",.#\'\n abc1_-'), max_size=20)


@st.composite
def edits(draw):
    name = draw(st.sampled_from(sorted(FILES)))
    lines = FILES[name].split("\n")
    n = draw(st.integers(0, len(lines) - 1))
    action = draw(st.sampled_from(["value", "delete", "junk", "duplicate", "rename"]))
    if action == "value" and "=" in lines[n]:
        lines[n] = lines[n].split("=")[0] + "= " + draw(toml_values)
    elif action == "delete":
        del lines[n]
    elif action == "junk":
        at = draw(st.integers(0, len(lines[n])))
        lines[n] = lines[n][:at] + draw(junk) + lines[n][at:]
    elif action == "duplicate":
        lines.insert(n, lines[n])
    elif action == "rename" and "=" in lines[n]:
        lines[n] = draw(st.sampled_from(["id", "colour", "zz", "catalogue", "halls"])) + " =" + lines[n].split("=", 1)[1]
    return name, "\n".join(lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edits(), min_size=1, max_size=4))
def test_random_edits_never_crash_the_loader(changes):
    files = dict(FILES)
    for name, text in changes:
        files[name] = text
    booths = {k: v.encode() for k, v in files.items() if k.startswith("booths/")}
    expo, problems = check_files(Path("x"), files["expo.toml"].encode(), booths, ASSETS.__contains__)
    assert (expo is None) == bool(problems)
    for problem in problems:
        name = Path(problem.file).relative_to("x").as_posix()
        assert name in files
        assert problem.line is None or 1 <= problem.line <= files[name].count("\n") + 1
        assert problem.message
