"""Frames per second of the desktop client with 0, 50 and 200 moving avatars in view.

    .venv/bin/python benchmarks/client_fps.py [--seconds 5] [--size 1280x720] [--counts 0,50,200]

Runs everything on this machine: an expo-server process (view radius and cap raised so every
avatar in the hall is sent), expo-bots processes that wander, and the Panda3D client
offscreen with a camera high over the hall so the whole crowd is on screen. Each frame is a
full client frame (network events, interpolation, avatar nodes, HUD, render), finished with
glFinish (``gl-finish``, which the client sets offscreen) as a window's buffer swap would:
an offscreen buffer otherwise lets the software renderer queue frames it has not drawn,
and the count would be of submissions, not of pictures (a first version of this script
reported 3,400 fps for the floor). The peer, measured in the same run and window: the
bare renderer drawing only the hall's floor, as the quality draws the hall's (textured and
filtered alike).
Prints a table and writes benchmarks/results/client_fps.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from processes import BIN, free_port, start, stop  # noqa: E402

from client.desktop.app import QUALITIES, ExpoApp  # noqa: E402
from client.desktop.layout import HallBuilder, View  # noqa: E402
from client.desktop.scene_hall import floor_node  # noqa: E402
from client.desktop.settings import ConnectSettings  # noqa: E402
from client.desktop.wallet import Wallet  # noqa: E402
from world.loader import default_expo_path, load_expo  # noqa: E402

#: The server and the bots run at the lowest priority: on a visitor's machine they are not
#: there, and here they would otherwise take the cores the software renderer draws with.
NICE = ("nice", "-n", "19")


def measure(app: ExpoApp, seconds: float) -> tuple[float, float]:
    """Frames per second, and this process's CPU milliseconds per frame (the software
    renderer's threads included, the server's and bots' not): on a shared machine the
    first follows the load, the second much less."""
    app.step(3)  # warm caches, first uploads
    frames, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        app.step()
        frames += 1
    return frames / (time.perf_counter() - started), (time.process_time() - cpu) / frames * 1000


def overview(width: float, depth: float) -> View:
    """High over the south end, looking across the whole hall."""
    return View((width / 2, -depth * 0.18, depth * 0.55), (width / 2, depth * 0.5, 0.0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--counts", default="0,50,200")
    ap.add_argument("--quality", choices=("low", "high"), default="low")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "client_fps.json")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    size = (width, height)
    counts = [int(c) for c in args.counts.split(",")]
    expo = load_expo(default_expo_path())
    hall = expo.halls[0]
    scratch = tempfile.TemporaryDirectory(prefix="expo-fps-")
    port = free_port()
    server = start([*NICE, str(BIN / "expo-server"), "--port", str(port), "--view-radius", "200", "--max-visible", "512",
                    # every bot comes from loopback: past the per-address cap (50) only 49 of 200 got in
                    "--max-connections-per-address", "1000", "--data-dir", scratch.name, "--log-level", "warning"],
                   f"http://127.0.0.1:{port}/healthz", log=Path(scratch.name) / "server.log")
    url = f"ws://127.0.0.1:{port}/"
    bots: list[subprocess.Popen] = []
    app = ExpoApp(offscreen=True, size=size, wallet=Wallet(Path(scratch.name) / "wallet.json"), quality=args.quality)
    app.set_max_fps(0)  # no frame cap: the benchmark measures what the renderer can do
    rows = []
    try:
        # the peer: the same window and renderer drawing nothing but the hall's floor
        app.connect_screen.hide()
        floor_layout = HallBuilder(expo, hall, {}, (0.0, 0.0)).build()
        # as the hall's floor is drawn at this quality (at low: untextured): like with like
        floor = floor_node(floor_layout, textured=QUALITIES[args.quality].fine_filtering)
        floor.reparentTo(app.world)
        view = overview(hall.width, hall.depth)
        app.camera.setPos(*view.eye)
        app.camera.lookAt(*view.target)
        baseline, baseline_cpu = measure(app, args.seconds)
        floor.removeNode()
        app.connect(ConnectSettings(url, "fps-probe", 0xE4572E))
        while app.visit is None or app.visit.hall_scene is None:
            app.step()
        app.fixed_view = view
        running = 0
        for count in counts:
            if count > running:
                bots.append(subprocess.Popen(
                    [*NICE, str(BIN / "expo-bots"), "--server", url, "--count", str(count - running), "--spawn-rate", "100",
                     "--duration", "3600", "--mix", "wander", "--quiet", "--progress", "0", "--seed", str(count),
                     "--name-prefix", f"fps{count}"],
                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                running = count
            deadline = time.monotonic() + 60
            while len(app.avatars) < count and time.monotonic() < deadline:  # the fixed view hides our own
                app.step()
                time.sleep(0.01)
            settle = time.monotonic() + 2.0  # let them spread out and walk
            while time.monotonic() < settle:
                app.step()
            fps, cpu_ms = measure(app, args.seconds)
            drawn = len(app.avatars)
            rows.append({"avatars": count, "drawn": drawn, "fps": round(fps, 1), "ms_per_frame": round(1000 / fps, 2),
                         "vs_floor_only": round(fps / baseline, 3), "cpu_ms_per_frame": round(cpu_ms, 2)})
    finally:
        for proc in bots:
            proc.terminate()
        for proc in bots:
            proc.wait(10)
        app.close()
        stop(server)
        scratch.cleanup()
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "renderer": "Mesa llvmpipe (software), offscreen"},
        "size": list(size), "quality": args.quality, "seconds_per_measurement": args.seconds,
        "baseline_floor_only_fps": round(baseline, 1), "baseline_cpu_ms_per_frame": round(baseline_cpu, 2),
        "load_average": [round(v, 2) for v in os.getloadavg()], "rows": rows,
    }
    print(f"client FPS at {size[0]}x{size[1]}, quality {args.quality}, offscreen, software renderer; "
          f"peer: floor only {baseline:.1f} fps, {baseline_cpu:.1f} CPU ms/frame; load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"{'avatars':>8} {'drawn':>6} {'fps':>8} {'ms/frame':>9} {'ours/floor-only':>16} {'CPU ms/frame':>13}")
    for r in rows:
        print(f"{r['avatars']:>8} {r['drawn']:>6} {r['fps']:>8.1f} {r['ms_per_frame']:>9.2f} {r['vs_floor_only']:>16.3f}"
              f" {r['cpu_ms_per_frame']:>13.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
