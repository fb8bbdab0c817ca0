"""Where cards, exchanges, leads and meetings live: a storage interface and SQLite.

``PeopleStore`` is what the server needs; the cluster's PostgreSQL implementation follows
the same methods and the same constraints. Calls block: the server makes them from its
database thread (``server.dbthread``), never from the event loop.

Two rules are the database's, so they hold across processes and not only in one:
- one live booking per slot: a unique index on ``bookings (slot_id) WHERE status = 'booked'``;
  booking is one transaction that checks the visitor's clashes and inserts, and a
  constraint failure is "taken", never a second booking;
- a touch counts once: ``touches`` is unique on (booth, source, ref), so an order or a
  meeting reported twice (a retry, two processes) does not make the lead count it twice.
Every change is one transaction (SQLite: WAL mode with ``synchronous=FULL``): what a
method returned is on disk.

One class holds the queries (``SQLPeopleStore``), written in the SQL both databases speak
(``INSERT ... ON CONFLICT``, partial unique indexes, ``?`` placeholders that the PostgreSQL
store passes on as ``%s``); ``SQLitePeopleStore`` and ``server.people.pg_store.PgPeopleStore``
say only how to open a transaction and which error is a broken unique constraint.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol

from server.sqlite import connect, transaction

from .cards import CARD_FIELDS, Card
from .exchange import Exchange, ExchangeState
from .leads import Lead, LeadSource, Touch, check_notes, check_rating, touch
from .meetings import Booking, BookingStatus, MeetingError, Slot, check_booking, check_slot

SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    visitor TEXT PRIMARY KEY, name TEXT NOT NULL, company TEXT NOT NULL, country TEXT NOT NULL,
    role TEXT NOT NULL, language TEXT NOT NULL, timezone TEXT NOT NULL, email TEXT, phone TEXT,
    updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS exchanges (
    id TEXT PRIMARY KEY, offerer TEXT NOT NULL, recipient TEXT NOT NULL, booth TEXT,
    state TEXT NOT NULL, offered_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL, answered_at DOUBLE PRECISION, staff TEXT,
    CHECK (offerer <> recipient));
CREATE TABLE IF NOT EXISTS touches (
    booth TEXT NOT NULL, visitor TEXT NOT NULL, display_name TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
    source TEXT NOT NULL, ref TEXT NOT NULL, UNIQUE (booth, source, ref));
CREATE TABLE IF NOT EXISTS leads (
    booth TEXT NOT NULL, visitor TEXT NOT NULL, display_name TEXT NOT NULL,
    first_at DOUBLE PRECISION NOT NULL, last_at DOUBLE PRECISION NOT NULL, sources TEXT NOT NULL,
    orders INTEGER NOT NULL CHECK (orders >= 0), meetings INTEGER NOT NULL CHECK (meetings >= 0),
    notes TEXT NOT NULL DEFAULT '', rating INTEGER CHECK (rating BETWEEN 1 AND 5),
    PRIMARY KEY (booth, visitor));
CREATE TABLE IF NOT EXISTS slots (
    id TEXT PRIMARY KEY, booth TEXT NOT NULL, host TEXT NOT NULL, host_name TEXT NOT NULL,
    starts_at DOUBLE PRECISION NOT NULL, minutes INTEGER NOT NULL CHECK (minutes > 0));
CREATE INDEX IF NOT EXISTS slots_booth ON slots (booth, starts_at);
CREATE TABLE IF NOT EXISTS bookings (
    id TEXT PRIMARY KEY, slot_id TEXT NOT NULL REFERENCES slots (id), visitor TEXT NOT NULL,
    visitor_name TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('booked', 'cancelled')),
    booked_at DOUBLE PRECISION NOT NULL, reminded INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS one_live_booking_per_slot ON bookings (slot_id) WHERE status = 'booked';
CREATE INDEX IF NOT EXISTS bookings_visitor ON bookings (visitor);
"""


class PeopleStore(Protocol):
    def set_card(self, visitor: str, card: Card, now: float) -> None: ...
    def card(self, visitor: str) -> Card | None: ...
    def cards(self, visitors: Sequence[str]) -> dict[str, Card]: ...
    def card_holders(self) -> list[str]: ...
    def save_exchange(self, exchange: Exchange) -> None: ...
    def exchanges(self) -> list[Exchange]: ...
    def exchange(self, exchange_id: str) -> Exchange | None: ...
    def exchanges_between(self, a: str, b: str) -> list[Exchange]: ...
    def add_touch(self, t: Touch) -> Lead: ...
    def leads(self, booth: str) -> list[Lead]: ...
    def annotate(self, booth: str, visitor: str, notes: str | None, rating: int | None) -> Lead: ...
    def publish_slot(self, slot: Slot, now: float) -> Slot: ...
    def slots(self, booth: str, after: float) -> list[tuple[Slot, bool]]: ...
    def book(self, booking_id: str, slot_id: str, visitor: str, visitor_name: str, now: float) -> Booking: ...
    def cancel(self, booking_id: str, by: str) -> Booking: ...
    def reschedule(self, booking_id: str, new_booking_id: str, slot_id: str, visitor: str,
                   now: float) -> tuple[Booking, Booking]: ...
    def bookings_of(self, visitor: str) -> list[Booking]: ...
    def take_due_reminders(self, now: float, lead: float) -> list[Booking]: ...
    def close(self) -> None: ...


class Db(Protocol):
    """What the queries need of a connection inside a transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...


class SQLPeopleStore:
    """The PeopleStore queries; subclasses say how to open a transaction and how to hold
    one person's rows while a rule about them is checked."""

    def _transaction(self) -> Any:
        raise NotImplementedError

    def _hold(self, db: Db, key: str) -> None:
        """Until the transaction ends, no other transaction holds ``key`` (a host checking
        their slots for overlaps, a visitor their meetings for clashes). SQLite needs
        nothing: BEGIN IMMEDIATE already makes writers take turns."""

    # ------------------------------------------------------------------ cards

    def set_card(self, visitor: str, card: Card, now: float) -> None:
        names = ", ".join(CARD_FIELDS)
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO cards (visitor, {names}, updated_at) VALUES (?, {', '.join('?' * len(CARD_FIELDS))}, ?) "
                f"ON CONFLICT (visitor) DO UPDATE SET ({names}, updated_at) = "
                f"({', '.join('excluded.' + n for n in CARD_FIELDS)}, excluded.updated_at)",
                (visitor, *card.as_tuple(), now),
            )

    def card(self, visitor: str) -> Card | None:
        return self.cards([visitor]).get(visitor)

    def card_holders(self) -> list[str]:
        with self._transaction() as db:
            return [row["visitor"] for row in db.execute("SELECT visitor FROM cards").fetchall()]

    def cards(self, visitors: Sequence[str]) -> dict[str, Card]:
        found = {}
        with self._transaction() as db:
            for i in range(0, len(visitors), 500):
                chunk = list(visitors[i : i + 500])
                rows = db.execute(f"SELECT * FROM cards WHERE visitor IN ({','.join('?' * len(chunk))})", chunk)
                for row in rows.fetchall():
                    found[row["visitor"]] = Card(*(row[name] for name in CARD_FIELDS))
        return found

    # ------------------------------------------------------------------ exchanges

    def save_exchange(self, exchange: Exchange) -> None:
        names = [fl.name for fl in fields(Exchange)]
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO exchanges ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
                f"ON CONFLICT (id) DO UPDATE SET ({', '.join(names[1:])}) = ({', '.join('excluded.' + n for n in names[1:])})",
                _values(exchange),
            )

    def exchanges(self) -> list[Exchange]:
        with self._transaction() as db:
            rows = db.execute("SELECT * FROM exchanges ORDER BY offered_at, id").fetchall()
        return [_exchange(row) for row in rows]

    def exchange(self, exchange_id: str) -> Exchange | None:
        with self._transaction() as db:
            row = db.execute("SELECT * FROM exchanges WHERE id = ?", (exchange_id,)).fetchone()
        return _exchange(row) if row else None

    def exchanges_between(self, a: str, b: str) -> list[Exchange]:
        """Every exchange of the two, either way, oldest first."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT * FROM exchanges WHERE (offerer = ? AND recipient = ?) OR (offerer = ? AND recipient = ?) "
                "ORDER BY offered_at, id", (a, b, b, a)).fetchall()
        return [_exchange(row) for row in rows]

    # ------------------------------------------------------------------ leads

    def add_touch(self, t: Touch) -> Lead:
        """Record a touch and fold it into the lead, once per (booth, source, ref)."""
        with self._transaction() as db:
            new = db.execute(
                "INSERT INTO touches VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (t.booth, t.visitor, t.display_name, t.at, t.source.value, t.ref),
            ).rowcount
            lead = self._lead(db, t.booth, t.visitor)
            if new:
                lead = touch(lead, t)
                names = [fl.name for fl in fields(Lead)]
                db.execute(
                    f"INSERT INTO leads VALUES ({', '.join('?' * len(names))}) ON CONFLICT (booth, visitor) DO UPDATE "
                    f"SET ({', '.join(names[2:])}) = ({', '.join('excluded.' + n for n in names[2:])})",
                    _lead_values(lead),
                )
        assert lead is not None
        return lead

    def leads(self, booth: str) -> list[Lead]:
        with self._transaction() as db:
            rows = db.execute("SELECT * FROM leads WHERE booth = ? ORDER BY first_at, visitor", (booth,)).fetchall()
        return [_lead(row) for row in rows]

    def annotate(self, booth: str, visitor: str, notes: str | None, rating: int | None) -> Lead:
        """Set the staff's notes (None: keep) and rating (None: clear) of a lead."""
        rating = check_rating(rating)
        with self._transaction() as db:
            if self._lead(db, booth, visitor) is None:
                raise KeyError(f"booth {booth!r} has no lead {visitor!r}")
            if notes is not None:
                db.execute("UPDATE leads SET notes = ? WHERE booth = ? AND visitor = ?", (check_notes(notes), booth, visitor))
            db.execute("UPDATE leads SET rating = ? WHERE booth = ? AND visitor = ?", (rating, booth, visitor))
            lead = self._lead(db, booth, visitor)
        assert lead is not None
        return lead

    @staticmethod
    def _lead(db: Db, booth: str, visitor: str) -> Lead | None:
        row = db.execute("SELECT * FROM leads WHERE booth = ? AND visitor = ?", (booth, visitor)).fetchone()
        return _lead(row) if row else None

    # ------------------------------------------------------------------ meetings

    def publish_slot(self, slot: Slot, now: float) -> Slot:
        with self._transaction() as db:
            self._hold(db, f"host:{slot.host}")
            rows = db.execute(
                "SELECT * FROM slots WHERE host = ? AND starts_at < ? AND starts_at + minutes * 60 > ?",
                (slot.host, slot.ends_at, slot.starts_at),
            ).fetchall()
            check_slot(slot, [Slot(**dict(r)) for r in rows], now)
            if db.execute("SELECT 1 FROM slots WHERE id = ?", (slot.id,)).fetchone():
                raise MeetingError("conflict", f"slot {slot.id!r} exists already")
            db.execute("INSERT INTO slots VALUES (?, ?, ?, ?, ?, ?)", _values(slot))
        return slot

    def slots(self, booth: str, after: float) -> list[tuple[Slot, bool]]:
        """The booth's slots starting after ``after``, each with whether it is booked."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT s.*, EXISTS (SELECT 1 FROM bookings b WHERE b.slot_id = s.id AND b.status = 'booked') AS taken "
                "FROM slots s WHERE s.booth = ? AND s.starts_at > ? ORDER BY s.starts_at, s.id",
                (booth, after),
            ).fetchall()
        return [(Slot(*(r[name] for name in _SLOT_FIELDS)), bool(r["taken"])) for r in rows]

    def book(self, booking_id: str, slot_id: str, visitor: str, visitor_name: str, now: float) -> Booking:
        with self._transaction() as db:
            return self._book(db, booking_id, slot_id, visitor, visitor_name, now)

    def cancel(self, booking_id: str, by: str) -> Booking:
        """Cancel a live booking; its visitor or the slot's host may."""
        with self._transaction() as db:
            booking = self._booking(db, booking_id)
            if booking is None or by not in (booking.visitor, booking.slot.host):
                raise MeetingError("unknown", f"you have no booking {booking_id!r}")
            if booking.status is not BookingStatus.BOOKED:
                raise MeetingError("not_allowed", "that booking is cancelled already")
            db.execute("UPDATE bookings SET status = 'cancelled' WHERE id = ?", (booking_id,))
            return self._stored(db, booking_id)

    def reschedule(self, booking_id: str, new_booking_id: str, slot_id: str, visitor: str,
                   now: float) -> tuple[Booking, Booking]:
        """Move a visitor's booking to another slot, in one transaction: on any refusal
        the old booking stands. The old booking (cancelled) and the new."""
        with self._transaction() as db:
            old = self._booking(db, booking_id)
            if old is None or old.visitor != visitor or old.status is not BookingStatus.BOOKED:
                raise MeetingError("unknown", f"you have no live booking {booking_id!r}")
            db.execute("UPDATE bookings SET status = 'cancelled' WHERE id = ?", (booking_id,))
            new = self._book(db, new_booking_id, slot_id, visitor, old.visitor_name, now)
            return self._stored(db, booking_id), new

    def bookings_of(self, visitor: str) -> list[Booking]:
        """A visitor's bookings, and those of the slots they host."""
        with self._transaction() as db:
            return self._bookings_of(db, visitor)

    def take_due_reminders(self, now: float, lead: float) -> list[Booking]:
        """Live bookings whose reminder is due, marked reminded in the same transaction (so
        two processes do not both remind)."""
        with self._transaction() as db:
            ids = [r["id"] for r in db.execute(
                "UPDATE bookings SET reminded = 1 WHERE id IN (SELECT b.id FROM bookings b JOIN slots s ON s.id = b.slot_id "
                "WHERE b.status = 'booked' AND b.reminded = 0 AND s.starts_at - ? <= ? AND ? < s.starts_at + s.minutes * 60) "
                "RETURNING id",
                (lead, now, now),
            ).fetchall()]
            return sorted((self._stored(db, i) for i in ids), key=lambda b: (b.slot.starts_at, b.id))

    def _bookings_of(self, db: Db, visitor: str) -> list[Booking]:
        rows = db.execute(
            "SELECT b.id FROM bookings b JOIN slots s ON s.id = b.slot_id WHERE b.visitor = ? OR s.host = ? "
            "ORDER BY s.starts_at, b.id",
            (visitor, visitor),
        ).fetchall()
        return [self._stored(db, r["id"]) for r in rows]

    def _book(self, db: Db, booking_id: str, slot_id: str, visitor: str, visitor_name: str, now: float) -> Booking:
        row = db.execute("SELECT * FROM slots WHERE id = ?", (slot_id,)).fetchone()
        if row is None:
            raise MeetingError("unknown", f"no slot {slot_id!r}")
        slot = Slot(**dict(row))
        self._hold(db, f"visitor:{visitor}")
        check_booking(slot, visitor, self._bookings_of(db, visitor), now)
        if db.execute("SELECT 1 FROM bookings WHERE id = ?", (booking_id,)).fetchone():
            raise MeetingError("conflict", f"booking id {booking_id!r} is used already")
        taken = db.execute(
            "INSERT INTO bookings VALUES (?, ?, ?, ?, 'booked', ?, 0) ON CONFLICT (slot_id) WHERE status = 'booked' DO NOTHING",
            (booking_id, slot_id, visitor, visitor_name, now),
        ).rowcount == 0  # the unique index on the slot's live booking said no: someone was first
        if taken:
            raise MeetingError("taken", "someone else has booked that slot")
        return self._stored(db, booking_id)

    def _stored(self, db: Db, booking_id: str) -> Booking:
        """A booking this transaction wrote or read, so it exists."""
        booking = self._booking(db, booking_id)
        assert booking is not None, booking_id
        return booking

    @staticmethod
    def _booking(db: Db, booking_id: str) -> Booking | None:
        row = db.execute(
            "SELECT b.*, s.booth, s.host, s.host_name, s.starts_at, s.minutes FROM bookings b "
            "JOIN slots s ON s.id = b.slot_id WHERE b.id = ?",
            (booking_id,),
        ).fetchone()
        if row is None:
            return None
        slot = Slot(row["slot_id"], row["booth"], row["host"], row["host_name"], row["starts_at"], row["minutes"])
        return Booking(row["id"], slot, row["visitor"], row["visitor_name"], BookingStatus(row["status"]),
                       row["booked_at"], bool(row["reminded"]))


class SQLitePeopleStore(SQLPeopleStore):
    def __init__(self, path: Path | str, busy_timeout: float = 10.0) -> None:
        self.db = connect(path, SCHEMA, busy_timeout)
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with transaction(self.db) as db:
            yield db


_SLOT_FIELDS = tuple(fl.name for fl in fields(Slot))


def _values(record: Any) -> tuple:
    return tuple(getattr(record, fl.name) for fl in fields(record))


def _lead_values(lead: Lead) -> tuple:
    values = dict(zip((fl.name for fl in fields(Lead)), _values(lead)))
    values["sources"] = ",".join(values["sources"])
    return tuple(values.values())


def _exchange(row: Any) -> Exchange:
    return Exchange(**{**dict(row), "state": ExchangeState(row["state"])})


def _lead(row: Any) -> Lead:
    values = dict(row)
    values["sources"] = tuple(LeadSource(s) for s in values["sources"].split(",") if s)
    return Lead(**values)
