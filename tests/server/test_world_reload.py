"""Exhibitors edit world files while the expo runs: valid edits reach every client, broken
ones are reported and change nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil

import pytest
from support import small_expo
from websockets.asyncio.client import connect

import protocol as p
from server.app import ExpoServer
from server.config import ServerConfig
from world import default_expo_path, from_manifest, load_expo
from world.model import Rect, Vec2
from world.motion import AVATAR_RADIUS


def test_reload_sends_the_new_manifest_and_keeps_avatars_out_of_new_walls(harness):
    peer, welcome = harness.join("Aru")
    harness.place(welcome.entity, 40.0, 33.0)  # where the moved booth's back wall will stand
    expo = small_expo()
    moved_booth = dataclasses.replace(expo.booths[0], footprint=Rect(Vec2(40.0, 30.0), 8.0, 6.0), tagline="Now by the aisle")
    harness.sim.reload(dataclasses.replace(expo, booths=(moved_booth,)))
    update = [m for m in peer.take() if isinstance(m, p.ExpoUpdate)][0]
    assert from_manifest(update.manifest).booths[0].tagline == "Now by the aisle"
    slot = harness.sim.sessions[welcome.session_id].slot
    x, y = harness.sim.avatars.pos[slot]
    assert not (33.0 - 0.2 - AVATAR_RADIUS < y < 33.0 + AVATAR_RADIUS and 36 <= x <= 44)  # pushed out of the wall


def test_avatars_in_a_removed_hall_go_to_the_first_hall(harness):
    peer, welcome = harness.join("Aru")
    harness.place(welcome.entity, 20.0, 20.0, hall=1)
    expo = small_expo()
    main = dataclasses.replace(expo.halls[0], portals=())
    harness.sim.reload(dataclasses.replace(expo, halls=(main,)))
    harness.tick()
    snap = [m for m in peer.take() if isinstance(m, p.Snapshot)][-1]
    assert snap.own.hall == 0 and (snap.own.state.x, snap.own.state.y) == (5000, 500)


@pytest.fixture
def expo_copy(tmp_path):
    root = tmp_path / "expo"
    shutil.copytree(default_expo_path(), root)
    return root


async def test_watcher_applies_valid_edits_and_reports_broken_ones(expo_copy, caplog):
    srv = ExpoServer(load_expo(expo_copy), ServerConfig(port=0, world=expo_copy))
    await srv.start()
    srv._watcher.interval = 0.1
    async with connect(f"ws://127.0.0.1:{srv.port}/", compression=None) as ws:
        await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Aru", 0, 0)))
        assert isinstance(p.decode_server(await ws.recv()), p.Welcome)
        booth_file = expo_copy / "booths" / "kz-altai-honey.toml"
        text = booth_file.read_text()
        tagline = next(line for line in text.splitlines() if line.startswith("tagline"))

        async def next_update(timeout: float):
            async with asyncio.timeout(timeout):
                while True:
                    message = p.decode_server(await ws.recv())
                    if isinstance(message, p.ExpoUpdate):
                        return message

        booth_file.write_text(text.replace(tagline, 'tagline = "Fresh from the Altai this morning"'))
        update = await next_update(5)
        booth = next(b for b in from_manifest(update.manifest).booths if b.id == "kz-altai-honey")
        assert booth.tagline == "Fresh from the Altai this morning"

        caplog.set_level(logging.WARNING, logger="expo.world")
        booth_file.write_text(text.replace(tagline, "tagline = 42"))
        with pytest.raises(TimeoutError):
            await next_update(1.0)
        assert any("do not load" in r.getMessage() and "kz-altai-honey.toml" in str(r.problems) for r in caplog.records)
        assert srv.sim.expo.booth("kz-altai-honey").tagline == "Fresh from the Altai this morning"
    await srv.stop()
