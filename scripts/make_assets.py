#!/usr/bin/env python3
"""Draws the default expo's images into assets/: flags, booth logos, product pictures.

Everything is generated from simple shapes (numpy masks, 4x4 supersampled) and the world
files themselves, so the output is deterministic and the project owns every pixel:

    flags/<cc>.png         128x80, one per country that has a booth (see world.assets.flag_asset)
    logos/<booth>.png      64x64 RGBA, a badge with the exhibitor's initials
    products/<sku>.png     64x64, the product's display shape in its display colour

Text is set in DejaVu Sans Bold (Debian's fonts-dejavu-core, Bitstream Vera licence) when it
is installed; without it logos are drawn without text. There are no banners: without one the
client writes the booth's name and tagline on its fascia itself, in the visitor's language, so
an exhibitor's edit shows at once instead of a picture of yesterday's tagline.

Usage: python scripts/make_assets.py [--expo DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from panda3d.core import Filename, LColor, PNMImage, PNMTextMaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from world.assets import PROJECT_ASSETS, flag_asset, font_file, ink_for  # noqa: E402
from world.loader import BOOTHS_DIR, default_expo_path  # noqa: E402

SUPERSAMPLE = 4
RGB = tuple[float, float, float]


def rgb(hex_colour: str) -> RGB:
    value = int(hex_colour.lstrip("#"), 16)
    return ((value >> 16) / 255, ((value >> 8) & 0xFF) / 255, (value & 0xFF) / 255)


# -- shapes: each takes sample coordinates (u across, v down, both 0..1) and returns a mask --

class Canvas:
    """An RGBA float image drawn with anti-aliased shapes in unit coordinates."""

    def __init__(self, width: int, height: int, background: RGB | None = None) -> None:
        self.width, self.height = width, height
        s = SUPERSAMPLE
        ys, xs = np.mgrid[0:height * s, 0:width * s]
        self.u = (xs + 0.5) / (width * s)
        self.v = (ys + 0.5) / (height * s)
        self.aspect = width / height  # shapes given in "height units" stay round
        self.pixels = np.zeros((height * s, width * s, 4))
        if background is not None:
            self.pixels[...] = (*background, 1.0)

    def paint(self, mask: np.ndarray, colour: RGB, shade: np.ndarray | float = 1.0) -> None:
        """Covers ``mask`` with ``colour``, scaled by ``shade`` (a number or a per-sample array)."""
        shade = np.broadcast_to(shade, mask.shape)[mask]
        self.pixels[mask, :3] = np.clip(np.outer(shade, colour), 0, 1)
        self.pixels[mask, 3] = 1.0

    def rect(self, u0: float, v0: float, u1: float, v1: float, colour: RGB) -> None:
        self.paint((self.u >= u0) & (self.u < u1) & (self.v >= v0) & (self.v < v1), colour)

    def bands(self, colours: Sequence[str], weights: Sequence[float] | None = None,
              vertical: bool = False) -> None:
        weights = weights or [1] * len(colours)
        edges = np.cumsum([0, *weights]) / sum(weights)
        for colour, start, end in zip(colours, edges, edges[1:], strict=False):
            if vertical:
                self.rect(start, 0, end, 1, rgb(colour))
            else:
                self.rect(0, start, 1, end, rgb(colour))

    def ellipse_mask(self, cu: float, cv: float, ru: float, rv: float) -> np.ndarray:
        """``ru`` and ``rv`` are in height units, so ru == rv is a circle."""
        du = (self.u - cu) * self.aspect
        return (du / ru) ** 2 + ((self.v - cv) / rv) ** 2 <= 1

    def disc(self, cu: float, cv: float, r: float, colour: str) -> None:
        self.paint(self.ellipse_mask(cu, cv, r, r), rgb(colour))

    def polygon_mask(self, points: Iterable[tuple[float, float]]) -> np.ndarray:
        """Even-odd rule, vectorised over samples, looping over edges."""
        pts = list(points)
        inside = np.zeros(self.u.shape, dtype=bool)
        for (u1, v1), (u2, v2) in zip(pts, pts[1:] + pts[:1], strict=True):
            crosses = (v1 > self.v) != (v2 > self.v)
            with np.errstate(divide="ignore", invalid="ignore"):
                u_at = (u2 - u1) * (self.v - v1) / (v2 - v1) + u1
            inside ^= crosses & (self.u < u_at)
        return inside

    def polygon(self, points: Iterable[tuple[float, float]], colour: str) -> None:
        self.paint(self.polygon_mask(points), rgb(colour))

    def star(self, cu: float, cv: float, r: float, colour: str, points: int = 5,
             inner: float = 0.382, turn: float = 0.0) -> None:
        corners = []
        for k in range(points * 2):
            angle = math.pi * k / points - math.pi / 2 + turn
            radius = r if k % 2 == 0 else r * inner
            corners.append((cu + radius * math.cos(angle) / self.aspect, cv + radius * math.sin(angle)))
        self.polygon(corners, colour)

    def crescent(self, cu: float, cv: float, r: float, colour: str, background: str,
                 shift: float, cut: float) -> None:
        self.disc(cu, cv, r, colour)
        self.disc(cu + shift / self.aspect, cv, r * cut, background)

    def image(self) -> PNMImage:
        s = SUPERSAMPLE
        h, w = self.height, self.width
        small = self.pixels.reshape(h, s, w, s, 4).mean(axis=(1, 3))
        rgb_part = np.where(small[..., 3:] > 0, small[..., :3] / np.maximum(small[..., 3:], 1e-9), 0)
        out = PNMImage(w, h, 4)
        for y in range(h):
            for x in range(w):
                r, g, b = rgb_part[y, x]
                out.setXelA(x, y, float(r), float(g), float(b), float(small[y, x, 3]))
        return out


# -- flags: simple-shape approximations of each partner economy's flag ------------------

def _flag_cn(c: Canvas) -> None:
    c.bands(["#de2910"])
    c.star(1 / 6, 0.25, 0.15, "#ffde00")
    for u, v, turn in ((1 / 3, 0.1, 0.6), (0.4, 0.2, 0.2), (0.4, 0.35, 0.0), (1 / 3, 0.45, 0.6)):
        c.star(u, v, 0.05, "#ffde00", turn=turn)


def _flag_kz(c: Canvas) -> None:
    c.bands(["#00afca"])
    c.disc(0.5, 0.43, 0.18, "#fec50c")
    c.star(0.5, 0.43, 0.27, "#fec50c", points=32, inner=0.75)  # the sun's rays
    c.polygon([(0.45, 0.72), (0.5, 0.66), (0.55, 0.72), (0.5, 0.7)], "#fec50c")  # the eagle
    c.rect(0.035, 0.05, 0.075, 0.95, rgb("#fec50c"))  # the ornament band


def _flag_uz(c: Canvas) -> None:
    c.bands(["#0099b5", "#ce1126", "#ffffff", "#ce1126", "#1eb53a"], [31, 2, 30, 2, 31])
    c.crescent(0.14, 0.17, 0.12, "#ffffff", "#0099b5", 0.035, 0.85)
    for k in range(3):
        c.star(0.24 + 0.05 * k, 0.09, 0.025, "#ffffff")
        c.star(0.24 + 0.05 * k, 0.21, 0.025, "#ffffff")


def _flag_pk(c: Canvas) -> None:
    c.bands(["#ffffff", "#01411c"], [1, 3], vertical=True)
    c.crescent(0.625, 0.5, 0.3, "#ffffff", "#01411c", 0.07, 0.85)
    c.star(0.72, 0.36, 0.09, "#ffffff", turn=0.6)


def _flag_az(c: Canvas) -> None:
    c.bands(["#00b5e2", "#ef3340", "#509e2f"])
    c.crescent(0.47, 0.5, 0.13, "#ffffff", "#ef3340", 0.035, 0.8)
    c.star(0.56, 0.5, 0.06, "#ffffff", points=8, inner=0.5)


def _flag_ge(c: Canvas) -> None:
    c.bands(["#ffffff"])
    c.rect(0.433, 0, 0.567, 1, rgb("#e8112d"))
    c.rect(0, 0.4, 1, 0.6, rgb("#e8112d"))
    for u, v in ((0.2, 0.2), (0.8, 0.2), (0.2, 0.8), (0.8, 0.8)):
        c.rect(u - 0.02, v - 0.12, u + 0.02, v + 0.12, rgb("#e8112d"))
        c.rect(u - 0.07, v - 0.035, u + 0.07, v + 0.035, rgb("#e8112d"))


def _flag_gr(c: Canvas) -> None:
    c.bands(["#0d5eaf", "#ffffff"] * 4 + ["#0d5eaf"])
    c.rect(0, 0, 0.37, 5 / 9, rgb("#0d5eaf"))
    c.rect(0.148, 0, 0.222, 5 / 9, rgb("#ffffff"))
    c.rect(0, 2 / 9, 0.37, 3 / 9, rgb("#ffffff"))


def _flag_rs(c: Canvas) -> None:
    c.bands(["#c6363c", "#0c4076", "#ffffff"])
    c.rect(0.24, 0.22, 0.4, 0.78, rgb("#c6363c"))
    c.rect(0.305, 0.28, 0.335, 0.72, rgb("#ffffff"))
    c.rect(0.26, 0.45, 0.38, 0.52, rgb("#ffffff"))
    c.rect(0.26, 0.14, 0.38, 0.22, rgb("#edb92e"))  # the crown


def _flag_my(c: Canvas) -> None:
    c.bands(["#cc0001", "#ffffff"] * 7)
    c.rect(0, 0, 0.5, 8 / 14, rgb("#010066"))
    c.crescent(0.19, 0.286, 0.2, "#ffcc00", "#010066", 0.06, 0.82)
    c.star(0.36, 0.286, 0.15, "#ffcc00", points=14, inner=0.45)


def _flag_th(c: Canvas) -> None:
    c.bands(["#a51931", "#f4f5f8", "#2d2a4a", "#f4f5f8", "#a51931"], [1, 1, 2, 1, 1])


def _flag_vn(c: Canvas) -> None:
    c.bands(["#da251d"])
    c.star(0.5, 0.5, 0.3, "#ffff00")


def _flag_lk(c: Canvas) -> None:
    c.bands(["#ffbe29"])
    c.rect(0.03, 0.05, 0.12, 0.95, rgb("#00534e"))
    c.rect(0.12, 0.05, 0.21, 0.95, rgb("#eb7400"))
    c.rect(0.25, 0.05, 0.97, 0.95, rgb("#8d153a"))
    c.paint(c.ellipse_mask(0.6, 0.55, 0.28, 0.22), rgb("#ffbe29"))  # the lion, roughly
    c.rect(0.7, 0.2, 0.74, 0.55, rgb("#ffbe29"))  # its sword


def _flag_ae(c: Canvas) -> None:
    c.bands(["#00732f", "#ffffff", "#000000"])
    c.rect(0, 0, 0.25, 1, rgb("#ff0000"))


def _flag_sa(c: Canvas) -> None:
    c.bands(["#006c35"])
    for k in range(9):  # the inscription, as strokes
        c.rect(0.2 + 0.068 * k, 0.25 + 0.04 * (k % 3), 0.25 + 0.068 * k, 0.42, rgb("#ffffff"))
    c.rect(0.25, 0.62, 0.75, 0.66, rgb("#ffffff"))  # the sword
    c.polygon([(0.75, 0.6), (0.8, 0.64), (0.75, 0.68)], "#ffffff")


def _flag_eg(c: Canvas) -> None:
    c.bands(["#ce1126", "#ffffff", "#000000"])
    c.paint(c.ellipse_mask(0.5, 0.5, 0.09, 0.13), rgb("#c09300"))  # the eagle of Saladin


def _flag_ma(c: Canvas) -> None:
    c.bands(["#c1272d"])
    c.star(0.5, 0.52, 0.3, "#006233")
    c.star(0.5, 0.52, 0.2, "#c1272d")


def _flag_ke(c: Canvas) -> None:
    c.bands(["#000000", "#ffffff", "#bb0000", "#ffffff", "#006600"], [6, 1, 6, 1, 6])
    c.paint(c.ellipse_mask(0.5, 0.5, 0.16, 0.4), rgb("#000000"))
    c.paint(c.ellipse_mask(0.5, 0.5, 0.07, 0.4) | (c.ellipse_mask(0.5, 0.5, 0.16, 0.4) & (abs(c.v - 0.5) < 0.12)),
            rgb("#bb0000"))
    c.paint(c.ellipse_mask(0.5, 0.5, 0.03, 0.07), rgb("#ffffff"))


def _flag_et(c: Canvas) -> None:
    c.bands(["#078930", "#fcdd09", "#da121a"])
    c.disc(0.5, 0.5, 0.25, "#0f47af")
    c.star(0.5, 0.52, 0.18, "#fcdd09")
    c.star(0.5, 0.52, 0.12, "#0f47af")


def _flag_za(c: Canvas) -> None:
    c.bands(["#e03c31", "#001489"])
    c.polygon([(0, 0), (0.18, 0), (0.47, 1 / 3), (1, 1 / 3), (1, 2 / 3), (0.47, 2 / 3), (0.18, 1), (0, 1)], "#ffffff")
    c.polygon([(0, 0.02), (0.1, 0), (0.43, 0.4), (1, 0.4), (1, 0.6), (0.43, 0.6), (0.1, 1), (0, 0.98)], "#007749")
    c.polygon([(0, 0.13), (0.35, 0.5), (0, 0.87)], "#ffb81c")
    c.polygon([(0, 0.2), (0.29, 0.5), (0, 0.8)], "#000000")


def _simple(colours: list[str], vertical: bool = False):
    return lambda c: c.bands(colours, vertical=vertical)


FLAGS = {
    "AE": _flag_ae, "AZ": _flag_az, "CN": _flag_cn, "EG": _flag_eg, "ET": _flag_et, "GE": _flag_ge,
    "GR": _flag_gr, "HU": _simple(["#cd2a3e", "#ffffff", "#436f4d"]),
    "ID": _simple(["#ce1126", "#ffffff"]), "KE": _flag_ke, "KZ": _flag_kz, "LK": _flag_lk,
    "MA": _flag_ma, "MY": _flag_my, "NG": _simple(["#008751", "#ffffff", "#008751"], vertical=True),
    "PK": _flag_pk, "PL": _simple(["#ffffff", "#dc143c"]), "RS": _flag_rs, "SA": _flag_sa,
    "TH": _flag_th, "UZ": _flag_uz, "VN": _flag_vn, "ZA": _flag_za,
}


def flag(country: str, width: int = 128, height: int = 80) -> PNMImage:
    canvas = Canvas(width, height, (1.0, 1.0, 1.0))
    FLAGS[country](canvas)
    return canvas.image()


# -- booth and product pictures ---------------------------------------------------------

class Writer:
    """Sets text with one font file, shrinking it until it fits."""

    def __init__(self, font: Path | None) -> None:
        self.font = font

    def _maker(self, size: int) -> PNMTextMaker:
        maker = PNMTextMaker(Filename.fromOsSpecific(str(self.font)), 0)
        maker.setScaleFactor(1)
        maker.setNativeAntialias(True)
        maker.setPixelSize(size)
        return maker

    def text(self, image: PNMImage, text: str, x: int, baseline: int, size: int, max_width: int,
             colour: RGB, centre: bool = False) -> None:
        if self.font is None:
            return
        maker = self._maker(size)
        while maker.calcWidth(text) > max_width and size > 8:
            size -= 1
            maker = self._maker(size)  # a maker keeps the glyphs of its first size
        while maker.calcWidth(text) > max_width and len(text) > 1:
            text = text[:-2] + "…"
        maker.setFg(LColor(*colour, 1))
        if centre:
            x -= maker.calcWidth(text) // 2
        maker.generateInto(text, image, x, baseline)


def logo(booth: dict, writer: Writer) -> PNMImage:
    primary, secondary = booth["primary"], booth["secondary"]
    canvas = Canvas(64, 64)
    canvas.disc(0.5, 0.5, 0.48, secondary)
    canvas.disc(0.5, 0.5, 0.4, primary)
    image = canvas.image()
    words = [w for w in booth["exhibitor"].replace("&", " ").split() if w[0].isalnum()]
    initials = "".join(w[0] for w in words[:2]).upper()
    writer.text(image, initials, 32, 40, 22, 44, ink_for(rgb(primary)), centre=True)
    return image


def product(item: dict, backdrop: RGB) -> PNMImage:
    """The product's display shape, lit from the upper left, on a pale backdrop."""
    pale = tuple(0.75 + 0.25 * c for c in backdrop)
    canvas = Canvas(64, 64, pale)  # type: ignore[arg-type]
    display = item["display"]
    colour = rgb(display["colour"])
    shape = display.get("primitive", "box")
    u, v = canvas.u, canvas.v
    light = 1.15 - 0.5 * (u - 0.3)  # brighter on the left
    if shape == "sphere":
        mask = canvas.ellipse_mask(0.5, 0.52, 0.34, 0.34)
        light = 1.25 - 1.2 * np.hypot(u - 0.38, v - 0.4)
        canvas.paint(mask, colour, light)
    elif shape == "cylinder":
        canvas.paint((abs(u - 0.5) < 0.26) & (v > 0.28) & (v < 0.78)
                     | canvas.ellipse_mask(0.5, 0.78, 0.26, 0.08), colour, 1.2 - 1.2 * abs(u - 0.42))
        canvas.paint(canvas.ellipse_mask(0.5, 0.28, 0.26, 0.08), colour, 1.3)
    elif shape == "cone":
        canvas.paint(canvas.polygon_mask([(0.5, 0.12), (0.82, 0.78), (0.18, 0.78)])
                     | canvas.ellipse_mask(0.5, 0.78, 0.32, 0.08), colour, light)
    else:  # box: front face, top face, side face
        canvas.paint((u > 0.18) & (u < 0.66) & (v > 0.36) & (v < 0.84), colour, 1.0)
        canvas.paint(canvas.polygon_mask([(0.18, 0.36), (0.34, 0.2), (0.82, 0.2), (0.66, 0.36)]), colour, 1.3)
        canvas.paint(canvas.polygon_mask([(0.66, 0.36), (0.82, 0.2), (0.82, 0.68), (0.66, 0.84)]), colour, 0.7)
    return canvas.image()


def write(image: PNMImage, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.write(Filename.fromOsSpecific(str(path))):
        raise OSError(f"could not write {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expo", type=Path, default=default_expo_path(), help="expo directory (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=PROJECT_ASSETS, help="assets directory (default: %(default)s)")
    args = parser.parse_args(argv)

    font = font_file(bold=True)
    if font is None:
        print("warning: DejaVu Sans Bold not found (apt install fonts-dejavu-core); drawing without text",
              file=sys.stderr)
    writer = Writer(font)
    booths = [tomllib.loads(p.read_text(encoding="utf-8"))
              for p in sorted((args.expo / BOOTHS_DIR).rglob("*.toml"))]
    for country in sorted({b["country"] for b in booths}):
        write(flag(country), args.out / flag_asset(country))
    count = 0
    for booth in booths:
        write(logo(booth, writer), args.out / booth["logo"])
        for item in booth["catalogue"]:
            write(product(item, rgb(booth["secondary"])), args.out / item["image"])
            count += 1
    print(f"wrote flags, {len(booths)} logos and {count} product images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
