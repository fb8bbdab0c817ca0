"""``expo-world``: check world files and see what an expo holds.

``check`` prints every problem GCC style (``file:line: key: message``) so editors can jump
to it, and exits 1; a valid expo gets a one-screen summary and exit 0.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from . import iso
from .loader import check_expo, default_expo_path
from .model import Expo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="expo-world", description="Check and inspect the world files of an expo.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("check", "report every problem, or summarise a valid expo"),
                            ("list", "list the booths of a valid expo, hall by hall")):
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("path", nargs="?", type=Path, default=default_expo_path(),
                             help="expo directory holding expo.toml and booths/ (default: %(default)s)")
    args = parser.parse_args(argv)

    expo, problems = check_expo(args.path)
    if expo is None:
        for problem in problems:
            print(problem)
        files = len({p.file for p in problems})
        print(f"{len(problems)} problem{'s' * (len(problems) != 1)} in {files} file{'s' * (files != 1)}",
              file=sys.stderr)
        return 1
    print(summary(expo) if args.command == "check" else booth_list(expo))
    return 0


def summary(expo: Expo) -> str:
    products = sum(len(b.catalogue) for b in expo.booths)
    countries = sorted({b.country for b in expo.booths})
    lines = [f"{expo.name} ({expo.id}), {expo.starts} to {expo.ends}", "halls:"]
    for hall in expo.halls:
        extras = [f"{len(hall.portals)} portal{'s' * (len(hall.portals) != 1)}"]
        if hall.keynote:
            extras.append("keynote stage")
        lines.append(f"  {hall.id:<14} {hall.name:<26} {hall.width:g} x {hall.depth:g} m  "
                     f"{len(expo.booths_in(hall.id)):>3} booths  {', '.join(extras)}")
    lines.append(f"{len(expo.booths)} booths, {products} products, "
                 f"{len(countries)} economies, {len(expo.currencies)} currencies")
    # no-break spaces keep "Sri Lanka (LK)" on one line
    names = ", ".join(f"{iso.countries()[c]} ({c})".replace(" ", "\xa0") for c in countries)
    lines += [line.replace("\xa0", " ") for line in
              textwrap.wrap("economies: " + names, 88, subsequent_indent="  ")]
    lines += textwrap.wrap("currencies: " + " ".join(expo.currencies), 88, subsequent_indent="  ")
    lines.append("no problems")
    return "\n".join(lines)


def booth_list(expo: Expo) -> str:
    lines = []
    for hall in expo.halls:
        lines.append(f"{hall.name} ({hall.id}), {hall.width:g} x {hall.depth:g} m")
        for b in sorted(expo.booths_in(hall.id), key=lambda b: (b.footprint.centre.y, b.footprint.centre.x)):
            where = f"({b.footprint.centre.x:g}, {b.footprint.centre.y:g})"
            lines.append(f"  {b.id:<24} {where:<10} {b.country}  {b.exhibitor:<30} "
                         f"{len(b.catalogue)} products  {b.source}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
