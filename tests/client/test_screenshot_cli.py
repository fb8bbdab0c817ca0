"""``expo-client --screenshot`` as an exhibitor runs it: a booth in the second hall, so the
preview walks through a portal (the hall change once hung the software renderer) and a
crowd gathers there too."""

from __future__ import annotations

import subprocess

import pytest
from panda3d.core import PNMImage
from processes import BIN

pytestmark = pytest.mark.e2e


def test_previews_a_booth_in_the_other_hall_with_a_crowd(tmp_path):
    shot = tmp_path / "nile.png"
    done = subprocess.run(
        [str(BIN / "expo-client"), "--screenshot", str(shot), "--booth", "eg-nile-cotton", "--bots", "3",
         "--size", "640x360"],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "hall maritime, 3 avatars" in done.stdout
    image = PNMImage()
    assert image.read(str(shot)) and (image.getXSize(), image.getYSize()) == (640, 360)
    # the booth's banner fills the top middle: Egypt's exhibitor is in red (#a50d1e-ish), not the
    # hall's grey floor; high's tone mapping (simplepbr) pales it, red still leads by far
    r, g, b = image.getXel(320, 60)
    assert r > 0.45 and r - g > 0.3 and r - b > 0.25, (r, g, b)


@pytest.mark.slow
def test_a_crowd_larger_than_the_per_address_cap_joins_its_own_server(tmp_path):
    """60 bots and the preview share loopback, over the server's default 50 per address:
    the CLI's own server lets them in (it once failed with an empty error)."""
    shot = tmp_path / "crowd.png"
    done = subprocess.run(
        [str(BIN / "expo-client"), "--screenshot", str(shot), "--bots", "60", "--size", "640x360"],
        capture_output=True, text=True, timeout=480,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    avatars = int(done.stdout.split(" avatars")[0].rsplit(" ", 1)[1])
    assert avatars >= 60, done.stdout
