"""One process's membership of the cluster: the thin nats-py shell around the directory and
seat rules (server.cluster.directory, server.cluster.seats).

JetStream KV buckets (all created on demand, by whichever process comes first):

| bucket           | key                  | value                      | TTL                  |
| ---------------- | -------------------- | -------------------------- | -------------------- |
| expo_processes   | process id           | ProcessRecord (JSON)       | ``process_ttl`` (6 s) |
| expo_halls       | hall id              | HallInstances (JSON)       | none (CAS only)      |
| expo_seats       | instance id          | Seats (JSON)               | none (CAS only)      |
| expo_presence    | name.visitor (base64)| Presence (JSON)            | ``presence_ttl``     |
| expo_transfers   | seat token           | HandOff (JSON)             | ``seat_ttl``         |

Every write to expo_halls and expo_seats is a compare-and-set (``update`` with the revision
read, or ``create``). Seat requests of one process for one instance are coalesced: while one
compare-and-set is in flight the others queue and go in the next one, so 500 joins at once
cost a few rounds per process, not 500 contending writers.

Every heartbeat the node re-asserts what it knows (its record, its instances in their hall's
record, the seats it holds): after NATS restarts with an empty store, the directory is whole
again within one heartbeat of the reconnection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Generic, TypeVar

import nats
import nats.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.errors import (
    APIError,
    BadRequestError,
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from .directory import HallInstances, InstanceRecord, ProcessRecord, admission_order, overflow_process
from .handoff import HandOff
from .seats import Seats
from .watch import ProcessWatch

log = logging.getLogger("expo.cluster")
T = TypeVar("T")

PROCESSES, HALLS, SEATS, PRESENCE = "expo_processes", "expo_halls", "expo_seats", "expo_presence"
TRANSFERS = "expo_transfers"
NOT_THERE = (KeyNotFoundError, KeyDeletedError)  # never written, or deleted (a tombstone)
# JetStream's "wrong last sequence": nats-py turns it into KeyWrongLastSequenceError on an
# update, but a delete with ``last`` raises the APIError itself
WRONG_LAST_SEQUENCE = (10071, 10164)
MAX_ROUNDS = 200  # compare-and-set rounds before a request gives up (never reached unless NATS is sick)
LEAVE_TIMEOUT = 3.0  # seconds a clean stop may spend deleting its records before it closes anyway


class ClusterUnavailable(RuntimeError):
    """NATS (or its JetStream) does not answer; the caller may refuse the visitor and retry later."""


@dataclass(frozen=True, slots=True)
class Admission:
    """A seat reserved for one visitor: go to ``url`` and present ``token`` before ``expires_at``."""
    instance: InstanceRecord
    url: str
    token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Presence:
    visitor: str
    name: str
    hall: str
    instance: str
    process: str
    url: str

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Presence:
        return cls(**json.loads(data))


def _b64(text: str) -> str:
    """KV keys allow [-/_=.A-Za-z0-9]: visitor ids and names may hold anything."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=") or "_"


def _unb64(text: str) -> str:
    """_b64 undone (a key not ours decodes to what cannot match)."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except ValueError:
        return "\0"


def presence_key(visitor: str, name: str) -> str:
    """``<name>.<visitor>``, both base64url, the name casefolded: one key per visitor (namesakes
    at different processes never share one), and everyone of a name listed by the subject
    filter ``<name>.*``."""
    return f"{_b64(name.casefold())}.{_b64(visitor)}"


@dataclass(slots=True)
class _Request:
    token: str
    friend_instance: str | None
    future: asyncio.Future


@dataclass(slots=True)
class _Arrival:
    token: str
    future: asyncio.Future


Waiting = TypeVar("Waiting", _Request, _Arrival)


class _Rounds(Generic[Waiting]):
    """Requests served in rounds by one worker: whatever arrived while a round ran is the next
    round's batch, so a burst costs rounds, not requests. A round that fails fails every
    request of it still unanswered, with ClusterUnavailable whatever NATS raised (the gate
    refuses the visitor with a reason on that one); a worker cancelled (the process stopping)
    fails every request it had, and those still waiting; none hangs. A request whose caller
    stopped waiting (its future cancelled: a deadline) is not served."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.waiting: list[Waiting] = []
        self.worker: asyncio.Task | None = None

    def _submit(self, request: Waiting) -> asyncio.Future:
        self.waiting.append(request)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._run(), name=self.name)
        return request.future

    async def _run(self) -> None:
        while self.waiting:
            batch, self.waiting = [r for r in self.waiting if not r.future.done()], []
            try:
                if batch:
                    await self._serve(batch)
            except asyncio.CancelledError:
                batch, self.waiting = batch + self.waiting, []
                self._fail(batch, ClusterUnavailable(f"{self.name}: this process is stopping"))
                raise
            except ClusterUnavailable as exc:
                self._fail(batch, exc)
            except Exception as exc:  # nats-py's own (a request's timeout...): the callers catch one kind
                error = ClusterUnavailable(f"{self.name}: {exc!r}")
                error.__cause__ = exc
                self._fail(batch, error)

    async def _serve(self, batch: list[Waiting]) -> None:
        raise NotImplementedError

    @staticmethod
    def _fail(requests: list[Waiting], error: Exception) -> None:
        for request in requests:
            if not request.future.done():
                request.future.set_exception(error)


class _HallQueue(_Rounds[_Request]):
    """The visitors waiting for a seat in one hall on this process. One worker seats them
    all: it reads the directory once per round and grants each instance's share in one
    compare-and-set, so the cost of a burst is rounds, not visitors."""

    def __init__(self, node: ClusterNode, hall: str, cap: int) -> None:
        super().__init__(f"admit-{hall}")
        self.node = node
        self.hall = hall
        self.cap = cap

    def ask(self, token: str, friend_instance: str | None) -> asyncio.Future:
        return self._submit(_Request(token, friend_instance, asyncio.get_running_loop().create_future()))

    async def _serve(self, batch: list[_Request]) -> None:
        await self.node._seat(self.hall, self.cap, batch)


class _ConfirmQueue(_Rounds[_Arrival]):
    """The arrived visitors whose seats in one instance wait to become ours. One worker
    confirms them all in one compare-and-set per round, as ``_HallQueue`` grants them: a
    compare-and-set each made a burst of joins collide on the instance's one seats record,
    and the reads and retries outlasted the burst (cluster_cost.py in benchmarks/README.md)."""

    def __init__(self, node: ClusterNode, instance: InstanceRecord) -> None:
        super().__init__(f"confirm-{instance.id}")
        self.node = node
        self.instance = instance

    def ask(self, token: str) -> asyncio.Future:
        return self._submit(_Arrival(token, asyncio.get_running_loop().create_future()))

    async def _serve(self, batch: list[_Arrival]) -> None:
        confirmed = await self._confirm([arrival.token for arrival in batch])
        for arrival, ok in zip(batch, confirmed, strict=True):
            if not arrival.future.done():
                arrival.future.set_result(ok)

    async def _confirm(self, tokens: list[str]) -> list[bool]:
        """One compare-and-set for ``tokens``: whether each took its seat (a token presented
        twice takes it once)."""
        confirmed: list[bool] = []

        def take(seats: Seats) -> Seats | None:
            confirmed.clear()  # a retry starts from the value read again
            now = self.node.clock()
            for token in tokens:
                seats, ok = seats.confirm(token, self.node.id, now)
                confirmed.append(ok)
            return seats if any(confirmed) else None

        await self.node._change_seats(self.instance, take)
        return confirmed


async def bind_bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    """The bucket, created if it does not exist. Processes starting together race to create
    it: the loser's create is refused ("subjects overlap with an existing stream", seen in
    CI), and it binds the winner's bucket instead."""
    assert config.bucket is not None
    try:
        return await js.key_value(config.bucket)
    except (BucketNotFoundError, NotFoundError):
        pass
    try:
        return await js.create_key_value(config)
    except BadRequestError:
        return await js.key_value(config.bucket)


class ClusterNode:
    def __init__(self, nats_url: str, url: str, capacity: int, *, process_id: str | None = None,
                 instances_per_hall: int = 1, seat_ttl: float = 15.0, heartbeat: float = 2.0, process_ttl: float = 6.0,
                 presence_ttl: float = 30.0, prefer_local: bool = False, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.nats_url = nats_url
        self.url = url
        self.capacity = capacity
        self.id = process_id or secrets.token_hex(6)
        self.instances_per_hall = instances_per_hall
        self.seat_ttl = seat_ttl
        self.heartbeat = heartbeat
        self.process_ttl = process_ttl
        self.presence_ttl = presence_ttl
        self.prefer_local = prefer_local  # seat visitors here while our instance has room (a hall process)
        self.clock = clock
        self.rng = rng or random.Random()
        self.nc: nats.NATS | None = None
        self.kv: dict[str, KeyValue] = {}
        self.instances: dict[str, InstanceRecord] = {}  # the instances this process simulates
        self.held: dict[str, int] = {}  # instance id -> visitors this process holds seats for
        self.presence: dict[str, Presence] = {}  # visitors here, kept alive in expo_presence
        self.load = 0
        self.rebuilds = 0  # times the directory had lost our records and we put them back
        self._halls: dict[str, _HallQueue] = {}
        self._confirms: dict[str, _ConfirmQueue] = {}  # instance id -> its arrivals being confirmed
        # instance id -> changes of our own held count there in flight (a confirm, a leave, a
        # move): the heartbeat puts our count back only where none is, else it could write a
        # count that a change landing in between has already made stale (seats over the cap)
        self._changing: dict[str, int] = {}
        self._joined = False  # between start and stop: we know we are alive whatever the directory says
        self._heartbeat_task: asyncio.Task | None = None
        self._reassert_task: asyncio.Task | None = None
        self._presence_refreshed_at = -math.inf
        self.watch = ProcessWatch(self.id)  # the other processes, for the organiser's console

    # ------------------------------------------------------------------ lifecycle

    async def start(self, connect_timeout: float = 5.0) -> ClusterNode:
        self.nc = nats.NATS()
        try:  # reconnects never stop once we are in; the first connection must answer in time
            async with asyncio.timeout(connect_timeout):
                await self.nc.connect(
                    self.nats_url, name=f"expo-{self.id}", max_reconnect_attempts=-1, reconnect_time_wait=1,
                    connect_timeout=2, allow_reconnect=True, error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected)
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            with contextlib.suppress(Exception):
                await self.nc.close()
            raise ClusterUnavailable(f"NATS at {self.nats_url} does not answer: {exc!r}") from exc
        await self._buckets()
        self._joined = True
        await self._assert_records()
        await self.observe_directory()
        self._heartbeat_task = asyncio.create_task(self._heartbeat_forever(), name="cluster-heartbeat")
        self._reassert_task = asyncio.create_task(self._reassert_forever(), name="cluster-directory")
        log.info("joined the cluster", extra={"node": self.id, "nats": self.nats_url, "url": self.url})
        return self

    async def stop(self) -> None:
        """Leave cleanly: our record, instances and presence go now, not at their TTL."""
        self._joined = False
        await cancel_and_wait(self._heartbeat_task)
        await cancel_and_wait(self._reassert_task)
        workers = [q.worker for q in self._halls.values()] + [q.worker for q in self._confirms.values()]
        for worker in workers:  # their callers get ClusterUnavailable
            await cancel_and_wait(worker)
        if self.nc is None or self.nc.is_closed:
            return

        async def clean_leave() -> None:
            for presence in list(self.presence.values()):  # ours: a hand-off's giver popped its visitor
                await self.kv[PRESENCE].delete(presence_key(presence.visitor, presence.name))
            for hall in {i.hall for i in self.instances.values()}:
                await self._change_hall(hall, lambda h: HallInstances(
                    h.hall, tuple(i for i in h.instances if i.process != self.id), h.opened))
            for instance in self.instances:
                await self.kv[SEATS].delete(instance)
            await self.kv[PROCESSES].delete(self.id)

        # With NATS unreachable each request waits out its own timeout: bounded as a whole, a
        # shutdown never hangs on it; what is not deleted expires at its TTL, as after a crash.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(LEAVE_TIMEOUT):
                await clean_leave()
        # NATS gone: nothing left to flush to. Under uvloop, nats-py's close writes its pending
        # bytes to the closed transport, which raises RuntimeError ("the handler is closed").
        with contextlib.suppress(OSError, RuntimeError, nats.errors.Error):
            await self.nc.close()

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats error", extra={"error": str(exc)})

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS", extra={"node": self.id})

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS", extra={"node": self.id})
        self._presence_refreshed_at = -math.inf  # NATS may have lost its store: put everything back now
        with contextlib.suppress(Exception):  # the heartbeat retries what fails here
            await self._buckets()
            await self._assert_records()

    async def _buckets(self) -> None:
        """Bind the buckets, creating those that do not exist (the first process, or after
        NATS lost its store)."""
        assert self.nc is not None
        js = self.nc.jetstream(timeout=5)
        ttls = {PROCESSES: self.process_ttl, HALLS: None, SEATS: None, PRESENCE: self.presence_ttl,
                TRANSFERS: self.seat_ttl}
        for bucket, ttl in ttls.items():
            self.kv[bucket] = await bind_bucket(js, KeyValueConfig(bucket=bucket, ttl=ttl, history=1,
                                                                   storage=StorageType.FILE))
        in_force = (await self.kv[PROCESSES].status()).ttl  # the first process's choice is everyone's
        if in_force and self.heartbeat > in_force / 3:
            log.info("heartbeat shortened to the directory's TTL", extra={"ttl": in_force, "heartbeat": in_force / 3})
            self.heartbeat = in_force / 3

    async def _heartbeat_forever(self) -> None:
        """Our record, every beat, on its own: the re-assertion of everything else can take
        long on a loaded machine (compare-and-sets on seats that a burst of joins is writing:
        31 s was seen), and a record left to expire meanwhile made every process, this one
        included, think us dead and refuse visitors with every instance 'full'."""
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._put_record()
            except Exception as exc:  # NATS is away: nats-py reconnects, we try again next beat
                log.warning("heartbeat failed", extra={"node": self.id, "error": repr(exc)})

    async def _reassert_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._reassert()
                await self.observe_directory()
            except Exception as exc:  # NATS is away: nats-py reconnects, we try again next beat
                log.warning("directory upkeep failed", extra={"node": self.id, "error": repr(exc)})
                with contextlib.suppress(Exception):
                    await self._buckets()

    def record(self) -> ProcessRecord:
        """What the directory says of us, as of now."""
        return ProcessRecord(self.id, self.url, self.load, self.capacity, self.instances_per_hall, self.clock())

    async def _put_record(self) -> None:
        await self.kv[PROCESSES].put(self.id, self.record().encode())

    async def _assert_records(self) -> None:
        """Put back everything the directory should know about this process."""
        await self._put_record()
        await self._reassert()

    async def _reassert(self) -> None:
        """Our instances in their hall's record, the seats we hold, our visitors' presence."""
        now = self.clock()
        alive = frozenset(await self.processes())
        for instance in list(self.instances.values()):
            restored = False

            def put_back(hall: HallInstances, instance: InstanceRecord = instance) -> HallInstances | None:
                nonlocal restored
                if any(i.id == instance.id for i in hall.instances):
                    return None
                restored = True
                return hall.restore(instance)

            await self._change_hall(instance.hall, put_back)
            await self._change_seats(instance, lambda s: _changed(s, s.without_expired(now, alive)))
            if restored:
                self.rebuilds += 1
        for instance_id in list(self.held):  # our seats in any instance, ours or not
            known = self.instances.get(instance_id) or await self._instance(instance_id)
            if known is not None:
                await self._change_seats(known, functools.partial(self._hold, instance_id))
        if now - self._presence_refreshed_at >= self.presence_ttl / 3:  # not every beat: one put per visitor
            for presence in list(self.presence.values()):
                await self._put_presence(presence)
            self._presence_refreshed_at = now

    # ------------------------------------------------------------------ reading the directory

    async def processes(self) -> dict[str, ProcessRecord]:
        """The live processes (those whose record has not expired), this one always among
        them while it is in the cluster: its record may have expired while its heartbeat was
        late, but its instances are live all the same."""
        live = (await self._process_snapshot())[0]
        if self._joined:
            live.setdefault(self.id, self.record())
        return live

    async def observe_directory(self) -> None:
        """Feed the watch one snapshot: live records, goodbyes, and the instances of our halls."""
        live, goodbyes = await self._process_snapshot()
        instances = [i for hall in sorted({i.hall for i in self.instances.values()})
                     for i in (await self.hall(hall)).live(frozenset(live))]
        self.watch.observe(live, goodbyes, self.clock(), instances)

    async def _process_snapshot(self) -> tuple[dict[str, ProcessRecord], set[str]]:
        """(live records, ids whose record was deleted by a clean stop: a tombstone lasts
        the bucket's TTL, an expired record leaves none). The keys come from the bucket's
        stream info (one request) rather than KeyValue.keys(), whose watcher was seen to wait
        forever when entries expired while it listed them."""
        assert self.nc is not None
        prefix = f"$KV.{PROCESSES}."
        info = await self.nc.jetstream(timeout=5).stream_info(f"KV_{PROCESSES}", subjects_filter=f"{prefix}>")
        found: dict[str, ProcessRecord] = {}
        goodbyes: set[str] = set()
        for subject in info.state.subjects or {}:
            key = subject[len(prefix):]
            try:
                entry = await self.kv[PROCESSES].get(key)
            except NOT_THERE:  # deleted (KeyValue.get says "not found" for a tombstone too) or just expired
                if await self._said_goodbye(subject):
                    goodbyes.add(key)
                continue
            if entry.value:
                found[key] = ProcessRecord.decode(entry.value)
        return found, goodbyes

    async def _said_goodbye(self, subject: str) -> bool:
        """Whether the last message on a process's subject is a delete marker (a clean stop)."""
        assert self.nc is not None
        try:
            last = await self.nc.jetstream(timeout=5).get_last_msg(f"KV_{PROCESSES}", subject)
        except NotFoundError:  # expired meanwhile: no goodbye
            return False
        return (last.headers or {}).get("KV-Operation") in ("DEL", "PURGE")

    async def hall(self, hall: str) -> HallInstances:
        with contextlib.suppress(*NOT_THERE):
            entry = await self.kv[HALLS].get(hall)
            if entry.value:
                return HallInstances.decode(entry.value)
        return HallInstances(hall)

    async def seats(self, instance_id: str) -> Seats | None:
        with contextlib.suppress(*NOT_THERE):
            entry = await self.kv[SEATS].get(instance_id)
            if entry.value:
                return Seats.decode(entry.value)
        return None

    async def _instance(self, instance_id: str) -> InstanceRecord | None:
        hall_id = instance_id.rsplit("-i", 1)[0]
        return next((i for i in (await self.hall(hall_id)).instances if i.id == instance_id), None)

    async def find(self, visitor: str) -> Presence | None:
        """Where the visitor ``visitor`` (an id) is online, if anywhere."""
        found = await self._presences(f"*.{_b64(visitor)}")
        return found[0] if found else None

    async def find_named(self, name: str) -> list[Presence]:
        """Everyone online whose display name is ``name`` (ignoring case), by visitor id:
        across processes several visitors may show the same name."""
        return sorted(await self._presences(f"{_b64(name.casefold())}.*"), key=lambda p: p.visitor)

    async def find_cut(self, start: str, tag: str, tag_of: Callable[[str], str]) -> list[Presence]:
        """Everyone online whose name starts with ``start`` (ignoring case) and whose visitor
        ``tag_of`` gives ``tag``. A tagged name holds only the start of a long name (the name
        and its " #TAG" share the wire's 24 characters), so its key cannot be named: the keys
        are listed (they hold the name and the visitor id) and only those that match are read."""
        start = start.casefold()

        def match(key: str) -> bool:
            name, _, visitor = key.partition(".")
            return _unb64(name).startswith(start) and tag_of(_unb64(visitor)) == tag

        return sorted(await self._presences("*.*", match), key=lambda p: p.visitor)

    async def _presences(self, pattern: str, match: Callable[[str], bool] = lambda key: True) -> list[Presence]:
        """The presence records whose key matches ``pattern`` (and ``match``). The keys come from the bucket's
        stream info, as in _process_snapshot (KeyValue.keys() was seen to hang on expiring keys)."""
        assert self.nc is not None
        prefix = f"$KV.{PRESENCE}."
        info = await self.nc.jetstream(timeout=5).stream_info(f"KV_{PRESENCE}", subjects_filter=prefix + pattern)
        found = []
        for subject in info.state.subjects or {}:
            if not match(subject[len(prefix):]):
                continue
            with contextlib.suppress(*NOT_THERE):  # left (a tombstone) or expired meanwhile
                entry = await self.kv[PRESENCE].get(subject[len(prefix):])
                if entry.value:
                    found.append(Presence.decode(entry.value))
        return found

    async def _put_presence(self, presence: Presence) -> None:
        await self.kv[PRESENCE].put(presence_key(presence.visitor, presence.name), presence.encode())

    async def _forget_presence(self, presence: Presence) -> None:
        """Delete our presence record of a visitor, never another process's: after a hand-off
        the taker wrote the same key (same visitor, same name) before the giver lets go."""
        key = presence_key(presence.visitor, presence.name)
        with contextlib.suppress(*NOT_THERE):
            entry = await self.kv[PRESENCE].get(key)
            if entry.value and Presence.decode(entry.value).process == self.id:
                try:
                    await self.kv[PRESENCE].delete(key, last=entry.revision)
                except APIError as error:  # the taker wrote it between our read and delete: it is theirs
                    if error.err_code not in WRONG_LAST_SEQUENCE:
                        raise

    # ------------------------------------------------------------------ compare-and-set

    async def _compare_and_set(self, bucket: str, key: str, decode: Callable[[bytes], T], missing: T,
                               change: Callable[[T], T | None], encode: Callable[[T], bytes],
                               after_read: Callable[[], Awaitable[None]] | None = None) -> T:
        """Read ``key``, write ``change(value)`` only if nobody wrote in between, else read
        again. ``change`` returning None means: nothing to write. Returns the value in force.
        ``after_read``: fetch what ``change`` reads besides the value, after each read of it,
        so that it is at least as new as the value."""
        kv = self.kv[bucket]
        for _ in range(MAX_ROUNDS):
            try:
                entry = await kv.get(key)
                current, revision = (decode(entry.value) if entry.value else missing), entry.revision
            except NOT_THERE:
                current, revision = missing, None
            if after_read is not None:
                await after_read()
            new = change(current)
            if new is None:
                return current
            try:
                if revision is None:
                    await kv.create(key, encode(new))
                else:
                    await kv.update(key, encode(new), last=revision)
                return new
            except KeyWrongLastSequenceError:  # someone wrote first: read again
                await asyncio.sleep(self.rng.uniform(0, 0.005))
        raise ClusterUnavailable(f"{bucket}/{key} kept changing under us")

    async def _change_hall(self, hall_id: str, change: Callable[[HallInstances], HallInstances | None],
                           processes: dict[str, ProcessRecord] | None = None) -> HallInstances:
        """``processes``, when given, is refreshed with the live processes after each read of
        the hall: a process writes its record before its instances, so a record read after
        the hall covers every instance in it (read before, a process that registered in
        between would look dead and its instance be dropped)."""
        async def refresh() -> None:
            assert processes is not None
            live = await self.processes()
            processes.clear()
            processes.update(live)

        return await self._compare_and_set(HALLS, hall_id, HallInstances.decode, HallInstances(hall_id), change,
                                           HallInstances.encode, refresh if processes is not None else None)

    def _hold(self, instance_id: str, seats: Seats) -> Seats | None:
        """Seats with this process holding what it knows it holds there, read when the value
        is (not when the heartbeat began: a confirm landing in between made that stale, and
        writing it freed seats that were taken); None when they already say so, or when a
        change of ours there is in flight (its effect is in the value but not yet in
        ``held``, or the other way round: the next beat looks again)."""
        if self._changing.get(instance_id):
            return None
        held = self.held.get(instance_id, 0)
        return None if seats.held.get(self.id, 0) == held else seats.with_held(self.id, held)

    @contextlib.contextmanager
    def _changing_held(self, *instance_ids: str) -> Iterator[None]:
        for instance_id in instance_ids:
            self._changing[instance_id] = self._changing.get(instance_id, 0) + 1
        try:
            yield
        finally:
            for instance_id in instance_ids:
                self._changing[instance_id] -= 1
                if not self._changing[instance_id]:
                    del self._changing[instance_id]

    async def _change_seats(self, instance: InstanceRecord, change: Callable[[Seats], Seats | None]) -> Seats:
        return await self._compare_and_set(SEATS, instance.id, Seats.decode, Seats(instance.cap), change, Seats.encode)

    async def _grant(self, instance: InstanceRecord, tokens: list[str]) -> set[str]:
        granted: list[str] = []
        expires_at = self.clock() + self.seat_ttl

        def take(seats: Seats) -> Seats:
            nonlocal granted
            after, granted = seats.grant(tokens, expires_at, self.clock())
            return after

        await self._change_seats(instance, take)
        return set(granted)

    # ------------------------------------------------------------------ instances and admission

    async def open_instance(self, hall_id: str, cap: int) -> InstanceRecord:
        """Open an instance of ``hall_id`` here (at start: the halls this process serves)."""
        processes: dict[str, ProcessRecord] = {}
        opened: list[InstanceRecord] = []

        def add(hall: HallInstances) -> HallInstances:
            new, record = hall.open(self.id, cap, frozenset(processes) | {self.id})
            opened[:] = [record]
            return new

        await self._change_hall(hall_id, add, processes)
        record = opened[0]
        self.instances[record.id] = record
        await self._change_seats(record, lambda s: None)  # creates the seats record
        return record

    async def ensure_instance(self, hall_id: str, cap: int) -> InstanceRecord | None:
        """Open this hall's first instance here unless a live one exists somewhere."""
        alive = frozenset(await self.processes())
        if (await self.hall(hall_id)).live(alive):
            return None
        return await self.open_instance(hall_id, cap)

    async def admit(self, hall_id: str, cap: int, friend: str | None = None) -> Admission | None:
        """Reserve a seat in an instance of ``hall_id`` for one visitor; open an overflow
        instance on the least loaded process when every instance is full. None when the hall
        is full everywhere (no process can take another instance). ``friend``: a visitor whose
        instance to join if it has room. ``cap`` is the seats of an instance opened for it."""
        friend_instance = None
        if friend is not None:
            where = await self.find(friend)
            friend_instance = where.instance if where is not None and where.hall == hall_id else None
        queue = self._halls.get(hall_id)
        if queue is None:
            queue = self._halls[hall_id] = _HallQueue(self, hall_id, cap)
        return await queue.ask(secrets.token_urlsafe(16), friend_instance)

    async def _seat(self, hall_id: str, cap: int, batch: list[_Request]) -> None:
        """Seat every request of ``batch`` or answer None, in rounds: read the directory, grant
        what fits instance by instance, open an overflow instance for the rest. A request is
        refused only after a fresh read found every instance full and no process could open
        another."""
        waiting = list(batch)
        for _ in range(MAX_ROUNDS):
            waiting = [r for r in waiting if not r.future.done()]  # a caller past its deadline is not seated
            if not waiting:
                return
            processes = await self.processes()
            alive = frozenset(processes)
            hall = await self.hall(hall_id)
            live = hall.live(alive)
            seats = {i.id: await self.seats(i.id) for i in live}
            now = self.clock()
            for friend_instance in sorted({r.friend_instance for r in waiting if r.friend_instance}) + [None]:
                group = [r for r in waiting if r.friend_instance == friend_instance] if friend_instance else waiting
                for instance in admission_order(live, seats, now, self.id, friend_instance, self.prefer_local):
                    if not group:
                        break
                    if friend_instance and instance.id != friend_instance:
                        break  # the friend's instance is full: these go with everyone else
                    granted = await self._grant(instance, [r.token for r in group])
                    expires_at = self.clock() + self.seat_ttl
                    abandoned = []
                    for request in group:
                        if request.token not in granted:
                            continue
                        if request.future.done():  # its caller stopped waiting during the compare-and-set
                            abandoned.append(request.token)
                        else:
                            request.future.set_result(Admission(instance, processes[instance.process].url,
                                                                request.token, expires_at))
                    if abandoned:  # nobody will take these: free them now, not at their expiry
                        await self._change_seats(instance, functools.partial(_cancelled, tuple(abandoned)))
                    group = [r for r in group if r.token not in granted]
                    waiting = [r for r in waiting if r.token not in granted]
            if not waiting:
                return
            if not await self._open_overflow(hall_id, hall, processes, cap):
                for request in waiting:
                    if not request.future.done():
                        request.future.set_result(None)
                return
        raise ClusterUnavailable(f"could not seat visitors in {hall_id} after {MAX_ROUNDS} rounds")

    async def _open_overflow(self, hall_id: str, seen: HallInstances, processes: dict[str, ProcessRecord],
                             cap: int) -> bool:
        """Open one more instance unless the hall changed since ``seen`` (then look again).
        False: every instance was full when read and no process can take another."""
        live = dict(processes)  # refreshed after each read of the hall
        full = False

        def add(hall: HallInstances) -> HallInstances | None:
            nonlocal full
            alive = frozenset(live)
            if hall.opened != seen.opened or hall.live(alive) != seen.live(alive):
                return None
            target = overflow_process(hall, live)
            if target is None:
                full = True
                return None
            return hall.open(target.id, cap, alive)[0]

        after = await self._change_hall(hall_id, add, live)
        if after.opened != seen.opened and not full:
            log.info("overflow instance", extra={"hall": hall_id, "instance": after.instances[-1].id,
                                                 "owner": after.instances[-1].process})
        return not full

    async def confirm(self, admission: Admission) -> bool:
        """The visitor arrived here with its token: its seat becomes ours. False when the
        token is unknown or expired."""
        instance = admission.instance
        queue = self._confirms.get(instance.id)
        if queue is None or queue.instance != instance:
            queue = self._confirms[instance.id] = _ConfirmQueue(self, instance)
        with self._changing_held(instance.id):
            ok = await queue.ask(admission.token)
            if ok:
                if instance.process == self.id and instance.id not in self.instances:
                    self.instances[instance.id] = instance  # an overflow instance another process opened here
                self.held[instance.id] = self.held.get(instance.id, 0) + 1
                self.load += 1
        return ok

    async def present(self, visitor: str, name: str, instance: InstanceRecord) -> None:
        """The visitor ``visitor`` (its id) is here, shown as ``name``, in ``instance``: find a
        person and direct messages reach it from now on."""
        presence = Presence(visitor, name, instance.hall, instance.id, self.id, self.url)
        self.presence[visitor] = presence
        await self._put_presence(presence)

    async def move_seat(self, visitor: str, source: InstanceRecord, target: InstanceRecord) -> bool:
        """The visitor walked from ``source`` into ``target``, both ours (a portal hop inside
        this process): its seat follows it when ``target`` has one free (compare-and-set, as
        every grant), and find a person says where it is. False: ``target`` is full, the seat
        stays counted in ``source``."""
        moved = False

        def take(seats: Seats) -> Seats | None:
            nonlocal moved
            after, moved = seats.walk_in(self.id, self.clock())
            return after if moved else None

        with self._changing_held(target.id, source.id):
            await self._change_seats(target, take)
            if moved:
                self.held[target.id] = self.held.get(target.id, 0) + 1
                if self.held.get(source.id, 0) > 0:
                    self.held[source.id] -= 1
                    if not self.held[source.id]:
                        del self.held[source.id]
                    await self._change_seats(source, lambda s: s.release(self.id))
        await self.relocate(visitor, target)
        return moved

    async def relocate(self, visitor: str, instance: InstanceRecord) -> None:
        """The visitor walked into another hall here: find a person says so from now on."""
        presence = self.presence.get(visitor)
        if presence is None or presence.instance == instance.id:
            return
        await self.present(visitor, presence.name, instance)

    async def put_handoff(self, handoff: HandOff) -> None:
        """Say where the visitor of a seat reserved elsewhere arrives (before sending Transfer)."""
        await self.kv[TRANSFERS].put(handoff.token, handoff.encode())

    async def handoff(self, token: str) -> HandOff | None:
        """The hand-off a Transfer token names, if it is still there (its TTL is the seat's)."""
        if not token or any(c not in _KEY_CHARS for c in token):
            return None  # not a key we ever wrote (KV keys are [-_=.A-Za-z0-9])
        with contextlib.suppress(*NOT_THERE):
            entry = await self.kv[TRANSFERS].get(token)
            if entry.value:
                return HandOff.decode(entry.value)
        return None

    async def forget_handoff(self, token: str) -> None:
        with contextlib.suppress(*NOT_THERE):
            await self.kv[TRANSFERS].delete(token)

    def live_urls(self) -> list[str]:
        """Where the other live processes take visitors (as of the last heartbeat)."""
        return sorted(r.url for pid, r in self.watch.live.items() if pid != self.id and r.url)

    async def cancel(self, admission: Admission) -> None:
        """The seat will not be taken: give it back before it expires."""
        await self._change_seats(admission.instance, lambda s: _changed(s, s.cancel(admission.token)))

    async def leave(self, instance: InstanceRecord, visitor: str) -> None:
        """The visitor left this process: give its seat back and forget its presence."""
        if self.held.get(instance.id, 0) <= 0:
            return
        with self._changing_held(instance.id):
            self.held[instance.id] -= 1
            if not self.held[instance.id]:
                del self.held[instance.id]
            self.load = max(0, self.load - 1)
            await self._change_seats(instance, lambda s: s.release(self.id))
        presence = self.presence.pop(visitor, None)
        if presence is not None:
            await self._forget_presence(presence)


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel ``task`` and wait until it has ended. Cancelling once is not enough on Python
    3.11: asyncio.wait_for, which every nats-py request goes through, returns the reply and
    drops the cancellation when both arrive in the same turn of the event loop, and the task
    goes on (a heartbeat beating forever, its process's stop waiting for it: seen under
    load). So cancel again until it ends."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.2)
    if not task.cancelled() and task.exception() is not None:
        log.warning("a cluster task had failed", extra={"task": task.get_name(), "error": repr(task.exception())})


_KEY_CHARS = frozenset("-_=.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _cancelled(tokens: tuple[str, ...], seats: Seats) -> Seats | None:
    return _changed(seats, seats.cancel(*tokens))


def _changed(before: Seats, after: Seats) -> Seats | None:
    """``after`` if it differs from ``before``: a compare-and-set that writes nothing new is skipped."""
    return None if after == before else after
