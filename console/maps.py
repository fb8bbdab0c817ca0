"""Each hall as an SVG drawn from the manifest: walls, booths, portals; the live dots are
added by console.js into the ``dots`` group. North is up (SVG's y grows down, the hall's up)."""

from __future__ import annotations

import numpy as np

from world.model import Booth, Hall

from .html import esc


def hall_svg(hall: Hall, booths: tuple[Booth, ...]) -> str:
    w, d = hall.width, hall.depth
    parts = [
        f'<svg class="hall-map" id="map-{esc(hall.id)}" data-hall="{esc(hall.id)}" data-depth="{d:g}" '
        f'viewBox="-1 -1 {w + 2:g} {d + 2:g}" role="img" aria-labelledby="map-{esc(hall.id)}-title">',
        f'<title id="map-{esc(hall.id)}-title">Map of {esc(hall.name)}: {len(booths)} booths; '
        f'dots are visitors (orange: booth staff)</title>',
        f'<rect class="floor" x="0" y="0" width="{w:g}" height="{d:g}" fill="{hall.theme.floor.hex}"/>',
    ]
    for booth in booths:
        r = booth.footprint
        label = booth.exhibitor.split(" ")[0][:12]  # the exhibitor's first word, sized to fit the booth
        x, y = r.min_x, d - r.max_y
        parts.append(
            f'<g class="booth" data-booth="{esc(booth.id)}"><title>{esc(booth.exhibitor)}</title>'
            f'<rect x="{x:g}" y="{y:g}" width="{r.width:g}" height="{r.depth:g}" fill="{booth.primary.hex}" '
            f'stroke="#1a1a1a" stroke-width="0.3"/>'
            f'<text x="{x + r.width / 2:g}" y="{y + r.depth / 2:g}" font-size="{min(1.6, 1.7 * r.width / max(len(label), 1)):.2f}" '
            f'text-anchor="middle" dominant-baseline="middle">{esc(label)}</text></g>'
        )
    for portal in hall.portals:
        parts.append(f'<circle class="portal" cx="{portal.position.x:g}" cy="{d - portal.position.y:g}" '
                     f'r="{portal.radius:g}"><title>Portal to {esc(portal.target_hall)}</title></circle>')
    parts.append('<g class="dots" aria-hidden="true"></g></svg>')
    return "".join(parts)


def heatmap_svg(counts: np.ndarray, cell: float, hall: Hall, booths: tuple[Booth, ...], highlight: str | None) -> str:
    """Visitor-seconds per cell as shades of one colour over the booths' outlines; the
    highlighted booth drawn thicker. Numbers are in the table beside it for screen readers."""
    w, d = hall.width, hall.depth
    top = int(counts.max()) if counts.size else 0
    parts = [f'<svg class="heatmap" viewBox="-1 -1 {w + 2:g} {d + 2:g}" role="img" aria-label="Heatmap of {esc(hall.name)}: '
             f'darker is more visitor-seconds (at most {top} in one {cell:g} m square)">',
             f'<rect x="0" y="0" width="{w:g}" height="{d:g}" fill="#f4f1ea"/>']
    if top:
        rows, cols = np.nonzero(counts)
        for r, c in zip(rows.tolist(), cols.tolist()):
            share = counts[r, c] / top
            parts.append(f'<rect x="{c * cell:g}" y="{d - (r + 1) * cell:g}" width="{cell:g}" height="{cell:g}" '
                         f'fill="#b3261e" fill-opacity="{0.15 + 0.85 * share:.2f}"/>')
    for booth in booths:
        fp = booth.footprint
        width = 0.6 if booth.id == highlight else 0.2
        parts.append(f'<rect x="{fp.min_x:g}" y="{d - fp.max_y:g}" width="{fp.width:g}" height="{fp.depth:g}" fill="none" '
                     f'stroke="#14171a" stroke-width="{width}"/>')
    return "".join(parts) + "</svg>"


def bars_svg(label: str, values: list[tuple[str, int]], unit: str = "") -> str:
    """A horizontal bar chart; each bar's number is printed beside it (no colour coding)."""
    top = max((v for _, v in values), default=0) or 1
    row = 22
    parts = [f'<svg class="bars" viewBox="0 0 420 {row * len(values) + 4}" role="img" aria-label="{esc(label)}">']
    for i, (name, value) in enumerate(values):
        y = i * row + 2
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{esc(name)}</text>'
                     f'<rect x="150" y="{y + 3}" width="{220 * value / top:.1f}" height="15" fill="#0b4f8a"/>'
                     f'<text x="{155 + 220 * value / top:.1f}" y="{y + 15}" font-size="13">{value}{esc(unit)}</text>')
    return "".join(parts) + "</svg>"
