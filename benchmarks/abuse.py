"""Abuse on loopback, bounded in count and time, against a real bank and a real expo-server
(issue 14). While walkers walk, attackers in this process run every attack of the issue at
once (or those named with ``--only``):

* ``burst``: ``--burst-connections`` linked visitors send ``--burst-orders`` orders in all, as
  fast as the socket takes them (Found 3: 1,000 orders in about 2 s from 10 connections);
* ``hoard``: ``--hoarders`` throwaway names each join, try to open a bank account, link it
  and reserve what they may, and leave (Found 4, stock);
* ``seats``: sessions that join and drop their socket without a Bye, again and again for the
  storm's length, to keep the expo's seats full (Found 4, seats);
* ``blasters``: ``--blasters`` WebSockets that never say Hello and push what they can: 64
  frames of 64 KiB (the red team's), garbage frames, a big frame's header, part of a frame,
  or nothing (Found 5);
* ``slowloris``: ``--slowloris`` sockets that send an HTTP request's headers a line every 2 s
  and never finish it;
* ``nonreaders``: ``--nonreaders`` visitors with a 4 KiB receive buffer who join and never
  read (Found 6);
* ``fuzz``: ``--fuzz-frames`` random and mutated frames from connections joined or not;
* ``bank``: anonymous accounts opened as fast as the bank lets ``--bank-sources`` addresses,
  a 64 MiB body to ``POST /v1/accounts`` and a 256 MiB one to the world server's webhook
  port (Found 7);
* ``identity``: Bob buys, leaves; "BOB" joins and tries to read and cancel Bob's things
  (Found 1);
* ``intent``: A's intent paid from B's account (Found 2).

Measured throughout, in a quiet period first (the peer) and under attack: the walkers'
largest gap between two snapshots (a process of their own), a fresh visitor's join latency
(one a second), /healthz latency (four a second), the server's and bank's RSS (from /proc).
Then a real buyer buys and a real visitor joins. Attackers come from addresses of their
own (127.0.0.2 and up: Linux routes all of 127/8 to loopback), as real ones would, so the
per-address caps apply to them and not to the walkers on 127.0.0.1.

    python benchmarks/abuse.py                  # everything at once, about 3 minutes
    python benchmarks/abuse.py --scale 0.2      # a quick one
    python benchmarks/abuse.py --only blasters  # one attack alone, as the red team ran it
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import msgpack
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "server"))

from processes import BIN, free_port, start, stop  # noqa: E402
from support import HANDSHAKE, client_frame  # noqa: E402

import protocol as p  # noqa: E402
from bank.client import BankAPIError, VisitorClient  # noqa: E402

PLATFORM_KEY = "abuse-benchmark-platform-key"
WEBHOOK_SECRET = "abuse-benchmark-webhook-secret"
GOALS = {"max_gap_s": 0.5, "rss_growth_mb": 100.0, "join_s": 2.0, "healthz_s": 1.0}
TOLD_WITHIN_S = 11.5  # the 10 s to say Hello (or finish the HTTP request), looked at every 0.5 s, and slack
CUT_WITHIN_S = 14.0  # then up to 2 s for a closing handshake they never answer, looked at every 0.5 s
ATTACKS = ("burst", "hoard", "seats", "blasters", "slowloris", "nonreaders", "fuzz", "bank", "identity", "intent")
# attackers' source addresses, by kind (each kind its own block: per-address caps are per kind)
SOURCES = {"burst": 2, "hoard": 3, "seats": 4, "nonreaders": 5, "fuzz": 6, "identity": 7, "intent": 8,
           "buyer": 9, "bank": 10, "blasters": 30, "slowloris": 60}
PER_ADDRESS = 50  # the server's default --max-connections-per-address


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One context for every HTTP client: httpx would load the CA bundle for each (tens of
    ms of blocked event loop each, hundreds of bank clients here), though all is plain HTTP."""
    return ssl.create_default_context()


def http_transport(address: str | None) -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(local_address=address, verify=ssl_context())


def source(kind: str, i: int = 0, per: int = PER_ADDRESS) -> str:
    """The i-th attacker of a kind's address: ``per`` connections from each."""
    return f"127.0.0.{SOURCES[kind] + i // per}"


def tick_bounds(metrics: str) -> tuple[float, float]:
    """From the server's /metrics: the histogram bounds under which 99 % and all of its
    ticks fell (so a gap can be told to be the server's own, or not)."""
    buckets = sorted((float(le), float(n)) for le, n in
                     re.findall(r'expo_tick_seconds_bucket\{le="([0-9.e+-]+)"\} (\S+)', metrics))
    count = re.search(r"expo_tick_seconds_count (\S+)", metrics)
    total = float(count[1]) if count else 0.0
    p99 = next((le for le, n in buckets if n >= 0.99 * total), math.inf)
    worst = next((le for le, n in buckets if n >= total), math.inf)
    return p99, worst


def metric(metrics: str, name: str) -> float:
    found = re.search(rf"^{name}(?:_total)? (\S+)$", metrics, re.M)
    return float(found[1]) if found else 0.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


async def until(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# --------------------------------------------------------------------------- walkers (own process)


async def walk(url: str, count: int, seconds: float) -> dict:
    """``count`` walkers, for at most ``seconds``: once all have joined, "ready" on stdout;
    then the largest snapshot gap before "attack" arrives on stdin (the baseline) and after
    it, until "stop"; and the probes (a fresh visitor's join, /healthz), measured here too,
    away from the attackers' event loop."""
    from client import events as ev
    from client.core import ClientCore
    from client.transport import Transport

    gaps = [0.0, 0.0]
    last: dict[int, float] = {}
    measuring = [False]  # from when every walker has joined: joining is not walking
    started = time.monotonic()
    phase = [0]  # 0: quiet, 1: under attack

    async def commands() -> None:
        while (line := await asyncio.to_thread(sys.stdin.readline)) and line.strip() != "stop":
            phase[0] = 1 if line.strip() == "attack" else phase[0]

    stopped = asyncio.create_task(commands())

    def on_event(i: int, event: ev.Event) -> None:
        if isinstance(event, ev.SnapshotReceived):
            now = time.monotonic()
            if i in last and measuring[0]:
                period = phase[0]
                gaps[period] = max(gaps[period], now - last[i])
            last[i] = now
        elif isinstance(event, ev.Disconnected):
            last.pop(i, None)

    walkers = [Transport(ClientCore(f"Walker {i}", view=False, predict=False), url,
                         on_event=functools.partial(on_event, i)) for i in range(count)]
    tasks = [asyncio.create_task(w.run()) for w in walkers]
    for w in walkers:
        await w.wait_joined(20)
    await asyncio.sleep(1.0)
    measuring[0] = True
    ssl_context()  # made before the baseline starts: loading the CA bundle blocks for ~1 s under load
    await (await Visitor.join(url, "Warm-up")).close()  # a first join's one-time costs are not the peer's
    print("ready", flush=True)
    probes = Probes(url, lambda: phase[0])
    probing = asyncio.create_task(probes.run())
    begin = time.monotonic()
    while time.monotonic() - started < seconds and not stopped.done():
        t = time.monotonic() - begin
        for i, w in enumerate(walkers):  # circles: the direction changes all the time
            angle = t * 0.5 + i
            w.set_controls(math.cos(angle), math.sin(angle), angle, False)
        await asyncio.sleep(0.1)
    probes.stop.set()
    await probing
    for w in walkers:
        await w.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"gaps": gaps, **probes.figures()}


class Probes:
    """A fresh visitor joining once a second and /healthz four times a second, each figure
    kept per phase (0: quiet, 1: under attack)."""

    def __init__(self, url: str, phase: Callable[[], int]) -> None:
        self.url, self.phase = url, phase
        self.healthz_url = url.replace("ws://", "http://").rstrip("/") + "/healthz"
        self.joins: list[list[float]] = [[], []]
        self.refused: list[Counter[str]] = [Counter(), Counter()]
        self.healthz: list[list[float]] = [[], []]
        self.healthz_failed = [0, 0]
        self.stop = asyncio.Event()

    def figures(self) -> dict:
        return {"joins": [describe(j) for j in self.joins], "refused": [dict(r) for r in self.refused],
                "healthz": [describe(h) for h in self.healthz], "healthz_failed": self.healthz_failed}

    async def run(self) -> None:
        await asyncio.gather(self._joins(), self._healthz())

    async def _joins(self) -> None:
        while not self.stop.is_set():
            phase, started = self.phase(), time.monotonic()
            try:
                v = await Visitor.join(self.url, "Probe", timeout=15)
                self.joins[phase].append(time.monotonic() - started)
                await v.close()
            except ConnectionRefusedError as why:
                self.refused[phase][str(why)] += 1
            except (OSError, TimeoutError, ConnectionClosed) as why:
                self.refused[phase][type(why).__name__] += 1
            await until(self.stop, 1.0)

    async def _healthz(self) -> None:
        async with httpx.AsyncClient(timeout=10, transport=http_transport(None)) as http:
            while not self.stop.is_set():
                phase, started = self.phase(), time.monotonic()
                try:
                    (await http.get(self.healthz_url)).raise_for_status()
                    self.healthz[phase].append(time.monotonic() - started)
                except httpx.HTTPError:
                    self.healthz_failed[phase] += 1
                await until(self.stop, 0.25)


async def sample_rss(pids: dict[str, int], samples: dict[str, list[float]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for name, pid in pids.items():
            samples[name].append(rss_mb(pid))
        await until(stop, 0.5)


# --------------------------------------------------------------------------- visitors


class Visitor:
    def __init__(self, ws, welcome: p.Welcome, source_address: str | None) -> None:
        self.ws, self.welcome, self.source = ws, welcome, source_address
        self.bank: VisitorClient | None = None

    @classmethod
    async def join(cls, url: str, name: str, source_address: str | None = None, timeout: float = 10.0) -> Visitor:
        extra: dict[str, Any] = {"local_addr": (source_address, 0)} if source_address else {}
        ws = await connect(url, compression=None, open_timeout=timeout, **extra)
        try:
            await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0)))
            while True:
                async with asyncio.timeout(timeout):
                    data = await ws.recv()
                message = p.decode_server(data if isinstance(data, bytes) else data.encode())
                if isinstance(message, (p.Welcome, p.Refused)):
                    break
        except BaseException:
            await ws.close()
            raise
        if isinstance(message, p.Refused):
            await ws.close()
            raise ConnectionRefusedError(message.code)
        return cls(ws, message, source_address)

    async def expect(self, kinds: tuple, timeout: float = 10.0, where=lambda m: True):
        async with asyncio.timeout(timeout):
            while True:
                message = p.decode_server(await self.ws.recv())
                if isinstance(message, kinds) and where(message):
                    return message

    async def link(self, bank_url: str, attempts: int = 1) -> VisitorClient | None:
        """The visitor's own bank account, linked; None when the bank would not open one
        (``attempts``: how often to ask, waiting longer each time, as a person would)."""
        bank = self.bank = VisitorClient(bank_url, retries=0, transport=http_transport(self.source))
        for attempt in range(attempts):
            try:
                await bank.open_account(self.welcome.display_name, "USD")
                break
            except BankAPIError:
                if attempt == attempts - 1:
                    return None
                await asyncio.sleep(1.0 + attempt)
        try:
            proof = await bank.account_proof(self.welcome.visitor_id)
        except BankAPIError:
            return None
        await self.ws.send(p.encode(p.LinkAccount(proof.proof)))
        return bank if isinstance(await self.expect((p.AccountLinked, p.Error)), p.AccountLinked) else None

    async def ask(self, message: p.Message, kinds: tuple, where=lambda m: True):
        await self.ws.send(p.encode(message))
        return await self.expect(kinds, where=where)

    async def close(self, bye: bool = True) -> None:
        with contextlib.suppress(ConnectionClosed):
            if bye:
                await self.ws.send(p.encode(p.Bye()))
            await self.ws.close()
        if self.bank is not None:
            await self.bank.aclose()


def catalogue(welcome: p.Welcome) -> list[tuple[str, str]]:
    return [(b["id"], pr["sku"]) for b in welcome.manifest["booths"] for pr in b["catalogue"]]


class Target:
    """Where the attacks go, and what they may read of the processes."""

    def __init__(self, port: int, bank_url: str, webhook_port: int, server_pid: int, bank_pid: int) -> None:
        self.port, self.bank_url, self.webhook_port = port, bank_url, webhook_port
        self.url = f"ws://127.0.0.1:{port}/"
        self.server_pid, self.bank_pid = server_pid, bank_pid

    async def metrics(self) -> str:
        async with httpx.AsyncClient(timeout=10) as http:
            return (await http.get(f"http://127.0.0.1:{self.port}/metrics")).text


# --------------------------------------------------------------------------- attacks


async def burst(t: Target, args: argparse.Namespace, stop: asyncio.Event) -> dict:
    """Many orders as fast as the sockets take them; every answer counted (Found 3)."""
    visitors = [await Visitor.join(t.url, f"Burst {i}", source("burst")) for i in range(args.burst_connections)]
    linked = [v for v in visitors if await v.link(t.bank_url, attempts=5)]
    items = catalogue(visitors[0].welcome)
    answers: Counter[str] = Counter()
    per = args.burst_orders // max(1, len(linked))

    async def read(v: Visitor, n: int) -> None:
        try:
            for _ in range(n):
                m = await v.expect((p.OrderStatus, p.Error, p.Closing), timeout=15)
                if isinstance(m, p.Closing):  # the server cut the blaster off
                    answers[f"closed:{m.code}"] += 1
                    return
                answers[m.status if isinstance(m, p.OrderStatus) else m.code] += 1
        except TimeoutError:
            answers["unanswered"] += 1
        except ConnectionClosed:
            answers["closed"] += 1

    started = time.monotonic()
    readers = [asyncio.create_task(read(v, per)) for v in linked]
    for k in range(per):
        for i, v in enumerate(linked):
            booth, sku = items[(i * per + k) % len(items)]
            with contextlib.suppress(ConnectionClosed):
                await v.ws.send(p.encode(p.Order(booth, sku, 1, f"burst-{i}-{k}")))
    sent_in = time.monotonic() - started
    await asyncio.gather(*readers)
    for v in visitors:
        with contextlib.suppress(ConnectionClosed):
            await v.close()
    return {"linked": len(linked), "sent": per * len(linked), "sent_in_s": round(sent_in, 2), "answers": dict(answers)}


async def hoard(t: Target, args: argparse.Namespace, stop: asyncio.Event) -> dict:
    """Throwaway names: each joins, tries for an account, reserves what it may, leaves (Found 4)."""
    outcome: Counter[str] = Counter()
    most_held = [0]  # the most orders one hoarder got to hold at once

    async def one(i: int) -> None:
        try:
            v = await Visitor.join(t.url, f"Hoarder {i}", source("hoard"))
        except (ConnectionRefusedError, OSError, TimeoutError, ConnectionClosed) as refused:
            outcome[f"join_{refused}"] += 1
            return
        try:
            items = catalogue(v.welcome)
            if not await v.link(t.bank_url):
                outcome["no_account"] += 1
                for k in range(3):  # try anyway: an order without a linked account
                    booth, sku = items[(i + k) % len(items)]
                    m = await v.ask(p.Order(booth, sku, 1, f"h{i}-{k}"), (p.OrderStatus, p.Error))
                    outcome[m.status if isinstance(m, p.OrderStatus) else m.code] += 1
                return
            held: set[str] = set()  # order ids: a status may come twice (the sweep's retry)
            for k in range(5):  # more than the 3 allowed
                booth, sku = items[(i * 5 + k) % len(items)]
                key = f"h{i}-{k}"
                m = await v.ask(p.Order(booth, sku, 1, key), (p.OrderStatus, p.Error),
                                where=lambda m, key=key: isinstance(m, p.Error) or m.key == key)
                outcome[m.status if isinstance(m, p.OrderStatus) else m.code] += 1
                if isinstance(m, p.OrderStatus) and m.status == "pending_payment":
                    held.add(m.order_id)
            most_held[0] = max(most_held[0], len(held))
        except (TimeoutError, OSError):
            outcome["unanswered"] += 1
        except ConnectionClosed:
            outcome["closed"] += 1
        finally:
            await v.close()

    for start_at in range(0, args.hoarders, args.hoard_batch):
        await asyncio.gather(*(one(i) for i in range(start_at, min(args.hoarders, start_at + args.hoard_batch))))
    return {**outcome, "most_held_by_one": most_held[0]}


async def seats(t: Target, args: argparse.Namespace, stop: asyncio.Event) -> dict:
    """Sessions that join and drop their socket without a Bye, until the storm ends: one
    process trying to keep every seat taken (Found 4: a real visitor refused 52 times in 60)."""
    joined, refused = 0, Counter[str]()
    i = 0
    while not stop.is_set():
        for _ in range(args.vanish_batch):
            try:
                v = await Visitor.join(t.url, f"Vanisher {i}", source("seats"))
                v.ws.transport.abort()  # no Bye, no close handshake: a crash
                joined += 1
            except ConnectionRefusedError as why:
                refused[str(why)] += 1
            except (OSError, TimeoutError, ConnectionClosed) as why:
                refused[type(why).__name__] += 1
            i += 1
        await until(stop, 1.0)
    return {"joined_and_dropped": joined, "refused": dict(refused)}


BLASTER_SHAPES = ("64x64KiB", "garbage", "big_header", "part_frame", "idle")


async def blasters(t: Target, args: argparse.Namespace, stop: asyncio.Event) -> dict:
    """WebSockets that never say Hello and push what they can (Found 5: 300 took the RSS
    from 190 to 1,036 MB); how long each is held before the server cuts it."""
    cut: dict[str, list[float]] = {shape: [] for shape in BLASTER_SHAPES}
    told: dict[str, list[float]] = {shape: [] for shape in BLASTER_SHAPES}  # the server's last word (its Close)
    outcome: Counter[str] = Counter()
    big = client_frame(b"\x00" * 65535)  # the largest frame client_frame writes, 64 KiB

    async def one(i: int) -> None:
        shape = BLASTER_SHAPES[i % len(BLASTER_SHAPES)]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", t.port, local_addr=(source("blasters", i), 0))
        except OSError:
            outcome["connect_failed"] += 1
            return
        started = time.monotonic()
        try:
            writer.write(HANDSHAKE)
            if shape == "64x64KiB":
                for _ in range(64):
                    writer.write(big)
                    await asyncio.wait_for(writer.drain(), 2.0)
            elif shape == "garbage":
                writer.write(client_frame(b"\xc1" * 4000) * 12)
            elif shape == "big_header":
                writer.write(b"\x82\xff" + (60_000).to_bytes(8, "big"))
            elif shape == "part_frame":
                writer.write(b"\x82\xfe" + (4000).to_bytes(2, "big") + b"\x00" * 4 + b"x" * 3000)
            await writer.drain()
            last_word = None
            while time.monotonic() - started < args.storm_seconds + 15:  # read until the server lets go
                if not await asyncio.wait_for(reader.read(65536), args.storm_seconds + 15):
                    break
                last_word = time.monotonic() - started
            else:
                outcome["never_cut"] += 1
                return
            if last_word is not None:
                told[shape].append(last_word)
        except (TimeoutError, ConnectionError):
            pass
        cut[shape].append(time.monotonic() - started)
        writer.close()

    await gather_bounded([functools.partial(one, i) for i in range(args.blasters)], 100)
    return {"told_after_s": {k: describe(v) for k, v in told.items() if v},
            "cut_after_s": {k: describe(v) for k, v in cut.items() if v}, **outcome}


async def slowloris(t: Target, args: argparse.Namespace, stop: asyncio.Event) -> dict:
    """HTTP requests whose headers come a line every 2 s, never finished; when they are cut."""
    cut: list[float] = []
    outcome: Counter[str] = Counter()

    async def one(i: int) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", t.port, local_addr=(source("slowloris", i), 0))
        except OSError:
            outcome["connect_failed"] += 1
            return
        started = time.monotonic()
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
            while time.monotonic() - started < args.storm_seconds + 15:
                writer.write(f"X-Slow-{int(time.monotonic() * 10)}: a\r\n".encode())
                await writer.drain()
                try:
                    if not await asyncio.wait_for(reader.read(4096), 2.0):
                        break  # the server closed it
                except TimeoutError:
                    continue
            else:
                outcome["never_cut"] += 1
                writer.close()
                return
        except ConnectionError:
            pass
        cut.append(time.monotonic() - started)
        writer.close()

    await gather_bounded([functools.partial(one, i) for i in range(args.slowloris)], 200)
    return {"cut_after_s": describe(cut), **outcome}


async def nonreaders(t: Target, args: argparse.Namespace, stop: asyncio.Event) -> dict:
    """Joined visitors with a 4 KiB receive buffer who never read (Found 6: never dropped,
    the keepalive closed them after ~40 s); the time until the server's slow-drop count has
    them all."""
    before = metric(await t.metrics(), "expo_slow_client_drops")
    socks = []
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    for i in range(args.nonreaders):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind((source("nonreaders", i), 0))
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", t.port))
        await loop.sock_sendall(sock, HANDSHAKE + client_frame(p.encode(p.Hello(p.PROTOCOL_VERSION, f"Sloth {i}", 0, 0))))
        socks.append(sock)
    dropped_at = None
    while time.monotonic() - started < args.storm_seconds + 20:
        dropped = metric(await t.metrics(), "expo_slow_client_drops") - before
        if dropped >= args.nonreaders:
            dropped_at = time.monotonic() - started
            break
        await asyncio.sleep(0.5)
    for sock in socks:
        sock.close()
    return {"dropped_too_slow": int(metric(await t.metrics(), "expo_slow_client_drops") - before),
            "of": args.nonreaders, "all_dropped_after_s": None if dropped_at is None else round(dropped_at, 1)}


async def fuzz(t: Target, args: argparse.Namespace, stop: asyncio.Event) -> dict:
    """Random and mutated frames, half of the connections joined first; reconnecting when cut."""
    rng = random.Random(14)
    samples = [p.encode(m) for m in (p.Hello(p.PROTOCOL_VERSION, "Fuzz", 1, 1), p.Input(1, 0.5, 0.5, 1.0, True),
                                      p.Chat(0, "hello"), p.Order("kz-honey", "HONEY-1", 1, "k"), p.Ping(1.0),
                                      p.QueryStock("kz-honey"), p.LinkAccount("x" * 40))]
    sent, connections, closes = 0, 0, Counter[str]()

    def frame() -> bytes:
        choice = rng.random()
        if choice < 0.3:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        if choice < 0.9:
            data = bytearray(rng.choice(samples))
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            return bytes(data)
        return msgpack.packb([rng.randrange(40), *[rng.random() for _ in range(rng.randrange(6))]])

    async def worker(w: int) -> None:
        nonlocal sent, connections
        while sent < args.fuzz_frames and not stop.is_set():
            connections += 1
            try:
                if w % 2:
                    ws = (await Visitor.join(t.url, f"Fuzz {w}", source("fuzz"))).ws
                else:
                    ws = await connect(t.url, compression=None, open_timeout=10, local_addr=(source("fuzz"), 0))
                async with ws:
                    for _ in range(200):
                        await ws.send(frame())
                        sent += 1
                        if sent % 20 == 0:
                            await asyncio.sleep(0)
            except ConnectionClosed as closed:
                closes[str(closed.rcvd.code if closed.rcvd else "abnormal")] += 1
            except (ConnectionRefusedError, OSError, TimeoutError) as why:
                closes[type(why).__name__] += 1
                await asyncio.sleep(0.2)

    await asyncio.gather(*(worker(w) for w in range(args.fuzzers)))
    return {"frames": sent, "connections": connections, "closed_by_code": dict(closes)}


async def bank(t: Target, args: argparse.Namespace, stop: asyncio.Event) -> dict:
    """Found 7: anonymous accounts as fast as the bank lets ``--bank-sources`` addresses for
    ``--bank-seconds`` (5,187 in 15 s, USD 5.19 M granted); a 64 MiB body to POST
    /v1/accounts (bank RSS 79 -> 267 MB); 256 MiB to the world server's webhook receiver
    (RSS +676 MB)."""
    opened, granted, refused = 0, 0, Counter[str]()
    deadline = time.monotonic() + args.bank_seconds

    async def opener(k: int) -> None:
        nonlocal opened, granted
        client = VisitorClient(t.bank_url, retries=0, transport=http_transport(source("bank", k, per=1)))
        try:
            while time.monotonic() < deadline:
                try:
                    account = await client.open_account(f"Anon {k}", "USD")
                    opened += 1
                    granted += account.welcome_usd
                except BankAPIError as error:
                    refused[error.code] += 1
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    bank_before = rss_mb(t.bank_pid)
    started = time.monotonic()
    await asyncio.gather(*(opener(k) for k in range(args.bank_sources) for _ in range(4)))  # 4 at once per address
    took = time.monotonic() - started
    body_status = await big_body(t.bank_url.removeprefix("http://"), "/v1/accounts", 64 << 20)
    bank_after = rss_mb(t.bank_pid)
    server_before = rss_mb(t.server_pid)
    hook_status = await big_body(f"127.0.0.1:{t.webhook_port}", "/bank/webhook", 256 << 20)
    server_after = rss_mb(t.server_pid)
    return {"accounts_opened": opened, "in_s": round(took, 1), "usd_granted": granted, "refused": dict(refused),
            "64MiB_to_bank": body_status, "bank_rss_mb": [round(bank_before), round(bank_after)],
            "256MiB_to_webhook": hook_status, "server_rss_mb": [round(server_before), round(server_after)]}


async def big_body(host_port: str, path: str, size: int) -> str:
    """POST a body of ``size`` bytes (declared, then pushed for 2 s at most): the status and
    how much of it the server took before it answered or stopped reading."""
    host, port = host_port.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {size}\r\n\r\n".encode())
    pushed, block, status = 0, b" " * (1 << 20), "no answer"

    async def answer(wait: float) -> str | None:
        with contextlib.suppress(TimeoutError, ConnectionError):
            line = await asyncio.wait_for(reader.readline(), wait)
            return line.decode(errors="replace").split(" ", 2)[1] if line else "closed"
        return None

    early = await answer(1.0)  # a server that refuses by the declared length answers before the body
    started = time.monotonic()
    try:
        while early is None and pushed < size and time.monotonic() - started < 2.0:
            writer.write(block)
            await asyncio.wait_for(writer.drain(), 0.5)
            pushed += len(block)
    except (TimeoutError, ConnectionError):
        pass
    status = early or await answer(5.0) or status
    writer.close()
    return f"{status} after {pushed >> 20} MiB pushed"


async def identity(t: Target, args: argparse.Namespace, stop: asyncio.Event) -> dict:
    """Found 1: Bob buys and leaves; whoever joins as "BOB" after him sees and touches nothing of his."""
    bob = await Visitor.join(t.url, "Bob", source("identity"))
    bank_client = await bob.link(t.bank_url, attempts=10)
    if bank_client is None:
        await bob.close()
        return {"ok": False, "why": "Bob got no bank account"}
    status = await buy_something(bob, bank_client, keep_one_open=True)
    await bob.close()
    await asyncio.sleep(0.5)
    impostor = await Visitor.join(t.url, "BOB", source("identity"))
    inventory = await impostor.ask(p.QueryInventory(), (p.Inventory,))
    cancel = await impostor.ask(p.CancelOrder(status["open_order"]), (p.Error, p.OrderStatus)) if status else None
    await impostor.close()
    seen = len(inventory.items)
    refused = isinstance(cancel, p.Error)
    return {"bob_bought": bool(status and status["bought"]), "impostor_sees_items": seen,
            "impostor_cancel": cancel.code if isinstance(cancel, p.Error) else getattr(cancel, "status", None),
            "ok": bool(status and status["bought"]) and seen == 0 and refused}


async def buy_something(v: Visitor, bank_client: VisitorClient, keep_one_open: bool = False) -> dict | None:
    """Order and pay the first product in stock; with ``keep_one_open`` also leave one order unpaid."""
    result: dict = {"bought": False, "open_order": None, "sold_out": 0, "products": 0}
    stocks: dict[str, dict[str, int]] = {}
    for booth, sku in catalogue(v.welcome):
        while booth not in stocks:  # a booth's stock once, as fast as the query limit lets a visitor
            m = await v.ask(p.QueryStock(booth), (p.Stock, p.Error),
                            where=lambda m, booth=booth: isinstance(m, p.Error) or m.booth == booth)
            if isinstance(m, p.Stock):
                stocks[booth] = dict(m.items)
            else:
                await asyncio.sleep(0.5)
        available = stocks[booth].get(sku, 0)
        result["products"] += 1
        if available <= 0:
            result["sold_out"] += 1
            continue
        if result["bought"] and not keep_one_open:
            continue
        key = f"{v.welcome.visitor_id}-{sku}"
        status = await v.ask(p.Order(booth, sku, 1, key), (p.OrderStatus,), where=lambda m, key=key: m.key == key)
        if status.status != "pending_payment":
            continue
        if result["bought"]:
            result["open_order"] = status.order_id
            keep_one_open = False
            continue
        try:
            await bank_client.confirm_intent(status.intent_id)
        except BankAPIError:
            await v.ws.send(p.encode(p.CancelOrder(status.order_id)))
            continue
        await v.ws.send(p.encode(p.OrderPaid(status.order_id)))
        await v.expect((p.Receipt,), timeout=15)
        result["bought"] = True
    return result


async def intent(t: Target, args: argparse.Namespace, stop: asyncio.Event) -> dict:
    """Found 2: B reads and pays A's intent from B's own account."""
    a = await Visitor.join(t.url, "Aigerim", source("intent"))
    b = await Visitor.join(t.url, "Batu", source("intent"))
    bank_a, bank_b = await a.link(t.bank_url, attempts=10), await b.link(t.bank_url, attempts=10)
    if bank_a is None or bank_b is None:
        await a.close()
        await b.close()
        return {"ok": False, "why": "no bank account"}
    booth, sku = catalogue(a.welcome)[0]
    status = await a.ask(p.Order(booth, sku, 1, "a-1"), (p.OrderStatus,), where=lambda m: m.key == "a-1")
    answers = {}
    for what, call in (("read", bank_b.get_intent), ("pay", bank_b.confirm_intent)):
        try:
            await call(status.intent_id)
            answers[what] = "allowed"
        except BankAPIError as error:
            answers[what] = error.code
    await a.ws.send(p.encode(p.CancelOrder(status.order_id)))
    await a.close()
    await b.close()
    return {**answers, "ok": answers.get("pay") != "allowed" and answers.get("read") != "allowed"}


async def gather_bounded(jobs: list[Callable[[], Coroutine[Any, Any, None]]], opening_at_once: int) -> None:
    """Start the jobs ``opening_at_once`` at a time (the listen backlog is finite), then wait for all."""
    tasks: list[asyncio.Task[None]] = []
    for k in range(0, len(jobs), opening_at_once):
        tasks += [asyncio.create_task(job()) for job in jobs[k:k + opening_at_once]]
        await asyncio.sleep(0.2)
    await asyncio.gather(*tasks)


def describe(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    values = sorted(values)
    return {"n": len(values), "min": round(values[0], 2), "p50": round(values[len(values) // 2], 2),
            "max": round(values[-1], 2)}


async def real_buyer(t: Target) -> dict:
    started = time.monotonic()
    v = await Visitor.join(t.url, "Real Buyer", source("buyer"))
    bank_client = await v.link(t.bank_url, attempts=10)
    if bank_client is None:
        await v.close()
        return {"bought": False, "why": "no account"}
    result = await buy_something(v, bank_client)
    await v.close()
    assert result is not None
    return {"bought": result["bought"], "seconds": round(time.monotonic() - started, 2),
            "sold_out": f"{result['sold_out']} of {result['products']}"}


async def real_visitor(t: Target) -> dict:
    refused: Counter[str] = Counter()
    for _ in range(20):
        try:
            v = await Visitor.join(t.url, "Real Visitor")
        except ConnectionRefusedError as why:
            refused[str(why)] += 1
            await asyncio.sleep(0.5)
            continue
        await v.close()
        return {"joined": True, "refused_first": sum(refused.values())}
    return {"joined": False, "refused": dict(refused)}


# --------------------------------------------------------------------------- the run


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="expo-abuse-"))
    bank_port, port, webhook_port = free_port(), free_port(), free_port()
    bank_url = f"http://127.0.0.1:{bank_port}"
    bank_proc = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", str(tmp / "bank.sqlite3"),
                       "--platform-key", PLATFORM_KEY, "--webhook-secret", WEBHOOK_SECRET,
                       "--webhook-url", f"http://127.0.0.1:{webhook_port}/bank/webhook"],
                      f"{bank_url}/healthz", log=tmp / "bank.log")
    server = start([str(BIN / "expo-server"), "--port", str(port), "--bank-url", bank_url, "--webhook-port",
                    str(webhook_port), "--data-dir", str(tmp / "server"), "--no-watch",
                    "--max-clients", str(args.max_clients)],
                   f"http://127.0.0.1:{port}/healthz", env={"EXPO_BANK_PLATFORM_KEY": PLATFORM_KEY,
                                                            "EXPO_BANK_WEBHOOK_SECRET": WEBHOOK_SECRET},
                   log=tmp / "server.log")
    target = Target(port, bank_url, webhook_port, server.pid, bank_proc.pid)
    walkers = None
    rss: dict[str, list[float]] = {"server": [], "bank": []}
    rss_stop = asyncio.Event()
    try:
        rss_before = rss_mb(server.pid), rss_mb(bank_proc.pid)
        load_before = os.getloadavg()[0]
        walkers = subprocess.Popen(
            [sys.executable, __file__, "--walk", target.url, "--walkers", str(args.walkers), "--walk-seconds",
             str(args.quiet + args.storm_seconds + 400)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        sampling = asyncio.create_task(sample_rss({"server": server.pid, "bank": bank_proc.pid}, rss, rss_stop))
        assert walkers.stdin is not None and walkers.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(walkers.stdout.readline), 180)
        if ready.strip() != "ready":
            raise RuntimeError(f"the walkers did not join: {ready!r}")
        await asyncio.sleep(args.quiet)  # the walkers walk undisturbed: the baseline
        walkers.stdin.write("attack\n")
        walkers.stdin.flush()
        started = time.monotonic()
        storm_over = asyncio.Event()
        chosen = [name for name in ATTACKS if name in args.only]
        running = {name: asyncio.create_task(globals()[name](target, args, storm_over)) for name in chosen}
        await asyncio.sleep(args.storm_seconds)
        storm_over.set()
        results: dict[str, dict] = {}
        for name, task in running.items():
            try:
                results[name] = await asyncio.wait_for(task, 120)
            except Exception as error:  # an attack that broke is a figure too, not a lost run
                results[name] = {"error": repr(error)}
        attack_s = time.monotonic() - started
        results["real_buyer"] = await real_buyer(target)
        results["real_visitor"] = await real_visitor(target)
        await asyncio.sleep(3.0)  # let the server settle before the last RSS figure
        rss_stop.set()
        await sampling
        out, _ = walkers.communicate("stop\n", timeout=60)
        measured = json.loads(out.strip().splitlines()[-1])
        rss_after = rss_mb(server.pid), rss_mb(bank_proc.pid)
        load = (load_before, os.getloadavg()[0])
        tick_p99, tick_worst = tick_bounds(await target.metrics())
    finally:
        if walkers is not None and walkers.poll() is None:
            walkers.kill()
        stop(server)
        stop(bank_proc)
    tracebacks = {name: (tmp / f"{name}.log").read_text(errors="replace").count("Traceback") for name in ("server", "bank")}
    rss_figures = {name: [rss_before[k], max(rss[name] + [rss_after[k]]), rss_after[k]]
                   for k, name in enumerate(("server", "bank"))}
    rows = table(args, results, measured, rss_figures, (tick_p99, tick_worst), attack_s, tracebacks)
    rows.append(("machine load (1 min average), start / end", f"{load[0]:.1f} / {load[1]:.1f} "
                 f"on {os.cpu_count()} cores", "", ""))
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':<44}  {'goal':<24}  ok")
    for name, value, goal, ok in rows:
        print(f"{name:<{width}}  {value:<44}  {goal:<24}  {'' if ok == '' else ('yes' if ok else 'NO')}")
    failed = [r[0] for r in rows if r[3] is False]
    if args.json:
        args.json.write_text(json.dumps({"results": results, **measured, "rss": rss_figures, "failed": failed,
                                         "tracebacks": tracebacks, "load": load}, indent=2))
    if failed:
        print(f"logs and databases kept in {tmp}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def table(args, results, measured, rss, ticks, attack_s, tracebacks) -> list[tuple]:
    """Every figure of the run, its goal and whether it met it ('' where there is no goal)."""
    baseline, attacked = measured["gaps"]
    (before, peak, after), bank_rss = rss["server"], rss["bank"]
    growth = peak - before
    joins, health, refused = measured["joins"], measured["healthz"], measured["refused"]
    rows: list[tuple] = [
        ("walkers' largest snapshot gap, quiet (peer)", f"{baseline:.3f} s", "", ""),
        ("walkers' largest snapshot gap, under attack", f"{attacked:.3f} s", f"< {GOALS['max_gap_s']} s",
         attacked < GOALS["max_gap_s"]),
        ("  ratio attack / quiet", f"{attacked / baseline:.2f}" if baseline else "-", "", ""),
        ("server tick: 99 % / all within", f"{ticks[0] * 1000:g} / {ticks[1] * 1000:g} ms", "", ""),
        ("join latency, quiet (peer)", f"p50 {joins[0].get('p50')} s, max {joins[0].get('max')} s", "", ""),
        ("join latency, under attack", f"p50 {joins[1].get('p50')} s, max {joins[1].get('max')} s "
                                       f"({joins[1]['n']} joins)", f"max < {GOALS['join_s']} s",
         joins[1]["n"] > 0 and joins[1]["max"] < GOALS["join_s"]),
        ("  joins refused under attack", json.dumps(refused[1]), "none", not refused[1]),
        ("/healthz latency, quiet (peer)", f"p50 {health[0].get('p50')} s, max {health[0].get('max')} s", "", ""),
        ("/healthz latency, under attack", f"p50 {health[1].get('p50')} s, max {health[1].get('max')} s, "
                                           f"{measured['healthz_failed'][1]} failed", f"max < {GOALS['healthz_s']} s",
         health[1]["n"] > 0 and health[1]["max"] < GOALS["healthz_s"] and not measured["healthz_failed"][1]),
        ("server RSS growth (before -> peak, after)",
         f"{growth:.1f} MB ({before:.0f} -> {peak:.0f}, {after:.0f})",
         f"< {GOALS['rss_growth_mb']:.0f} MB", growth < GOALS["rss_growth_mb"]),
        ("bank RSS (before -> peak, after)",
         f"{bank_rss[0]:.0f} -> {bank_rss[1]:.0f}, {bank_rss[2]:.0f} MB", "", ""),
        ("tracebacks in the logs (server, bank)", f"{tracebacks['server']}, {tracebacks['bank']}", "0, 0",
         not any(tracebacks.values())),
    ]
    r = results
    if "burst" in r and "error" not in r["burst"]:
        b = r["burst"]
        rows += [(f"burst: {b['sent']} orders from {b['linked']} linked sent in", f"{b['sent_in_s']:.2f} s", "", ""),
                 ("  answers", json.dumps(b["answers"]), "every order answered or cut", "unanswered" not in b["answers"])]
    if "hoard" in r and "error" not in r["hoard"]:
        rows.append((f"hoard: {args.hoarders} names", json.dumps(r["hoard"]), "at most 3 held by one",
                     r["hoard"]["most_held_by_one"] <= 3))
    if "seats" in r and "error" not in r["seats"]:
        rows.append((f"seats: join-and-vanish (cap {args.max_clients})", json.dumps(r["seats"]), "", ""))
    for name in ("blasters", "slowloris"):
        if name in r and "error" not in r[name]:
            held = r[name]
            longest = max([c["max"] for c in held["cut_after_s"].values() if c.get("max") is not None]
                          if name == "blasters" else [held["cut_after_s"].get("max", 0)])
            rows.append((f"{name}: {getattr(args, name)} connections, cut after",
                         json.dumps(held["cut_after_s"] if name == "blasters" else held),
                         f"all cut, within {CUT_WITHIN_S} s", "never_cut" not in held and longest < CUT_WITHIN_S))
            if name == "blasters":
                last = max(c["max"] for c in held["told_after_s"].values())
                rows.append(("  the server's Close to them came after", json.dumps(held["told_after_s"]),
                             f"within {TOLD_WITHIN_S} s", last < TOLD_WITHIN_S))
    if "nonreaders" in r and "error" not in r["nonreaders"]:
        n = r["nonreaders"]
        rows.append(("non-reading joined clients dropped too_slow", json.dumps(n), "all, within 15 s",
                     n["dropped_too_slow"] >= n["of"] and (n["all_dropped_after_s"] or 99) < 15))
    if "fuzz" in r and "error" not in r["fuzz"]:
        rows.append(("fuzzed frames", json.dumps(r["fuzz"]), "server up (walkers served)", ""))
    if "bank" in r and "error" not in r["bank"]:
        bk = r["bank"]
        rows += [(f"bank: anonymous accounts from {args.bank_sources} addresses", f"{bk['accounts_opened']} in "
                  f"{bk['in_s']} s, USD {bk['usd_granted']:,} granted", "rate-limited", ""),
                 ("  refused", json.dumps(bk["refused"]), "", ""),
                 ("  64 MiB body to POST /v1/accounts", f"{bk['64MiB_to_bank']}; bank RSS {bk['bank_rss_mb']} MB",
                  "413, RSS < +50 MB", bk["64MiB_to_bank"].startswith("413")
                  and bk["bank_rss_mb"][1] - bk["bank_rss_mb"][0] < 50),
                 ("  256 MiB body to the webhook port", f"{bk['256MiB_to_webhook']}; server RSS {bk['server_rss_mb']} MB",
                  "413, RSS < +50 MB", bk["256MiB_to_webhook"].startswith("413")
                  and bk["server_rss_mb"][1] - bk["server_rss_mb"][0] < 50)]
    for name in ("identity", "intent"):
        if name in r:
            rows.append((f"{name}: " + ("'BOB' after Bob" if name == "identity" else "B pays A's intent"),
                         json.dumps(r[name]), "refused, nothing seen", bool(r[name].get("ok"))))
    for name, result in r.items():
        if "error" in result:
            rows.append((f"{name}: the attack itself broke", result["error"], "", False))
    rows += [
        ("a real buyer buys", json.dumps(r["real_buyer"]), "bought", r["real_buyer"]["bought"]),
        ("a real visitor joins", json.dumps(r["real_visitor"]), "joined", r["real_visitor"]["joined"]),
        ("attacks took", f"{attack_s:.1f} s", "", ""),
    ]
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(ATTACKS), help=f"attacks to run, comma-separated: {','.join(ATTACKS)}")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every count by this (e.g. 0.2 for a quick run)")
    ap.add_argument("--walkers", type=int, default=20)
    ap.add_argument("--quiet", type=float, default=8.0, help="seconds of walking before the attacks (the peer)")
    ap.add_argument("--storm-seconds", type=float, default=30.0, help="how long the attacks that last last")
    ap.add_argument("--burst-connections", type=int, default=10)
    ap.add_argument("--burst-orders", type=int, default=1000)
    ap.add_argument("--hoarders", type=int, default=500)
    ap.add_argument("--hoard-batch", type=int, default=25)
    ap.add_argument("--vanish-batch", type=int, default=10, help="join-and-vanish sessions a second")
    ap.add_argument("--blasters", type=int, default=300)
    ap.add_argument("--slowloris", type=int, default=1000)
    ap.add_argument("--nonreaders", type=int, default=20)
    ap.add_argument("--fuzz-frames", type=int, default=20000)
    ap.add_argument("--fuzzers", type=int, default=4)
    ap.add_argument("--bank-sources", type=int, default=10)
    ap.add_argument("--bank-seconds", type=float, default=15.0)
    ap.add_argument("--max-clients", type=int, default=100)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--walk", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--walk-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.walk:
        print(json.dumps(asyncio.run(walk(args.walk, args.walkers, args.walk_seconds))))
        return 0
    args.only = {name.strip() for name in args.only.split(",") if name.strip()}
    if unknown := args.only - set(ATTACKS):
        ap.error(f"unknown attacks: {', '.join(sorted(unknown))} (known: {', '.join(ATTACKS)})")
    for name in ("burst_orders", "hoarders", "blasters", "slowloris", "nonreaders", "fuzz_frames"):
        setattr(args, name, max(1, round(getattr(args, name) * args.scale)))
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
