"""What exhibitors come for, started and stopped with the server: the event log and the
people store (SQLite files in the data directory), one database thread for both, the
writer that drains the simulation's analytics, and the cards-and-meetings service.

The cluster's PostgreSQL stores implement ``EventLog`` and ``PeopleStore``; until they
exist a cluster process keeps these two in its own data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from .analytics.store import SQLiteEventLog
from .analytics.writer import ActivityWriter
from .dbthread import DatabaseThread
from .people.service import PeopleService
from .people.store import SQLitePeopleStore

if TYPE_CHECKING:
    from .config import ServerConfig
    from .simulation import Simulation

log = logging.getLogger("expo.exhibitors")

EVENTS_FILE = "events.sqlite3"
PEOPLE_FILE = "people.sqlite3"


class ExhibitorServices:
    def __init__(self, sim: Simulation, config: ServerConfig) -> None:
        self.sim = sim
        self.db = DatabaseThread("expo-db")
        self.events = SQLiteEventLog(config.data_dir / EVENTS_FILE)
        self.people = SQLitePeopleStore(config.data_dir / PEOPLE_FILE)
        self.writer = ActivityWriter(sim.activity, self.events, self.db, self.people)
        self.service = PeopleService(sim, self.people, self.events, self.db, wall=sim.activity.wall)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.service.start()
        self.sim.people = self.service
        self._task = asyncio.create_task(self.writer.run(), name="analytics-writer")

    async def stop(self) -> None:
        """Write what is pending, then close the stores."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.service.close()
        self.sim.activity.end_visits()  # visits in progress end with the server
        await self.writer.flush()
        self.db.close()
        self.events.close()
        self.people.close()
        log.info("exhibitor stores closed", extra={"events": self.writer.written})
