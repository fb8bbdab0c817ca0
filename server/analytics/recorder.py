"""What the simulation tells analytics, sans I/O: it calls these from the tick and from
message handlers; the events and position samples wait in memory until the shell's writer
(``server.analytics.writer``) takes them to the event log from its database thread.

Times are the injected wall clock's (UTC seconds), read once per tick, so every event of a
tick carries the same time and dwell times are whole ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.people.leads import LeadSource, Touch
from world.model import BoothKind, Expo

from .events import Event, EventKind, PositionSecond
from .heatmap import PositionSampler
from .presence import BoothZones, PresenceTracker

MAX_PENDING_EVENTS = 200_000  # beyond this the writer is stuck: the oldest are dropped, and counted


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """Every joined visitor's position at one whole second, as arrays (cheap in the tick)."""

    at: float
    halls: np.ndarray  # hall index per visitor
    pos: np.ndarray  # (n, 2)

    def __len__(self) -> int:
        return len(self.halls)

    def rows(self, hall_ids: tuple[str, ...]) -> list[PositionSecond]:
        """The samples as the stores write them: one row per hall with visitors in it."""
        return [PositionSecond.of(self.at, hall_ids[hall], self.pos[self.halls == hall])
                for hall in np.unique(self.halls).tolist()]


class ActivityRecorder:
    def __init__(self, expo: Expo, capacity: int, wall: Callable[[], float]) -> None:
        self.wall = wall
        self.expo = expo
        self.hall_ids = tuple(h.id for h in expo.halls)
        self.presence = PresenceTracker(BoothZones.of(expo), capacity)
        self.tracked = np.zeros(capacity, dtype=bool)  # slots of visitors (not staff) being followed
        self.fresh = np.zeros(capacity, dtype=bool)  # joined (or the zones changed) since last looked at
        self.sampler = PositionSampler()
        self.events: list[Event] = []
        self.samples: list[SampleBatch] = []
        self.touches: list[Touch] = []  # leads from orders and RFQs, for the people store
        self.dropped = 0

    # ------------------------------------------------------------------ from the simulation

    def join(self, slot: int, visitor: str, staff: bool = False) -> None:
        """A visitor's avatar appeared. Booth staff are not visitors: standing in their
        booth all day, they would be its longest visits and every heatmap's hottest cell."""
        self.tracked[slot] = not staff
        self.fresh[slot] = True
        if not staff:
            self.presence.join(slot, visitor)

    def leave(self, slot: int) -> None:
        if self.tracked[slot]:
            self.tracked[slot] = False
            self._add(self.presence.leave(slot, self.wall()))

    def rezone(self, expo: Expo) -> None:
        self.expo = expo
        self.hall_ids = tuple(h.id for h in expo.halls)
        self._add(self.presence.rezone(BoothZones.of(expo), self.wall()))
        self.fresh[:] = True  # avatars were moved to fit the new world

    def end_visits(self) -> None:
        """The server is stopping: every visit in progress ends now."""
        self._add(self.presence.rezone(self.presence.zones, self.wall()))

    def observe(self, slots: np.ndarray, pos: np.ndarray, halls: np.ndarray, moved: np.ndarray | None = None) -> None:
        """The joined avatars after a tick's movement (staff among them are skipped).
        ``moved`` (per slot, optional) says which moved this tick: only those, and those
        new since the last look, can have entered or left a zone."""
        visitors = self.tracked[slots]
        if not visitors.all():
            slots, pos, halls = slots[visitors], pos[visitors], halls[visitors]
            moved = None if moved is None else moved[visitors]
        now = self.wall()
        if moved is None:
            self._add(self.presence.update(now, slots, pos, halls))
        else:
            look = moved | self.fresh[slots]
            self._add(self.presence.update(now, slots[look], pos[look], halls[look]))
        self.fresh[slots] = False
        at = self.sampler.due(now)
        if at is not None and len(slots):
            self.samples.append(SampleBatch(at, halls.copy(), pos.copy()))

    def catalogue_opened(self, visitor: str, booth_id: str) -> None:
        booth = self.expo.booth(booth_id)
        if booth is not None and booth.kind is BoothKind.EXHIBITOR:
            self.record(Event(self.wall(), EventKind.CATALOGUE_OPENED, visitor, booth.id, booth.hall))

    def product_viewed(self, visitor: str, booth_id: str, sku: str) -> None:
        booth = self.expo.booth(booth_id)
        if booth is not None:
            self.record(Event(self.wall(), EventKind.PRODUCT_VIEWED, visitor, booth.id, booth.hall, sku=sku))

    def order_placed(self, order: Any, display_name: str) -> None:
        """From the commerce seam (a ``server.store.OrderRecord``): the order is also a
        touch of the visitor's lead at the booth."""
        now = self._order(EventKind.ORDER_PLACED, order)
        self.touches.append(Touch(order.booth, order.visitor, display_name, now, LeadSource.ORDER, order.id))

    def quote_requested(self, deal_id: str, booth_id: str, sku: str, visitor: str, display_name: str) -> None:
        """From the deals service: a new request for quotation, counted for the booth and a
        touch of the buyer's lead."""
        booth = self.expo.booth(booth_id)
        now = self.wall()
        self.record(Event(now, EventKind.QUOTE_REQUESTED, visitor, booth_id, booth.hall if booth else "", sku=sku, ref=deal_id))
        self.touches.append(Touch(booth_id, visitor, display_name, now, LeadSource.RFQ, deal_id))

    def order_paid(self, order: Any) -> None:
        self._order(EventKind.ORDER_PAID, order)

    def _order(self, kind: EventKind, order: Any) -> float:
        booth = self.expo.booth(order.booth)
        now = self.wall()
        self.record(Event(now, kind, order.visitor, order.booth, booth.hall if booth else "", sku=order.sku,
                          amount_minor=order.amount_minor, currency=order.currency, ref=order.id))
        return now

    def record(self, event: Event) -> None:
        self._add([event])

    # ------------------------------------------------------------------ to the writer

    def drain(self) -> tuple[list[Event], list[SampleBatch], list[Touch]]:
        events, samples, touches = self.events, self.samples, self.touches
        self.events, self.samples, self.touches = [], [], []
        return events, samples, touches

    def _add(self, events: list[Event]) -> None:
        self.events += events
        excess = len(self.events) - MAX_PENDING_EVENTS
        if excess > 0:
            del self.events[:excess]
            self.dropped += excess
