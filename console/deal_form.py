"""The exhibitor's answer to a request for quotation, as the console's form has it: the
typed fields to the figures ``DealService.answer_rfq`` takes, or what is wrong with each
field. The deal machine checks the figures again (currency, decimals, tier order); this
only says which box holds a mistake, so the exhibitor fixes that one and keeps the rest."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

TIER_ROWS = 3  # price tiers the form offers (the machine takes up to MAX_TIERS)
MAX_VALID_DAYS = 90
DEFAULTS = {"t0.qty": "1", "valid_days": "7", "lead_days": "14", "deposit_percent": "30"}


@dataclass(frozen=True, slots=True)
class Figures:
    tiers: tuple[tuple[int, str], ...]  # (minimum quantity, unit price in major units)
    currency: str
    valid_days: int
    lead_days: int
    deposit_percent: int


def _whole(text: str, low: int, high: int) -> int | None:
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if low <= value <= high else None


def parse(values: dict[str, str], currency: str) -> tuple[Figures | None, dict[str, str]]:
    """The figures of a filled form (tier rows without a price are left out), or errors by field name."""
    errors: dict[str, str] = {}
    tiers: list[tuple[int, str]] = []
    for row in range(TIER_ROWS):
        qty_text, price = values.get(f"t{row}.qty", "").strip(), values.get(f"t{row}.price", "").strip()
        if not price:
            if row == 0:
                errors["t0.price"] = "a unit price for the first tier"
            elif qty_text:
                errors[f"t{row}.price"] = "a unit price for this tier, or clear its quantity"
            continue
        qty = _whole(qty_text or ("1" if row == 0 else ""), 1, 10**9)
        if qty is None:
            errors[f"t{row}.qty"] = "a whole number of units, 1 or more"
        try:
            unit = Decimal(price.replace(",", ""))
        except InvalidOperation:
            unit = None
        if unit is None or not unit.is_finite() or unit <= 0:
            errors[f"t{row}.price"] = "a price above 0, e.g. 3900 or 12.50"
        if qty is not None and f"t{row}.price" not in errors:
            tiers.append((qty, str(unit)))
    if tiers and [q for q, _ in tiers] != sorted({q for q, _ in tiers}):
        errors.setdefault("t1.qty", "each tier starts at more units than the one before")
    checks = (("valid_days", 1, MAX_VALID_DAYS, f"days the quotation holds: 1 to {MAX_VALID_DAYS}"),
              ("lead_days", 0, 365, "days from order to shipment: 0 to 365"),
              ("deposit_percent", 0, 100, "per cent paid into escrow with the order: 0 to 100"))
    whole = {}
    for name, low, high, wanted in checks:
        value = _whole(values.get(name, DEFAULTS[name]), low, high)
        if value is None:
            errors[name] = wanted
        else:
            whole[name] = value
    if errors:
        return None, errors
    return Figures(tuple(tiers), currency, whole["valid_days"], whole["lead_days"], whole["deposit_percent"]), {}
