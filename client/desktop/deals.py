"""The visitor's B2B deals at the desk, as a state machine per deal: the request for a quote,
the quotation it gets, the deposit held in escrow at the bank, the balance on delivery.

Three parties take part (protocol/README, "B2B deals"): the world server keeps each deal's
state and answers with the whole deal (``DealStatus``), the bank holds the money (an FX lock
and a pending escrow for the deposit, a payment intent for the balance), the client carries
between them. Nothing that moves money happens without the visitor's yes: ``propose`` says
what will happen, ``confirm`` returns what to do. Sans-I/O, so every path is a plain call.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import protocol as p
from server.deals.incoterms import INCOTERMS_2020
from world import iso

from .i18n import _, country_name
from .pricing import money, money_minor

MAX_QTY = 10_000_000
FINAL = ("delivered", "canceled", "expired")


@dataclass(frozen=True, slots=True)
class SendRfq:
    booth: str
    sku: str
    qty: int
    incoterm: str
    destination: str
    key: str


@dataclass(frozen=True, slots=True)
class HoldDeposit:
    """Lock FX (when the visitor pays from another currency), then put the deposit in escrow."""

    deal_id: str
    payee_account: str
    amount_minor: int
    currency: str
    key: str  # the same on a retry: the bank holds the deposit once


@dataclass(frozen=True, slots=True)
class SendPurchaseOrder:
    deal_id: str
    escrow_id: str


@dataclass(frozen=True, slots=True)
class PayBalance:
    deal_id: str
    intent_id: str
    key: str


@dataclass(frozen=True, slots=True)
class SendDelivered:
    deal_id: str


@dataclass(frozen=True, slots=True)
class SendCancelDeal:
    deal_id: str


Action = SendRfq | HoldDeposit | SendPurchaseOrder | PayBalance | SendDelivered | SendCancelDeal


class FormError(ValueError):
    """What is wrong with the request-a-quote form, in words for the form's status line."""


def rfq(booth: str, sku: str, qty_text: str, incoterm: str, destination_text: str, key: str) -> SendRfq:
    """The form's fields as an RFQ, or a FormError naming the field that is wrong."""
    try:
        qty = int(qty_text.strip())
    except ValueError:
        raise FormError(_("Quantity: a whole number of units, e.g. 100.")) from None
    if not 1 <= qty <= MAX_QTY:
        raise FormError(_("Quantity: from 1 to {most} units.").format(most=f"{MAX_QTY:,}"))
    if incoterm not in INCOTERMS_2020:
        raise FormError(_("Incoterm: one of {terms}.").format(terms=", ".join(INCOTERMS_2020)))
    destination = destination_text.strip().upper()
    if destination not in iso.countries():
        raise FormError(_("Destination: a two-letter country code (ISO 3166), e.g. CN, KZ, MY."))
    return SendRfq(booth, sku, qty, incoterm, destination, key)


STATE_NAMES = {
    "requested": "Requested: awaiting the quotation",
    "quoted": "Quoted: awaiting your answer",
    "ordered": "Ordered: deposit held in escrow",
    "shipped": "Shipped: balance due on delivery",
    "delivered": "Delivered and paid in full",
    "canceled": "Cancelled",
    "expired": "Expired",
}


def state_name(state: str) -> str:
    return _(STATE_NAMES[state]) if state in STATE_NAMES else state


def valid_until(seconds: float, zone: str | None) -> str:
    """A quotation's validity as a date and time of the visitor's own zone (UTC, saying so,
    without one): validity runs in days, so the date matters."""
    try:
        tz = ZoneInfo(zone) if zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    return f"{datetime.fromtimestamp(seconds, tz):%d %b %H:%M} {'UTC' if tz is UTC else zone}"


def balance(deal: p.DealStatus) -> Decimal | None:
    if deal.total is None or deal.deposit is None:
        return None
    return Decimal(deal.total) - Decimal(deal.deposit)


def left_short(balance_minor: int | None, deposit_debit: int | None, rest_debit: int | None, currency: str) -> str | None:
    """What the deposit leaves of the visitor's balance (all in minor units of its currency),
    when that is known to be less than the balance due on delivery; None when it is enough,
    not known yet, or the deposit alone is short (said already)."""
    if balance_minor is None or deposit_debit is None or rest_debit is None or deposit_debit > balance_minor:
        return None
    left = balance_minor - deposit_debit
    return money_minor(left, currency) if left < rest_debit else None


@dataclass(frozen=True, slots=True)
class Proposal:
    """A step that moves money (or ends the deal), waiting for the visitor's yes."""

    kind: str  # "accept" | "pay" | "cancel"
    deal_id: str
    text: str


class DealDesk:
    """The visitor's deals (newest first), the one selected, and the step under way for each."""

    def __init__(self, zone: str | None = None, new_key: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.zone = zone
        self.new_key = new_key
        self.deals: dict[str, p.DealStatus] = {}
        self.order: list[str] = []  # deal ids, newest first
        self.selected = 0
        self.busy: dict[str, str] = {}  # deal id -> what is under way, for the panel
        self.notes: dict[str, str] = {}  # deal id -> the last refusal, for the panel
        self.proposal: Proposal | None = None
        self.sent_keys: set[str] = set()  # RFQs sent whose deal has not come back yet
        self.names: dict[tuple[str, str], str] = {}  # (booth, sku) -> product name, from the expo

    # ------------------------------------------------------------------ the deals

    def request(self, form: SendRfq) -> list[Action]:
        self.sent_keys.add(form.key)
        return [form]

    def on_status(self, deal: p.DealStatus) -> str | None:
        """A deal as it stands; returns what to tell the visitor when it changed state."""
        before = self.deals.get(deal.deal_id)
        if deal.deal_id not in self.deals:
            self.order.insert(0, deal.deal_id)
            if deal.key in self.sent_keys:
                self.sent_keys.discard(deal.key)
                self.selected = 0  # the deal just asked for
            elif self.selected:
                self.selected += 1  # the same deal stays selected
        self.deals[deal.deal_id] = deal
        if before is not None and before.state == deal.state:
            return None
        self.busy.pop(deal.deal_id, None)
        self.notes.pop(deal.deal_id, None)
        if self.proposal is not None and self.proposal.deal_id == deal.deal_id:
            self.proposal = None  # what was asked about no longer holds
        return self._news(deal)

    def _news(self, deal: p.DealStatus) -> str:
        what = self.product(deal)
        match deal.state:
            case "quoted" if deal.unit_price and deal.currency:
                return _("Quotation for {what}: {price} a unit.").format(
                    what=what, price=money(Decimal(deal.unit_price), deal.currency))
            case "ordered":
                return _("Purchase order {deal} placed: the deposit is held in escrow.").format(deal=deal.deal_id)
            case "shipped":
                return _("{what} shipped: the deposit went to the exhibitor; the balance is due.").format(what=what)
            case "delivered":
                return _("{what} delivered and paid in full.").format(what=what)
            case "canceled":
                return _("Deal for {what} cancelled.").format(what=what) + (
                    " " + _("The deposit is back in your account.") if deal.escrow_id else "")
            case "expired":
                return _("The quotation for {what} expired.").format(what=what)
        return _("Request for a quote sent: {what}.").format(what=what)

    def product(self, deal: p.DealStatus) -> str:
        return f"{deal.qty} × {self.names.get((deal.booth, deal.sku), deal.sku)}"

    def current(self) -> p.DealStatus | None:
        if not self.order:
            return None
        self.selected = max(0, min(self.selected, len(self.order) - 1))
        return self.deals[self.order[self.selected]]

    def select(self, step: int) -> None:
        if self.order:
            self.selected = (self.selected + step) % len(self.order)

    # ------------------------------------------------------------------ what the visitor may do

    def allowed(self, deal: p.DealStatus) -> list[str]:
        """The buyer's moves in the deal's state (none while a step is under way)."""
        if deal.deal_id in self.busy:
            return []
        return {"requested": ["cancel"], "quoted": ["accept", "cancel"], "ordered": ["cancel"],
                "shipped": ["pay"]}.get(deal.state, [])

    def propose(self, kind: str, own_currency: str | None = None, own_amount: str | None = None,
                short_of: str | None = None, rest_own: str | None = None,
                left_short: str | None = None) -> Proposal | None:
        """Enter (accept / pay) or X (cancel) on the selected deal: the question to ask, or None
        when the deal does not allow it now. ``own_amount`` is what the bank quoted for the
        money in the visitor's currency, when it differs; ``short_of``, the visitor's balance
        when that is known to be less (the bank would refuse: say so before, not after).
        Accepting commits to the balance on delivery too: ``rest_own`` is it in the visitor's
        currency at today's rate, ``left_short`` what the deposit leaves when that is less."""
        deal = self.current()
        if deal is None or kind not in self.allowed(deal):
            return None
        what = self.product(deal)
        yours = f"\n≈ {own_amount} " + _("from your account") if own_amount else ""
        if short_of and kind != "cancel":
            yours += "\n" + _("Your balance is {balance}: not enough, the bank will refuse it.").format(balance=short_of)
        if kind == "accept":
            assert deal.currency and deal.total and deal.deposit and deal.unit_price
            rest = balance(deal)
            country = country_name(deal.destination)
            text = (_("Accept the quotation: {what}").format(what=what) + "\n"
                    + _("{incoterm} to {country}, lead time {days} days").format(
                        incoterm=deal.incoterm, country=country, days=deal.lead_days) + "\n"
                    + _("{unit} a unit, {total} in all").format(unit=money(Decimal(deal.unit_price), deal.currency),
                                                                 total=money(Decimal(deal.total), deal.currency)) + "\n\n"
                    + _("Deposit now: {deposit}, held in escrow at the bank").format(
                        deposit=money(Decimal(deal.deposit), deal.currency)) + yours + "\n"
                    + _("It goes to the exhibitor on shipment, back to you if the deal is cancelled.") + "\n"
                    + _("Balance on delivery: {rest}").format(rest=money(rest or Decimal(0), deal.currency))
                    + (f" (≈ {rest_own} " + _("at today's rate") + ")" if rest_own else ""))
            if left_short:
                text += "\n" + _("The deposit leaves you {left}: not enough for the balance unless you add money.").format(
                    left=left_short)
        elif kind == "pay":
            rest = balance(deal) or Decimal(0)
            text = (_("{what} shipped. Pay the balance and take delivery?").format(what=what) + "\n\n"
                    + money(rest, deal.currency or "USD") + yours)
        else:
            text = _("Cancel the deal for {what}?").format(what=what) + (
                "\n" + _("The deposit held in escrow goes back to your account.") if deal.state == "ordered" else "")
        self.proposal = Proposal(kind, deal.deal_id, text)
        return self.proposal

    def withdraw(self) -> None:
        self.proposal = None

    def confirm(self) -> list[Action]:
        """The visitor said yes to the proposal: what to do first."""
        proposal, self.proposal = self.proposal, None
        deal = self.deals.get(proposal.deal_id) if proposal else None
        if proposal is None or deal is None or proposal.kind not in self.allowed(deal):
            return []
        if proposal.kind == "accept":
            assert deal.payee_account and deal.currency and deal.deposit_minor is not None
            self.busy[deal.deal_id] = _("holding the deposit at the bank…")
            return [HoldDeposit(deal.deal_id, deal.payee_account, deal.deposit_minor, deal.currency,
                                f"deposit-{deal.deal_id}")]
        if proposal.kind == "pay":
            if deal.balance_intent_id is None:  # the deposit was the whole price
                self.busy[deal.deal_id] = _("confirming delivery…")
                return [SendDelivered(deal.deal_id)]
            self.busy[deal.deal_id] = _("paying the balance at the bank…")
            return [PayBalance(deal.deal_id, deal.balance_intent_id, f"balance-{deal.deal_id}")]
        self.busy[deal.deal_id] = _("cancelling…")
        return [SendCancelDeal(deal.deal_id)]

    # ------------------------------------------------------------------ from the bank and the server

    def deposit_held(self, deal_id: str, escrow_id: str) -> list[Action]:
        self.busy[deal_id] = _("placing the purchase order…")
        return [SendPurchaseOrder(deal_id, escrow_id)]

    def balance_paid(self, deal_id: str) -> list[Action]:
        self.busy[deal_id] = _("confirming delivery…")
        return [SendDelivered(deal_id)]

    def refused(self, deal_id: str, message: str) -> None:
        """The bank or the server said no to a step: nothing changed, the visitor may retry."""
        self.busy.pop(deal_id, None)
        self.notes[deal_id] = message

    def rejoined(self) -> None:
        """A reconnect: a step under way when the connection dropped may never be answered, so
        none is; the deals come again as the server has them, and a step repeated uses the same
        idempotency keys (the bank holds one deposit, takes one balance)."""
        self.busy.clear()

    def on_error(self, message: str, ref: int) -> str | None:
        """An Error frame answering a deal message: the deal whose step it was, if one was under way."""
        if ref not in DEAL_MESSAGES or not self.busy:
            return None
        deal_id = next(iter(self.busy))
        self.refused(deal_id, message)
        return deal_id

    # ------------------------------------------------------------------ the panel

    def lines(self, limit: int = 5) -> list[str]:
        """Each deal in short lines (the panel is narrow): what, the terms, its state; the
        selected one marked, with its quotation in full and the keys it allows."""
        out: list[str] = []
        for i, deal_id in enumerate(self.order[:limit]):
            deal = self.deals[deal_id]
            chosen = i == self.selected
            out.append(("▶ " if chosen else "   ") + self.product(deal))
            out.append(f"    {deal.incoterm} → {deal.destination} · {_('PO')} {deal_id}")
            out.append("    " + state_name(deal.state))
            if chosen and deal.state in ("quoted", "ordered", "shipped"):
                out += ["    " + line for line in self.terms(deal)]
            if deal.deal_id in self.busy:
                out.append("    … " + self.busy[deal.deal_id])
            elif deal.deal_id in self.notes:
                out.append("    ✗ " + self.notes[deal.deal_id])
            if chosen and self.keys(deal):
                out.append("    " + self.keys(deal))
        if len(self.order) > limit:
            out.append(_("… and {count} more").format(count=len(self.order) - limit))
        return out

    def terms(self, deal: p.DealStatus) -> list[str]:
        """The quotation: price and total, the tiers, deposit and lead time, validity."""
        if deal.currency is None or deal.unit_price is None or deal.total is None:
            return []
        out = [_("{unit} a unit, {total} in all").format(unit=money(Decimal(deal.unit_price), deal.currency),
                                                        total=money(Decimal(deal.total), deal.currency))]
        if len(deal.tiers) > 1:
            out.append(_("tiers {tiers}").format(tiers=" · ".join(f"{q}+ {Decimal(price):,}" for q, price in deal.tiers)))
        facts = []
        if deal.deposit is not None:
            facts.append(_("deposit {deposit}").format(deposit=money(Decimal(deal.deposit), deal.currency)))
        if deal.lead_days is not None:
            facts.append(_("lead time {days} days").format(days=deal.lead_days))
        if facts:
            out.append(" · ".join(facts))
        if deal.valid_until is not None and deal.state == "quoted":
            out.append(_("valid until {when}").format(when=valid_until(deal.valid_until, self.zone)))
        return out

    def keys(self, deal: p.DealStatus) -> str:
        words = {"accept": _("Enter accept and pay the deposit"), "pay": _("Enter pay the balance"),
                 "cancel": _("X cancel")}
        return " · ".join(words[k] for k in self.allowed(deal))

    def money_due(self, kind: str) -> tuple[int, str] | None:
        """What the proposal of ``kind`` on the selected deal takes from the visitor, minor
        units of the deal's currency (to ask the bank what that is in theirs)."""
        deal = self.current()
        if deal is None or deal.currency is None:
            return None
        if kind == "accept" and deal.deposit_minor is not None:
            return deal.deposit_minor, deal.currency
        rest = balance(deal)
        if kind in ("pay", "rest") and rest is not None:  # "rest": what accepting commits to on delivery
            return iso.to_minor_units(rest, deal.currency), deal.currency
        return None


DEAL_MESSAGES = {m.TYPE for m in p.DEALS_CLIENT_MESSAGES}
