"""The records of the analytics event log: what happened at a booth, to whom, and when.

The log is append-only; every figure an exhibitor sees is an aggregation of it, so figures
can be recomputed from scratch and tested exactly. Times are UTC seconds since the epoch
(the server's wall clock), never local times. Visitors are keyed by the session's
``visitor_id``, the identity it proves, never by display name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import numpy as np


class EventKind(StrEnum):
    BOOTH_PASSED = "booth_passed"  # came near a booth (within the passing zone)
    BOOTH_ENTERED = "booth_entered"
    BOOTH_LEFT = "booth_left"  # carries the visit's dwell in seconds
    CATALOGUE_OPENED = "catalogue_opened"
    PRODUCT_VIEWED = "product_viewed"  # carries the sku
    ORDER_PLACED = "order_placed"  # carries sku, amount and currency; ref is the order id
    ORDER_PAID = "order_paid"  # as ORDER_PLACED, once the bank settled it
    CARD_EXCHANGED = "card_exchanged"  # ref is the exchange id; other is the staff member
    MEETING_BOOKED = "meeting_booked"  # ref is the booking id
    QUOTE_REQUESTED = "quote_requested"  # a buyer's RFQ: carries the sku; ref is the deal id


ORDER_KINDS = frozenset({EventKind.ORDER_PLACED, EventKind.ORDER_PAID})
MAX_TEXT = 128


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. Every event names a booth: the log is about booths.

    ``seq`` is 0 until the log has stored the event, then its position in the log."""

    at: float
    kind: EventKind
    visitor: str
    booth: str
    hall: str = ""
    sku: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    dwell: float | None = None
    ref: str | None = None
    other: str | None = None  # the other party of a card exchange or a meeting
    seq: int = 0

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise ValueError(f"bad {self.kind} event: {problem}")

    def problem(self) -> str | None:
        """Why this event cannot be stored, or None."""
        if not isinstance(self.kind, EventKind):
            return f"unknown kind {self.kind!r}"
        if not (math.isfinite(self.at) and self.at >= 0):
            return f"time {self.at!r} is not a UTC timestamp"
        for name in ("visitor", "booth"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
                return f"{name} must be 1..{MAX_TEXT} characters"
        if (self.dwell is not None) != (self.kind is EventKind.BOOTH_LEFT):
            return "dwell is given with booth_left and only with it"
        if self.dwell is not None and not (math.isfinite(self.dwell) and self.dwell >= 0):
            return f"dwell {self.dwell!r} must be a non-negative number of seconds"
        is_order = self.kind in ORDER_KINDS
        if is_order != (self.amount_minor is not None) or is_order != (self.currency is not None):
            return "amount and currency are given with orders and only with them"
        if is_order:
            if not isinstance(self.amount_minor, int) or self.amount_minor <= 0:
                return f"amount {self.amount_minor!r} must be a positive number of minor units"
            if not (isinstance(self.currency, str) and len(self.currency) == 3 and self.currency.isupper()):
                return f"currency {self.currency!r} is not an ISO 4217 code"
            if not self.sku or not self.ref:
                return "an order event names its sku and its order id (ref)"
        if self.kind is EventKind.PRODUCT_VIEWED and not self.sku:
            return "a product view names its sku"
        if self.kind in (EventKind.CARD_EXCHANGED, EventKind.MEETING_BOOKED) and not self.ref:
            return "names the exchange or booking (ref)"
        if self.kind is EventKind.QUOTE_REQUESTED and not (self.sku and self.ref):
            return "a request for quotation names its sku and its deal id (ref)"
        return None


XY = np.dtype("<f8")  # a position sample's x and y on disk: the simulation's float64, byte order fixed


class PositionSecond(NamedTuple):
    """Where a hall's visitors stood at one whole second, for the heatmaps: one row of the
    ``position_seconds`` table, not one per visitor (a row each was most of the writer's
    work and of the file). No visitor ids: nothing reads them. ``xy`` is ``samples`` (x, y) pairs as little-endian float64, the floats the
    simulation had, so a heatmap of any cell size bins them exactly as before."""

    at: float
    hall: str
    samples: int  # how many positions xy holds
    xy: bytes

    @classmethod
    def of(cls, at: float, hall: str, xy: np.ndarray) -> PositionSecond:
        """The row of (n, 2) positions."""
        return cls(at, hall, len(xy), pack(xy))


def pack(xy: np.ndarray) -> bytes:
    """(n, 2) positions as a ``PositionSecond``'s bytes."""
    return np.ascontiguousarray(xy, dtype=XY).tobytes()


def unpack(blobs: Iterable[bytes]) -> np.ndarray:
    """The positions of many ``PositionSecond`` rows as one (n, 2) float64 array."""
    return np.frombuffer(b"".join(blobs), dtype=XY).reshape(-1, 2)

