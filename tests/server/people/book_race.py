"""A process that books slot i at ``start + i * gap`` (wall clock) for visitor
``<prefix>-<i>`` and prints ``i ok`` or ``i <code>``; two of these race for every slot.
The store is a SQLite file, or PostgreSQL when the first argument is a postgresql:// URL."""

import sys
import time

from server.people.meetings import MeetingError
from server.people.store import SQLitePeopleStore

path, prefix, start, count, gap = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
if path.startswith("postgresql://"):
    from server.people.pg_store import PgPeopleStore

    store: SQLitePeopleStore | PgPeopleStore = PgPeopleStore(path)
else:
    store = SQLitePeopleStore(path)
for i in range(count):
    time.sleep(max(0.0, start + i * gap - time.time()))
    try:
        store.book(f"{prefix}-k{i}", f"s{i}", f"{prefix}-{i}", prefix, now=0.0)
        print(i, "ok", flush=True)
    except MeetingError as exc:
        print(i, exc.code, flush=True)
