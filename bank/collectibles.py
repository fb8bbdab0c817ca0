"""Digital collectibles that serve the real economy, sans-I/O: editions, items, and the rules
against speculation (after the 2022 initiative of China's industry associations on digital
collectibles), each a function that raises :class:`RuleBroken` with the API's code.

* An **edition** is issued by an exhibitor's merchant account or the organiser's: either a
  certificate of authenticity and origin bound to a product (product, batch, origin) or an
  attendance token (an event). Its size is fixed when it is made; items carry serials
  ``<edition>-<n>`` for n in 1..size.
* **Priced only in fiat**: an edition's price is in an ISO 4217 currency the bank serves
  (``not_fiat_currency`` otherwise); a priced item is issued only against a paid payment
  intent of that price, from the holder to the issuer.
* **Never split**: an item moves whole (the ledger refuses anything but 1 of a serial).
* **No secondary sale**: nothing sells a held item; the API refuses any attempt
  (``secondary_sale_forbidden``), including a gift that names a price.
* **Gifts** only after a holding period (default 180 days from when the giver got it), only
  to a contact the platform recorded (exchanged cards), only between ``verified`` accounts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from . import fx
from .ledger import Account, AccountKind, KycLevel

MAX_EDITION_SIZE = 100_000
DAY_MS = 86_400_000
_SERIAL = re.compile(r"^(ed_[0-9a-f]{24})-(\d{1,6})$")


class EditionKind(StrEnum):
    CERTIFICATE = "certificate"  # authenticity and origin of a purchased product
    ATTENDANCE = "attendance"  # visited a booth, attended the keynote


class IssuerKind(StrEnum):
    EXHIBITOR = "exhibitor"
    ORGANISER = "organiser"


class RuleBroken(Exception):
    """A collectible rule said no; ``status`` and ``code`` are the API's answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Edition:
    id: str
    issuer_account_id: str
    issuer_kind: IssuerKind
    kind: EditionKind
    title: str
    size: int
    price: int  # minor units of ``currency``; 0: given with the purchase or the visit
    currency: str
    product: str | None  # certificates: what, which batch, from where
    batch: str | None
    origin: str | None
    event: str | None  # attendance tokens: which booth visit or talk
    created_at: int
    issued: int = 0

    def serial(self, number: int) -> str:
        assert 1 <= number <= self.size, (number, self.size)
        return f"{self.id}-{number:0{len(str(self.size))}d}"

    @property
    def mint_account_id(self) -> str:
        return mint_account_id(self.id)


@dataclass(frozen=True, slots=True)
class Item:
    serial: str
    edition_id: str
    number: int
    holder_account_id: str
    order_id: str | None  # the purchase a certificate is bound to
    payment_intent_id: str | None  # what paid for a priced item
    issued_at: int
    acquired_at: int  # when the holder got it: the holding period counts from here


def mint_account_id(edition_id: str) -> str:
    return f"bank:mint:{edition_id}"


def edition_of(serial: str) -> str | None:
    match = _SERIAL.match(serial)
    return match.group(1) if match else None


def numbered(serial: str) -> tuple[str, int] | None:
    """(edition id, number) of a serial, its number padded any way."""
    match = _SERIAL.match(serial)
    return (match.group(1), int(match.group(2))) if match else None


def check_edition(*, issuer: Account | None, issuer_kind: IssuerKind, kind: EditionKind, size: int, price: int,
                  currency: str, product: str | None, batch: str | None, origin: str | None,
                  event: str | None) -> None:
    if currency not in fx.CURRENCIES:
        raise RuleBroken(400, "not_fiat_currency",
                         f"collectibles are priced only in a fiat currency the bank serves (ISO 4217), "
                         f"not {currency!r}: one of {', '.join(fx.CURRENCIES)}")
    if issuer is None or issuer.kind is not AccountKind.MERCHANT:
        raise RuleBroken(404, "issuer_not_found", "the issuer must be an exhibitor's or the organiser's merchant account")
    if issuer.currency != currency:
        raise RuleBroken(400, "currency_mismatch", f"the issuer {issuer.id} is paid in {issuer.currency}, not {currency}")
    if not 1 <= size <= MAX_EDITION_SIZE:
        raise RuleBroken(400, "invalid_edition", f"an edition has 1..{MAX_EDITION_SIZE} items")
    if kind is EditionKind.CERTIFICATE and not (product and batch and origin):
        raise RuleBroken(400, "invalid_edition", "a certificate of authenticity names its product, batch and origin")
    if kind is EditionKind.ATTENDANCE and not event:
        raise RuleBroken(400, "invalid_edition", "an attendance token names its event")
    if price < 0:
        raise RuleBroken(400, "invalid_edition", "a price is zero or more minor units")


def check_issue(edition: Edition, holder: Account | None, order_id: str | None) -> int:
    """The number of the next item; raises if the edition is complete or the holder cannot hold."""
    if holder is None or holder.kind not in (AccountKind.VISITOR, AccountKind.MERCHANT):
        raise RuleBroken(404, "holder_not_found", "items are held by visitor or merchant accounts")
    if edition.issued >= edition.size:
        raise RuleBroken(409, "edition_complete", f"edition {edition.id} has issued all {edition.size} items")
    if edition.kind is EditionKind.CERTIFICATE and not order_id:
        raise RuleBroken(400, "order_required", "a certificate is bound to the order of the product it certifies")
    return edition.issued + 1


def check_gift(item: Item, giver: Account, recipient: Account | None, *, are_contacts: bool, now: int,
               holding_period_ms: int) -> None:
    """Every rule a gift must pass, in the order a person would want to hear them."""
    if item.holder_account_id != giver.id:
        raise RuleBroken(403, "not_holder", f"you do not hold {item.serial}")
    if recipient is None or recipient.kind not in (AccountKind.VISITOR, AccountKind.MERCHANT):
        raise RuleBroken(404, "recipient_not_found", "no such account to give to")
    if recipient.id == giver.id:
        raise RuleBroken(400, "invalid_request", "you already hold it")
    if giver.kyc is not KycLevel.VERIFIED or recipient.kyc is not KycLevel.VERIFIED:
        who = "you are" if giver.kyc is not KycLevel.VERIFIED else "the recipient is"
        raise RuleBroken(403, "kyc_required", f"gifts are only between verified accounts, and {who} not verified "
                                              "(POST /v1/accounts/me/kyc)")
    if not are_contacts:
        raise RuleBroken(403, "not_a_contact", "an item may be given only to a contact you exchanged cards with")
    free_at = item.acquired_at + holding_period_ms
    if now < free_at:
        days = -(-(free_at - now) // DAY_MS)
        raise RuleBroken(409, "holding_period", f"{item.serial} may be given {days} day(s) from now: "
                                                f"an item is held {holding_period_ms // DAY_MS} days before a gift")
