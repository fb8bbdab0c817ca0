"""Avatars as a struct of numpy arrays, addressed by slot, with a free list.

Entity ids are handed out once per process and never reused, so a client never mistakes
a newcomer for someone who left; slots are reused, and ``entity[slot]`` tells them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocol.quantise import quantise_position, quantise_yaw


@dataclass(slots=True)
class AvatarInfo:
    """The static part of an avatar, sent once in Enter messages."""

    entity: int
    name: str
    colour: int
    style: int
    staff_of: str | None

    def wire_prefix(self) -> list:
        return [self.entity, self.name, self.colour, self.style, self.staff_of]


class AvatarTable:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.active = np.zeros(capacity, dtype=bool)
        self.entity = np.full(capacity, -1, dtype=np.int64)
        self.hall = np.zeros(capacity, dtype=np.int16)
        self.pos = np.zeros((capacity, 2), dtype=np.float64)
        self.yaw = np.zeros(capacity, dtype=np.float64)
        self.motion = np.zeros(capacity, dtype=np.int8)
        self.portal_ready_at = np.zeros(capacity, dtype=np.float64)
        self.info: list[AvatarInfo | None] = [None] * capacity
        self._free = list(range(capacity - 1, -1, -1))
        self._next_entity = 1

    def __len__(self) -> int:
        return self.capacity - len(self._free)

    @property
    def full(self) -> bool:
        return not self._free

    def add(self, name: str, colour: int, style: int, staff_of: str | None, hall: int, x: float, y: float, yaw: float) -> int:
        slot = self._free.pop()
        entity = self._next_entity
        self._next_entity += 1
        self.active[slot] = True
        self.entity[slot] = entity
        self.hall[slot] = hall
        self.pos[slot] = (x, y)
        self.yaw[slot] = yaw
        self.motion[slot] = 0
        self.portal_ready_at[slot] = 0.0
        self.info[slot] = AvatarInfo(entity, name, colour, style, staff_of)
        return slot

    def remove(self, slot: int) -> None:
        assert self.active[slot], f"slot {slot} is not in use"
        self.active[slot] = False
        self.entity[slot] = -1
        self.info[slot] = None
        self._free.append(slot)

    def quantised(self) -> np.ndarray:
        """(capacity, 4) int32: x cm, y cm, yaw steps, motion: what the wire carries."""
        q = np.empty((self.capacity, 4), dtype=np.int32)
        q[:, 0:2] = quantise_position(self.pos)
        q[:, 2] = quantise_yaw(self.yaw)
        q[:, 3] = self.motion
        return q
