"""What exhibitors come for, started and stopped with the server: the event log and the
people store, one database thread for both, the writer that drains the simulation's
analytics, and the cards-and-meetings service.

Stores: SQLite files in the data directory (one process), or with ``--db`` the cluster's
PostgreSQL, shared by every hall process (so a slot is booked once in the whole cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from .analytics.store import EventLog, SQLiteEventLog
from .analytics.writer import ActivityWriter
from .dbthread import DatabaseThread
from .people.service import PeopleService
from .people.store import PeopleStore, SQLitePeopleStore

if TYPE_CHECKING:
    from .config import ServerConfig
    from .simulation import Simulation

log = logging.getLogger("expo.exhibitors")

EVENTS_FILE = "events.sqlite3"
PEOPLE_FILE = "people.sqlite3"


def open_stores(db_url: str | None, data_dir: Path) -> tuple[EventLog, PeopleStore]:
    """PostgreSQL at ``db_url`` when given, else SQLite files in ``data_dir``."""
    if db_url:
        from .analytics.pg_store import PgEventLog
        from .people.pg_store import PgPeopleStore

        return PgEventLog(db_url), PgPeopleStore(db_url)
    return SQLiteEventLog(data_dir / EVENTS_FILE), SQLitePeopleStore(data_dir / PEOPLE_FILE)


class ExhibitorServices:
    def __init__(self, sim: Simulation, config: ServerConfig) -> None:
        self.sim = sim
        self.db = DatabaseThread("expo-db")
        self.events, self.people = open_stores(config.db_url, config.data_dir)
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
