"""The booth form's TOML writer and checker, without a server."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from console_support import copy_expo

from console import booth_form
from world import default_expo_path, load_expo

BOOTH_FILES = sorted((default_expo_path() / "booths").glob("*.toml"))


@pytest.mark.parametrize("path", BOOTH_FILES, ids=lambda p: p.stem)
def test_every_shipped_booth_file_survives_the_writer_unchanged(path: Path):
    data = tomllib.loads(path.read_text())
    assert tomllib.loads(booth_form.to_toml(data)) == data


def test_an_untouched_form_checks_clean_and_keeps_the_data(tmp_path):
    root = copy_expo(tmp_path)
    booth = load_expo(root).booth("kz-altai-honey")
    original = tomllib.loads((root / booth.source).read_text())
    edit = booth_form.check_edit(root, booth, booth_form.form_values(original))
    assert edit.ok, edit.errors
    assert tomllib.loads(edit.text) == original


def test_removing_a_product_maps_later_errors_to_their_own_rows(tmp_path):
    root = copy_expo(tmp_path)
    booth = load_expo(root).booth("kz-altai-honey")
    form = booth_form.form_values(tomllib.loads((root / booth.source).read_text()))
    form |= {"p0.remove": "1", "p2.price": "12.345"}  # KZT has two decimals
    edit = booth_form.check_edit(root, booth, form)
    assert list(edit.errors) == ["p2.price"] and "at most 2 decimals" in edit.errors["p2.price"]


def test_adding_a_product_writes_a_display_the_checker_accepts(tmp_path):
    root = copy_expo(tmp_path)
    booth = load_expo(root).booth("kz-altai-honey")
    edit = booth_form.check_edit(root, booth, {"new.sku": "KZ-WAX-100", "new.name": "Beeswax candle",
                                               "new.description": "Hand-dipped.", "new.price": "1500",
                                               "new.stock": "20", "new.max_per_visitor": "4"})
    assert edit.ok, edit.errors
    booth_form.save(root, booth, edit.text)
    product = load_expo(root).booth("kz-altai-honey").product("KZ-WAX-100")
    assert (product.name, product.stock, product.limit_per_visitor) == ("Beeswax candle", 20, 4)
    assert not list((root / "booths").glob(".console-*"))  # no temporary file left behind
