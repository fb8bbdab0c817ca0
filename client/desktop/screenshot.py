"""``expo-client --screenshot``: render a hall offscreen and save a PNG, so an exhibitor
previews their booth and tests run without a screen.

Without ``--server`` it starts the expo in-process on a free loopback port. The preview
visitor walks (through a portal if need be) to where the camera stands, optional bots
gather at the booth, and the picture is taken once they are there and drawn.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from server.config import ServerConfig
from world.assets import PROJECT_ASSETS, assets_root
from world.loader import default_expo_path, load_expo

from ..pathfind import entrance
from .app import ExpoApp, Visit
from .crowd import Crowd
from .layout import booth_view, spawn_view
from .local_server import LocalServer
from .nearby import route, spots_near
from .settings import ConnectSettings
from .steering import Autopilot
from .wallet import Wallet


@dataclass(frozen=True, slots=True)
class ShotReport:
    path: Path
    hall: str
    avatars: int  # drawn in the picture's hall
    geoms: int  # of the hall's static scene
    seconds: float


def _wait(app: ExpoApp, until, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        _visit(app)  # still joined, or say why not
        app.step()
        time.sleep(0.005)


def _visit(app: ExpoApp) -> Visit:
    """The joined visit: a preview that lost its connection says why instead of failing later."""
    if app.visit is None:
        raise ConnectionError("the preview could not join: " + app.connect_screen.error.getText())
    return app.visit


def take_screenshot(path: Path, *, booth: str | None = None, bots: int = 0, server: str | None = None,
                    world: Path | None = None, size: tuple[int, int] = (1280, 720), timeout: float = 90.0,
                    quality: str = "high") -> ShotReport:
    started = time.monotonic()
    local = crowd = None
    scratch = tempfile.TemporaryDirectory(prefix="expo-shot-")
    app: ExpoApp | None = None
    try:
        if server is None:
            served = load_expo(world or default_expo_path())
            # every bot and the preview share loopback: its own server lets them all in
            config = ServerConfig(port=0, view_radius=60.0, max_visible=max(64, bots + 8), data_dir=Path(scratch.name),
                                  max_connections_per_address=max(ServerConfig().max_connections_per_address, bots + 8))
            local = LocalServer(served, config)
            server = local.start()
        root = assets_root(world if world is None or world.is_dir() else world.parent) if world else PROJECT_ASSETS
        app = ExpoApp(offscreen=True, size=size, wallet=Wallet(Path(scratch.name) / "wallet.json"), assets_root=root,
                      multisamples=4, quality=quality)
        app.set_max_fps(0)  # a preview renders as fast as it can: nobody waits on keys here
        app.connect(ConnectSettings(server, f"preview-{os.getpid() % 100000}", 0x888888))
        _wait(app, lambda: _visit(app).hall_scene is not None, 20, "the expo")
        visit = _visit(app)
        expo, start = visit.expo, visit.hall_index
        if expo is None or start is None:
            raise ConnectionError("the preview joined, but the server sent no expo")
        here = expo.halls[start].id
        if booth is not None:
            target = expo.booth(booth)
            if target is None:
                raise KeyError(f"no booth {booth!r}; the expo has: {', '.join(b.id for b in expo.booths)}")
            view = booth_view(target, expo)
            hall_id, face = target.hall, (target.footprint.centre.x, target.footprint.centre.y)
            spots = spots_near(target, bots)
            via = entrance(target, 2.0)
        else:
            hall = expo.halls[start]
            view = spawn_view(hall)
            hall_id, face = hall.id, (view.eye[0], view.eye[1])
            spots = [(view.target[0] + dx, view.target[1] + dy) for dx, dy in _fan(bots)]
            via = None
        app.fixed_view = view
        app.hud.hide()  # a preview of the booth, not of the visitor's panels
        own = visit.thread.core.own_pose()
        assert own is not None, "the hall is drawn: the avatar is in it"
        autopilot = app.autopilot = Autopilot.along(route(expo, here, (own.x, own.y), hall_id, (view.eye[0], view.eye[1])))
        if bots:
            crowd = Crowd(server, bots, prefix=f"guest{os.getpid() % 1000}")
            crowd.start()
            crowd.gather(hall_id, spots, face, via)
        index = next(i for i, h in enumerate(expo.halls) if h.id == hall_id)
        _wait(app, lambda: autopilot.done and _visit(app).hall_index == index, timeout, "the walk to the booth")
        if crowd is not None:
            gathering = crowd
            _wait(app, lambda: gathering.arrived >= bots, timeout, "the crowd")
            _wait(app, lambda: len(app.avatars) >= bots, 10, "the crowd to be drawn")
        end = time.monotonic() + 1.2  # let interpolation settle on the last positions
        while time.monotonic() < end:
            app.step()
            time.sleep(0.01)
        path.parent.mkdir(parents=True, exist_ok=True)
        app.step(2)
        if not app.win.saveScreenshot(str(path)):
            raise OSError(f"could not write {path}")
        scene = _visit(app).hall_scene
        if scene is None:
            raise ConnectionError("the preview lost its hall before the picture")
        return ShotReport(path, hall_id, len(app.avatars), scene.geom_count(), time.monotonic() - started)
    finally:
        if crowd is not None:
            crowd.stop()
        if app is not None:
            app.close()
        if local is not None:
            local.stop()
        scratch.cleanup()


def _fan(n: int) -> list[tuple[float, float]]:
    """Points spread over a wedge in front of the spawn view."""
    import random

    rng = random.Random(3)
    return [(rng.uniform(-9, 9), rng.uniform(-6, 10)) for _ in range(n)]
