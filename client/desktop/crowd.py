"""Extra visitors for previews and benchmarks: the colleague's headless bots (real
protocol clients) on an event loop in a thread, either gathering around a spot or
wandering, so a screenshot or an FPS figure has people in it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import random
import threading
import time

from client.bots.behaviours import wander
from client.bots.bot import Bot
from client.bots.stats import Recorder
from world.motion import RUN_SPEED

from .. import pathfind
from .nearby import portal_to

GATHER_TRIES = 5


class Crowd:
    def __init__(self, url: str, count: int, seed: int = 7, prefix: str = "guest",
                 colours: list[int] | None = None) -> None:
        self.url, self.count, self.seed, self.prefix = url, count, seed, prefix
        self.colours = colours
        self.bots: list[Bot] = []
        self.arrived = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="expo-crowd", daemon=True)
        self._tasks: list[asyncio.Future | concurrent.futures.Future] = []
        self._recorder = Recorder()  # what went wrong while joining, for the error

    def start(self, timeout: float = 30.0) -> None:
        """Connect every bot and wait until all have joined."""
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._join(), self._loop).result(timeout)
        except TimeoutError:
            joined = sum(bot.joined.is_set() for bot in self.bots)
            errors = ", ".join(f"{kind} x{n}" for kind, n in sorted(self._recorder.errors().items()))
            raise ConnectionError(f"only {joined} of {self.count} bots joined {self.url} within {timeout:.0f} s"
                                  + (f" ({errors})" if errors else "")
                                  + "; a server caps connections per address (--max-connections-per-address)") from None

    async def _join(self) -> None:
        recorder = self._recorder
        for i in range(self.count):
            rng = random.Random(f"{self.seed}:{i}")
            bot = Bot(i, f"{self.prefix}-{i}", self.url, rng, recorder, time.monotonic)
            if self.colours:
                bot.core.colour = self.colours[i % len(self.colours)]
            self.bots.append(bot)
            self._tasks.append(asyncio.ensure_future(bot.transport.run()))
        await asyncio.gather(*(bot.joined.wait() for bot in self.bots))

    def gather(self, hall: str, spots: list[tuple[float, float]], face: tuple[float, float],
               via: tuple[float, float] | None = None) -> None:
        """Send bot i to ``spots[i % len(spots)]`` in ``hall`` (through a portal if need be,
        then by ``via``, e.g. the front of a booth), then have it look towards ``face``."""
        async def go(bot: Bot, spot: tuple[float, float]) -> None:
            goal = via or spot
            for _ in range(GATHER_TRIES):  # held up, or through a portal it did not mean to take
                if bot.hall.id == hall and math.dist(bot.position, spot) < 1.0:
                    break
                if bot.hall.id != hall:
                    await bot.cross(portal_to(bot.expo, bot.hall.id, hall))  # around the booths, then in
                    continue
                way = pathfind.route(bot.expo, bot.hall, bot.position, goal) + ([spot] if via else [])
                for point in way:
                    before = bot.hall.id
                    await bot.walk_to(*point, run=True, timeout=5.0 + 2 * math.dist(bot.position, point) / RUN_SPEED)
                    if bot.hall.id != before:
                        break  # pushed through a portal by the crowd: route again from there
            bot.facing = math.atan2(face[1] - bot.position[1], face[0] - bot.position[0])
            self.arrived += 1
        for i, bot in enumerate(self.bots):
            self._tasks.append(asyncio.run_coroutine_threadsafe(go(bot, spots[i % len(spots)]), self._loop))

    def wander(self) -> None:
        """Keep every bot strolling to random points until ``stop``."""
        async def forever(bot: Bot) -> None:
            while True:
                await wander(bot)
        for bot in self.bots:
            self._tasks.append(asyncio.run_coroutine_threadsafe(forever(bot), self._loop))

    def stop(self) -> None:
        async def close() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*(bot.close() for bot in self.bots), return_exceptions=True)
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(15)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(5)
