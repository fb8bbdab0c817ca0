"""Money for people: prices as the booth states them and as the visitor would pay them.

The bank quotes what a payer in one currency pays for an amount in another (FX plus its
fee), in minor units; this module turns those integers into text and keeps the quotes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from world import iso


def money(amount: Decimal, currency: str) -> str:
    """``Decimal("4500")``, ``"KZT"`` -> ``"KZT 4,500.00"`` (the currency's own decimals)."""
    places = iso.decimals(currency)
    return f"{currency} {amount:,.{places}f}"


def money_minor(minor: int, currency: str) -> str:
    return money(iso.from_minor_units(minor, currency), currency)


@dataclass(frozen=True, slots=True)
class QuoteKey:
    """What a payer in ``source`` pays for ``amount`` minor units of ``target``."""

    source: str
    target: str
    amount: int


class Quotes:
    """Quotes asked for and received; the catalogue shows "…" until one arrives."""

    def __init__(self) -> None:
        self._known: dict[QuoteKey, int] = {}
        self._asked: set[QuoteKey] = set()

    def wanted(self, keys: list[QuoteKey]) -> list[QuoteKey]:
        """The keys to ask the bank for now (each once); same-currency prices need none."""
        out = []
        for key in keys:
            if key.source != key.target and key not in self._asked:
                self._asked.add(key)
                out.append(key)
        return out

    def received(self, key: QuoteKey, debit_minor: int) -> None:
        self._known[key] = debit_minor

    def failed(self, key: QuoteKey) -> None:
        self._asked.discard(key)  # ask again next time the catalogue opens

    def debit(self, key: QuoteKey) -> int | None:
        """What the visitor pays in minor units of ``key.source``; None until quoted."""
        return key.amount if key.source == key.target else self._known.get(key)

    def in_own_currency(self, key: QuoteKey) -> str:
        """The price in the visitor's currency, or a placeholder while the bank answers."""
        if key.source == key.target:
            return money_minor(key.amount, key.source)
        debit = self._known.get(key)
        return f"≈ {money_minor(debit, key.source)}" if debit is not None else "≈ …"
