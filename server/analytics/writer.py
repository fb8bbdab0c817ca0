"""The shell side of the recorder: every ``interval`` seconds, take what the simulation
recorded to the event log, on the database thread. Events recorded in the last interval
before a crash are lost; events a person was told about (a card exchanged, a meeting
booked) are written and committed before they are told (see ``server.people.service``).

Retention: position samples (one per visitor per second, only for the heatmap, stored a
hall's second to a row) older than ``POSITION_RETENTION`` (30 days) are deleted once an
hour, so the table stays about a month of the expo deep; the event log itself is never
pruned."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

from server.dbthread import DatabaseThread
from server.people.leads import Touch
from server.people.store import PeopleStore

from .events import Event
from .recorder import ActivityRecorder, SampleBatch
from .store import POSITION_RETENTION, EventLog

log = logging.getLogger("expo.analytics")

FLUSH_INTERVAL = 0.25
PRUNE_EVERY = 3600.0  # seconds between two prunings of old position samples


class ActivityWriter:
    def __init__(self, recorder: ActivityRecorder, events: EventLog, db: DatabaseThread,
                 people: PeopleStore | None = None, interval: float = FLUSH_INTERVAL,
                 retention: float = POSITION_RETENTION, wall: Callable[[], float] = time.time) -> None:
        self.recorder = recorder
        self.log = events
        self.people = people
        self.db = db
        self.interval = interval
        self.written = 0
        self.retention = retention
        self.wall = wall
        self._pruned_at: float | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()
            await self.prune()

    async def prune(self) -> int:
        """Forget position samples older than the retention, at most once per PRUNE_EVERY."""
        now = self.wall()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = now
        try:
            gone = await self.db.run(self.log.forget_positions, now - self.retention)
        except Exception:
            log.exception("old position samples not pruned; trying again in an hour")
            return 0
        if gone:
            log.info("old position samples pruned", extra={"samples": gone})
        return gone

    async def flush(self) -> None:
        events, batches, touches = self.recorder.drain()
        if not events and not batches and not touches:
            return
        try:
            await self.db.run(self._write, events, batches, self.recorder.hall_ids)
        except Exception:
            log.exception("events not written; keeping them for the next try", extra={"events": len(events)})
            self.recorder.events[:0] = events
            self.recorder.samples[:0] = batches
            self.recorder.touches[:0] = touches
            return
        self.written += len(events)
        if self.people is not None and touches:
            await self.db.run(self._touch, touches)  # each counts once: a retry after a failure is harmless

    def _write(self, events: list[Event], batches: list[SampleBatch], hall_ids: tuple[str, ...]) -> None:
        self.log.append(events, list(itertools.chain.from_iterable(batch.rows(hall_ids) for batch in batches)))

    def _touch(self, touches: list[Touch]) -> None:
        assert self.people is not None
        for t in touches:
            self.people.add_touch(t)
