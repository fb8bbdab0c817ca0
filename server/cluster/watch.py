"""Which hall processes of the cluster are up, down, or gone by choice, sans I/O: fed with
snapshots of the directory (server.cluster.node reads them from NATS) and a time, it answers
what the organiser's console shows.

A process the directory knew and that is now missing is *down* (its record expired: it
stopped heartbeating, killed or cut off) unless the snapshot saw its goodbye (the record
deleted by a clean stop, a tombstone in the bucket); then it *left*, shown as information.
Either stays until the process comes back or an organiser dismisses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .directory import InstanceRecord, ProcessRecord


class Gone(Enum):
    DOWN = "down"  # the record expired: no goodbye
    LEFT = "left"  # a clean stop said goodbye


@dataclass(frozen=True, slots=True)
class Departure:
    process: str
    url: str
    how: Gone
    last_seen: float  # when its last heartbeat was written (its record's updated_at)
    noticed_at: float  # when this watch saw it missing


@dataclass(frozen=True, slots=True)
class LiveProcess:
    record: ProcessRecord
    instances: tuple[InstanceRecord, ...]


class ProcessWatch:
    def __init__(self, own_id: str) -> None:
        self.own_id = own_id
        self.live: dict[str, ProcessRecord] = {}
        self.instances: dict[str, tuple[InstanceRecord, ...]] = {}
        self.departed: dict[str, Departure] = {}

    def observe(self, processes: dict[str, ProcessRecord], goodbyes: Iterable[str], now: float,
                instances: Iterable[InstanceRecord] = ()) -> None:
        """One snapshot of the directory: the live records, the ids whose record was deleted
        (a clean stop), and the instances of the halls read with it."""
        goodbyes = frozenset(goodbyes)
        for pid, record in self.live.items():
            if pid not in processes and pid != self.own_id:
                how = Gone.LEFT if pid in goodbyes else Gone.DOWN
                self.departed[pid] = Departure(pid, record.url, how, record.updated_at, now)
        for pid in processes:
            self.departed.pop(pid, None)  # back again
        self.live = dict(processes)
        by_process: dict[str, list[InstanceRecord]] = {}
        for instance in instances:
            by_process.setdefault(instance.process, []).append(instance)
        self.instances = {pid: tuple(sorted(by_process.get(pid, ()), key=lambda i: i.id)) for pid in processes}

    def dismiss(self, process: str) -> bool:
        """The organiser has seen it: forget the departure. False when there was none."""
        return self.departed.pop(process, None) is not None

    def departures(self) -> list[Departure]:
        return sorted(self.departed.values(), key=lambda d: (d.how != Gone.DOWN, -d.last_seen, d.process))

    def processes(self) -> list[LiveProcess]:
        return [LiveProcess(r, self.instances.get(pid, ())) for pid, r in sorted(self.live.items())]
