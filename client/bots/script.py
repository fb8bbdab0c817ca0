"""Scripted bots: each told exactly where to walk, how long to stay and what to do, so that a
run's booth analytics can be predicted and checked (``expo-bots --script FILE``).

A script is JSON::

    {"bots": [{"name": "walker-1",
               "steps": [["walk", 26, 16.5], ["stay", 6], ["catalogue", "cn-yunnan-tea"],
                         ["view", "cn-yunnan-tea", "CN-PUER-357"], ["buy", "cn-yunnan-tea", "CN-PUER-357"],
                         ["walk", 26, 5]]}]}

Steps: ``walk x y`` (metres in the bot's hall, at walking pace), ``stay seconds`` (stand
still), ``catalogue booth`` (QueryStock), ``view booth sku`` (ViewProduct), ``buy booth
sku`` (order one, pay at the bank, wait for the receipt). The bots run at once, each
through its steps, then leave (Bye). A step that cannot be done is counted as an error.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import events as ev
from ..core import ClientCore
from .behaviours import open_catalogue, purchase
from .bot import Bot
from .stats import Recorder

STEP_ARGS: dict[str, tuple[type, ...]] = {
    "walk": (float, float), "stay": (float,), "catalogue": (str,), "view": (str, str), "buy": (str, str),
}
WALK_TIMEOUT = 60.0


class TrackedBot(Bot):
    """A bot that keeps where the server said it was at every snapshot: (server_time,
    hall, x, y), so a run can be checked against the positions the server itself held."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.track: list[tuple[float, int, float, float]] = []

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.SnapshotReceived) and self.core.own is not None:
            x, y = self.position
            self.track.append((event.server_time, self.own.hall, x, y))
        super()._on_event(event)


@dataclass(frozen=True, slots=True)
class ScriptedBot:
    name: str
    steps: tuple[tuple[Any, ...], ...]


class ScriptError(ValueError):
    pass


def parse_script(text: str) -> list[ScriptedBot]:
    """The bots of a script, or ScriptError saying which bot and step is wrong and why."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScriptError(f"the script is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("bots"), list) or not data["bots"]:
        raise ScriptError('a script is {"bots": [{"name": ..., "steps": [...]}, ...]} with at least one bot')
    bots, names = [], set()
    for i, entry in enumerate(data["bots"], 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("steps"), list):
            raise ScriptError(f"bot {i}: needs a name (text) and steps (a list)")
        name = entry["name"]
        if name.casefold() in names:
            raise ScriptError(f"bot {i}: the name {name!r} is used twice")
        names.add(name.casefold())
        steps = []
        for j, step in enumerate(entry["steps"], 1):
            where = f"bot {name!r} step {j}"
            if not isinstance(step, list) or not step or step[0] not in STEP_ARGS:
                raise ScriptError(f"{where}: a step is [kind, args...] with kind one of {', '.join(STEP_ARGS)}")
            kinds = STEP_ARGS[step[0]]
            args = step[1:]
            if len(args) != len(kinds) or not all(
                isinstance(a, k) or (k is float and isinstance(a, int) and not isinstance(a, bool)) for a, k in zip(args, kinds)
            ):
                raise ScriptError(f"{where}: {step[0]} takes {len(kinds)} argument(s): "
                                  f"{', '.join('number' if k is float else 'text' for k in kinds)}")
            if step[0] == "stay" and not 0 <= args[0] <= 3600:
                raise ScriptError(f"{where}: stay takes 0 to 3600 seconds")
            steps.append((step[0], *(float(a) if k is float else a for a, k in zip(args, kinds))))
        bots.append(ScriptedBot(name, tuple(steps)))
    return bots


async def run_script(url: str, bots: list[ScriptedBot], recorder: Recorder,
                     clock: Callable[[], float] = time.monotonic,
                     join_timeout: float = 15.0) -> dict[str, list[tuple[float, int, float, float]]]:
    """Run every scripted bot at once against ``url``; what they measured goes to
    ``recorder``; returns each bot's track (see TrackedBot)."""
    players = [TrackedBot(i, b.name, url, random.Random(i), recorder, clock, run_id=f"script-{time.time_ns()}")
               for i, b in enumerate(bots)]
    nets = [asyncio.create_task(p.transport.run(), name=f"script-{i}-net") for i, p in enumerate(players)]
    try:
        await asyncio.gather(*(_play(p, b.steps, join_timeout) for p, b in zip(players, bots)))
    finally:
        await asyncio.gather(*(p.close() for p in players), return_exceptions=True)
        await asyncio.wait(nets, timeout=5)
        for task in nets:
            task.cancel()
    return {p.core.name: p.track for p in players}


def _view(core: ClientCore, booth: str, sku: str) -> None:
    core.view_product(booth, sku)


async def _play(bot: Bot, steps: tuple[tuple[Any, ...], ...], join_timeout: float) -> None:
    try:
        async with asyncio.timeout(join_timeout):  # not wait_for: see Swarm._live
            await bot.joined.wait()
    except TimeoutError:
        bot.recorder.error("join_timeout")
        return
    for kind, *args in steps:
        bot.recorder.count(f"script.{kind}")
        if kind == "walk":
            if not await bot.walk_to(args[0], args[1], timeout=WALK_TIMEOUT):
                bot.recorder.error("script_walk_failed")
        elif kind == "stay":
            await asyncio.sleep(args[0])
        elif kind == "catalogue":
            booth = bot.expo.booth(args[0])
            if booth is None or await open_catalogue(bot, booth) is None:
                bot.recorder.error("script_catalogue_failed")
        elif kind == "view":
            await bot.transport.command(functools.partial(_view, booth=str(args[0]), sku=str(args[1])))
        elif kind == "buy":
            booth = bot.expo.booth(args[0])
            bank_url = bot.core.welcome.bank_url if bot.core.welcome else None
            if booth is None or not bank_url or not await purchase(bot, bank_url, booth, args[1]):
                bot.recorder.error("script_buy_failed")
