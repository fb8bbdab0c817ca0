"""A process that appends events to a log as fast as it can and prints each acknowledged
batch (``seq,seq,...``) once its append returned; the crash test SIGKILLs it."""

import sys

import numpy as np

from server.analytics.events import Event, EventKind, PositionSecond
from server.analytics.store import SQLiteEventLog

log = SQLiteEventLog(sys.argv[1])
n = 0
while True:
    n += 1
    batch = [Event(1000.0 + n, EventKind.BOOTH_LEFT, f"v{n}", "b1", "main", dwell=float(i)) for i in range(1 + n % 4)]
    stored = log.append(batch, [PositionSecond.of(1000.0 + n, "main", np.array([[1.0, 2.0]]))])
    print(",".join(str(e.seq) for e in stored), flush=True)
