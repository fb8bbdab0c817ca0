"""What the organiser's live view shows of one simulation (every avatar's place, their
names, visitors per hall, per booth and per crowd square), and the sum of several: in a
cluster the console's process adds the frames the other hall processes publish
(``server.cluster.live``), so the map and the counts are the whole expo's, not one process's.

Pure functions of the simulation's arrays and of the frames; the console asks every second.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .simulation import Simulation

CROWD_CELL = 10.0  # metres: alerts count avatars per square of this side

Entity = int | str  # this process's entity id, or "<process>:<entity>" for another process's avatar


@dataclass(frozen=True, slots=True)
class Census:
    per_hall: dict[str, int]
    per_booth: dict[str, int]
    cells: list[tuple[str, int, int, int]]  # (hall, cell x, cell y, visitors) of every occupied crowd square


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """One process's live view: per hall ``[entity, x dm, y dm, staff?]`` of every avatar,
    their names, and the census."""

    positions: dict[str, list[list[Any]]]
    names: dict[Entity, str]
    census: Census


def positions(sim: Simulation) -> dict[str, list[list[Any]]]:
    """Per hall, ``[entity, x dm, y dm, staff?]`` for every avatar: the live map's frame,
    small enough to send several times a second."""
    av, halls = sim.avatars, [hall.id for hall in sim.expo.halls]
    live = np.flatnonzero(av.active)
    out: dict[str, list[list[Any]]] = {hall: [] for hall in halls}
    xy = np.round(av.pos[live] * 10).astype(np.int64).tolist()
    for slot, (x, y) in zip(live.tolist(), xy, strict=True):
        info = av.info[slot]
        assert info is not None  # every active slot has its avatar's info
        out[halls[int(av.hall[slot])]].append([info.entity, x, y, 1 if info.staff_of else 0])
    return out


def names(sim: Simulation) -> dict[Entity, str]:
    return {info.entity: info.name for info in sim.avatars.info if info is not None}


def census(sim: Simulation) -> Census:
    """Visitors per hall, per booth and per crowd square, counted with numpy."""
    expo, av = sim.expo, sim.avatars
    live = np.flatnonzero(av.active)
    halls = av.hall[live].astype(np.int64)
    at = sim.booths_of(live)
    per_hall = np.bincount(halls, minlength=len(expo.halls))
    per_booth = np.bincount(at[at >= 0], minlength=len(expo.booths))
    cx = (av.pos[live, 0] // CROWD_CELL).astype(np.int64)
    cy = (av.pos[live, 1] // CROWD_CELL).astype(np.int64)
    cells, counts = np.unique(np.stack([halls, cx, cy], axis=1), axis=0, return_counts=True) if len(live) else ((), ())
    return Census(
        {hall.id: int(n) for hall, n in zip(expo.halls, per_hall.tolist(), strict=True)},
        {booth.id: int(n) for booth, n in zip(expo.booths, per_booth.tolist(), strict=True)},
        [(expo.halls[int(h)].id, int(x), int(y), int(n))
         for (h, x, y), n in zip(np.asarray(cells).tolist(), np.asarray(counts).tolist(), strict=True)],
    )


def frame(sim: Simulation) -> LiveFrame:
    return LiveFrame(positions(sim), names(sim), census(sim))


def merged(own: LiveFrame, others: Iterable[tuple[str, LiveFrame]]) -> LiveFrame:
    """``own`` plus each other process's frame, their entities named ``"<process>:<entity>"``
    (each process numbers its own avatars), the counts added up (``merged_census``)."""
    others = list(others)
    halls = {hall: list(rows) for hall, rows in own.positions.items()}
    who: dict[Entity, str] = dict(own.names)
    for process, other in others:
        for hall, rows in other.positions.items():
            halls.setdefault(hall, []).extend([f"{process}:{e}", x, y, staff] for e, x, y, staff in rows)
        who.update({f"{process}:{e}": name for e, name in other.names.items()})
    return LiveFrame(halls, who, merged_census(own.census, [other.census for _, other in others]))


def merged_census(own: Census, others: Iterable[Census]) -> Census:
    """The counts of several processes added up, a crowd square's too: twenty at one process and
    twenty-five at another in the same square of the same hall is a crowd."""
    per_hall, per_booth = Counter(own.per_hall), Counter(own.per_booth)
    cells = Counter({(h, x, y): n for h, x, y, n in own.cells})
    for other in others:
        per_hall.update(other.per_hall)
        per_booth.update(other.per_booth)
        cells.update({(h, x, y): n for h, x, y, n in other.cells})
    return Census(dict(per_hall), dict(per_booth), sorted((h, x, y, n) for (h, x, y), n in cells.items()))
