"""``expo-world``: exit codes and what it prints."""

from __future__ import annotations

import pytest

from world.cli import main


def test_check_the_default_expo(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Silk Road Expo 2027 (silk-road-2027), 2027-05-10 to 2027-05-16\n")
    assert "Silk Road Hall" in out and "120 x 80 m" in out and "Maritime Silk Road Hall" in out
    assert "Kazakhstan (KZ)" in out and "KZT" in out and "no problems" in out
    assert len(out.splitlines()) <= 24  # one screen


def test_check_prints_every_problem_gcc_style_and_exits_1(world, capsys):
    world.edit("booths/a.toml", "stock = 20", "stock = -1")
    world.edit("expo.toml", "ends = 2025-09-21", "ends = 2025-09-01")
    assert main(["check", str(world.root)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{world.root}/expo.toml:4: ends: the expo ends (2025-09-01) before it starts (2025-09-15)",
        f"{world.root}/booths/a.toml:35: catalogue[1].stock: must be at least 0, got -1",
    ]
    assert captured.err == "2 problems in 2 files\n"


def test_list_shows_booths_by_hall(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "kz-altai-honey" in out and "booths/kz-altai-honey.toml" in out


def test_list_of_a_broken_expo_prints_the_problems(tmp_path, capsys):
    assert main(["list", str(tmp_path)]) == 1
    assert "no expo.toml in this directory" in capsys.readouterr().out


def test_help_names_the_default_path(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check", "--help"])
    assert exited.value.code == 0
    assert "silk-road" in capsys.readouterr().out
