"""The expo as data: frozen dataclasses the loader builds and everyone else reads.

Coordinates are metres in a hall's own frame: x grows east, y grows north, z is up
(Panda3D's convention). A hall spans ``0 <= x <= width`` and ``0 <= y <= depth``.
Booths are axis-aligned rectangles with walls on three sides; ``facing`` names the open side.
Money is ``Decimal`` here; the bank and the wire use integer minor units.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Vec2:
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Colour:
    """An sRGB colour, written ``"#rrggbb"`` in world files."""

    r: int
    g: int
    b: int

    @classmethod
    def from_hex(cls, text: str) -> Colour:
        if len(text) != 7 or text[0] != "#":
            raise ValueError(f"colour must look like '#rrggbb', got {text!r}")
        value = int(text[1:], 16)
        return cls((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF)

    @property
    def hex(self) -> str:
        return f"#{self.r:02x}{self.g:02x}{self.b:02x}"

    def as_floats(self) -> tuple[float, float, float]:
        return (self.r / 255.0, self.g / 255.0, self.b / 255.0)


@dataclass(frozen=True, slots=True)
class Rect:
    """Axis-aligned rectangle given by its centre and full size."""

    centre: Vec2
    width: float  # along x
    depth: float  # along y

    @property
    def min_x(self) -> float:
        return self.centre.x - self.width / 2

    @property
    def max_x(self) -> float:
        return self.centre.x + self.width / 2

    @property
    def min_y(self) -> float:
        return self.centre.y - self.depth / 2

    @property
    def max_y(self) -> float:
        return self.centre.y + self.depth / 2

    def overlaps(self, other: Rect) -> bool:
        return (
            self.min_x < other.max_x
            and other.min_x < self.max_x
            and self.min_y < other.max_y
            and other.min_y < self.max_y
        )

    def contains(self, point: Vec2, margin: float = 0.0) -> bool:
        return (
            self.min_x - margin <= point.x <= self.max_x + margin
            and self.min_y - margin <= point.y <= self.max_y + margin
        )


class Facing(str, Enum):
    """The open side of a booth; the other three sides are walls."""

    NORTH = "north"
    SOUTH = "south"
    EAST = "east"
    WEST = "west"


FACING_NORMALS: dict[Facing, tuple[float, float]] = {
    Facing.NORTH: (0.0, 1.0), Facing.SOUTH: (0.0, -1.0), Facing.EAST: (1.0, 0.0), Facing.WEST: (-1.0, 0.0),
}  # the unit vector out of a booth's open side, in the hall's x/y


class BoothKind(str, Enum):
    EXHIBITOR = "exhibitor"
    BANK = "bank"  # the digital bank's own booth, where visitors open accounts


class Category(str, Enum):
    """What a booth sells, for the visitors' directory filter: a short fixed list, so a
    filter finds every booth of its kind (free words would split "tea" from "drinks")."""

    FOOD = "food"
    DRINKS = "drinks"
    TEXTILES = "textiles"
    CRAFTS = "crafts"
    BEAUTY = "beauty"
    FINANCE = "finance"


class Primitive(str, Enum):
    BOX = "box"
    SPHERE = "sphere"
    CYLINDER = "cylinder"
    CONE = "cone"


@dataclass(frozen=True, slots=True)
class HallTheme:
    floor: Colour
    walls: Colour
    accent: Colour


@dataclass(frozen=True, slots=True)
class Portal:
    """A doorway: stepping within ``radius`` of ``position`` moves an avatar to ``target``
    in ``target_hall``."""

    id: str
    position: Vec2
    radius: float
    target_hall: str
    target: Vec2


@dataclass(frozen=True, slots=True)
class Hall:
    id: str
    name: str
    width: float  # metres along x
    depth: float  # metres along y
    spawn: Vec2
    theme: HallTheme
    portals: tuple[Portal, ...] = ()
    keynote: Vec2 | None = None  # a stage where crowds gather, if the hall has one

    def contains(self, point: Vec2) -> bool:
        return 0.0 <= point.x <= self.width and 0.0 <= point.y <= self.depth


@dataclass(frozen=True, slots=True)
class Display:
    """How a product stands on the counter: a model file or a coloured primitive."""

    primitive: Primitive | None
    model: str | None  # asset path relative to the assets root
    colour: Colour
    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class Wholesale:
    """A product's standing B2B price list: the server answers a request for quotation from it
    at once (server/deals). Prices in the product's currency, major units."""

    tiers: tuple[tuple[int, str], ...]  # (from this many units, unit price), increasing
    lead_days: int
    deposit_percent: int
    valid_days: int  # how long a quotation from it stands


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    description: str
    price: Decimal  # in ``currency``'s major unit, e.g. Decimal("12.50")
    currency: str  # ISO 4217
    stock: int
    limit_per_visitor: int
    display: Display
    image: str | None = None  # asset path
    wholesale: Wholesale | None = None  # answers RFQs without staff when given


@dataclass(frozen=True, slots=True)
class StaffMember:
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class BoothText:
    """A booth's words in one more language (``[translations.<language>]``); what is None
    reads as the exhibitor's own."""

    exhibitor: str | None = None
    tagline: str | None = None
    description: str | None = None


def language_key(language: str) -> str:
    """One spelling per language tag: ``zh-Hans`` and ``zh_Hans`` are the same language."""
    return language.replace("-", "_")


@dataclass(frozen=True, slots=True)
class Booth:
    id: str
    hall: str
    footprint: Rect
    facing: Facing
    exhibitor: str
    country: str  # ISO 3166-1 alpha-2
    tagline: str
    description: str
    primary: Colour
    secondary: Colour
    banner: str | None  # asset path
    logo: str | None  # asset path
    staff: tuple[StaffMember, ...]
    catalogue: tuple[Product, ...]
    kind: BoothKind = BoothKind.EXHIBITOR
    source: str = ""  # the file it came from, for messages
    translations: tuple[tuple[str, BoothText], ...] = ()  # (language_key, text), sorted
    category: Category | None = None

    def product(self, sku: str) -> Product | None:
        return next((p for p in self.catalogue if p.sku == sku), None)

    def staff_post(self) -> tuple[Vec2, float]:
        """Where the booth's staff appear and which way they look: halfway between the centre
        and the back wall, facing the open side, so a visitor walking up meets them."""
        c, f = self.footprint.centre, self.footprint
        return {
            Facing.SOUTH: (Vec2(c.x, c.y + f.depth / 4), -math.pi / 2),
            Facing.NORTH: (Vec2(c.x, c.y - f.depth / 4), math.pi / 2),
            Facing.EAST: (Vec2(c.x - f.width / 4, c.y), 0.0),
            Facing.WEST: (Vec2(c.x + f.width / 4, c.y), math.pi),
        }[self.facing]

    def text_in(self, language: str) -> tuple[str, str, str]:
        """Exhibitor, tagline and description in ``language`` (its exact tag, else one of its
        primary language, ``zh`` for ``zh_Hans``), each falling back to the exhibitor's own."""
        wanted = language_key(language)
        found = dict(self.translations)
        t = found.get(wanted) or next((v for k, v in self.translations if k.split("_")[0] == wanted.split("_")[0]), None)
        if t is None:
            return self.exhibitor, self.tagline, self.description
        return t.exhibitor or self.exhibitor, t.tagline or self.tagline, t.description or self.description


@dataclass(frozen=True, slots=True)
class Expo:
    id: str
    name: str
    starts: dt.date
    ends: dt.date
    halls: tuple[Hall, ...]
    booths: tuple[Booth, ...]
    root: Path | None = field(default=None, compare=False)

    def hall(self, hall_id: str) -> Hall | None:
        return next((h for h in self.halls if h.id == hall_id), None)

    def booth(self, booth_id: str) -> Booth | None:
        return next((b for b in self.booths if b.id == booth_id), None)

    def booths_in(self, hall_id: str) -> tuple[Booth, ...]:
        return tuple(b for b in self.booths if b.hall == hall_id)

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted({p.currency for b in self.booths for p in b.catalogue}))
