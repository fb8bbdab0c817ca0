"""ISO 3166 countries and ISO 4217 currencies.

Names and where a currency is tender come from CLDR (through babel); the number of minor
units comes from the ISO 4217 table itself (the ``iso4217`` package), not from CLDR, whose
display precision differs (it gives HUF and IDR none) and has changed between releases:
an amount stored in minor units must mean the same thing after any upgrade. Kept in one
place so the loader and the manifest agree on what a code means.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from babel import Locale
from babel.core import get_global
from babel.numbers import is_currency
from iso4217 import Currency

# CLDR names these two-letter regions too, but they are groupings or private-use codes,
# not countries: an exhibitor cannot be from them.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})


@cache
def countries() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code -> English name."""
    return {
        code: name
        for code, name in Locale("en").territories.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    }


@cache
def currencies_in_use() -> frozenset[str]:
    """Currencies that are legal tender somewhere today (so not DEM, not XXX)."""
    return frozenset(
        code
        for history in get_global("territory_currencies").values()
        for code, _start, end, tender in history
        if end is None and tender
    )


def currency_problem(code: str) -> str | None:
    """Why ``code`` cannot price a product, or None when it can."""
    if not is_currency(code):
        return f"unknown currency {code!r} (expected an ISO 4217 code such as 'USD')"
    if code not in currencies_in_use():
        return f"currency {code!r} is not in use today"
    if _exponent(code) is None:
        return f"currency {code!r} has no minor unit in ISO 4217 and cannot price a product"
    return None


def _exponent(code: str) -> int | None:
    try:
        return Currency(code).exponent
    except ValueError:
        return None


def decimals(currency: str) -> int:
    """Digits after the decimal point (the ISO 4217 exponent), e.g. 2 for USD, 0 for VND."""
    exponent = _exponent(currency)
    if exponent is None:
        raise ValueError(f"{currency!r} has no ISO 4217 minor unit")
    return exponent


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``Decimal("12.50")`` USD -> 1250; exact, because prices never have extra decimals."""
    minor = amount.scaleb(decimals(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency} allows")
    return int(minor)


def from_minor_units(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-decimals(currency))
