"""One purchase at a time, from the Buy button to the receipt, as a state machine.

Three parties take part (docs/architecture.md, "Commerce"): the world server owns price and stock, the bank moves
the money with the visitor's own token, the client carries the payment between them. This
module decides what to do next and what to tell the visitor; the app performs the actions
(frames to the server, calls to the bank) and feeds the answers back. No I/O here, so every
path, refusals included, is tested by plain calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum

import protocol as p

from .i18n import _
from .pricing import money


class Stage(Enum):
    CONFIRMING = "confirming"  # the visitor sees the total and has not said yes yet: nothing sent
    ORDERING = "ordering"  # Order sent; the server reserves stock and asks the bank for an intent
    PAYING = "paying"  # confirming the intent at the bank
    SETTLING = "settling"  # paid; OrderPaid sent, waiting for the receipt
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendOrder:
    booth: str
    sku: str
    qty: int
    key: str


@dataclass(frozen=True, slots=True)
class ConfirmPayment:
    intent_id: str
    idempotency_key: str  # the same on a retry, so the bank never takes the money twice


@dataclass(frozen=True, slots=True)
class SendOrderPaid:
    order_id: str


@dataclass(frozen=True, slots=True)
class SendCancel:
    order_id: str


@dataclass(frozen=True, slots=True)
class Refresh:
    """Ask again for the balance and the inventory: they just changed."""


Action = SendOrder | ConfirmPayment | SendOrderPaid | SendCancel | Refresh

# English msgids, translated where shown (the catalogue is chosen after import)
BANK_REFUSALS = {
    "insufficient_funds": "Payment refused: not enough money in your bank account.",
    "intent_expired": "Payment refused: the order waited too long and expired.",
    "intent_canceled": "Payment refused: the order was canceled.",
    "invalid_token": "Payment refused: the bank does not know your account any more.",
    "bank_unavailable": "The bank cannot be reached right now; nothing was paid. Try again shortly.",
}
ORDER_REFUSALS = {  # Error codes the server answers an Order with
    "not_allowed": "Purchases are not open on this server.",
    "unknown_product": "This product is no longer sold here.",
    "unknown_booth": "This booth is no longer in the expo.",
    "rate_limited": "Too many requests; wait a moment and try again.",
}


class Busy(RuntimeError):
    """A purchase is already under way: one at a time keeps the money story simple."""


@dataclass(frozen=True, slots=True)
class Purchase:
    key: str
    booth: str
    sku: str
    qty: int
    product_name: str
    stage: Stage
    message: str
    order_id: str | None = None
    intent_id: str | None = None
    amount: str | None = None  # as the server stated it, in ``currency``
    currency: str | None = None
    receipt: p.Receipt | None = None

    @property
    def finished(self) -> bool:
        return self.stage in (Stage.DONE, Stage.FAILED)


def buy_blocker(*, purchases_on: bool, has_account: bool, busy: bool, left: int | None, owned: int, limit: int,
                cost_minor: int | None, balance_minor: int | None) -> str | None:
    """Why Buy cannot succeed now, in words for the button's row; None when it can.
    ``cost_minor`` and ``balance_minor`` are in the visitor's currency (None: not known yet)."""
    if not purchases_on:
        return _("purchases are off on this server")
    if not has_account:
        return _("your bank account is opening…")
    if busy:
        return _("another purchase is under way")
    if left is None:
        return _("checking stock…")
    if left <= 0:
        return _("sold out")
    if limit and owned >= limit:
        return _("limit reached: {limit} per visitor").format(limit=limit)
    if cost_minor is not None and balance_minor is not None and cost_minor > balance_minor:
        return _("more than your balance")
    return None


class Checkout:
    """Holds the current purchase (and the last finished one, for the receipt panel)."""

    def __init__(self, new_key: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.new_key = new_key
        self.current: Purchase | None = None

    @property
    def busy(self) -> bool:
        """A purchase is with the server or the bank (a proposal waiting for yes is not)."""
        cur = self.current
        return cur is not None and not cur.finished and cur.stage is not Stage.CONFIRMING

    @property
    def confirming(self) -> Purchase | None:
        cur = self.current
        return cur if cur is not None and cur.stage is Stage.CONFIRMING else None

    def propose(self, booth: str, sku: str, product_name: str, qty: int) -> Purchase:
        """Buy was pressed: ask before anything is sent (a 500-dollar rug is not one click)."""
        if self.busy:
            raise Busy("a purchase is already under way")
        self.current = Purchase(self.new_key(), booth, sku, qty, product_name, Stage.CONFIRMING, "")
        return self.current

    def confirm(self) -> list[Action]:
        """The visitor said yes: order it."""
        cur = self.confirming
        if cur is None:
            return []
        self.current = replace(cur, stage=Stage.ORDERING, message=_("Ordering {qty} × {name}…").format(qty=cur.qty, name=cur.product_name))
        return [SendOrder(cur.booth, cur.sku, cur.qty, cur.key)]

    def withdraw(self) -> None:
        """The visitor said no (or walked away): forget the proposal, nothing was sent."""
        if self.confirming is not None:
            self.current = None

    def forget_finished(self) -> None:
        """Another catalogue opens: the last purchase's outcome belongs to its own booth."""
        if self.current is not None and self.current.finished:
            self.current = None

    def buy(self, booth: str, sku: str, product_name: str, qty: int) -> list[Action]:
        """Propose and confirm at once (bots, tests of the flow past the dialog)."""
        self.propose(booth, sku, product_name, qty)
        return self.confirm()

    def _fail(self, message: str) -> None:
        assert self.current is not None
        self.current = replace(self.current, stage=Stage.FAILED, message=message)

    # ------------------------------------------------------------------ from the server

    def on_status(self, status: p.OrderStatus) -> list[Action]:
        cur = self.current
        if cur is None or status.key != cur.key or cur.finished:
            return []
        cur = self.current = replace(cur, order_id=status.order_id, amount=status.amount, currency=status.currency)
        match status.status:
            case "pending_payment" if cur.stage is Stage.ORDERING and status.intent_id:
                price = money(Decimal(status.amount), status.currency)
                self.current = replace(cur, stage=Stage.PAYING, intent_id=status.intent_id,
                                       message=_("Paying {price} at the bank…").format(price=price))
                return [ConfirmPayment(status.intent_id, f"confirm-{cur.key}")]
            case "failed":
                self._fail(_("Could not buy {name}: {reason}.").format(name=cur.product_name,
                                                                        reason=status.message or _("refused")))
            case "expired":
                self._fail(_("The order expired before it was paid; the stock went back on the shelf."))
            case "canceled":
                self._fail(_("The order was canceled; nothing was paid."))
        return []

    def on_receipt(self, receipt: p.Receipt) -> list[Action]:
        cur = self.current
        if cur is None or receipt.order_id != cur.order_id:
            return []
        price = money(Decimal(receipt.amount), receipt.currency)
        self.current = replace(cur, stage=Stage.DONE, receipt=receipt,
                               message=_("Bought {qty} × {name} for {price}.").format(qty=receipt.qty, name=receipt.product_name,
                                                                                price=price))
        return [Refresh()]

    def on_error(self, code: str, message: str, ref: int) -> list[Action]:
        """An Error frame answering our Order (ref is the rejected message's type)."""
        cur = self.current
        if cur is None or cur.stage is not Stage.ORDERING or ref != p.Order.TYPE:
            return []
        self._fail(_(ORDER_REFUSALS[code]) if code in ORDER_REFUSALS else
                   _("The server refused the order: {message}").format(message=message))
        return []

    # ------------------------------------------------------------------ from the bank

    def on_paid(self) -> list[Action]:
        cur = self.current
        if cur is None or cur.stage is not Stage.PAYING or cur.order_id is None:
            return []
        self.current = replace(cur, stage=Stage.SETTLING, message=_("Paid. Waiting for the receipt…"))
        return [SendOrderPaid(cur.order_id), Refresh()]

    def on_bank_refused(self, code: str, message: str) -> list[Action]:
        """The bank said no (or could not be reached): nothing was paid, so release the stock."""
        cur = self.current
        if cur is None or cur.stage is not Stage.PAYING or cur.order_id is None:
            return []
        if code == "intent_already_succeeded":  # a retry of a payment that went through
            return self.on_paid()
        self._fail(_(BANK_REFUSALS[code]) if code in BANK_REFUSALS else
                   _("Payment refused by the bank: {message}").format(message=message))
        return [SendCancel(cur.order_id)]
