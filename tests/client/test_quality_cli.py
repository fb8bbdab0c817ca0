"""``--quality auto`` (the default) picks what this machine can draw: on Mesa's software
renderer "high" (physically based light with shadows) runs at a few frames a second."""

from __future__ import annotations

import subprocess

from processes import BIN

from client.cli import resolved_quality


def test_auto_is_low_where_opengl_is_drawn_in_software_and_high_elsewhere() -> None:
    assert resolved_quality("auto", {"LIBGL_ALWAYS_SOFTWARE": "1"}, "win32") == "low"
    assert resolved_quality("auto", {"GALLIUM_DRIVER": "llvmpipe"}, "darwin") == "low"
    assert resolved_quality("auto", {}, "win32") == "high"
    assert resolved_quality("high", {"LIBGL_ALWAYS_SOFTWARE": "1"}) == "high"  # asked for: given
    assert resolved_quality("low", {}, "win32") == "low"


def test_help_names_the_three_choices_and_what_auto_does() -> None:
    out = subprocess.run([str(BIN / "expo-client"), "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "{auto,low,high}" in out and "auto: low on a software renderer" in " ".join(out.split())
