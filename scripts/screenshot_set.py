"""The screenshot set of docs/screenshots: the spawn view, a booth, the hall map and the
directory, as a visitor sees them in one language, offscreen on the expo's own server.

    .venv/bin/python scripts/screenshot_set.py docs/screenshots/after --language zh_Hans

One language a run: Panda3D keeps one ShowBase a process. Twelve wandering bots stand in
for other visitors, so the views have people in them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from client.desktop.app import ExpoApp
from client.desktop.crowd import Crowd
from client.desktop.layout import booth_view
from client.desktop.local_server import LocalServer
from client.desktop.nearby import entrance, route
from client.desktop.settings import ConnectSettings
from client.desktop.steering import Autopilot
from client.desktop.wallet import Wallet
from server.config import ServerConfig
from world.loader import default_expo_path, load_expo

BOOTH = "cn-yunnan-tea"  # China is the main partner: its booth is the one shown


def run_until(app: ExpoApp, done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        app.step()
        time.sleep(0.005)


def save(app: ExpoApp, folder: Path, name: str) -> None:
    app.step(3)
    path = folder / f"{name}.png"
    if not app.win.saveScreenshot(str(path)):
        raise OSError(f"could not write {path}")
    print(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--language", default="en")
    ap.add_argument("--quality", default="high")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "zh" if args.language.startswith("zh") else args.language
    with tempfile.TemporaryDirectory(prefix="expo-set-") as scratch:
        config = ServerConfig(port=0, view_radius=60.0, data_dir=Path(scratch))
        with LocalServer(load_expo(default_expo_path()), config) as local:
            crowd = Crowd(local.url, 12, prefix="guest")
            crowd.start()
            crowd.wander()
            app = ExpoApp(offscreen=True, size=(1280, 720), wallet=Wallet(Path(scratch) / "wallet.json"),
                          multisamples=4, quality=args.quality)
            try:
                app.set_language(args.language)
                app.connect(ConnectSettings(local.url, "Li Wei" if suffix == "zh" else "Aigerim", 0x3BB273, "USD"))
                visit = app.visit
                assert visit is not None, "connect opens a visit"
                run_until(app, lambda: visit.hall_scene is not None, 30, "the hall")
                run_until(app, lambda: len(app.avatars) >= 6, 30, "the other visitors")
                save(app, args.out, f"spawn-{suffix}")
                app.messenger.send("m")
                save(app, args.out, f"map-{suffix}")
                app.messenger.send("m")
                app.messenger.send("f")
                save(app, args.out, f"directory-{suffix}")
                app.close_directory()
                expo = visit.expo
                assert expo is not None and visit.hall_index is not None, "joined: the expo is known"
                booth = expo.booth(BOOTH)
                assert booth is not None, f"the expo has {BOOTH}"
                own = visit.thread.core.own_pose()
                assert own is not None, "joined: the avatar is in the hall"
                app.autopilot = Autopilot.along(route(expo, expo.halls[visit.hall_index].id, (own.x, own.y),
                                                      booth.hall, entrance(booth, 2.5)))
                autopilot = app.autopilot
                run_until(app, lambda: autopilot.done, 60, "the walk to the booth")
                app.fixed_view = booth_view(booth, expo)  # where the exhibitor's preview stands
                save(app, args.out, f"booth-{suffix}")
            finally:
                app.close()
                crowd.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
