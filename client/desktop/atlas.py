"""Packing many small images (banners, logos, flags) into one texture.

One texture for every sign in a hall lets the whole static hall share one render state, so
flattening merges it into a few draw calls instead of one per booth image. This module only
does the arithmetic (shelf packing, UV rectangles); ``scene_hall`` copies the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

from .mesh import UVRect

WHITE = "#white"  # the key of a small white block: untextured geometry samples it
PAD = 2  # pixels around each image, so mipmaps and filtering do not bleed neighbours in


@dataclass(frozen=True, slots=True)
class Placement:
    x: int  # pixels from the atlas's left
    y: int  # pixels from the atlas's top (image rows), as PNMImage counts
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class AtlasLayout:
    width: int
    height: int
    placements: dict[str, Placement]

    def uv(self, key: str) -> UVRect:
        """The UV rectangle of an image, inset by half a texel; v grows upwards (Panda3D)."""
        p = self.placements[key]
        w, h = self.width, self.height
        return ((p.x + 0.5) / w, 1.0 - (p.y + p.height - 0.5) / h, (p.x + p.width - 0.5) / w, 1.0 - (p.y + 0.5) / h)

    def white_uv(self) -> tuple[float, float]:
        u0, v0, u1, v1 = self.uv(WHITE)
        return ((u0 + u1) / 2, (v0 + v1) / 2)


def _pow2(n: int) -> int:
    size = 1
    while size < n:
        size *= 2
    return size


def pack(sizes: dict[str, tuple[int, int]], width: int = 2048) -> AtlasLayout:
    """Shelf packing, tallest first: good enough for a few dozen images of a few shapes.
    The white block is always included. Sizes are (width, height) in pixels."""
    items = dict(sizes)
    items[WHITE] = (8, 8)
    too_wide = [k for k, (w, _) in items.items() if w + 2 * PAD > width]
    if too_wide:
        raise ValueError(f"images wider than the atlas ({width} px): {', '.join(too_wide)}")
    order = sorted(items, key=lambda k: (-items[k][1], -items[k][0], k))
    placements: dict[str, Placement] = {}
    x = y = shelf = 0
    for key in order:
        w, h = items[key]
        if x + w + 2 * PAD > width:
            x, y, shelf = 0, y + shelf, 0
        placements[key] = Placement(x + PAD, y + PAD, w, h)
        x += w + 2 * PAD
        shelf = max(shelf, h + 2 * PAD)
    return AtlasLayout(width, _pow2(y + shelf), placements)
