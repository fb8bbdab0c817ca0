"""World files -> ``Expo``: reads ``expo.toml`` and ``booths/**/*.toml``, reporting every problem.

``check_files`` is the pure core (bytes in, model and problems out), so tests and tools can
check text without touching a disk; ``check_expo`` and ``load_expo`` add the file reading.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import fields as f
from . import iso
from .assets import assets_root
from .fields import FileReport, Table
from .locate import KeyLines
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
    Wholesale,
    language_key,
)
from .problems import Problem, WorldError
from .validate import BoothLayout, HallLayout, PortalLayout, check_booths, check_halls

EXPO_FILE = "expo.toml"
BOOTHS_DIR = "booths"

AssetExists = Callable[[str], bool]


def default_expo_path() -> Path:
    """The expo shipped with the package: the Silk Road Expo."""
    return Path(__file__).resolve().parent / "expos" / "silk-road"


def check_expo(path: str | Path | None = None) -> tuple[Expo | None, list[Problem]]:
    """Reads the expo in directory ``path``; the Expo is None unless there are no problems."""
    root = Path(path) if path is not None else default_expo_path()
    if root.name == EXPO_FILE and root.is_file():  # "check my-expo/expo.toml" means the directory
        root = root.parent
    expo_file = root / EXPO_FILE
    expo_bytes = expo_file.read_bytes() if expo_file.is_file() else None
    booth_files = sorted((root / BOOTHS_DIR).rglob("*.toml"))
    booths = {p.relative_to(root).as_posix(): p.read_bytes() for p in booth_files}
    assets = assets_root(root)
    expo, problems = check_files(root, expo_bytes, booths, lambda a: (assets / a).is_file())
    return (replace(expo, root=root) if expo else None), problems


def load_expo(path: str | Path | None = None) -> Expo:
    """Like ``check_expo`` but raises ``WorldError`` carrying every problem."""
    expo, problems = check_expo(path)
    if expo is None:
        raise WorldError(problems)
    return expo


def check_files(label: str | Path, expo_toml: bytes | None, booths: Mapping[str, bytes],
                asset_exists: AssetExists) -> tuple[Expo | None, list[Problem]]:
    """Checks the text of an expo's files, keyed by their path relative to the expo directory.

    ``label`` is the expo directory as the user named it; problems name files under it.
    """
    problems: list[Problem] = []
    label = Path(label)
    expo_report = FileReport(str(label / EXPO_FILE), None, problems)
    header: dict[str, Any] | None = None
    halls: list[Hall | None] = []
    hall_layouts: list[HallLayout] | None = None
    if expo_toml is None:
        expo_report("", f"no {EXPO_FILE} in this directory")
    else:
        parsed = _parse(expo_report, expo_toml)
        if parsed is not None:
            header, halls, hall_layouts = _read_expo(Table(parsed, "", expo_report))

    built: list[Booth | None] = []
    booth_layouts: list[BoothLayout] = []
    for source, data in sorted(booths.items()):
        report = FileReport(str(label / source), None, problems)
        parsed = _parse(report, data)
        if parsed is not None:
            booth, layout = _read_booth(Table(parsed, "", report), source, asset_exists)
            built.append(booth)
            booth_layouts.append(layout)

    arrivals = check_halls(expo_report, hall_layouts or [])
    check_booths(hall_layouts, arrivals, booth_layouts)

    order = {name: n for n, name in enumerate([expo_report.file, *(str(label / s) for s in sorted(booths))])}
    problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line or 0))
    if problems or header is None:
        return None, problems
    expo = Expo(halls=tuple(h for h in halls if h), booths=tuple(b for b in built if b), **header)
    return expo, problems


# -- parsing ---------------------------------------------------------------------------

_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_AT_END = re.compile(r"\s*\(at end of document\)$")


def _parse(report: FileReport, data: bytes) -> dict[str, Any] | None:
    """TOML -> dict, or None after reporting where the syntax is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - data.rfind(b"\n", 0, error.start)
        report.syntax(line, column, "the file is not UTF-8 text")
        return None
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        if match := _POSITION.search(message):
            line, column = int(match[1]), int(match[2])
        else:
            lines = text.split("\n")
            line, column = len(lines), len(lines[-1]) + 1
        report.syntax(line, column, "TOML syntax: " + _AT_END.sub("", _POSITION.sub("", message)))
        return None
    report.lines = KeyLines(text)
    return parsed


# -- expo.toml -------------------------------------------------------------------------

def _read_expo(t: Table) -> tuple[dict[str, Any] | None, list[Hall | None], list[HallLayout] | None]:
    starts, ends = t.get("starts", f.date), t.get("ends", f.date)
    header = {"id": t.get("id", f.ident), "name": t.get("name", f.text), "starts": starts, "ends": ends}
    if starts and ends and ends < starts:
        t.problem("ends", f"the expo ends ({ends}) before it starts ({starts})")
    read = [_read_hall(hall) for hall in t.tables("halls")]
    if "halls" in t.data and not read and isinstance(t.data["halls"], list):
        t.problem("halls", "an expo needs at least one hall")
    t.finish()
    ok = not t.broken and all(hall for hall, _ in read)
    layouts = [layout for _, layout in read] or None  # None: no hall could be read at all
    return (header if ok else None), [hall for hall, _ in read], layouts


def _read_hall(t: Table) -> tuple[Hall | None, HallLayout]:
    hall_id = t.get("id", f.ident)
    name = t.get("name", f.text)
    size = t.get("size", f.size)
    spawn = t.get("spawn", f.point)
    keynote = t.get("keynote", f.point, required=False)
    theme = t.need(_read_theme(t.table("theme")))
    portals = [_read_portal(p) for p in t.tables("portals", required=False)]
    t.finish()
    layout = HallLayout(t.path, hall_id, size, spawn, keynote, tuple(lay for _, lay in portals))
    if t.broken or not all(p for p, _ in portals):
        return None, layout
    return Hall(hall_id, name, size[0], size[1], spawn, theme,  # type: ignore[arg-type,index]
                tuple(p for p, _ in portals), keynote), layout  # type: ignore[misc]


def _read_theme(t: Table | None) -> HallTheme | None:
    if t is None:
        return None
    floor, walls, accent = (t.get(key, f.colour) for key in ("floor", "walls", "accent"))
    t.finish()
    return None if t.broken else HallTheme(floor, walls, accent)  # type: ignore[arg-type]


def _read_portal(t: Table) -> tuple[Portal | None, PortalLayout]:
    values = (t.get("id", f.ident), t.get("position", f.point), t.get("radius", f.positive),
              t.get("target_hall", f.ident), t.get("target", f.point))
    t.finish()
    return (None if t.broken else Portal(*values)), PortalLayout(t.path, *values)  # type: ignore[arg-type]


# -- booths/*.toml ---------------------------------------------------------------------

def _read_booth(t: Table, source: str, exists: AssetExists) -> tuple[Booth | None, BoothLayout]:
    booth_id = t.get("id", f.ident)
    hall = t.get("hall", f.ident)
    position = t.get("position", f.point)
    size = t.get("size", f.size)
    facing = t.get("facing", f.choice(Facing))
    kind = t.get("kind", f.choice(BoothKind), BoothKind.EXHIBITOR, required=False)
    exhibitor = t.get("exhibitor", f.text)
    country = t.get("country", f.country)
    category = t.get("category", f.choice(Category), required=False)
    tagline = t.get("tagline", f.text)
    description = t.get("description", f.text)
    primary = t.get("primary", f.colour)
    secondary = t.get("secondary", f.colour)
    banner = t.get("banner", f.asset(exists), required=False)
    logo = t.get("logo", f.asset(exists), required=False)
    currency = t.get("currency", f.currency, required=False)
    staff = [_read_staff(s) for s in t.tables("staff", required=False)]
    products = _read_catalogue(t, currency, "currency" in t.data, primary, exists)
    translations = _read_translations(t.table("translations")) if "translations" in t.data else ()
    if translations is None:
        t.broken = True
    t.finish()

    rect = Rect(position, *size) if position and size else None
    layout = BoothLayout(t.report, booth_id, hall, rect)
    if t.broken or not all(staff) or not all(products):
        return None, layout
    return Booth(booth_id, hall, rect, facing, exhibitor, country, tagline, description,  # type: ignore[arg-type]
                 primary, secondary, banner, logo, tuple(staff), tuple(products),  # type: ignore[arg-type]
                 kind, source, translations or (), category), layout  # type: ignore[arg-type]


LANGUAGE_TAG = re.compile(r"[a-z]{2,3}([_-][A-Za-z0-9]{2,8})*")


def _read_translations(t: Table | None) -> tuple[tuple[str, BoothText], ...] | None:
    """``[translations.zh_Hans]`` and the like: the booth's exhibitor name, tagline and
    description in that language, each optional but at least one. None when any is bad."""
    if t is None:
        return None
    out: dict[str, BoothText] = {}
    broken = False
    for language in t.data:
        if not LANGUAGE_TAG.fullmatch(language):
            t.problem(language, "not a language tag (like 'zh_Hans', 'ru' or 'ms')")
            broken = True
            continue
        if language_key(language) in out:
            t.problem(language, f"a second entry for {language_key(language)!r}")
            broken = True
            continue
        entry = t.table(language)
        if entry is None:
            broken = True
            continue
        words = BoothText(*(entry.get(key, f.text, required=False) for key in ("exhibitor", "tagline", "description")))
        entry.finish()
        if entry.broken:
            broken = True
        elif words == BoothText():
            t.problem(language, "a translation needs at least one of exhibitor, tagline, description")
            broken = True
        else:
            out[language_key(language)] = words
    return None if broken else tuple(sorted(out.items()))  # every key looked at: no finish()


def _read_staff(t: Table) -> StaffMember | None:
    name, role = t.get("name", f.text), t.get("role", f.text)
    t.finish()
    return None if t.broken else StaffMember(name, role)  # type: ignore[arg-type]


def _read_catalogue(booth: Table, currency: str | None, booth_has_currency: bool,
                    primary: Colour | None, exists: AssetExists) -> list[Product | None]:
    rows = booth.tables("catalogue")
    if "catalogue" in booth.data and not rows and isinstance(booth.data["catalogue"], list):
        booth.problem("catalogue", "the catalogue is empty: a booth shows at least one product")
    products = []
    first_row: dict[str, str] = {}
    for row in rows:
        products.append(_read_product(row, currency, booth_has_currency, primary, exists))
        sku = row.data.get("sku")
        if isinstance(sku, str):
            if sku in first_row:
                row.problem("sku", f"sku {sku!r} is already used by {first_row[sku]}")
            first_row.setdefault(sku, row.path)
    return products


_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _sku(value: object) -> str:
    if not _SKU.fullmatch(f.text(value)):
        raise f.Bad(f"a sku uses letters, digits, '.', '-' and '_', got {value!r}")
    return value  # type: ignore[return-value]


def _read_product(t: Table, booth_currency: str | None, booth_has_currency: bool,
                  primary: Colour | None, exists: AssetExists) -> Product | None:
    sku = t.get("sku", _sku)
    name = t.get("name", f.text)
    description = t.get("description", f.text)
    price = t.get("price", f.price_text)
    currency = t.get("currency", f.currency, booth_currency, required=not booth_has_currency)
    if price is not None and currency is not None:
        places = iso.decimals(currency)
        exponent = price.normalize().as_tuple().exponent
        assert isinstance(exponent, int), "price_text takes finite prices only"
        if -min(exponent, 0) > places:
            t.broken = True
            t.problem("price", f"{currency} prices have at most {places} decimal"
                      f"{'s' if places != 1 else ''}, got {t.data['price']!r}")
    stock = t.get("stock", f.integer(0))
    limit = t.get("max_per_visitor", f.integer(1, " per visitor"))
    display = t.need(_read_display(t.table("display"), primary, exists))
    image = t.get("image", f.asset(exists), required=False)
    wholesale = t.need(_read_wholesale(t.table("wholesale"))) if "wholesale" in t.data else None
    t.finish()
    if t.broken or currency is None:
        return None
    return Product(sku, name, description, price, currency, stock, limit, display, image,  # type: ignore[arg-type]
                   wholesale)


def _tiers(value: object) -> tuple[tuple[int, str], ...]:
    """``[[1, "5000"], [100, "4200"]]``: from this many units, this unit price (a string)."""
    if not isinstance(value, list) or not 1 <= len(value) <= 8:
        raise f.Bad(f"tiers are a list of 1 to 8 [from_qty, price] pairs, got {value!r}")
    tiers = []
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int) and not isinstance(pair[0], bool)
                and pair[0] >= 1):
            raise f.Bad(f"a tier is [from_qty, \"price\"] with from_qty at least 1, got {pair!r}")
        tiers.append((pair[0], str(f.price_text(pair[1]))))
    if [q for q, _ in tiers] != sorted({q for q, _ in tiers}):
        raise f.Bad("tiers go by strictly increasing from_qty")
    return tuple(tiers)


def _read_wholesale(t: Table | None) -> Wholesale | None:
    if t is None:
        return None
    tiers = t.get("tiers", _tiers)
    lead_days = t.get("lead_days", f.integer(0))
    deposit = t.get("deposit_percent", f.integer(0))
    valid_days = t.get("valid_days", f.integer(1), 7, required=False)
    t.finish()
    if deposit is not None and deposit > 100:
        t.broken = True
        t.problem("deposit_percent", f"a deposit is 0 to 100 percent, got {deposit}")
    if t.broken:
        return None
    return Wholesale(tiers, lead_days, deposit, valid_days)  # type: ignore[arg-type]


def _read_display(t: Table | None, primary: Colour | None, exists: AssetExists) -> Display | None:
    if t is None:
        return None
    primitive = t.get("primitive", f.choice(Primitive), required=False)
    model = t.get("model", f.asset(exists), required=False)
    colour = t.get("colour", f.colour, primary, required=False)
    scale = t.get("scale", f.positive, 1.0, required=False)
    given = [key for key in ("primitive", "model") if key in t.data]
    if len(given) != 1:
        t.broken = True
        t.report(t.path, "give either primitive (box, sphere, cylinder, cone) or model (an asset path)"
                 if not given else "give primitive or model, not both")
    t.finish()
    if t.broken or colour is None:
        return None
    return Display(primitive, model, colour, scale)  # type: ignore[arg-type]
