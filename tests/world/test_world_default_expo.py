"""The Silk Road Expo that ships with the package: valid, complete, walkable, and its assets."""

from __future__ import annotations

import itertools
from decimal import Decimal

import msgpack
import pytest

from world import assets_root, default_expo_path, flag_asset, from_manifest, iso, load_expo, to_manifest
from world.model import BoothKind


@pytest.fixture(scope="module")
def expo():
    return load_expo(default_expo_path())


def test_counts(expo):
    assert len(expo.halls) >= 2
    assert all(hall.keynote is not None and hall.portals for hall in expo.halls)
    exhibitors = [b for b in expo.booths if b.kind is BoothKind.EXHIBITOR]
    assert len(exhibitors) >= 22
    assert len({b.country for b in exhibitors}) >= 15
    assert all(3 <= len(b.catalogue) <= 6 for b in exhibitors)
    assert [b.catalogue[0].currency for b in expo.booths if b.kind is BoothKind.BANK] == ["USD"]


def test_every_booth_prices_in_a_live_currency_of_a_real_country(expo):
    for booth in expo.booths:
        assert booth.country in iso.countries()
        for product in booth.catalogue:
            assert iso.currency_problem(product.currency) is None
            assert product.price > 0 and product.stock >= 10 and product.limit_per_visitor >= 1


def test_exhibitors_price_in_their_own_currency(expo):
    from babel.numbers import get_territory_currencies
    for booth in expo.booths:
        if booth.kind is BoothKind.EXHIBITOR:
            own = get_territory_currencies(booth.country, tender=True)
            assert {p.currency for p in booth.catalogue} <= set(own), booth.id


def test_booths_stand_in_rows_with_aisles_of_at_least_4_m(expo):
    for hall in expo.halls:
        for a, b in itertools.combinations(expo.booths_in(hall.id), 2):
            fa, fb = a.footprint, b.footprint
            gap_x = max(fa.min_x - fb.max_x, fb.min_x - fa.max_x)
            gap_y = max(fa.min_y - fb.max_y, fb.min_y - fa.max_y)
            assert max(gap_x, gap_y) >= 4, (a.id, b.id)


def test_every_asset_and_flag_exists(expo):
    root = assets_root(expo.root)
    paths = {flag_asset(b.country) for b in expo.booths}
    for booth in expo.booths:
        paths |= {booth.banner, booth.logo} | {p.image for p in booth.catalogue}
    assert all((root / path).is_file() for path in paths if path)
    assert sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) < 2_000_000


def test_manifest_round_trips_through_msgpack(expo):
    data = msgpack.unpackb(msgpack.packb(to_manifest(expo)))
    assert from_manifest(data) == expo


def test_manifest_prices(expo):
    data = to_manifest(expo)
    honey = next(p for b in data["booths"] for p in b["catalogue"] if p["sku"] == "KZ-HONEY-500")
    assert (honey["price"], honey["price_minor"], honey["currency"]) == ("4500.00", 450000, "KZT")
    coffee = next(p for b in data["booths"] for p in b["catalogue"] if p["sku"] == "VN-ROBUSTA-500")
    assert (coffee["price"], coffee["price_minor"]) == ("180000", 180000)
    assert data["booths"][0]["flag"] == flag_asset(data["booths"][0]["country"])


@pytest.mark.parametrize("damage", [lambda d: d.update(format=99), lambda d: d.pop("halls"),
                                    lambda d: d["booths"][0].update(facing="up"),
                                    lambda d: d["booths"][0]["catalogue"][0].update(price="lots")])
def test_from_manifest_rejects_what_it_does_not_understand(expo, damage):
    data = to_manifest(expo)
    damage(data)
    with pytest.raises(ValueError):
        from_manifest(data)


def test_minor_units_are_exact():
    assert iso.to_minor_units(Decimal("12.5"), "USD") == 1250
    assert iso.from_minor_units(1250, "USD") == Decimal("12.50")
    with pytest.raises(ValueError):
        iso.to_minor_units(Decimal("1.5"), "VND")
    assert iso.to_minor_units(Decimal("1.25"), "HUF") == 125  # ISO 4217, not CLDR's display digits
    assert iso.currency_problem("XAU") is not None  # gold has no minor unit: it cannot price a product
