"""ISO 3166 countries and ISO 4217 currencies, as CLDR (through babel) knows them.

Kept in one place so the loader, the manifest and the bank agree on what a code means and
how many minor units a currency has.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from babel import Locale
from babel.core import get_global
from babel.numbers import get_currency_precision, is_currency

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
    return None


def decimals(currency: str) -> int:
    """Digits after the decimal point, e.g. 2 for USD, 0 for VND."""
    return get_currency_precision(currency)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``Decimal("12.50")`` USD -> 1250; exact, because prices never have extra decimals."""
    minor = amount.scaleb(decimals(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency} allows")
    return int(minor)


def from_minor_units(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-decimals(currency))
