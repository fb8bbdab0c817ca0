"""A booth's standing price list for B2B quotes: when a booth has one, the server answers
an RFQ for a listed product at once from it (the booth's staff need not be online)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ListedPrice:
    tiers: tuple[tuple[int, str], ...]  # (from this many units, unit price in major units)
    currency: str
    valid_for: float  # seconds
    lead_days: int
    deposit_percent: int


@dataclass(frozen=True, slots=True)
class PriceList:
    prices: dict[str, ListedPrice]  # by sku

    def figures(self, sku: str) -> tuple[tuple[tuple[int, str], ...], str, float, int, int] | None:
        """The quotation's figures for ``sku`` (DealService.answer_rfq's arguments), or None."""
        price = self.prices.get(sku)
        if price is None:
            return None
        return price.tiers, price.currency, price.valid_for, price.lead_days, price.deposit_percent
