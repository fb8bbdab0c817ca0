"""What a hall is built of: floor, walls, stage, portals and booths, as meshes and labels.

Pure: the expo model in, arrays and records out. The Panda3D shell (``scene_hall``) turns
them into nodes; tests check the geometry here without a renderer. Booth walls come from
``world.motion.booth_walls``, the same rectangles the server collides with, so what a
visitor sees is what stops them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from world import iso
from world.assets import flag_asset, ink_for
from world.model import FACING_NORMALS, Booth, BoothKind, Colour, Expo, Hall, Primitive, Product, Vec2
from world.motion import booth_walls

from .mesh import Mesh, MeshBuilder, UVRect, rgba, shade

WALL_HEIGHT = 2.6  # booth walls
FASCIA_BOTTOM, FASCIA_TOP = 2.6, 3.7  # the header beam across the open side
HALL_WALL_HEIGHT = 7.0
COUNTER_HEIGHT = 1.0
FLOOR_TILE = 2.0  # metres per repeat of the floor texture
GROUT = 0.06  # metres: the width of the lines between floor tiles, as the floor texture draws them
GROUT_SHADE, TILE_SHADE = 0.81, 0.95  # the floor texture's grout and tile greys (scene_hall.floor_texture)
LIGHT_PITCH = 8.0  # metres between the ceiling's rows and columns of light panels


@dataclass(frozen=True, slots=True)
class Label:
    """Text standing upright at ``position`` (its centre), readable from ``facing``."""

    text: str
    position: tuple[float, float, float]
    facing: tuple[float, float]
    height: float  # metres per line
    colour: tuple[float, float, float, float]
    wrap: float | None = None  # metres before a line wraps
    fit: float | None = None  # metres the text may be wide at most: it shrinks to fit


@dataclass(frozen=True, slots=True)
class ModelSpot:
    """A product shown as a model file (asset path) standing at ``position``, tinted
    ``colour``; ``fallback`` is the primitive drawn instead if the file will not load."""

    model: str
    position: tuple[float, float, float]
    scale: float
    colour: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    fallback: Primitive | None = None


# The generated models (scripts/product_models.py) that stand in for a primitive when the
# shell can load them: a box reads as a carton, a cylinder as a jar, a cone as a bottle.
PRIMITIVE_MODELS = {Primitive.BOX: "models/package.glb", Primitive.CYLINDER: "models/jar.glb",
                    Primitive.CONE: "models/bottle.glb", Primitive.SPHERE: "models/vase.glb"}


def draw_primitive(m: MeshBuilder, primitive: Primitive | None, base: tuple[float, float, float], size: float,
                   colour: tuple[float, float, float, float]) -> None:
    x, y, z = base
    match primitive:
        case Primitive.BOX:
            m.box((x - size / 2, y - size / 2, z), (x + size / 2, y + size / 2, z + size * 0.8), colour)
        case Primitive.SPHERE:
            m.sphere((x, y, z + size / 2), size / 2, colour, 8, 12)
        case Primitive.CYLINDER:
            m.cylinder((x, y, z), size * 0.32, size, colour, 14)
        case Primitive.CONE | _:
            m.cone((x, y, z), size * 0.4, size, colour, 14)


@dataclass(frozen=True, slots=True)
class HallLayout:
    """``solid``: lit, opaque, textured from the atlas; ``floor``: the tiled floor texture;
    ``glow``: unlit and translucent (portals); ``ceiling``: unlit, seen only from below (a
    camera above the hall looks through it); ``labels`` and ``models`` for the shell;
    ``grout``: the lines between the floor's tiles as geometry, for a floor drawn without
    its texture (low quality)."""

    solid: Mesh
    floor: Mesh
    glow: Mesh
    ceiling: Mesh
    labels: tuple[Label, ...]
    models: tuple[ModelSpot, ...]
    grout: Mesh


@dataclass(frozen=True, slots=True)
class View:
    """A camera: where it is and what it looks at, in the hall's frame (metres)."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]


def booth_front(booth: Booth) -> tuple[float, float]:
    return FACING_NORMALS[booth.facing]


def booth_view(booth: Booth, expo: Expo, fov_deg: float = 70.0) -> View:
    """Standing in the aisle in front of the open side, looking in: the exhibitor's preview.
    Backs off until the whole open side is in view, but never into another booth."""
    fx, fy = booth_front(booth)
    fp = booth.footprint
    half = fp.depth / 2 if fy else fp.width / 2
    span = fp.width if fy else fp.depth
    c = fp.centre
    hall = expo.hall(booth.hall)
    others = [b for b in expo.booths_in(booth.hall) if b.id != booth.id]
    wanted = span / 2 / math.tan(math.radians(fov_deg) / 2) + 1.5
    step = 1.0
    while step < wanted:
        x, y = c.x + fx * (half + step + 0.25), c.y + fy * (half + step + 0.25)
        if hall is not None and not (0.5 < x < hall.width - 0.5 and 0.5 < y < hall.depth - 0.5):
            break
        if any(b.footprint.contains(Vec2(x, y), 0.4) for b in others):
            break
        step += 0.25
    eye_h = 2.9 + max(0.0, wanted - step) * 0.35  # short of room: look from higher up instead
    return View((c.x + fx * (half + step), c.y + fy * (half + step), eye_h), (c.x, c.y, 1.5))


def spawn_view(hall: Hall) -> View:
    """From behind the spawn point, looking up the hall towards the keynote (or its middle)."""
    s = hall.spawn
    goal = hall.keynote or Vec2(hall.width / 2, hall.depth / 2)
    d = math.hypot(goal.x - s.x, goal.y - s.y) or 1.0
    ux, uy = (goal.x - s.x) / d, (goal.y - s.y) / d
    return View((s.x - ux * 4.0, s.y - uy * 4.0, 5.5), (s.x + ux * 14.0, s.y + uy * 14.0, 1.0))


def _nearest_wall(hall: Hall, x: float, y: float) -> tuple[float, float]:
    """Unit vector from (x, y) towards the closest hall wall."""
    options = [(x, (-1.0, 0.0)), (hall.width - x, (1.0, 0.0)), (y, (0.0, -1.0)), (hall.depth - y, (0.0, 1.0))]
    return min(options, key=lambda o: o[0])[1]


def _rgb(colour: Colour) -> tuple[float, float, float]:
    return colour.as_floats()


class HallBuilder:
    """Builds one hall. ``regions`` maps asset paths (banners, logos, flags) to atlas UVs;
    an asset missing from it is drawn as a plain panel."""

    def __init__(self, expo: Expo, hall: Hall, regions: dict[str, UVRect], white_uv: tuple[float, float],
                 country_name: Callable[[str], str] | None = None,
                 primitive_models: Mapping[Primitive, str] | None = None, language: str = "en") -> None:
        self.expo, self.hall, self.regions = expo, hall, regions
        self.language = language  # booths' names and taglines in it where their world files give it
        self.primitive_models = primitive_models or {}  # primitives the shell shows as models
        self.solid = MeshBuilder(white_uv)
        self.glow = MeshBuilder(white_uv)
        self.labels: list[Label] = []
        self.models: list[ModelSpot] = []
        self.country_name = country_name or (lambda cc: iso.countries().get(cc, cc))

    def build(self) -> HallLayout:
        self._floor_and_walls()
        self._keynote()
        for portal in self.hall.portals:
            self._portal(portal)
        for booth in self.expo.booths_in(self.hall.id):
            self._booth(booth)
        floor = MeshBuilder()
        h = self.hall
        floor.quad((0, 0, 0), (h.width, 0, 0), (h.width, h.depth, 0), (0, h.depth, 0), rgba(_rgb(h.theme.floor)),
                   (0.0, 0.0, h.width / FLOOR_TILE, h.depth / FLOOR_TILE))
        return HallLayout(self.solid.build(), floor.build(), self.glow.build(), self._ceiling().build(),
                          tuple(self.labels), tuple(self.models), self._grout().build())

    def _grout(self) -> MeshBuilder:
        """A line where the floor texture's tiles meet (every ``FLOOR_TILE`` metres from the
        hall's corner), in the texture's grout grey over the hall's floor colour."""
        h, m = self.hall, MeshBuilder()
        fr, fg, fb = _rgb(h.theme.floor)
        grey = rgba((fr * GROUT_SHADE, fg * GROUT_SHADE, fb * GROUT_SHADE))
        w, z = GROUT / 2, 0.004  # above the floor (a depth offset would win over the avenue's runner too)
        for i in range(1, math.ceil(h.width / FLOOR_TILE)):
            x = i * FLOOR_TILE
            m.quad((x - w, 0, z), (x + w, 0, z), (x + w, h.depth, z), (x - w, h.depth, z), grey)
        for j in range(1, math.ceil(h.depth / FLOOR_TILE)):
            y = j * FLOOR_TILE
            m.quad((0, y - w, z), (h.width, y - w, z), (h.width, y + w, z), (0, y + w, z), grey)
        return m

    def _ceiling(self) -> MeshBuilder:
        """A ceiling at the top of the hall walls, a neutral grey tinted by them, with rows of
        light panels: indoors, instead of a black void over the booths."""
        h, m = self.hall, MeshBuilder()
        top = HALL_WALL_HEIGHT
        wr, wg, wb = _rgb(h.theme.walls)
        grey = (0.4 * wr + 0.36, 0.4 * wg + 0.36, 0.4 * wb + 0.372)  # 40 % walls, 60 % neutral grey
        m.quad((0, 0, top), (0, h.depth, top), (h.width, h.depth, top), (h.width, 0, top), rgba(grey))
        lit = rgba((0.98, 0.97, 0.92))
        columns, rows = max(1, round(h.width / LIGHT_PITCH)), max(1, round(h.depth / LIGHT_PITCH))
        for i in range(columns):
            for j in range(rows):
                x, y = (i + 0.5) * h.width / columns, (j + 0.5) * h.depth / rows
                z = top - 0.02
                m.quad((x - 0.6, y - 2.0, z), (x - 0.6, y + 2.0, z), (x + 0.6, y + 2.0, z), (x + 0.6, y - 2.0, z), lit)
        return m

    # ------------------------------------------------------------------ the hall

    def _floor_and_walls(self) -> None:
        h, m = self.hall, self.solid
        walls = rgba(_rgb(h.theme.walls))
        accent = rgba(_rgb(h.theme.accent))
        t, top = 0.5, HALL_WALL_HEIGHT
        m.box((-t, -t, 0), (0, h.depth + t, top), walls)
        m.box((h.width, -t, 0), (h.width + t, h.depth + t, top), walls)
        m.box((0, -t, 0), (h.width, 0, top), walls)
        m.box((0, h.depth, 0), (h.width, h.depth + t, top), walls)
        # an accent band and a skirting along the inside of every wall
        for z0, z1 in ((0.0, 0.25), (5.2, 5.6)):
            m.box((0, 0, z0), (h.width, 0.06, z1), accent)
            m.box((0, h.depth - 0.06, z0), (h.width, h.depth, z1), accent)
            m.box((0, 0, z0), (0.06, h.depth, z1), accent)
            m.box((h.width - 0.06, 0, z0), (h.width, h.depth, z1), accent)
        # a carpet runner up the avenue from the entrance to the stage
        if h.keynote is not None and abs(h.keynote.x - h.spawn.x) < 1.0:
            (ar, ag, ab), (fr, fg, fb) = _rgb(h.theme.accent), _rgb(h.theme.floor)
            runner = rgba(((ar + fr) / 2, (ag + fg) / 2, (ab + fb) / 2))
            y0, y1 = min(h.spawn.y, h.keynote.y) - 2.0, max(h.spawn.y, h.keynote.y) - 5.0
            m.quad((h.spawn.x - 1.5, y0, 0.01), (h.spawn.x + 1.5, y0, 0.01), (h.spawn.x + 1.5, y1, 0.01),
                   (h.spawn.x - 1.5, y1, 0.01), runner)
        self.labels.append(Label(h.name, (h.width / 2, 0.07, 6.3), (0.0, 1.0), 0.9, rgba(shade(_rgb(h.theme.accent), 1.4))))

    def _keynote(self) -> None:
        h, m = self.hall, self.solid
        if h.keynote is None:
            return
        k = h.keynote
        accent = _rgb(h.theme.accent)
        m.disc((k.x, k.y, 0.015), 5.0, rgba(shade(accent, 0.75)), 40)
        m.annulus((k.x, k.y, 0.02), 4.7, 5.0, rgba(shade(accent, 1.3)), 40)
        bx, by = _nearest_wall(h, k.x, k.y)  # the stage stands between the spot and that wall
        fx, fy = -bx, -by  # and faces the hall
        rx, ry = -fy, fx
        cx, cy = k.x + bx * 5.5, k.y + by * 5.5
        half_w, half_d = 5.0, 1.6
        corners = [(cx + rx * sw * half_w + fx * sd * half_d, cy + ry * sw * half_w + fy * sd * half_d)
                   for sw in (-1, 1) for sd in (-1, 1)]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        m.box((min(xs), min(ys), 0), (max(xs), max(ys), 0.6), rgba(_rgb(h.theme.walls)))
        m.box((min(xs), min(ys), 0.6), (max(xs), max(ys), 0.65), rgba(shade(accent, 1.1)))
        # the screen behind the stage, framed, with the expo's name on it
        sx, sy = cx + bx * 1.4, cy + by * 1.4
        m.sign((sx - fx * 0.05, sy - fy * 0.05, 3.6), 9.6, 4.6, (fx, fy), rgba(shade(_rgb(h.theme.walls), 0.6)))
        m.sign((sx, sy, 3.6), 9.0, 4.0, (fx, fy), rgba(shade(accent, 0.45)))
        self.labels.append(Label(self.expo.name, (sx + fx * 0.03, sy + fy * 0.03, 4.4), (fx, fy), 0.75,
                                 (1, 1, 1, 1), wrap=11.0))
        self.labels.append(Label(h.name, (sx + fx * 0.03, sy + fy * 0.03, 3.1), (fx, fy), 0.42,
                                 rgba(shade(accent, 1.5))))
        self.labels.append(Label("Keynote stage", (sx + fx * 0.03, sy + fy * 0.03, 2.1), (fx, fy), 0.3,
                                 (0.9, 0.9, 0.9, 1)))
        m.box((k.x + bx * 4.4 - 0.3, k.y + by * 4.4 - 0.3, 0.6), (k.x + bx * 4.4 + 0.3, k.y + by * 4.4 + 0.3, 1.75),
              rgba(shade(_rgb(h.theme.walls), 0.8)))  # the lectern

    def _portal(self, portal) -> None:
        h = self.hall
        p = portal.position
        bx, by = _nearest_wall(h, p.x, p.y)
        face = (-bx, -by)
        glow = (0.35, 0.95, 1.0)
        self.glow.annulus((p.x, p.y, 0.03), portal.radius * 0.8, portal.radius, rgba(glow, 0.75), 48)
        self.glow.disc((p.x, p.y, 0.025), portal.radius * 0.8, rgba(glow, 0.25), 48)
        self.glow.arch((p.x, p.y, 0.0), portal.radius, 0.16, face, rgba(glow, 0.85))
        self.glow.arch((p.x, p.y, 0.0), portal.radius + 0.35, 0.07, face, rgba(shade(glow, 1.3), 0.55))
        target = self.expo.hall(portal.target_hall)
        name = target.name if target else portal.target_hall
        self.labels.append(Label(f"To {name}", (p.x, p.y, portal.radius + 0.9), face, 0.45, (1, 1, 1, 1)))

    # ------------------------------------------------------------------ booths

    def _sign(self, asset: str | None, centre, width: float, height: float, facing, fallback) -> None:
        uv = self.regions.get(asset) if asset else None
        colour = (1.0, 1.0, 1.0, 1.0) if uv else fallback
        self.solid.sign(centre, width, height, facing, colour, uv)

    def _banner(self, booth: Booth, centre: tuple[float, float, float], width: float, facing: tuple[float, float],
                colour: tuple[float, float, float], tagline: bool = True) -> None:
        """The booth's banner image, or without one a panel in ``colour`` with the exhibitor
        (and tagline) written on it, live: an edit or the visitor's language shows at once."""
        height = width / 4
        self._sign(booth.banner, centre, width, height, facing, rgba(colour))
        if booth.banner and booth.banner in self.regions:
            return
        exhibitor, line, _about = booth.text_in(self.language)
        ink = (*ink_for(colour), 1.0)
        fx, fy = facing
        x, y, z = centre[0] + fx * 0.01, centre[1] + fy * 0.01, centre[2]  # just in front of the panel
        if not tagline:
            self.labels.append(Label(exhibitor, (x, y, z), facing, height * 0.36, ink, fit=width * 0.9))
            return
        self.labels.append(Label(exhibitor, (x, y, z + height * 0.14), facing, height * 0.3, ink, fit=width * 0.9))
        self.labels.append(Label(line, (x, y, z - height * 0.24), facing, height * 0.17, ink, fit=width * 0.9))

    def _booth(self, booth: Booth) -> None:
        m, fp = self.solid, booth.footprint
        primary, secondary = _rgb(booth.primary), _rgb(booth.secondary)
        fx, fy = booth_front(booth)
        rx, ry = -fy, fx  # to the right of someone looking into the booth from the aisle
        # the footprint: a low platform
        m.box((fp.min_x, fp.min_y, 0), (fp.max_x, fp.max_y, 0.05), rgba(shade(secondary, 1.7)))
        for x0, y0, x1, y1 in booth_walls(fp.min_x, fp.min_y, fp.max_x, fp.max_y, booth.facing):
            m.box((x0, y0, 0.05), (x1, y1, WALL_HEIGHT), rgba(primary))
            m.box((x0 - 0.02, y0 - 0.02, WALL_HEIGHT), (x1 + 0.02, y1 + 0.02, WALL_HEIGHT + 0.12), rgba(secondary))
        c = fp.centre
        half_open = fp.width / 2 if fy else fp.depth / 2  # half the open side's length
        half_deep = fp.depth / 2 if fy else fp.width / 2
        # the fascia: a header beam across the open side with the banner, flag and country
        ox, oy = c.x + fx * (half_deep - 0.1), c.y + fy * (half_deep - 0.1)
        lo = (ox - abs(rx) * half_open - abs(fx) * 0.1, oy - abs(ry) * half_open - abs(fy) * 0.1, FASCIA_BOTTOM)
        hi = (ox + abs(rx) * half_open + abs(fx) * 0.1, oy + abs(ry) * half_open + abs(fy) * 0.1, FASCIA_TOP)
        m.box(lo, hi, rgba(secondary), bottom=True)
        zc = (FASCIA_BOTTOM + FASCIA_TOP) / 2
        front = (ox + fx * 0.12, oy + fy * 0.12)
        banner_w = min(2 * half_open - 2.6, 4.4)
        self._banner(booth, (front[0], front[1], zc), banner_w, (fx, fy), primary)
        side = half_open - 0.75  # flag on the left end, logo on the right
        flag = flag_asset(booth.country)
        self._sign(flag, (front[0] - rx * side, front[1] - ry * side, zc + 0.15), 1.0, 0.625, (fx, fy), rgba(primary))
        self.labels.append(Label(self.country_name(booth.country).upper(),
                                 (front[0] - rx * side + fx * 0.01, front[1] - ry * side + fy * 0.01, FASCIA_BOTTOM + 0.16),
                                 (fx, fy), 0.15, rgba(shade(primary, 0.35)), wrap=1.35))
        self._sign(booth.logo, (front[0] + rx * side, front[1] + ry * side, zc), 0.85, 0.85, (fx, fy), rgba(primary))
        # inside: the banner again on the back wall, the logo, and a counter with the products
        back = (c.x - fx * (half_deep - 0.22), c.y - fy * (half_deep - 0.22))
        inner_w = min(2 * half_open - 1.0, 3.2)
        self._banner(booth, (back[0], back[1], 1.72), inner_w, (fx, fy), secondary, tagline=False)  # the name alone: every glyph is 4 vertices
        counter_len = min(2 * half_open * 0.6, 4.5)
        cc = (c.x - fx * (half_deep - 1.4), c.y - fy * (half_deep - 1.4))
        clo = (cc[0] - abs(rx) * counter_len / 2 - abs(fx) * 0.35, cc[1] - abs(ry) * counter_len / 2 - abs(fy) * 0.35, 0.05)
        chi = (cc[0] + abs(rx) * counter_len / 2 + abs(fx) * 0.35, cc[1] + abs(ry) * counter_len / 2 + abs(fy) * 0.35, COUNTER_HEIGHT - 0.05)
        m.box(clo, chi, rgba(secondary))
        m.box((clo[0] - 0.04, clo[1] - 0.04, COUNTER_HEIGHT - 0.05), (chi[0] + 0.04, chi[1] + 0.04, COUNTER_HEIGHT),
              rgba((0.95, 0.94, 0.9)))
        self._sign(booth.logo, (cc[0] + fx * 0.36, cc[1] + fy * 0.36, 0.55), 0.6, 0.6, (fx, fy), rgba(primary))
        products = booth.catalogue
        room = counter_len / max(len(products), 1)
        for i, product in enumerate(products):
            t = (i + 0.5) / len(products) - 0.5
            px, py = cc[0] + rx * t * counter_len, cc[1] + ry * t * counter_len
            self._product(product, (px, py, COUNTER_HEIGHT), room, booth)
            if product.image and product.image in self.regions:
                # the product's picture on a little card at the counter's front edge, facing the aisle
                side = min(0.24, room * 0.8)
                card = (px + fx * 0.33, py + fy * 0.33, COUNTER_HEIGHT + side / 2 + 0.01)
                self.solid.sign((card[0] - fx * 0.005, card[1] - fy * 0.005, card[2]), side + 0.03, side + 0.03, (fx, fy),
                                rgba(shade(secondary, 0.5)))
                self._sign(product.image, card, side, side, (fx, fy), rgba((0.95, 0.94, 0.9)))
        if booth.kind is BoothKind.BANK:
            self.labels.append(Label("Open an account here", (back[0] + fx * 0.01, back[1] + fy * 0.01, 1.15),
                                     (fx, fy), 0.22, rgba(shade(secondary, 1.4))))

    def _product(self, product: Product, base: tuple[float, float, float], room: float, booth: Booth) -> None:
        d = product.display
        size = max(0.15, min(d.scale, 0.8, room * 0.8))
        colour = rgba(_rgb(d.colour))
        model = d.model or (self.primitive_models.get(d.primitive) if d.primitive else None)
        if model is not None:
            self.models.append(ModelSpot(model, base, size, colour, d.primitive or Primitive.BOX))
            return
        draw_primitive(self.solid, d.primitive, base, size, colour)


def hall_assets(expo: Expo, hall: Hall) -> dict[str, tuple[float, float, float]]:
    """The asset paths of every sign in the hall (banners, logos, flags, the products'
    pictures on the counters), for the atlas, each with the colour of the panel it hangs on
    (what shows through a transparent logo)."""
    out: dict[str, tuple[float, float, float]] = {}
    for booth in expo.booths_in(hall.id):
        for asset in (booth.banner, booth.logo, flag_asset(booth.country)):
            if asset:
                out.setdefault(asset, _rgb(booth.secondary))
        for product in booth.catalogue:  # the picture cards on the counter
            if product.image:
                out.setdefault(product.image, (0.95, 0.94, 0.9))
    return out
