"""Abuse on loopback, bounded in count and time, against a real bank and a real expo-server
(issue 14 item 6). While walkers walk, attackers in this process:

1. burst: ``--burst-connections`` linked visitors send ``--burst-orders`` orders in all, as
   fast as the socket takes them (1,000 orders in about 2 s from 10 connections);
2. hoarders: ``--hoarders`` throwaway names each join, try to open a bank account, link it
   and reserve what they may (3 open orders at most), and leave;
3. vanishers: ``--vanishers`` sessions join and drop their socket without a Bye;

then a real buyer buys (orders, pays at the bank, gets the receipt) and a real visitor
joins. The walkers run in a process of their own and measure the largest gap between two
snapshots; the server's RSS is read from /proc. The baseline (the peer of this run) is the
walkers' largest gap during a quiet period before the attacks.

    python benchmarks/abuse.py            # the full run, about 2 minutes
    python benchmarks/abuse.py --scale 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from processes import BIN, free_port, start, stop  # noqa: E402

import protocol as p  # noqa: E402
from bank.client import BankAPIError, VisitorClient  # noqa: E402

PLATFORM_KEY = "abuse-benchmark-platform-key"
WEBHOOK_SECRET = "abuse-benchmark-webhook-secret"
GOALS = {"max_gap_s": 0.5, "rss_growth_mb": 100.0}


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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


# --------------------------------------------------------------------------- walkers (own process)


async def walk(url: str, count: int, quiet_until: float, seconds: float) -> dict:
    """``count`` walkers until a line arrives on stdin (at most ``seconds``): the largest
    snapshot gap before ``quiet_until`` (unix time: the baseline) and after it."""
    from client import events as ev
    from client.core import ClientCore
    from client.transport import Transport

    gaps = [0.0, 0.0]
    last: dict[int, float] = {}
    started = time.monotonic()
    stopped = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    def on_event(i: int, event: ev.Event) -> None:
        if isinstance(event, ev.SnapshotReceived):
            now = time.monotonic()
            if i in last:
                period = 0 if time.time() < quiet_until else 1
                gaps[period] = max(gaps[period], now - last[i])
            last[i] = now
        elif isinstance(event, ev.Disconnected):
            last.pop(i, None)

    walkers = [Transport(ClientCore(f"Walker {i}", view=False, predict=False), url,
                         on_event=functools.partial(on_event, i)) for i in range(count)]
    tasks = [asyncio.create_task(w.run()) for w in walkers]
    for w in walkers:
        await w.wait_joined(20)
    begin = time.monotonic()
    while time.monotonic() - started < seconds and not stopped.done():
        t = time.monotonic() - begin
        for i, w in enumerate(walkers):  # circles: the direction changes all the time
            angle = t * 0.5 + i
            w.set_controls(math.cos(angle), math.sin(angle), angle, False)
        await asyncio.sleep(0.1)
    for w in walkers:
        await w.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"gaps": gaps}


# --------------------------------------------------------------------------- attackers


class Visitor:
    def __init__(self, ws, welcome: p.Welcome) -> None:
        self.ws, self.welcome = ws, welcome
        self.bank: VisitorClient | None = None

    @classmethod
    async def join(cls, url: str, name: str) -> Visitor:
        ws = await connect(url, compression=None, open_timeout=10)
        await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0)))
        while True:
            async with asyncio.timeout(10):
                data = await ws.recv()
            message = p.decode_server(data if isinstance(data, bytes) else data.encode())
            if isinstance(message, (p.Welcome, p.Refused)):
                break
        if isinstance(message, p.Refused):
            await ws.close()
            raise ConnectionRefusedError(message.code)
        return cls(ws, message)

    async def expect(self, kinds: tuple, timeout: float = 10.0, where=lambda m: True):
        async with asyncio.timeout(timeout):
            while True:
                message = p.decode_server(await self.ws.recv())
                if isinstance(message, kinds) and where(message):
                    return message

    async def link(self, bank_url: str) -> VisitorClient | None:
        """The visitor's own bank account, linked; None when the bank would not open one."""
        bank = self.bank = VisitorClient(bank_url, retries=0)
        try:
            await bank.open_account(self.welcome.display_name, "USD")
            proof = await bank.account_proof(self.welcome.visitor_id)
        except BankAPIError:
            return None
        await self.ws.send(p.encode(p.LinkAccount(proof.proof)))
        return bank if isinstance(await self.expect((p.AccountLinked, p.Error)), p.AccountLinked) else None

    async def close(self, bye: bool = True) -> None:
        with contextlib.suppress(ConnectionClosed):
            if bye:
                await self.ws.send(p.encode(p.Bye()))
            await self.ws.close()
        if self.bank is not None:
            await self.bank.aclose()


def catalogue(welcome: p.Welcome) -> list[tuple[str, str]]:
    return [(b["id"], pr["sku"]) for b in welcome.manifest["booths"] for pr in b["catalogue"]]


async def burst(url: str, bank_url: str, connections: int, orders: int) -> dict:
    """Many orders as fast as the sockets take them; every answer counted."""
    visitors = [await Visitor.join(url, f"Burst {i}") for i in range(connections)]
    linked = [v for v in visitors if await v.link(bank_url)]
    items = catalogue(visitors[0].welcome)
    answers: Counter[str] = Counter()
    per = orders // max(1, len(linked))

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
    return {"sent": per * len(linked), "sent_in_s": sent_in, "answers": dict(answers)}


async def hoard(url: str, bank_url: str, names: int, batch: int) -> dict:
    """Throwaway names: each joins, tries for an account, reserves what it may, leaves."""
    outcome: Counter[str] = Counter()
    most_held = [0]  # the most orders one hoarder got to hold at once

    async def one(i: int) -> None:
        try:
            v = await Visitor.join(url, f"Hoarder {i}")
        except (ConnectionRefusedError, OSError, TimeoutError) as refused:
            outcome[f"join_{refused}"] += 1
            return
        try:
            if not await v.link(bank_url):
                outcome["no_account"] += 1
                for k in range(3):  # try anyway: an order without a linked account
                    booth, sku = catalogue(v.welcome)[(i + k) % 20]
                    await v.ws.send(p.encode(p.Order(booth, sku, 1, f"h{i}-{k}")))
                    m = await v.expect((p.OrderStatus, p.Error))
                    outcome[m.status if isinstance(m, p.OrderStatus) else m.code] += 1
                return
            held = 0
            for k in range(5):  # more than the 3 allowed
                booth, sku = catalogue(v.welcome)[(i * 5 + k) % len(catalogue(v.welcome))]
                await v.ws.send(p.encode(p.Order(booth, sku, 1, f"h{i}-{k}")))
                m = await v.expect((p.OrderStatus, p.Error))
                outcome[m.status if isinstance(m, p.OrderStatus) else m.code] += 1
                held += isinstance(m, p.OrderStatus) and m.status == "pending_payment"
            most_held[0] = max(most_held[0], held)
        except (TimeoutError, OSError):
            outcome["unanswered"] += 1
        except ConnectionClosed:
            outcome["closed"] += 1
        finally:
            await v.close()

    for start_at in range(0, names, batch):
        await asyncio.gather(*(one(i) for i in range(start_at, min(names, start_at + batch))))
    return {**outcome, "most_held_by_one": most_held[0]}


async def vanish(url: str, count: int) -> int:
    """Sessions that join and drop their socket without a Bye."""
    joined = 0
    for i in range(count):
        try:
            v = await Visitor.join(url, f"Vanisher {i}")
        except (ConnectionRefusedError, OSError, TimeoutError):
            continue
        v.ws.transport.abort()  # no Bye, no close handshake: a crash
        joined += 1
    return joined


async def real_buyer(url: str, bank_url: str) -> dict:
    started = time.monotonic()
    for attempt in range(10):  # the bank may ask the address to wait (account opening limit)
        v = await Visitor.join(url, "Real Buyer")
        if (bank := await v.link(bank_url)) is not None:
            break
        await v.close()
        await asyncio.sleep(1.0 + attempt)
    else:
        return {"bought": False, "why": "no account"}
    await v.ws.send(p.encode(p.QueryStock(catalogue(v.welcome)[0][0])))
    for booth, sku in catalogue(v.welcome):
        await v.ws.send(p.encode(p.QueryStock(booth)))
        stock = await v.expect((p.Stock,))
        if dict(stock.items).get(sku, 0) <= 0:
            continue
        await v.ws.send(p.encode(p.Order(booth, sku, 1, "real-buy")))
        status = await v.expect((p.OrderStatus,), where=lambda m: m.key == "real-buy")
        if status.status != "pending_payment":
            continue
        try:
            await bank.confirm_intent(status.intent_id)
        except BankAPIError:
            await v.ws.send(p.encode(p.CancelOrder(status.order_id)))
            continue
        await v.ws.send(p.encode(p.OrderPaid(status.order_id)))
        receipt = await v.expect((p.Receipt,), timeout=15)
        await v.close()
        return {"bought": True, "sku": receipt.sku, "seconds": round(time.monotonic() - started, 2)}
    await v.close()
    return {"bought": False, "why": "nothing affordable in stock"}


async def real_visitor(url: str) -> dict:
    refused: Counter[str] = Counter()
    for _ in range(20):
        try:
            v = await Visitor.join(url, "Real Visitor")
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
    bank_url, url = f"http://127.0.0.1:{bank_port}", f"ws://127.0.0.1:{port}/"
    bank = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", str(tmp / "bank.sqlite3"),
                  "--platform-key", PLATFORM_KEY, "--webhook-secret", WEBHOOK_SECRET,
                  "--webhook-url", f"http://127.0.0.1:{webhook_port}/bank/webhook"],
                 f"{bank_url}/healthz", log=tmp / "bank.log")
    server = start([str(BIN / "expo-server"), "--port", str(port), "--bank-url", bank_url, "--webhook-port",
                    str(webhook_port), "--data-dir", str(tmp / "server"), "--no-watch",
                    "--max-clients", str(args.max_clients)],
                   f"http://127.0.0.1:{port}/healthz", env={"EXPO_BANK_PLATFORM_KEY": PLATFORM_KEY,
                                                            "EXPO_BANK_WEBHOOK_SECRET": WEBHOOK_SECRET},
                   log=tmp / "server.log")
    walkers = None
    try:
        rss_before = rss_mb(server.pid)
        quiet = 8.0
        total = quiet + args.attack_seconds
        walkers = subprocess.Popen(
            [sys.executable, __file__, "--walk", url, "--walkers", str(args.walkers), "--walk-seconds", str(total),
             "--quiet-until", str(time.time() + quiet + 2.0)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        await asyncio.sleep(quiet + 2.0)  # the walkers join and walk undisturbed: the baseline
        started = time.monotonic()
        results: dict[str, dict] = {
            "burst": await burst(url, bank_url, args.burst_connections, args.burst_orders),
            "hoard": await hoard(url, bank_url, args.hoarders, args.hoard_batch),
            "vanished": {"joined_and_dropped": await vanish(url, args.vanishers)},
        }
        rss_peak = rss_mb(server.pid)
        results["real_buyer"] = await real_buyer(url, bank_url)
        results["real_visitor"] = await real_visitor(url)
        attack_s = time.monotonic() - started
        out, _ = walkers.communicate("stop\n", timeout=60)
        gaps = json.loads(out.strip().splitlines()[-1])["gaps"]
        rss_after = rss_mb(server.pid)
        async with httpx.AsyncClient() as http:
            tick_p99, tick_worst = tick_bounds((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
    finally:
        if walkers is not None and walkers.poll() is None:
            walkers.kill()
        stop(server)
        stop(bank)
    baseline, attacked = gaps
    growth = max(rss_peak, rss_after) - rss_before
    rows = [
        ("walkers' largest snapshot gap, quiet (peer)", f"{baseline:.3f} s", "", ""),
        ("walkers' largest snapshot gap, under attack", f"{attacked:.3f} s", f"< {GOALS['max_gap_s']} s",
         attacked < GOALS["max_gap_s"]),
        ("  ratio attack / quiet", f"{attacked / baseline:.2f}" if baseline else "-", "", ""),
        ("server tick: 99 % / all within", f"{tick_p99 * 1000:g} / {tick_worst * 1000:g} ms", "", ""),
        ("server RSS growth", f"{growth:.1f} MB ({rss_before:.0f} -> {max(rss_peak, rss_after):.0f})",
         f"< {GOALS['rss_growth_mb']:.0f} MB", growth < GOALS["rss_growth_mb"]),
        (f"burst: {results['burst']['sent']} orders sent in", f"{results['burst']['sent_in_s']:.2f} s", "", ""),
        ("  answers", json.dumps(results["burst"]["answers"]), "every order answered",
         "unanswered" not in results["burst"]["answers"]),
        (f"hoarders: {args.hoarders} names", json.dumps(results["hoard"]), "", ""),
        (f"vanished sessions (cap {args.max_clients})", str(results["vanished"]["joined_and_dropped"]), "", ""),
        ("a real buyer buys", json.dumps(results["real_buyer"]), "bought", results["real_buyer"]["bought"]),
        ("a real visitor joins", json.dumps(results["real_visitor"]), "joined", results["real_visitor"]["joined"]),
        ("attack phases took", f"{attack_s:.1f} s", "", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':<40}  {'goal':<22}  ok")
    for name, value, goal, ok in rows:
        print(f"{name:<{width}}  {value:<40}  {goal:<22}  {'' if ok == '' else ('yes' if ok else 'NO')}")
    failed = [r[0] for r in rows if r[3] is False]
    if args.json:
        args.json.write_text(json.dumps({"results": results, "gaps": gaps, "rss": [rss_before, rss_peak, rss_after],
                                         "failed": failed}, indent=2))
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every count by this (e.g. 0.2 for a quick run)")
    ap.add_argument("--walkers", type=int, default=20)
    ap.add_argument("--burst-connections", type=int, default=10)
    ap.add_argument("--burst-orders", type=int, default=1000)
    ap.add_argument("--hoarders", type=int, default=500)
    ap.add_argument("--hoard-batch", type=int, default=25)
    ap.add_argument("--vanishers", type=int, default=50)
    ap.add_argument("--max-clients", type=int, default=100)
    ap.add_argument("--attack-seconds", type=float, default=300.0, help="the most the walkers walk after the quiet period")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--walk", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--walk-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    ap.add_argument("--quiet-until", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.walk:
        print(json.dumps(asyncio.run(walk(args.walk, args.walkers, args.quiet_until, args.walk_seconds))))
        return 0
    for name in ("burst_orders", "hoarders", "vanishers"):
        setattr(args, name, max(1, round(getattr(args, name) * args.scale)))
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
