"""The booth directory: find a booth by exhibitor, country, product or what it says about
itself, then "walk me there". Pure: the expo in, ranked matches out.

Matching is by words, each word of the query found somewhere in the booth's text (its
exhibitor, country in English, hall, tagline, description, in every language the world
file gives them, products' names and descriptions, and its category), ignoring case and accents ("sumadija" finds "Šumadija").
Booths whose name or country match rank before those matched only in a product's
description. A category filter (Tab in the directory steps through them) keeps only the
booths of that kind; booths whose world file gives no category show only unfiltered.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from world import iso
from world.model import Booth, Category, Expo

from .i18n import _


def fold(text: str) -> str:
    """Lower case without accents: what a person types for what the files spell."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True, slots=True)
class Match:
    booth: Booth
    hall: str  # the hall's name
    why: str  # what matched, for the result line: the country, or the product


def next_category(current: Category | None) -> Category | None:
    """The filter after ``current``: each category in turn, then none (every booth)."""
    order: list[Category | None] = [None, *Category]
    return order[(order.index(current) + 1) % len(order)]


def category_label(category: Category | None) -> str:
    """The filter as the directory shows it, in the visitor's language."""
    labels = {None: _("all kinds"), Category.FOOD: _("food"), Category.DRINKS: _("drinks"),
              Category.TEXTILES: _("textiles"), Category.CRAFTS: _("crafts"), Category.BEAUTY: _("beauty"),
              Category.FINANCE: _("finance")}
    return labels[category]


def search(expo: Expo, query: str, limit: int = 8, category: Category | None = None) -> list[Match]:
    """Booths for ``query``, best first; every booth (by hall, then name) for an empty one;
    only those of ``category`` when one is given."""
    words = fold(query).split()
    halls = {hall.id: hall.name for hall in expo.halls}
    names = iso.countries()
    scored: list[tuple[int, str, Match]] = []
    for booth in expo.booths:
        if category is not None and booth.category is not category:
            continue
        country = names.get(booth.country, booth.country)
        spoken = [t for _lang, t in booth.translations]
        kind = (booth.category.value, category_label(booth.category)) if booth.category else ()
        head = fold(" ".join((booth.exhibitor, *(t.exhibitor or "" for t in spoken), country, booth.country,
                              halls.get(booth.hall, ""), *kind)))
        body = fold(" ".join((booth.tagline, booth.description, *(f"{t.tagline or ''} {t.description or ''}" for t in spoken))))
        products = [(pr.name, fold(f"{pr.name} {pr.description} {pr.sku}")) for pr in booth.catalogue]
        score, why = 0, country
        for word in words:
            if word in head:
                score += 3
            elif word in body:
                score += 2
            else:
                product = next((name for name, text in products if word in text), None)
                if product is None:
                    break
                score += 1
                why = product
        else:
            scored.append((-score, fold(booth.exhibitor), Match(booth, halls.get(booth.hall, booth.hall), why)))
    scored.sort(key=lambda item: (item[0], item[1]) if words else (item[2].hall, item[1]))
    return [match for _score, _name, match in scored[:limit]]
