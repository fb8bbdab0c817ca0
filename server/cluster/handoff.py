"""A visitor on its way from one hall process to another, sans I/O.

The process that should take the visitor has a seat reserved for it (a pending seat, whose
token is the one-use ``Transfer.token``); this record, kept in NATS KV under that token
(``expo_transfers``, TTL the seat's), tells the taking process where the avatar arrives and
which process to ask to let go of it. Until the taker asks, the giver keeps the avatar:
nobody is lost (a visitor whose transfer fails goes back and is where it was) or doubled
(the new avatar is made only after the old one is gone).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from .directory import InstanceRecord


@dataclass(frozen=True, slots=True)
class HandOff:
    token: str  # the pending seat's token, also Transfer.token
    instance: InstanceRecord  # where the seat is
    x: float  # where the avatar arrives in the instance's hall
    y: float
    yaw: float
    visitor: str  # the visitor id the seat is for ("" for a first visit that has none yet)
    source: str  # the process that keeps the avatar until asked ("" when there is none: a Transfer at Hello)
    session: str  # its session id there ("" likewise)
    expires_at: float  # wall clock: the seat's expiry

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> HandOff:
        raw = json.loads(data)
        raw["instance"] = InstanceRecord(**raw["instance"])
        return cls(**raw)

    def usable_by(self, visitor: str | None, now: float) -> bool:
        """Whether a Hello proving ``visitor`` (None: no token) may take this seat now."""
        return now < self.expires_at and (not self.visitor or self.visitor == visitor)


@dataclass(frozen=True, slots=True)
class Release:
    """The taker's request to the giver (``expo.process.<giver>.handoff``): let go of the
    avatar of ``session``, now that its seat ``token`` is taken."""
    session: str
    visitor: str
    token: str

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Release:
        return cls(**json.loads(data))


def release_subject(process: str) -> str:
    return f"expo.process.{process}.handoff"
