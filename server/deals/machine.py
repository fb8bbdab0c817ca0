"""The deal's state machine, sans I/O: every transition is a pure function from a deal (and
what happened) to the next deal, or a DealRefused saying why not. The service does the
talking (bank, store, sockets); this module decides.

    requested --quote--> quoted --order (deposit in escrow)--> ordered --ship--> shipped
        --deliver (balance paid)--> delivered
    requested | quoted | ordered --cancel--> canceled;  requested | quoted --(validity over)--> expired

A deal once ``ordered`` can still be canceled (the deposit is voided back); once shipped the
deposit belongs to the exhibitor and only delivery remains. Repeating a transition that
already happened with the same arguments is no error (``same``): a retried message gets the
deal as it stands, and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum

from world import iso

from .incoterms import INCOTERMS_2020

MAX_TIERS = 8
MAX_QTY = 10_000_000
MAX_VALIDITY = 90 * 24 * 3600.0
MAX_LEAD_DAYS = 365


class DealState(str, Enum):
    REQUESTED = "requested"
    QUOTED = "quoted"
    ORDERED = "ordered"  # purchase order placed, deposit pending in escrow at the bank
    SHIPPED = "shipped"  # shipment confirmed, deposit posted to the exhibitor
    DELIVERED = "delivered"  # balance paid
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in (DealState.DELIVERED, DealState.CANCELED, DealState.EXPIRED)


class DealRefused(Exception):
    """A transition that may not happen; ``code`` is a protocol ErrorCode value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Tier:
    """From ``min_qty`` units on, each costs ``unit_price`` (major units of the quote's currency)."""

    min_qty: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class Quotation:
    tiers: tuple[Tier, ...]
    currency: str
    valid_until: float  # UTC seconds
    lead_days: int
    deposit_percent: int

    def unit_price(self, qty: int) -> Decimal | None:
        """The price of the highest tier ``qty`` reaches; None below the first tier."""
        best = None
        for tier in self.tiers:
            if qty >= tier.min_qty:
                best = tier.unit_price
        return best


@dataclass(frozen=True, slots=True)
class Deal:
    id: str  # also the purchase order number and the escrow's ISO 20022 end-to-end id
    key: str  # the buyer's idempotency key for the RFQ
    buyer: str  # visitor id
    booth: str
    sku: str
    qty: int
    incoterm: str
    destination: str  # ISO 3166-1 alpha-2
    state: DealState
    created_at: float
    updated_at: float
    quote: Quotation | None = None
    quoted_by: str | None = None  # the staff member's visitor id, or "price-list"
    payee_account: str | None = None  # the booth's merchant account in the quote's currency
    escrow_id: str | None = None
    uetr: str | None = None
    fx_lock_id: str | None = None
    payer_account: str | None = None
    balance_intent_id: str | None = None
    message: str = ""

    @property
    def total_minor(self) -> int | None:
        if self.quote is None:
            return None
        unit = self.quote.unit_price(self.qty)
        return None if unit is None else iso.to_minor_units(unit * self.qty, self.quote.currency)

    @property
    def deposit_minor(self) -> int | None:
        total = self.total_minor
        if total is None or self.quote is None:
            return None
        return total * self.quote.deposit_percent // 100

    @property
    def balance_minor(self) -> int | None:
        total, deposit = self.total_minor, self.deposit_minor
        return None if total is None or deposit is None else total - deposit


def request(deal_id: str, key: str, buyer: str, booth: str, sku: str, qty: int, incoterm: str,
            destination: str, now: float) -> Deal:
    """A new RFQ, checked for what the message's types cannot say."""
    if incoterm not in INCOTERMS_2020:
        raise DealRefused("bad_incoterm", f"{incoterm!r} is not an Incoterm of ICC 2020 (one of {', '.join(INCOTERMS_2020)})")
    if destination not in iso.countries():
        raise DealRefused("bad_field", f"{destination!r} is not an ISO 3166-1 alpha-2 country code")
    if not 1 <= qty <= MAX_QTY:
        raise DealRefused("bad_field", f"a quantity is 1 to {MAX_QTY}")
    return Deal(deal_id, key, buyer, booth, sku, qty, incoterm, destination, DealState.REQUESTED, now, now)


def make_quotation(tiers: tuple[tuple[int, str], ...], currency: str, valid_for: float, lead_days: int,
                   deposit_percent: int, now: float) -> Quotation:
    """A quotation from the staff's (or the price list's) figures, or why they cannot stand."""
    if iso.currency_problem(currency) is not None:
        raise DealRefused("bad_field", f"{currency!r} is not a currency the bank serves")
    if not 1 <= len(tiers) <= MAX_TIERS:
        raise DealRefused("bad_field", f"a quotation has 1 to {MAX_TIERS} price tiers")
    parsed = []
    for min_qty, price in tiers:
        try:
            unit = Decimal(price)
        except ArithmeticError:
            raise DealRefused("bad_field", f"{price!r} is not a price") from None
        if not unit.is_finite() or unit <= 0 or -unit.as_tuple().exponent > iso.decimals(currency):  # type: ignore[operator]
            raise DealRefused("bad_field", f"{price} is not a price in {currency} ({iso.decimals(currency)} decimals)")
        parsed.append(Tier(min_qty, unit))
    if [t.min_qty for t in parsed] != sorted({t.min_qty for t in parsed}) or parsed[0].min_qty < 1:
        raise DealRefused("bad_field", "tiers go by strictly increasing minimum quantity, from 1 up")
    if not 0 < valid_for <= MAX_VALIDITY:
        raise DealRefused("bad_field", "a quotation is valid for a positive time of at most 90 days")
    if not 0 <= lead_days <= MAX_LEAD_DAYS or not 0 <= deposit_percent <= 100:
        raise DealRefused("bad_field", "lead time is 0-365 days, the deposit 0-100 %")
    return Quotation(tuple(parsed), currency, now + valid_for, lead_days, deposit_percent)


def _require(deal: Deal, *states: DealState) -> None:
    if deal.state not in states:
        wanted = " or ".join(s.value for s in states)
        raise DealRefused("wrong_state", f"deal {deal.id} is {deal.state.value}, not {wanted}")


def quote(deal: Deal, quotation: Quotation, by: str, payee_account: str, now: float) -> Deal:
    if deal.state is DealState.QUOTED and deal.quote == quotation:
        return deal  # the same answer again
    _require(deal, DealState.REQUESTED)
    unit = quotation.unit_price(deal.qty)
    if unit is None:
        raise DealRefused("bad_field", f"no tier covers the {deal.qty} units asked for (the first starts at {quotation.tiers[0].min_qty})")
    assert quotation.valid_until > now
    return replace(deal, state=DealState.QUOTED, quote=quotation, quoted_by=by, payee_account=payee_account,
                   updated_at=now, message=f"quoted {unit} {quotation.currency} a unit")


@dataclass(frozen=True, slots=True)
class Deposit:
    """What the bank says of the escrow the buyer names (read by the service as platform)."""

    escrow_id: str
    status: str
    payee_account: str
    amount: int
    currency: str
    debit_currency: str
    end_to_end_id: str
    uetr: str
    fx_lock_id: str | None
    payer_account: str


def already_ordered(deal: Deal, buyer: str, escrow_id: str, now: float) -> bool:
    """Whether this purchase order is a retry of the one placed (True), may be placed
    (False), or why not: checked before the bank is asked about the escrow."""
    if buyer != deal.buyer:
        raise DealRefused("not_allowed", "only the buyer places the purchase order")
    if deal.state in (DealState.ORDERED, DealState.SHIPPED, DealState.DELIVERED) and deal.escrow_id == escrow_id:
        return True
    _require(deal, DealState.QUOTED)
    assert deal.quote is not None
    if now >= deal.quote.valid_until:
        raise DealRefused("expired", f"the quotation expired; ask {deal.booth} for a new one")
    return False


def order(deal: Deal, buyer: str, deposit: Deposit, now: float) -> Deal:
    """The buyer accepts the quotation: its deposit must be pending in escrow, to the booth,
    for exactly the deposit, in the quote's currency, with the deal as end-to-end id, FX
    locked when the buyer pays from another currency."""
    if already_ordered(deal, buyer, deposit.escrow_id, now):
        return deal
    assert deal.quote is not None
    problems = []
    if deposit.status != "pending":
        problems.append(f"the escrow is {deposit.status}, not pending")
    if deposit.payee_account != deal.payee_account:
        problems.append("it does not pay the booth's account")
    if (deposit.amount, deposit.currency) != (deal.deposit_minor, deal.quote.currency):
        problems.append(f"it holds {deposit.amount} {deposit.currency} (minor units), not {deal.deposit_minor} {deal.quote.currency}")
    if deposit.end_to_end_id != deal.id:
        problems.append(f"its end-to-end id is {deposit.end_to_end_id!r}, not the purchase order {deal.id!r}")
    if deposit.debit_currency != deposit.currency and deposit.fx_lock_id is None:
        problems.append("it pays from another currency without an FX lock")
    if problems:
        raise DealRefused("bad_deposit", "; ".join(problems))
    return replace(deal, state=DealState.ORDERED, escrow_id=deposit.escrow_id, uetr=deposit.uetr,
                   fx_lock_id=deposit.fx_lock_id, payer_account=deposit.payer_account, updated_at=now,
                   message="purchase order placed; deposit held in escrow")


def ship(deal: Deal, now: float) -> Deal:
    """Staff confirm shipment (the service has posted the escrow to the booth)."""
    if deal.state in (DealState.SHIPPED, DealState.DELIVERED):
        return deal
    _require(deal, DealState.ORDERED)
    return replace(deal, state=DealState.SHIPPED, updated_at=now, message="shipped; the deposit is paid to the exhibitor")


def bill_balance(deal: Deal, intent_id: str | None, now: float) -> Deal:
    """The balance's payment intent exists (None when the deposit was the whole price)."""
    _require(deal, DealState.SHIPPED)
    return replace(deal, balance_intent_id=intent_id, updated_at=now)


def deliver(deal: Deal, balance_status: str | None, now: float) -> Deal:
    """Delivered once the balance is paid (``balance_status`` of its intent; None: none due)."""
    if deal.state is DealState.DELIVERED:
        return deal
    _require(deal, DealState.SHIPPED)
    if deal.balance_intent_id is not None and balance_status != "succeeded":
        raise DealRefused("wrong_state", f"the balance ({deal.balance_intent_id}) is {balance_status}, not paid")
    return replace(deal, state=DealState.DELIVERED, updated_at=now, message="delivered and paid in full")


def cancel(deal: Deal, by_buyer: bool, by_staff_of: str | None, now: float) -> Deal:
    if not by_buyer and by_staff_of != deal.booth:
        raise DealRefused("not_allowed", "only the buyer or the booth's staff cancel a deal")
    if deal.state is DealState.CANCELED:
        return deal
    _require(deal, DealState.REQUESTED, DealState.QUOTED, DealState.ORDERED)
    return replace(deal, state=DealState.CANCELED, updated_at=now,
                   message="canceled" + ("; the deposit is voided back to the buyer" if deal.escrow_id else ""))


def expire(deal: Deal, now: float) -> Deal | None:
    """The deal expired by ``now``, or None. Only a quotation runs out on its own: an ordered
    deal's deposit is the bank's to void at its own expiry."""
    if deal.state is DealState.QUOTED and deal.quote is not None and now >= deal.quote.valid_until:
        return replace(deal, state=DealState.EXPIRED, updated_at=now, message="the quotation expired unanswered")
    return None


def deposit_lapsed(deal: Deal, escrow_status: str, void_reason: str | None, now: float) -> Deal | None:
    """The bank voided an ordered deal's deposit on its own (the escrow's expiry): the deal
    expired. None while the escrow is still pending or the deal is past ``ordered``."""
    if deal.state is not DealState.ORDERED or escrow_status != "voided":
        return None
    return replace(deal, state=DealState.EXPIRED if void_reason == "expired" else DealState.CANCELED, updated_at=now,
                   message=f"the bank voided the deposit ({void_reason}); nothing was shipped")
PRICE_LIST = "price-list"  # quoted_by of a quotation the booth's price list made
CONSOLE = "console"  # quoted_by of one the exhibitor made in the web console
