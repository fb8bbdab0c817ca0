"""The expo as plain data (str/int/float/bool/None/list/dict) for msgpack.

The server sends ``to_manifest(expo)`` to each client at join, so clients need no copy of
the world files. Keys follow the world-file keys. Prices travel as decimal strings and as
integer minor units (what the bank counts in); ``from_manifest`` reads the string.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from . import iso
from .assets import flag_asset
from .model import (
    Booth,
    BoothKind,
    BoothText,
    Category,
    Colour,
    Display,
    Expo,
    Facing,
    Hall,
    HallTheme,
    Portal,
    Primitive,
    Product,
    Rect,
    StaffMember,
    Vec2,
    Wholesale,
)

FORMAT = 1  # bump when a key changes meaning


def to_manifest(expo: Expo) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "id": expo.id,
        "name": expo.name,
        "starts": expo.starts.isoformat(),
        "ends": expo.ends.isoformat(),
        "halls": [_hall(h) for h in expo.halls],
        "booths": [_booth(b) for b in expo.booths],
    }


def from_manifest(data: dict[str, Any]) -> Expo:
    """Rebuilds the model; raises ValueError when ``data`` is not a manifest we understand."""
    try:
        if data["format"] != FORMAT:
            raise ValueError(f"manifest format {data['format']!r}, expected {FORMAT}")
        return Expo(
            id=data["id"], name=data["name"],
            starts=dt.date.fromisoformat(data["starts"]), ends=dt.date.fromisoformat(data["ends"]),
            halls=tuple(_read_hall(h) for h in data["halls"]),
            booths=tuple(_read_booth(b) for b in data["booths"]),
        )
    except (KeyError, TypeError, AttributeError, ArithmeticError) as error:
        raise ValueError(f"malformed manifest: {error!r}") from error


def _xy(v: Vec2) -> list[float]:
    return [v.x, v.y]


def _vec(pair: list[float]) -> Vec2:
    x, y = pair
    return Vec2(float(x), float(y))


def _hall(h: Hall) -> dict[str, Any]:
    return {
        "id": h.id, "name": h.name, "size": [h.width, h.depth], "spawn": _xy(h.spawn),
        "keynote": _xy(h.keynote) if h.keynote else None,
        "theme": {"floor": h.theme.floor.hex, "walls": h.theme.walls.hex, "accent": h.theme.accent.hex},
        "portals": [{"id": p.id, "position": _xy(p.position), "radius": p.radius,
                     "target_hall": p.target_hall, "target": _xy(p.target)} for p in h.portals],
    }


def _read_hall(d: dict[str, Any]) -> Hall:
    theme = d["theme"]
    return Hall(
        id=d["id"], name=d["name"], width=float(d["size"][0]), depth=float(d["size"][1]),
        spawn=_vec(d["spawn"]),
        theme=HallTheme(*(Colour.from_hex(theme[k]) for k in ("floor", "walls", "accent"))),
        portals=tuple(Portal(p["id"], _vec(p["position"]), float(p["radius"]), p["target_hall"],
                             _vec(p["target"])) for p in d["portals"]),
        keynote=_vec(d["keynote"]) if d["keynote"] is not None else None,
    )


def _booth(b: Booth) -> dict[str, Any]:
    return {
        "id": b.id, "hall": b.hall, "kind": b.kind.value,
        "position": _xy(b.footprint.centre), "size": [b.footprint.width, b.footprint.depth],
        "facing": b.facing.value, "exhibitor": b.exhibitor, "country": b.country,
        "flag": flag_asset(b.country), "tagline": b.tagline, "description": b.description,
        "primary": b.primary.hex, "secondary": b.secondary.hex, "banner": b.banner, "logo": b.logo,
        "staff": [{"name": s.name, "role": s.role} for s in b.staff],
        "catalogue": [_product(p) for p in b.catalogue],
        "source": b.source,
        "category": b.category.value if b.category else None,
        "translations": {lang: {"exhibitor": t.exhibitor, "tagline": t.tagline, "description": t.description}
                         for lang, t in b.translations},
    }


def _read_booth(d: dict[str, Any]) -> Booth:
    return Booth(
        id=d["id"], hall=d["hall"], kind=BoothKind(d["kind"]),
        footprint=Rect(_vec(d["position"]), float(d["size"][0]), float(d["size"][1])),
        facing=Facing(d["facing"]), exhibitor=d["exhibitor"], country=d["country"],
        tagline=d["tagline"], description=d["description"],
        primary=Colour.from_hex(d["primary"]), secondary=Colour.from_hex(d["secondary"]),
        banner=d["banner"], logo=d["logo"],
        staff=tuple(StaffMember(s["name"], s["role"]) for s in d["staff"]),
        catalogue=tuple(_read_product(p) for p in d["catalogue"]),
        source=d["source"],
        category=Category(d["category"]) if d.get("category") else None,
        translations=tuple(sorted((lang, BoothText(t.get("exhibitor"), t.get("tagline"), t.get("description")))
                                  for lang, t in d.get("translations", {}).items())),
    )


def _product(p: Product) -> dict[str, Any]:
    minor = iso.to_minor_units(p.price, p.currency)
    return {
        "sku": p.sku, "name": p.name, "description": p.description,
        "price": str(iso.from_minor_units(minor, p.currency)), "price_minor": minor,
        "currency": p.currency, "stock": p.stock, "max_per_visitor": p.limit_per_visitor,
        "display": {"primitive": p.display.primitive.value if p.display.primitive else None,
                    "model": p.display.model, "colour": p.display.colour.hex,
                    "scale": p.display.scale},
        "image": p.image,
        "wholesale": None if p.wholesale is None else {  # a standing B2B price list: RFQs get quoted at once
            "tiers": [list(t) for t in p.wholesale.tiers], "lead_days": p.wholesale.lead_days,
            "deposit_percent": p.wholesale.deposit_percent, "valid_days": p.wholesale.valid_days},
    }


def _read_product(d: dict[str, Any]) -> Product:
    display = d["display"]
    return Product(
        sku=d["sku"], name=d["name"], description=d["description"], price=Decimal(d["price"]),
        currency=d["currency"], stock=d["stock"], limit_per_visitor=d["max_per_visitor"],
        display=Display(Primitive(display["primitive"]) if display["primitive"] else None,
                        display["model"], Colour.from_hex(display["colour"]), float(display["scale"])),
        image=d["image"],
        wholesale=None if not d.get("wholesale") else Wholesale(
            tuple((int(q), str(price)) for q, price in d["wholesale"]["tiers"]), d["wholesale"]["lead_days"],
            d["wholesale"]["deposit_percent"], d["wholesale"]["valid_days"]),
    )
