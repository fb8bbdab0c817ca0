"""Each hall as an SVG drawn from the manifest: walls, booths, portals; the live dots are
added by console.js into the ``dots`` group. North is up (SVG's y grows down, the hall's up)."""

from __future__ import annotations

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
