"""A booth's figures, computed from the event log alone (so they can always be recomputed).

Definitions, so that every number can be checked by hand:
- visits: BOOTH_ENTERED events; unique visitors: distinct visitors among them.
- dwell p50/p90: nearest-rank percentiles of the dwell of finished visits (BOOTH_LEFT): the
  smallest dwell d such that at least p % of visits lasted d or less. None without visits.
- funnel: distinct visitors at each stage, each stage counting only visitors who also
  reached every stage before it (a visitor who ordered from the catalogue without walking
  in, from across the hall, counts as passing and ordering but not entering).
- revenue: the sum of ORDER_PAID amounts per currency, in minor units.
- visits by hour: visits per UTC hour of day (0..23) of their BOOTH_ENTERED; peak hours are
  the hours with the most visits (ties all listed), none without visits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from .events import Event, EventKind

FUNNEL_STAGES: tuple[tuple[str, EventKind], ...] = (
    ("passed", EventKind.BOOTH_PASSED),
    ("entered", EventKind.BOOTH_ENTERED),
    ("opened_catalogue", EventKind.CATALOGUE_OPENED),
    ("ordered", EventKind.ORDER_PLACED),
    ("paid", EventKind.ORDER_PAID),
)


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile, p in (0, 100]."""
    assert 0 < p <= 100, p
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@dataclass(frozen=True, slots=True)
class Funnel:
    passed: int
    entered: int
    opened_catalogue: int
    ordered: int
    paid: int

    def as_tuple(self) -> tuple[int, ...]:
        return (self.passed, self.entered, self.opened_catalogue, self.ordered, self.paid)


@dataclass(frozen=True, slots=True)
class BoothFigures:
    booth: str
    visits: int
    unique_visitors: int
    dwell_p50: float | None
    dwell_p90: float | None
    funnel: Funnel
    orders: int
    revenue: tuple[tuple[str, int], ...]  # (currency, minor units), by currency
    cards_exchanged: int
    meetings_booked: int
    quotes_requested: int
    visits_by_hour: tuple[int, ...]  # 24 counts, UTC
    peak_hours: tuple[int, ...]

    def __post_init__(self) -> None:
        f = self.funnel.as_tuple()
        assert all(a >= b for a, b in zip(f, f[1:])), f"funnel widens: {f}"
        assert self.unique_visitors <= self.visits == sum(self.visits_by_hour)


def booth_figures(events: Iterable[Event], booth: str) -> BoothFigures:
    """The figures of one booth from any iterable of events (others' events are skipped)."""
    return all_booth_figures(events, booths=(booth,))[booth]


def all_booth_figures(events: Iterable[Event], booths: Iterable[str] = ()) -> dict[str, BoothFigures]:
    """Figures for exactly ``booths`` (with or without events), or, when none are named,
    for every booth that has an event."""
    wanted = set(booths)
    stage_visitors: dict[str, dict[EventKind, set[str]]] = defaultdict(lambda: defaultdict(set))
    visits: dict[str, int] = defaultdict(int)
    dwells: dict[str, list[float]] = defaultdict(list)
    hours: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    revenue: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    counts: dict[str, dict[EventKind, int]] = defaultdict(lambda: defaultdict(int))
    for e in events:
        if wanted and e.booth not in wanted:
            continue
        stage_visitors[e.booth][e.kind].add(e.visitor)
        counts[e.booth][e.kind] += 1
        if e.kind is EventKind.BOOTH_ENTERED:
            visits[e.booth] += 1
            hours[e.booth][int(e.at // 3600) % 24] += 1
        elif e.kind is EventKind.BOOTH_LEFT:
            assert e.dwell is not None  # Event.problem() holds for every event
            dwells[e.booth].append(e.dwell)
        elif e.kind is EventKind.ORDER_PAID:
            assert e.currency is not None and e.amount_minor is not None
            revenue[e.booth][e.currency] += e.amount_minor
    result = {}
    for booth in sorted(set(stage_visitors) | wanted):
        stages = stage_visitors[booth]
        reached: set[str] | None = None
        funnel = []
        for _, kind in FUNNEL_STAGES:
            reached = set(stages[kind]) if reached is None else reached & stages[kind]
            funnel.append(len(reached))
        by_hour = tuple(hours[booth])
        top = max(by_hour)
        result[booth] = BoothFigures(
            booth=booth,
            visits=visits[booth],
            unique_visitors=len(stages[EventKind.BOOTH_ENTERED]),
            dwell_p50=percentile(dwells[booth], 50),
            dwell_p90=percentile(dwells[booth], 90),
            funnel=Funnel(*funnel),
            orders=counts[booth][EventKind.ORDER_PLACED],
            revenue=tuple(sorted(revenue[booth].items())),
            cards_exchanged=counts[booth][EventKind.CARD_EXCHANGED],
            meetings_booked=counts[booth][EventKind.MEETING_BOOKED],
            quotes_requested=counts[booth][EventKind.QUOTE_REQUESTED],
            visits_by_hour=by_hour,
            peak_hours=tuple(h for h, n in enumerate(by_hour) if n == top) if top else (),
        )
    return result
