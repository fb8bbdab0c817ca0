"""Giving a certificate to a contact, as a state machine (sans-I/O).

The bank decides (bank/README.md, "Collectibles"): a gift goes only to an account you
exchanged cards with, only between accounts past the real-name check, only after the
holding period, and never for a price. The desk reads what the bank says (your level, your
contacts, each certificate's ``giftable_from``) so it can say beforehand why a gift would be
refused, asks for the real-name check when yours is missing, and asks once more before the
certificate leaves for good. Every refusal the bank still makes is put in words here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from .i18n import _


@dataclass(frozen=True, slots=True)
class Contact:
    account_id: str
    name: str
    verified: bool


@dataclass(frozen=True, slots=True)
class Holding:
    serial: str
    title: str
    giftable_from: datetime


@dataclass(frozen=True, slots=True)
class LoadGiftInfo:
    """Ask the bank for your real-name level, your contacts and your certificates."""


@dataclass(frozen=True, slots=True)
class SubmitRealName:
    legal_name: str
    date_of_birth: str
    country: str
    document_number: str
    key: str


@dataclass(frozen=True, slots=True)
class SendGift:
    serial: str
    to_account_id: str
    key: str  # one per yes: the bank moves the item once however often the call is retried


Action = LoadGiftInfo | SubmitRealName | SendGift
REAL_NAME_FIELDS = ("legal_name", "date_of_birth", "country", "document_number")  # the form's order


@dataclass(frozen=True, slots=True)
class Refusal:
    """What the bank said no with: its code and words, and the request's field at fault."""

    code: str
    message: str
    field: str | None = None


def _field_rule(field: str) -> str | None:
    """A real-name rule the bank named by its field, in the interface's language."""
    return {
        "legal_name": _("Your legal name: a given and a family name, in letters."),
        "date_of_birth": _("Your date of birth as YYYY-MM-DD: the holder must be 18 or older."),
        "country": _("Your country: its two-letter code, e.g. KZ, CN or MY."),
        "document_number": _("Your document number: 6 to 20 capital letters and digits."),
    }.get(field)


class Stage(Enum):
    CLOSED = "closed"
    LOADING = "loading"
    REAL_NAME = "real_name"  # your own check first: the form
    CHECKING = "checking"  # the form is at the bank
    CHOOSING = "choosing"  # a certificate (←/→) and a contact ([ ])
    CONFIRMING = "confirming"
    SENDING = "sending"


OPEN = (Stage.CHOOSING, Stage.CONFIRMING, Stage.SENDING)


def _not_checked(contact: Contact) -> str:
    return _("{name} has not passed the bank's real-name check yet: a gift needs both of you checked "
             "(they press H with their purchases shown).").format(name=contact.name)


def _held(holding: Holding) -> str:
    return _("No. {serial} can be given from {date}: a certificate is held a while first.").format(
        serial=holding.serial, date=holding.giftable_from.date().isoformat())


class GiftDesk:
    def __init__(self, now: Callable[[], datetime], new_key: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.now = now
        self.new_key = new_key
        self.stage = Stage.CLOSED
        self.verified = False
        self.contacts: list[Contact] = []
        self.holdings: list[Holding] = []
        self.item = 0
        self.contact = 0
        self.status = ""  # the last word: why not, or what happened
        self.status_good = False  # the last word is good news (shown in green, not red)
        self.done = False  # a gift went through: the list is asked for again
        self.field: str | None = None  # the real-name field the bank faulted: the form's focus goes there

    def _to(self, stage: Stage, status: str = "", good: bool = False) -> None:
        self.stage, self.status, self.status_good = stage, status, good

    # ------------------------------------------------------------------ the flow

    def open(self) -> list[Action]:
        if self.stage is not Stage.CLOSED:
            return []
        self.done = False
        self._to(Stage.LOADING)
        return [LoadGiftInfo()]

    def loaded(self, verified: bool, contacts: list[Contact], holdings: list[Holding]) -> None:
        if self.stage is not Stage.LOADING:
            return
        self.verified, self.contacts, self.holdings = verified, contacts, holdings
        self.item = min(self.item, max(len(holdings) - 1, 0))
        self.contact = min(self.contact, max(len(contacts) - 1, 0))
        if not verified:  # with nothing to give too: a contact can give only to a checked account
            self._to(Stage.REAL_NAME)
        elif not holdings:
            self._to(Stage.CLOSED, _("You hold no certificate to give."))
        else:
            self._to(Stage.CHOOSING, self._why_not() or "")

    def load_failed(self, message: str) -> None:
        if self.stage is Stage.LOADING:
            self._to(Stage.CLOSED, _("The bank did not answer: {message}").format(message=message))

    def real_name(self, legal_name: str, date_of_birth: str, country: str, document_number: str) -> list[Action]:
        """The form's fields, trimmed; the bank checks the rules and says which one failed."""
        if self.stage is not Stage.REAL_NAME:
            return []
        values = (legal_name.strip(), date_of_birth.strip(), country.strip().upper(), document_number.strip().upper())
        if not all(values):
            self.status = _("Fill in all four fields.")
            return []
        self._to(Stage.CHECKING)
        return [SubmitRealName(*values, key=self.new_key())]

    def real_name_done(self, error: Refusal | None) -> None:
        """The bank's answer to the form: None when the account is now verified."""
        if self.stage is not Stage.CHECKING:
            return
        self.field = error.field if error is not None and error.field in REAL_NAME_FIELDS else None
        if error is None:
            self.verified = True
            if not self.holdings:
                self._to(Stage.CLOSED, _("Your real name is checked: your contacts can give you certificates now."),
                         good=True)
                return
            why_not = self._why_not()
            self._to(Stage.CHOOSING, why_not or _("Your real name is checked."), good=not why_not)
        elif error.code == "kyc_refused":
            self._to(Stage.REAL_NAME, _("The bank's registry refused this document: check its number, or use another."))
        else:
            rule = _field_rule(self.field) if self.field else None
            self._to(Stage.REAL_NAME, rule or _("The bank did not take it: {message}").format(message=error.message))

    def step_item(self, step: int) -> None:
        if self.stage is Stage.CHOOSING and self.holdings:
            self.item = (self.item + step) % len(self.holdings)
            self._to(Stage.CHOOSING, self._why_not() or "")

    def step_contact(self, step: int) -> None:
        if self.stage is Stage.CHOOSING and self.contacts:
            self.contact = (self.contact + step) % len(self.contacts)
            self._to(Stage.CHOOSING, self._why_not() or "")

    def enter(self) -> list[Action]:
        """Enter: choose (then the question), or say yes to the question."""
        if self.stage is Stage.CHOOSING:
            why_not = self._why_not()
            if why_not:
                self.status = why_not
            else:
                self._to(Stage.CONFIRMING)
            return []
        if self.stage is Stage.CONFIRMING:
            holding, contact = self.chosen()
            self._to(Stage.SENDING)
            return [SendGift(holding.serial, contact.account_id, self.new_key())]
        return []

    def escape(self) -> None:
        """Esc: from the question back to the choice; otherwise close."""
        if self.stage is Stage.CONFIRMING:
            self._to(Stage.CHOOSING)
        elif self.stage is not Stage.SENDING:
            self._to(Stage.CLOSED)

    def gifted(self, error: Refusal | None) -> None:
        """The bank's answer to the gift: None when the certificate is the contact's now."""
        if self.stage is not Stage.SENDING:
            return
        holding, contact = self.chosen()
        if error is None:
            self.holdings.remove(holding)
            self.item = 0
            self.done = True
            self._to(Stage.CLOSED, _("No. {serial} is {name}'s now.").format(serial=holding.serial, name=contact.name),
                     good=True)
        else:
            self._to(Stage.CHOOSING, self.refusal(error, holding, contact))

    # ------------------------------------------------------------------ words

    def chosen(self) -> tuple[Holding, Contact]:
        assert self.stage in OPEN and self.holdings and self.contacts, self.stage
        return self.holdings[self.item], self.contacts[self.contact]

    def _why_not(self) -> str | None:
        """Why the bank would refuse this gift, from what it said; None when it should take it."""
        assert self.holdings, "nothing to choose from"
        if not self.contacts:
            return _("Nobody to give to yet: exchange cards with someone first (click them, then O).")
        holding, contact = self.holdings[self.item], self.contacts[self.contact]
        if not contact.verified:
            return _not_checked(contact)
        if holding.giftable_from > self.now():
            return _held(holding)
        return None

    def refusal(self, error: Refusal, holding: Holding, contact: Contact) -> str:
        match error.code:
            case "kyc_required":
                return _not_checked(contact)
            case "not_a_contact":
                return _("The bank has no card exchange between you and {name}.").format(name=contact.name)
            case "holding_period":
                return _held(holding)
            case "not_holder":
                return _("No. {serial} is no longer yours to give.").format(serial=holding.serial)
        return _("The bank did not take it: {message}").format(message=error.message)

    def question(self) -> str:
        holding, contact = self.chosen()
        return _("Give {title} No. {serial} to {name}? It becomes theirs for good: a certificate is never sold, "
                 "and they may give it on only after the holding period.").format(
                     title=holding.title, serial=holding.serial, name=contact.name)

    def lines(self) -> list[str]:
        """The chooser's lines: the certificate, the contact, what the keys do."""
        if self.stage not in OPEN:
            return []
        holding = self.holdings[self.item]
        out = [_("Certificate {n} of {count}: {title}").format(n=self.item + 1, count=len(self.holdings),
                                                              title=holding.title),
               "    " + _("No. {serial}").format(serial=holding.serial)]
        if self.contacts:
            contact = self.contacts[self.contact]
            level = _("real name checked") if contact.verified else _("real name not checked")
            out.append(_("To {name} ({level}), contact {n} of {count}").format(
                name=contact.name, level=level, n=self.contact + 1, count=len(self.contacts)))
        out.append(_("←/→ certificate · [ ] contact · Enter give · Esc close"))
        return out
