"""The hall as a map: booths as rectangles in their colours, portals, you and the people in
view as dots. Pure: metres in the hall to a panel's units (x right, z up, north up), so the
minimap (always there, small) and the full map (M, with names) are the same arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from world.model import Expo, Hall


@dataclass(frozen=True, slots=True)
class MapBooth:
    booth_id: str
    label: str  # the exhibitor; the country code on the minimap
    rect: tuple[float, float, float, float]  # left, right, bottom, top in panel units
    colour: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class MapFrame:
    """Metres to panel units for one hall in a panel ``width`` wide."""

    hall: Hall
    width: float

    @property
    def scale(self) -> float:
        return self.width / self.hall.width

    @property
    def height(self) -> float:
        return self.hall.depth * self.scale

    def point(self, x: float, y: float) -> tuple[float, float]:
        """A hall point in the panel (origin at its bottom-left corner), clamped inside."""
        x = min(max(x, 0.0), self.hall.width)
        y = min(max(y, 0.0), self.hall.depth)
        return x * self.scale, y * self.scale

    def points(self, places: list[tuple[float, float]]) -> np.ndarray:
        """``point`` for many at once: (n, 2), each row a place's x, y in the panel."""
        xy = np.asarray(places, dtype=np.float64).reshape(-1, 2)
        return np.clip(xy, 0.0, (self.hall.width, self.hall.depth)) * self.scale

    def booths(self, expo: Expo, names: bool) -> list[MapBooth]:
        out = []
        for booth in expo.booths_in(self.hall.id):
            fp = booth.footprint
            (left, bottom), (right, top) = self.point(fp.min_x, fp.min_y), self.point(fp.max_x, fp.max_y)
            out.append(MapBooth(booth.id, booth.exhibitor if names else booth.country, (left, right, bottom, top),
                                booth.primary.as_floats()))
        return out
