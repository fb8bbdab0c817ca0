"""The committed images are exactly what scripts/make_assets.py draws from the world files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from world import assets_root, font_file

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_assets.py"


@pytest.mark.skipif(font_file(bold=True) is None, reason="DejaVu Sans Bold draws the banner text")
def test_make_assets_reproduces_the_committed_files(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_assets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path)]) == 0
    made = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*.png")}
    committed = {p.relative_to(assets_root()).as_posix(): p.read_bytes() for p in assets_root().rglob("*.png")}
    assert made.keys() == committed.keys()
    assert [name for name in made if made[name] != committed[name]] == []
