"""The directory of the cluster, sans I/O: which processes are alive, which instances of each
hall exist and where, and the rules for choosing where a visitor goes and where an overflow
instance opens.

Kept in NATS KV (see server.cluster.node): ``expo_processes`` holds one ``ProcessRecord``
per live process under its id, in a bucket whose TTL is the heartbeat's deadline, so a
process that stops heartbeating is gone from the directory by itself; ``expo_halls`` holds
one ``HallInstances`` per hall, changed only by compare-and-set, so two processes that both
see a full hall open one overflow instance between them, not two.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from .seats import Seats


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    id: str
    url: str  # where visitors connect: ws://host:port/
    load: int  # visitors it simulates now
    capacity: int  # visitors it takes at most
    instances_per_hall: int  # how many instances of one hall it can simulate at once
    updated_at: float

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> ProcessRecord:
        return cls(**json.loads(data))

    @property
    def fill(self) -> float:
        return self.load / self.capacity if self.capacity > 0 else 1.0


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    id: str  # "<hall>-i<number>", also its seats' key
    hall: str
    number: int  # 1 is the hall's first instance; overflow instances count up
    process: str
    cap: int


@dataclass(frozen=True, slots=True)
class HallInstances:
    hall: str
    instances: tuple[InstanceRecord, ...] = ()
    opened: int = 0  # instances ever opened for the hall: the next one is number opened + 1

    def live(self, alive: frozenset[str]) -> tuple[InstanceRecord, ...]:
        return tuple(i for i in self.instances if i.process in alive)

    def on(self, process: str) -> tuple[InstanceRecord, ...]:
        return tuple(i for i in self.instances if i.process == process)

    def open(self, process: str, cap: int, alive: frozenset[str]) -> tuple[HallInstances, InstanceRecord]:
        """A new instance on ``process``; instances of dead processes are dropped on the way."""
        number = self.opened + 1
        record = InstanceRecord(f"{self.hall}-i{number}", self.hall, number, process, cap)
        return HallInstances(self.hall, (*self.live(alive), record), number), record

    def restore(self, record: InstanceRecord) -> HallInstances:
        """Put back an instance its process still simulates (the store was lost or pruned
        while the process was unreachable)."""
        if any(i.id == record.id for i in self.instances):
            return self
        return HallInstances(self.hall, (*self.instances, record), max(self.opened, record.number))

    def encode(self) -> bytes:
        return json.dumps({"hall": self.hall, "opened": self.opened, "instances": [asdict(i) for i in self.instances]},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> HallInstances:
        raw = json.loads(data)
        return cls(raw["hall"], tuple(InstanceRecord(**i) for i in raw["instances"]), int(raw["opened"]))


def admission_order(instances: tuple[InstanceRecord, ...], seats: dict[str, Seats | None], now: float,
                    local: str, friend_instance: str | None = None, prefer_local: bool = False) -> list[InstanceRecord]:
    """Where to try to seat a visitor, best first: the friend's instance if asked for, then
    (with ``prefer_local``) this process's own instances, then instances with room in the
    order they opened (so overflow fills only when the first is full). An instance whose
    seats are unknown yet (just opened) counts as empty."""
    def room(i: InstanceRecord) -> int:
        s = seats.get(i.id)
        return i.cap if s is None else s.free(now)

    with_room = [i for i in instances if room(i) > 0]
    with_room.sort(key=lambda i: (i.id != friend_instance, prefer_local and i.process != local, i.number,
                                  i.process != local))
    return with_room


def overflow_process(hall: HallInstances, processes: dict[str, ProcessRecord]) -> ProcessRecord | None:
    """The least filled live process that can take one more instance of this hall, or None
    when none can (then the hall is full)."""
    alive = frozenset(processes)
    per_process: dict[str, int] = {}
    for instance in hall.live(alive):
        per_process[instance.process] = per_process.get(instance.process, 0) + 1
    candidates = [p for p in processes.values() if per_process.get(p.id, 0) < p.instances_per_hall]
    if not candidates:
        return None
    return min(candidates, key=lambda p: (p.fill, p.load, p.id))


def with_load(record: ProcessRecord, load: int, now: float) -> ProcessRecord:
    return replace(record, load=load, updated_at=now)
