"""Messages for B2B deals at a booth: request for quotation, quotation, purchase order with a
deposit in escrow at the bank, shipment, delivery (see server/deals and protocol/README.md).

Registered in the same tables as the core catalogue with type numbers of their own (client
50-56, server 120). Every answer is a ``DealStatus``: the deal whole, as it stands, sent to
the buyer and to the booth's staff online; a refusal is an ``Error`` naming the request.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from .fields import CLEAN, CURRENCY, ID, MESSAGE, MONEY, TOKEN
from .messages import Message, _register

QUANTITY = Annotated[int, Meta(ge=1, le=10_000_000)]
INCOTERM = Annotated[str, Meta(min_length=3, max_length=3), CLEAN]  # ICC 2020, e.g. "FOB"
COUNTRY = Annotated[str, Meta(min_length=2, max_length=2), CLEAN]  # ISO 3166-1 alpha-2
DEAL_STATE = Annotated[str, Meta(min_length=1, max_length=16), CLEAN]
UTC = Annotated[float, Meta(ge=0.0, le=1e11)]  # UTC seconds since the epoch
TIER = tuple[QUANTITY, MONEY]  # (from this many units, unit price in major units)
TIERS = Annotated[tuple[TIER, ...], Meta(min_length=1, max_length=8)]


# --------------------------------------------------------------------------- client -> server


@_register
class RequestQuote(Message, tag=50, frozen=True):
    """Ask a booth for a quotation; ``key`` makes a retry the same request."""

    booth: ID
    sku: ID
    qty: QUANTITY
    incoterm: INCOTERM
    destination: COUNTRY
    key: TOKEN


@_register
class SendQuotation(Message, tag=51, frozen=True):
    """Booth staff only: the answer to an RFQ of your booth."""

    deal_id: TOKEN
    tiers: TIERS
    currency: CURRENCY
    valid_for: Annotated[float, Meta(gt=0.0, le=90 * 86400.0)]  # seconds
    lead_days: Annotated[int, Meta(ge=0, le=365)]
    deposit_percent: Annotated[int, Meta(ge=0, le=100)]


@_register
class PlacePurchaseOrder(Message, tag=52, frozen=True):
    """The buyer accepts the quotation: ``escrow_id`` is its deposit, held at the bank."""

    deal_id: TOKEN
    escrow_id: TOKEN


@_register
class ConfirmShipment(Message, tag=53, frozen=True):
    """Booth staff only: the goods left; the deposit is paid to the exhibitor."""

    deal_id: TOKEN


@_register
class ConfirmDelivery(Message, tag=54, frozen=True):
    """The buyer paid the balance's intent at the bank: the deal is done."""

    deal_id: TOKEN


@_register
class CancelDeal(Message, tag=55, frozen=True):
    """The buyer or the booth's staff call it off before shipment (the deposit is voided back)."""

    deal_id: TOKEN


@_register
class QueryDeals(Message, tag=56, frozen=True):
    """Your deals as a buyer, and your booth's as its staff: a DealStatus each."""


# --------------------------------------------------------------------------- server -> client


@_register
class DealStatus(Message, tag=120, frozen=True):
    """A deal as it stands. Amounts are major units of ``currency``; the deposit goes into
    escrow payable to ``payee_account`` with ``deal_id`` as its end-to-end id."""

    deal_id: TOKEN
    key: TOKEN
    state: DEAL_STATE  # requested quoted ordered shipped delivered canceled expired
    booth: ID
    sku: ID
    qty: QUANTITY
    incoterm: INCOTERM
    destination: COUNTRY
    tiers: Annotated[tuple[TIER, ...], Meta(max_length=8)]
    currency: CURRENCY | None
    unit_price: MONEY | None
    total: MONEY | None
    deposit: MONEY | None
    deposit_minor: Annotated[int, Meta(ge=0)] | None
    valid_until: UTC | None
    lead_days: Annotated[int, Meta(ge=0, le=365)] | None
    payee_account: TOKEN | None
    escrow_id: TOKEN | None
    uetr: TOKEN | None
    balance_intent_id: TOKEN | None
    message: MESSAGE


DEALS_CLIENT_MESSAGES = (RequestQuote, SendQuotation, PlacePurchaseOrder, ConfirmShipment, ConfirmDelivery,
                         CancelDeal, QueryDeals)  # the ones server.deals handles

__all__ = [
    "RequestQuote", "SendQuotation", "PlacePurchaseOrder", "ConfirmShipment", "ConfirmDelivery", "CancelDeal",
    "QueryDeals", "DealStatus", "DEALS_CLIENT_MESSAGES",
]
