"""Many bots on one event loop: spawned at a steady rate, running weighted behaviours until
the deadline, then leaving politely (Bye). One process runs one swarm; the CLI starts as
many processes as asked and merges their recorders."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol import CLIENT_MESSAGES

from ..transport import InputSchedule
from .behaviours import BEHAVIOURS, staff
from .bot import Bot
from .stats import Recorder


@dataclass(frozen=True, slots=True)
class SwarmConfig:
    url: str
    indices: tuple[int, ...]  # the global indices of this process's bots
    spawn_rate: float  # bots per second, for this process
    duration: float  # seconds from the start, ramp included
    seed: int
    mix: dict[str, float] = field(default_factory=lambda: {"wander": 1.0})
    name_prefix: str = "bot"
    warmup: float = 0.0  # seconds from the start during which latency samples are not kept
    join_timeout: float = 15.0
    run_id: str = ""  # tells this run's order keys from another run's with the same seed
    staff: tuple[tuple[str, str], ...] = ()  # (booth, staff pass): a staff bot each, besides the visitors


@dataclass(frozen=True, slots=True)
class Progress:
    """A running total, sent to the parent every second or two."""

    elapsed: float
    spawned: int
    connected: int
    frames_in: int
    bytes_in: int
    frames_out: int
    bytes_out: int
    errors: int
    settled: int
    failed: int


def bot_rng(seed: int, index: int) -> random.Random:
    """Each bot's own stream, a function of the run's seed and the bot's index only, so a
    run is reproducible however its bots are split across processes."""
    return random.Random(f"{seed}:{index}")


def bot_name(prefix: str, seed: int, index: int) -> str:
    return f"{prefix}-{seed % 100000}-{index}"[:24]


class Swarm:
    def __init__(self, config: SwarmConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.recorder = Recorder()
        self.bots: list[Bot] = []
        self.inputs = InputSchedule()  # one timer for every bot's inputs, not a task each
        self._tasks: list[asyncio.Task] = []
        self._started = 0.0

    async def run(self, on_progress: Callable[[Progress], None] | None = None, every: float = 1.0) -> Recorder:
        cfg = self.config
        _dump_tasks_on_signal()
        self._started = self.clock()
        deadline = self._started + cfg.duration
        reporter = asyncio.create_task(self._report(on_progress, every)) if on_progress else None
        warmup = asyncio.create_task(self._warm_up(cfg.warmup)) if cfg.warmup > 0 else None
        try:
            for n, (booth_id, staff_pass) in enumerate(cfg.staff):
                self._spawn(-1 - n, staff_pass, booth_id)
            for n, index in enumerate(cfg.indices):
                due = self._started + n / cfg.spawn_rate
                if due >= deadline:
                    break
                await asyncio.sleep(max(0.0, due - self.clock()))
                self._spawn(index)
            # The swarm is built. The garbage collector's full passes over its long-lived
            # objects stalled every bot for 150-250 ms at 750 bots (a delivery p99 of 180 ms
            # instead of 40): from here on they are left out of them.
            gc.collect()
            gc.freeze()
            await asyncio.sleep(max(0.0, deadline - self.clock()))
        finally:
            if warmup is not None:
                warmup.cancel()
            await self._stop()
            if on_progress is not None and reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
                on_progress(self.progress())
        return self.recorder

    async def _warm_up(self, seconds: float) -> None:
        self.recorder.enabled = False
        await asyncio.sleep(seconds)
        self.recorder.enabled = True
        for bot in self.bots:
            if bot.meter is not None:
                bot.start_meter()

    def _spawn(self, index: int, staff_pass: str | None = None, staff_of: str | None = None) -> None:
        """A visitor bot, or (``staff_of``, negative index) a booth's staff bot."""
        cfg = self.config
        rng = bot_rng(cfg.seed, index)
        name = f"staff-{staff_of}"[:24] if staff_of else bot_name(cfg.name_prefix, cfg.seed, index)
        bot = Bot(index, name, cfg.url, rng, self.recorder, self.clock, self.inputs, cfg.run_id, staff_pass)
        self.bots.append(bot)
        self._tasks.append(asyncio.create_task(bot.transport.run(), name=f"bot-{index}-net"))
        self._tasks.append(asyncio.create_task(self._live(bot, staff_of), name=f"bot-{index}-live"))

    async def _live(self, bot: Bot, staff_of: str | None = None) -> None:
        """Pick behaviours by weight, forever (until cancelled at the deadline); a staff bot
        keeps its booth instead."""
        names = list(self.config.mix)
        weights = [self.config.mix[n] for n in names]
        try:
            # not wait_for: on Python 3.11 it swallows a cancel that meets the join (the
            # last bots joining at the deadline then walked on, and the swarm's stop waited)
            async with asyncio.timeout(self.config.join_timeout):
                await bot.joined.wait()
        except TimeoutError:
            self.recorder.count("bots.failed")
            self.recorder.error("join_timeout")
            return
        while True:
            await bot.joined.wait()
            name = "staff" if staff_of is not None else bot.rng.choices(names, weights)[0]
            self.recorder.count(f"behaviour.{name}")
            try:
                await (BEHAVIOURS[name](bot) if staff_of is None else staff(bot, staff_of))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bot's bug must not end the run; it is counted
                if bot.joined.is_set():
                    self.recorder.error(f"bot_{type(exc).__name__}")
                await asyncio.sleep(0.5)

    async def _stop(self) -> None:
        live = [t for t in self._tasks if t.get_name().endswith("-live")]
        for task in live:
            task.cancel()
        await asyncio.gather(*live, return_exceptions=True)
        await self._count_the_lost()
        await asyncio.gather(*(bot.close() for bot in self.bots), return_exceptions=True)
        nets = [t for t in self._tasks if t.get_name().endswith("-net")]
        done, pending = await asyncio.wait(nets, timeout=5) if nets else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*nets, return_exceptions=True)
        for bot in self.bots:
            for type_code, n in bot.transport.traffic.sent_by_type.items():
                self.recorder.count(f"out.{CLIENT_MESSAGES[type_code].__name__}", n)

    async def _count_the_lost(self, grace: float = 5.0) -> None:
        """At the end, every bot that joined should still have its live connection, as one
        visitor: one caught in a hand-off at the deadline is given ``grace`` seconds to land.
        Those still without one are ``bots.unconnected``; a bot that came out of a crossing as
        another visitor is an error (a visitor lost and another made)."""
        joined = [bot for bot in self.bots if bot.visitor_ids]
        waiting = [bot.joined.wait() for bot in joined if not bot.joined.is_set()]
        if waiting:
            await asyncio.wait([asyncio.ensure_future(w) for w in waiting], timeout=grace)
        self.recorder.count("bots.unconnected", sum(not bot.joined.is_set() for bot in joined))
        for bot in joined:
            if len(bot.visitor_ids) > 1:
                self.recorder.error("identity_changed")

    def progress(self) -> Progress:
        frames_in = bytes_in = frames_out = bytes_out = connected = 0
        for bot in self.bots:
            t = bot.transport.traffic
            frames_in += t.frames_in
            bytes_in += t.bytes_in
            frames_out += t.frames_out
            bytes_out += t.bytes_out
            connected += bot.joined.is_set()
        rec = self.recorder
        failed = sum(v for k, v in rec.counts.items() if k.startswith("purchases.failed"))
        return Progress(self.clock() - self._started, len(self.bots), connected, frames_in, bytes_in, frames_out,
                        bytes_out, sum(rec.errors().values()), rec.counts["purchases.settled"], failed)

    async def _report(self, on_progress: Callable[[Progress], None], every: float) -> None:
        while True:
            await asyncio.sleep(every)
            on_progress(self.progress())


def _dump_tasks_on_signal() -> None:
    """``kill -USR1 <pid>`` prints where every task of a stuck swarm waits."""
    import signal
    import sys

    def dump() -> None:
        for task in asyncio.all_tasks():
            print(f"{task!r}", file=sys.stderr)
            # a suspended task's own stack is its outer coroutine only: follow what it awaits
            awaited: object = task.get_coro()
            for _ in range(12):
                frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
                if frame is None:
                    print(f"    awaiting {awaited!r}"[:300], file=sys.stderr)
                    break
                print(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}", file=sys.stderr)
                awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
                if awaited is None:
                    break

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)
