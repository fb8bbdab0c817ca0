"""Currencies and foreign exchange: a fixed table of mock mid rates and exact conversion math.

Sans-I/O. Amounts are integers in each currency's minor units (the ISO 4217 exponent:
VND has none, the others two). Arithmetic uses ``Fraction`` so nothing is
lost before the one explicit rounding step, which always goes in the bank's favour:

* converting, the payer is debited ``ceil(mid)`` source minor units for the FX leg, where
  ``mid`` is the exact mid-rate cost of the target amount;
* the spread is charged on top as a separate fee, ``ceil(mid * spread)``, credited to the
  bank's fee account in the source currency, so it is visible in the ledger. Any non-zero
  conversion therefore costs at least one minor unit of fee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cache

from iso4217 import Currency

#: Units of each currency per 1 USD: approximate real mid rates (mid-2025), fixed for the mock.
#: The keys are the partner currencies of the default expo, and the only currencies the bank serves.
RATES_PER_USD: dict[str, Decimal] = {
    "CNY": Decimal("7.18"),
    "MYR": Decimal("4.25"),
    "KZT": Decimal("520"),
    "PKR": Decimal("283"),
    "IDR": Decimal("16300"),
    "THB": Decimal("32.6"),
    "VND": Decimal("26100"),
    "UZS": Decimal("12600"),
    "SAR": Decimal("3.75"),
    "AED": Decimal("3.6725"),
    "LKR": Decimal("300"),
    "AZN": Decimal("1.70"),
    "EGP": Decimal("49.5"),
    "KES": Decimal("129.2"),
    "ETB": Decimal("136"),
    "NGN": Decimal("1530"),
    "ZAR": Decimal("17.8"),
    "MAD": Decimal("9.05"),
    "HUF": Decimal("345"),
    "RSD": Decimal("100.5"),
    "EUR": Decimal("0.857"),
    "PLN": Decimal("3.65"),
    "GEL": Decimal("2.71"),
    "USD": Decimal("1"),
}

#: Charged on every conversion, as a fraction of the mid-rate amount (0.5 %).
DEFAULT_SPREAD = Fraction(5, 1000)
_ONE = Fraction(1)  # the rate of a same-currency quote (a Fraction is immutable: one is enough)

CURRENCIES: tuple[str, ...] = tuple(RATES_PER_USD)


class UnknownCurrency(ValueError):
    """A currency code the bank does not serve."""


def check_currency(code: str) -> str:
    if code not in RATES_PER_USD:
        raise UnknownCurrency(f"unknown currency {code!r}; the bank serves {', '.join(CURRENCIES)}")
    return code


@cache
def minor_units(code: str) -> int:
    """The ISO 4217 exponent: how many decimal digits the minor unit has."""
    exponent = Currency(check_currency(code)).exponent
    assert exponent is not None, f"{code} is served by the bank, so it has a minor unit"
    return exponent


def _minor_per_usd(code: str) -> Fraction:
    """Minor units of ``code`` worth one US dollar at the mid rate."""
    return Fraction(RATES_PER_USD[check_currency(code)]) * 10 ** minor_units(code)


def mid_convert(amount: int, source: str, target: str) -> Fraction:
    """Exact value of ``amount`` minor units of ``source`` in minor units of ``target``."""
    return amount * _minor_per_usd(target) / _minor_per_usd(source)


def usd_equivalent(usd: int, code: str) -> int:
    """Whole US dollars expressed in ``code`` minor units, rounded down (used for grants and floats)."""
    return math.floor(usd * _minor_per_usd(code))


@dataclass(frozen=True, slots=True)
class Quote:
    """What it costs in ``source`` to deliver ``target_amount`` of ``target``.

    ``debit = fx_amount + fee`` is what the payer pays; ``fx_amount`` goes to the bank's FX
    account in ``source``, ``fee`` to its fee account. Same-currency quotes have no FX and no fee.
    """

    source: str
    target: str
    target_amount: int
    fx_amount: int
    fee: int
    mid_rate: Fraction  # target minor units per source minor unit

    @property
    def debit(self) -> int:
        return self.fx_amount + self.fee

    @property
    def is_conversion(self) -> bool:
        return self.source != self.target


def quote(source: str, target: str, target_amount: int, spread: Fraction = DEFAULT_SPREAD) -> Quote:
    """Price ``target_amount`` (minor units of ``target``) in ``source``, rounding up (bank's favour)."""
    if target_amount < 0:
        raise ValueError("amount must not be negative")
    if not 0 <= spread < 1:
        raise ValueError("spread must be in [0, 1)")
    check_currency(source)
    check_currency(target)
    if source == target:
        return Quote(source, target, target_amount, target_amount, 0, _ONE)
    mid = mid_convert(target_amount, target, source)
    fx_amount = math.ceil(mid)
    fee = math.ceil(mid * spread)
    result = Quote(source, target, target_amount, fx_amount, fee, _minor_per_usd(target) / _minor_per_usd(source))
    assert result.fx_amount >= mid and result.fee >= mid * spread, "rounding must favour the bank"
    return result


@dataclass(frozen=True, slots=True)
class FxLock:
    """A quote held for one account until ``expires_at``: a pending transfer made with it converts
    at these figures when it posts, whatever the rates are by then (FX locked at the quote)."""

    id: str
    account_id: str  # who may use it
    source: str
    target: str
    target_amount: int
    fx_amount: int
    fee: int
    mid_rate: Fraction
    created_at: int
    expires_at: int
    used_by: str | None = None  # the pending transfer it was spent on; a lock is used once

    @property
    def debit(self) -> int:
        return self.fx_amount + self.fee

    @classmethod
    def from_quote(cls, id_: str, account_id: str, q: Quote, now: int, ttl_ms: int) -> FxLock:
        return cls(id_, account_id, q.source, q.target, q.target_amount, q.fx_amount, q.fee, q.mid_rate,
                   now, now + ttl_ms)

    def as_quote(self) -> Quote:
        return Quote(self.source, self.target, self.target_amount, self.fx_amount, self.fee, self.mid_rate)
