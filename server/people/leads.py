"""Leads: the visitors an exhibitor met, one lead per visitor and booth.

Every card exchanged with the booth's staff, every order, every meeting and every request
for quotation is a *touch* that creates the visitor's lead at that booth or adds to it. One
lead per person (not per touch) because staff notes and the rating are about a person, and a spreadsheet of leads
should not list the same buyer three times. The lead shows the visitor's card only when
they exchanged cards at the booth (consent); otherwise only the display name they chose.

The CSV export is RFC 4180 (CRLF, fields quoted when needed) in UTF-8 with a byte-order
mark, because Excel reads UTF-8 without one as the local code page and mangles names such
as 李伟; LibreOffice and Python's csv module read the BOM fine (``encoding="utf-8-sig"``).
Cells that a spreadsheet would run as a formula (=, +, -, @, tab, CR) get a leading
apostrophe: a visitor's card must not become code on the exhibitor's computer.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from server.analytics.events import Event, EventKind

from .cards import Card

MAX_NOTES = 2000
RATINGS = range(1, 6)


class LeadSource(StrEnum):
    CARD = "card"
    ORDER = "order"
    MEETING = "meeting"
    RFQ = "rfq"  # a request for quotation: the B2B buyer's first word


@dataclass(frozen=True, slots=True)
class Touch:
    booth: str
    visitor: str
    display_name: str
    at: float  # UTC seconds
    source: LeadSource
    ref: str  # the exchange, order, booking or deal id


@dataclass(frozen=True, slots=True)
class Lead:
    booth: str
    visitor: str
    display_name: str
    first_at: float
    last_at: float
    sources: tuple[LeadSource, ...]  # each source once, in LeadSource order
    orders: int
    meetings: int
    notes: str = ""
    rating: int | None = None

    @property
    def card_shared(self) -> bool:
        return LeadSource.CARD in self.sources


def touch(lead: Lead | None, t: Touch) -> Lead:
    """The lead after one more touch (a new lead from its first)."""
    if lead is None:
        lead = Lead(t.booth, t.visitor, t.display_name, t.at, t.at, (), 0, 0)
    assert (lead.booth, lead.visitor) == (t.booth, t.visitor), "a touch of another lead"
    sources = tuple(s for s in LeadSource if s in lead.sources or s is t.source)
    return replace(
        lead,
        display_name=t.display_name or lead.display_name,
        first_at=min(lead.first_at, t.at),
        last_at=max(lead.last_at, t.at),
        sources=sources,
        orders=lead.orders + (t.source is LeadSource.ORDER),
        meetings=lead.meetings + (t.source is LeadSource.MEETING),
    )


class LeadError(ValueError):
    pass


def check_notes(notes: str) -> str:
    if not isinstance(notes, str):
        raise LeadError("notes must be text")
    notes = notes.strip()
    if len(notes) > MAX_NOTES:
        raise LeadError(f"notes: at most {MAX_NOTES} characters")
    return notes


def check_rating(rating: int | None) -> int | None:
    if rating is not None and (isinstance(rating, bool) or rating not in RATINGS):
        raise LeadError(f"rating must be 1 to 5 or none, got {rating!r}")
    return rating


def check_access(staff_of: str | None, booth: str) -> None:
    """An exhibitor's staff see and annotate only their own booth's leads."""
    if staff_of != booth:
        raise LeadError(f"only the staff of booth {booth!r} may see its leads")


# --------------------------------------------------------------------------- CSV

CSV_COLUMNS = (
    "booth", "visitor_id", "name", "company", "country", "role", "email", "phone", "language",
    "first_contact_utc", "last_contact_utc", "sources", "orders", "meetings", "looked_at",
    "rating", "notes",
)


def iso_utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_rows(leads: Iterable[Lead], cards: dict[str, Card], looked_at: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """One row per lead. ``cards`` maps visitor id to card; a card is used only when the
    lead's visitor shared it at this booth."""
    rows = []
    for lead in leads:
        card = cards.get(lead.visitor) if lead.card_shared else None
        rows.append([
            lead.booth, lead.visitor,
            card.name if card else lead.display_name,
            card.company if card else "", card.country if card else "", card.role if card else "",
            (card.email or "") if card else "", (card.phone or "") if card else "",
            card.language if card else "",
            iso_utc(lead.first_at), iso_utc(lead.last_at),
            ";".join(lead.sources), str(lead.orders), str(lead.meetings),
            ";".join(looked_at.get(lead.visitor, ())),
            "" if lead.rating is None else str(lead.rating), lead.notes,
        ])
    return rows


def to_csv(rows: Iterable[list[str]], header: tuple[str, ...] = CSV_COLUMNS) -> bytes:
    """The CSV file's bytes: BOM, header, rows; CRLF; formula-like cells defused."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    for row in rows:
        assert len(row) == len(header), row
        writer.writerow([_defuse(cell) for cell in row])
    return buffer.getvalue().encode("utf-8-sig")


def _defuse(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def looked_at(events: Iterable[Event], booth: str) -> dict[str, tuple[str, ...]]:
    """Per visitor, what they looked at in ``booth``: "catalogue" if they opened it, then
    each product viewed, in the order first seen."""
    seen: dict[str, dict[str, None]] = {}
    for e in events:
        if e.booth != booth:
            continue
        if e.kind is EventKind.CATALOGUE_OPENED:
            seen.setdefault(e.visitor, {})["catalogue"] = None
        elif e.kind is EventKind.PRODUCT_VIEWED:
            assert e.sku is not None
            seen.setdefault(e.visitor, {})[e.sku] = None
    return {visitor: tuple(items) for visitor, items in seen.items()}
