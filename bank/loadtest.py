"""A load test of a running bank: ``python -m bank.loadtest --url http://127.0.0.1:8766 --key KEY``
(or ``python bank/loadtest.py ...``). ``benchmarks/bank.py`` runs it against a scratch bank and
a raw SQLite loop in the same run.

Opens visitor accounts and has the platform create intents (with the Python client, not timed),
then measures two operations from many clients at once: confirmed payments (a visitor confirms
an intent) and escrow cycles (a buyer holds a deposit, the platform posts it), with per-call
latency percentiles. The timed calls go over plain HTTP/1.1 keep-alive connections, one per
client, on uvloop: the Python client (httpx and pydantic) costs about as much CPU per call as
the bank itself, and on a small machine the load generator would otherwise measure mostly
itself. Each visitor reads its account once before the timed calls, as the expo's client does
on joining. It
changes the target bank's data, so point it at a scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a file: make the repository importable, not bank/ itself
    sys.path[:] = [str(Path(__file__).resolve().parents[1])] + [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from bank.client import PlatformClient, VisitorClient  # noqa: E402

T = TypeVar("T")


class LoadTestError(RuntimeError):
    """The bank answered a timed call with something other than success."""


class Connection:
    """One keep-alive HTTP/1.1 connection that sends bank POSTs and reads JSON answers.

    A plain asyncio protocol, one request at a time (no pipelining: a real client waits for each
    answer): the request's fixed part is made once per connection, and each answer is parsed
    (status line, ``Content-Length``, the JSON body) and checked for success as it arrives, with
    no stream reader in between. On two cores the load generator's CPU is taken from the bank's."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._fixed = f" HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: ".encode()
        self._open: tuple[asyncio.Transport, _Answers] | None = None

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._open is None:
            self._open = await asyncio.get_running_loop().create_connection(_Answers, self.host, self.port)
        transport, answers = self._open
        payload = json.dumps(body).encode() if body else b"{}"
        answer = answers.expect()
        transport.write(b"POST " + path.encode() + self._fixed + uuid.uuid4().hex.encode()
                        + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(payload)).encode()
                        + b"\r\n\r\n" + payload)
        status, content = await answer
        if status >= 300:
            raise LoadTestError(f"POST {path}: {status} {content}")
        return content

    async def close(self) -> None:
        if self._open is not None:
            self._open[0].close()
            await self._open[1].closed


class _Answers(asyncio.Protocol):
    """The client side of one connection: resolves the awaited answer's future with (status, JSON)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._answer: asyncio.Future[tuple[int, Any]] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def expect(self) -> asyncio.Future[tuple[int, Any]]:
        """The next answer, before its request is sent."""
        assert self._answer is None, "one request at a time"
        self._answer = asyncio.get_running_loop().create_future()
        return self._answer

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._answer is None:
            return
        status_line, *headers = self._buffer[:end].split(b"\r\n")
        length = next((int(value) for name, _, value in (h.partition(b":") for h in headers)
                       if name.strip().lower() == b"content-length"), None)
        if length is None:
            self._fail(LoadTestError(f"an answer without Content-Length: {status_line!r}"))
            return
        if len(self._buffer) < end + 4 + length:
            return  # the body is still coming
        body, self._buffer = self._buffer[end + 4:end + 4 + length], self._buffer[end + 4 + length:]
        answer, self._answer = self._answer, None
        try:
            answer.set_result((int(status_line.split(b" ", 2)[1]), json.loads(body)))
        except ValueError as exc:
            answer.set_exception(LoadTestError(f"an answer that is not JSON: {body[:200]!r} ({exc})"))

    def _fail(self, exc: BaseException) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(LoadTestError(f"the bank closed the connection: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop where it is installed (as the bank's own server runs): the
    generator's loop then costs less CPU per call, which on a small machine is the bank's CPU."""
    try:
        import uvloop
    except ImportError:  # Windows
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def percentiles(samples: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": q[49] * 1000, "p90_ms": q[89] * 1000, "p99_ms": q[98] * 1000}


async def run(url: str, key: str, clients: int, per_client: int, *, currency: str = "MYR",
              escrow: bool = True, cpu_seconds: Callable[[], float] | None = None) -> dict[str, Any]:
    """Payments (and, with ``escrow``, escrow cycles) per second from ``clients`` clients at once.

    With ``cpu_seconds`` (the bank process's CPU time so far), also the bank's CPU per timed call:
    on a shared machine the rate moves with the load, the CPU a call costs much less. The load
    generator's own CPU per timed call is always given (``client_cpu_ms``: this process's)."""
    platform = PlatformClient(url, key, timeout=30)
    people = [VisitorClient(url, timeout=30) for _ in range(clients)]
    try:
        merchant = await platform.create_merchant(f"load-test merchant {currency}", currency,
                                                  reference=f"loadtest-{currency}")
        for n, v in enumerate(people):
            await v.open_account(f"load {n}", "MYR")
            await v.me()  # as a visitor's client does on joining: the bank knows the token from then on
        intents = [[(await platform.create_intent(merchant.id, 100, currency)).id for _ in range(per_client)]
                   for _ in people]
        tokens = [v.token for v in people]
    finally:
        for c in (platform, *people):
            await c.aclose()
    visitors = [Connection(url, t or "") for t in tokens]
    platforms = [Connection(url, key) for _ in tokens]  # the world server keeps several connections too
    try:
        pay_latency: list[float] = []

        async def pay(v: Connection, ids: list[str]) -> None:
            for intent_id in ids:
                t = time.perf_counter()
                await v.post(f"/v1/payment_intents/{intent_id}/confirm")
                pay_latency.append(time.perf_counter() - t)

        cpu0 = cpu_seconds() if cpu_seconds else 0.0
        own0 = time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*(pay(v, ids) for v, ids in zip(visitors, intents, strict=True)))
        pay_seconds = time.perf_counter() - t0
        n = clients * per_client
        result: dict[str, Any] = {"payments": n, "payments_per_s": n / pay_seconds, "confirm": percentiles(pay_latency),
                                  "payment_client_cpu_ms": (time.process_time() - own0) * 1000 / n}
        if cpu_seconds:
            result["payment_cpu_ms"] = (cpu_seconds() - cpu0) * 1000 / n
        if not escrow:
            return result
        hold_latency: list[float] = []
        post_latency: list[float] = []

        async def cycle(v: Connection, p: Connection, c: int) -> None:
            for i in range(per_client):
                t = time.perf_counter()
                held = await v.post("/v1/escrows", {"payee_account_id": merchant.id, "amount": 100,
                                                    "currency": currency, "end_to_end_id": f"PO-{c}-{i}"})
                t1 = time.perf_counter()
                await p.post(f"/v1/escrows/{held['id']}/post")
                hold_latency.append(t1 - t)
                post_latency.append(time.perf_counter() - t1)

        cpu0 = cpu_seconds() if cpu_seconds else 0.0
        own0 = time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*(cycle(v, p, c) for c, (v, p) in enumerate(zip(visitors, platforms, strict=True))))
        escrow_seconds = time.perf_counter() - t0
        result["escrow_client_cpu_ms_per_call"] = (time.process_time() - own0) * 1000 / (2 * n)
        if cpu_seconds:
            result["escrow_cpu_ms_per_call"] = (cpu_seconds() - cpu0) * 1000 / (2 * n)
        return {**result, "escrow_cycles": n, "escrow_cycles_per_s": n / escrow_seconds,
                "hold": percentiles(hold_latency), "post": percentiles(post_latency)}
    finally:
        for conn in (*visitors, *platforms):
            await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bank.loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8766")
    parser.add_argument("--key", required=True, help="the bank's platform key")
    parser.add_argument("--visitors", type=int, default=20, help="clients at once")
    parser.add_argument("--per-visitor", type=int, default=25, help="payments (and escrow cycles) each")
    parser.add_argument("--currency", default="KZT", help="the merchant's currency (MYR: the visitors' own, no FX)")
    parser.add_argument("--no-escrow", action="store_true", help="confirm payments only")
    args = parser.parse_args(argv)
    result = run_loop(run(args.url, args.key, args.visitors, args.per_visitor, currency=args.currency,
                          escrow=not args.no_escrow))
    c = result["confirm"]
    print(f"{result['payments']} payments confirmed, {result['payments_per_s']:.1f}/s, "
          f"confirm p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms")
    if "escrow_cycles" in result:
        h, p = result["hold"], result["post"]
        print(f"{result['escrow_cycles']} escrow cycles, {result['escrow_cycles_per_s']:.1f}/s, "
              f"hold p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, post p50 {p['p50_ms']:.1f} ms, "
              f"p99 {p['p99_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
