"""`expo-client`: the visitor's desktop client (Panda3D).

    expo-client                                   the connect screen
    expo-client --server ws://127.0.0.1:8765 --name Aru --colour '#e4572e'
    expo-client --screenshot booth.png --booth kz-altai-honey --bots 12
    expo-client 'expo://127.0.0.1:8765/?booth=kz-altai-honey'   a directory's link
    expo-client --register-url-handler            let the browser open expo:// links
"""

from __future__ import annotations

import argparse
import os
import sys
from glob import glob
from pathlib import Path

DESCRIPTION = __doc__.split("\n\n")[0]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: write WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (64 <= w <= 7680 and 64 <= h <= 4320):
        raise argparse.ArgumentTypeError(f"size {text!r} is out of range")
    return w, h


def _text_size(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"text size {text!r}: a number such as 1.25") from None
    if not 0.8 <= value <= 1.8:
        raise argparse.ArgumentTypeError(f"text size {text!r}: from 0.8 to 1.8")
    return value


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="expo-client", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("link", nargs="?", metavar="expo://HOST:PORT/?booth=ID",
                    help="a booth directory's link: the same as --server ws://HOST:PORT/ --booth ID "
                         "(expos:// for wss://)")
    ap.add_argument("--register-url-handler", action="store_true",
                    help="make this program the desktop's handler of expo:// links (a .desktop file, xdg-mime) and exit")
    ap.add_argument("--server", help="the expo's WebSocket URL; with --name, skips the connect screen")
    ap.add_argument("--name", help="your display name (2-24 characters)")
    ap.add_argument("--colour", "--color", default=None, help="avatar colour, #rrggbb")
    ap.add_argument("--currency", default="USD", help="currency of the bank account opened when you join")
    ap.add_argument("--config-dir", type=Path, default=None,
                    help="where the bank credential and F12 screenshots are kept (default: the user config directory)")
    ap.add_argument("--size", type=_size, default=(1280, 720), help="window or picture size, WIDTHxHEIGHT")
    ap.add_argument("--text-size", type=_text_size, default=1.0, metavar="SCALE",
                    help="scale of every panel's text, 0.8 to 1.8 (the connect screen's A−/A+ change it too)")
    ap.add_argument("--max-fps", type=int, default=60, metavar="FPS",
                    help="frame cap while moving (standing still it drops to 15); 0: no cap")
    ap.add_argument("--quality", choices=("auto", "low", "high"), default="auto",
                    help="high: physically based light with shadows (wants a GPU); low: no antialiasing, fog, "
                         "fill light or mipmapped textures, nearer name tags; auto: low on a software renderer, else high")
    ap.add_argument("--multisamples", type=int, default=4, choices=(0, 2, 4, 8),
                    help="antialiasing samples (0 for software renderers)")
    card = ap.add_argument_group("your business card (kept in card.json; shown only to those you exchange it with)")
    for field, what in (("name", "the name on your card (default: your display name)"), ("company", "your company"),
                        ("country", "your country, ISO 3166-1 alpha-2 (e.g. KZ)"), ("role", "your role (e.g. buyer)"),
                        ("email", "optional e-mail"), ("phone", "optional phone"),
                        ("language", "language you do business in, BCP 47 (e.g. ru)"),
                        ("timezone", "your time zone, IANA (e.g. Asia/Almaty)")):
        card.add_argument(f"--card-{field}", metavar=field.upper(), help=what)
    shot = ap.add_argument_group("screenshot (offscreen, no window)")
    shot.add_argument("--screenshot", type=Path, metavar="FILE", help="render offscreen, save a PNG and exit")
    ap.add_argument("--booth", help="walk to this booth once joined (with --screenshot: look at it; default: the spawn view)")
    shot.add_argument("--bots", type=int, default=0, help="visitors to gather in the picture")
    shot.add_argument("--world", type=Path, help="expo directory for the in-process server (without --server)")
    return ap


def resolved_quality(asked: str, environ: dict[str, str] | None = None, platform: str = sys.platform) -> str:
    """``auto``: low where OpenGL is drawn in software (Mesa told so, or a Linux machine with no
    GPU render node), where high runs at a few frames a second; high elsewhere."""
    if asked != "auto":
        return asked
    env = os.environ if environ is None else environ
    if env.get("LIBGL_ALWAYS_SOFTWARE") == "1" or env.get("GALLIUM_DRIVER") in ("llvmpipe", "softpipe"):
        return "low"
    return "low" if platform.startswith("linux") and not glob("/dev/dri/renderD*") else "high"


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.register_url_handler:
        from client.expo_url import register_handler

        for line in register_handler(os.path.abspath(sys.argv[0])):
            print(f"expo-client: {line}")
        return 0
    if args.link is not None:
        from client.expo_url import parse

        if args.server is not None or args.booth is not None:
            ap.error("give either an expo:// link or --server/--booth, not both")
        try:
            link = parse(args.link)
        except ValueError as exc:
            ap.error(str(exc))
        args.server, args.booth = link.server, link.booth
    if args.screenshot is not None:
        from client.desktop.screenshot import take_screenshot

        try:
            report = take_screenshot(args.screenshot, booth=args.booth, bots=max(0, args.bots), server=args.server,
                                     world=args.world, size=args.size,
                                     quality="high" if args.quality == "auto" else args.quality)  # a still: time, not fps
        except (KeyError, TimeoutError, ConnectionError, OSError, ValueError) as exc:
            print(f"expo-client: {exc}", file=sys.stderr)
            return 1
        print(f"{report.path}: hall {report.hall}, {report.avatars} avatars, {report.geoms} static geoms, "
              f"{report.seconds:.1f} s")
        return 0

    from client.desktop.app import ExpoApp
    from client.desktop.cards import CardFile, merged
    from client.desktop.i18n import Preferences
    from client.desktop.settings import DEFAULT_SERVER, PALETTE, ConnectSettings, check, colour_hex
    from client.desktop.wallet import Wallet, default_path

    wallet_file = args.config_dir / "wallet.json" if args.config_dir else default_path()
    wallet = Wallet(wallet_file)
    name = args.name or ""
    colour = args.colour or colour_hex(PALETTE[sum(map(ord, name)) % len(PALETTE)])
    settings, problems = check(args.server or DEFAULT_SERVER, name or "Visitor", colour, args.currency)
    if problems:
        for field, message in problems.items():
            print(f"expo-client: --{field}: {message}", file=sys.stderr)
        return 2
    assert settings is not None, "check gives settings whenever it finds no problem"
    card_file = CardFile(wallet_file.parent / "card.json")
    given = {f: getattr(args, f"card_{f}") for f in ("name", "company", "country", "role", "email", "phone",
                                                      "language", "timezone")}
    card = merged(card_file.load(), name or "Visitor", **given)
    if card is not None and any(v is not None for v in given.values()) and card.missing():
        print(f"expo-client: your card needs {', '.join('--card-' + m for m in card.missing())}", file=sys.stderr)
        return 2
    app = ExpoApp(wallet=wallet, size=args.size, defaults=ConnectSettings(settings.server, name, settings.colour,
                                                                          settings.currency),
                  multisamples=args.multisamples, screenshot_dir=wallet_file.parent / "screenshots",
                  quality=resolved_quality(args.quality), preferences=Preferences(wallet_file.parent / "preferences.json"), card_file=card_file)
    if card is not None and any(v is not None for v in given.values()):
        app.set_my_card(card)
    app.set_text_scale(args.text_size)
    app.set_max_fps(max(0, args.max_fps))
    app.walk_to = args.booth
    if args.server and args.name:
        app.connect(settings)
    try:
        app.run()
    finally:
        app.leave()
    return 0


if __name__ == "__main__":
    sys.exit(main())
