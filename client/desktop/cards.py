"""Business cards at the desk: your own card (kept in card.json beside preferences.json, sent
with SetCard after each join), the offers others make you (answered with Y/N), the cards
shown to you once both consented, and the reasons a visitor may be reported for.

Sans-I/O: the app feeds it the server's messages and sends what it returns."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import protocol as p
from protocol.people import Card

REPORT_REASONS = ("spam", "harassment", "impersonation", "inappropriate name or avatar")
REQUIRED = ("name", "company", "country", "role")


@dataclass(frozen=True, slots=True)
class MyCard:
    """Your card as SetCard carries it (the server normalises and keeps it)."""

    name: str
    company: str
    country: str  # ISO 3166-1 alpha-2
    role: str
    language: str = "en"
    timezone: str = "UTC"
    email: str | None = None
    phone: str | None = None
    share: bool = True  # consent: without it the card stays in card.json and is never sent

    def missing(self) -> list[str]:
        """The fields a card cannot go without, in the order they are asked for."""
        return [name for name in REQUIRED if not getattr(self, name).strip()]

    def lines(self) -> list[str]:
        return card_lines(self.as_sent())

    def as_sent(self) -> tuple:
        """The eight fields SetCard carries, in its order."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "share")


def card_lines(card: Card | tuple) -> list[str]:
    """A card as the panel shows it: who, what and where, then how to reach them."""
    name, company, country, role, language, timezone, email, phone = card
    reach = "  ·  ".join(x for x in (email, phone) if x)
    return [f"{name}  ·  {role}, {company}", f"    {country}  ·  {language}  ·  {timezone}"] + (
        [f"    {reach}"] if reach else [])


class CardFile:
    """card.json beside the wallet and preferences: the card survives restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> MyCard | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a damaged file: the card is asked for again, nothing else breaks
        known = {f.name for f in fields(MyCard)}
        try:
            return MyCard(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            return None

    def save(self, card: MyCard) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(card), ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)  # never half a card on disk


def merged(saved: MyCard | None, display_name: str, **given: str | None) -> MyCard | None:
    """The saved card with what was given on the command line over it (None: keep)."""
    base = saved or MyCard(display_name, "", "", "")
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes and saved is None:
        return None
    values = asdict(base) | changes
    return MyCard(**values)


@dataclass
class CardDesk:
    """Offers waiting for your answer (oldest first) and the cards you were shown."""

    offers: list[p.CardOffered]
    cards: list[tuple[str, Card]]  # (exchange id, card), newest last

    @classmethod
    def empty(cls) -> CardDesk:
        return cls([], [])

    def offered(self, message: p.CardOffered) -> None:
        self.offers = [o for o in self.offers if o.exchange_id != message.exchange_id] + [message]

    def current(self) -> p.CardOffered | None:
        return self.offers[0] if self.offers else None

    def answered(self, exchange_id: str) -> None:
        self.offers = [o for o in self.offers if o.exchange_id != exchange_id]

    def shown(self, message: p.CardShown) -> None:
        """A card of an exchange that ended: its offer, if it waits here, has nothing left to
        answer (two offers that cross: the second accepted the first, which we were shown)."""
        self.answered(message.exchange_id)
        if all(eid != message.exchange_id for eid, _card in self.cards):
            self.cards.append((message.exchange_id, message.card))

    def lines(self) -> list[str]:
        return [line for _eid, card in reversed(self.cards) for line in card_lines(card)]
