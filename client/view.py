"""What this client knows of the other avatars: who is in view, their static data, their
current quantised state (exactly what the server last sent) and, optionally, a timeline
per avatar for interpolated drawing."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.messages import EntityInfo, EntityState

from .interpolation import Pose, Track, pose_of


class ViewError(Exception):
    """The server's frames do not add up (a delta for an avatar never entered, a second
    enter): a protocol violation the client reports instead of guessing."""


@dataclass(frozen=True, slots=True)
class RemotePose:
    """A remote avatar ready to draw."""

    info: EntityInfo
    pose: Pose


class WorldView:
    def __init__(self, interpolate: bool = True, track_capacity: int = 32) -> None:
        self.interpolate = interpolate
        self._track_capacity = track_capacity
        self.info: dict[int, EntityInfo] = {}
        self.state: dict[int, EntityState] = {}
        self.tracks: dict[int, Track] = {}
        self._fresh: list[int] = []  # entered; their first sample waits for the snapshot's time
        self.snapshot_time: float | None = None  # server time of the newest snapshot applied

    def __len__(self) -> int:
        return len(self.info)

    def clear(self) -> None:
        """A new connection starts from an empty view (the server re-sends Enter)."""
        self.info.clear()
        self.state.clear()
        self.tracks.clear()
        self._fresh.clear()
        self.snapshot_time = None

    def enter(self, entities: tuple[EntityInfo, ...]) -> None:
        for info in entities:
            if info.entity in self.info:
                raise ViewError(f"entity {info.entity} entered twice")
            self.info[info.entity] = info
            self.state[info.entity] = info.state
            if self.interpolate:
                self.tracks[info.entity] = Track(self._track_capacity)
                self._fresh.append(info.entity)

    def leave(self, entities: tuple[int, ...] | list[int]) -> None:
        for entity in entities:
            if self.info.pop(entity, None) is None:
                raise ViewError(f"entity {entity} left but never entered")
            del self.state[entity]
            self.tracks.pop(entity, None)

    def apply(self, server_time: float, deltas: tuple[int, ...] | list[int]) -> int:
        """Apply a snapshot's flat ``gap, dx, dy, dyaw, motion`` deltas (the entity is the
        previous one's plus ``gap``, from 0: protocol 4); returns how many avatars changed."""
        previous = self.snapshot_time
        state = self.state
        tracks = self.tracks if self.interpolate else None
        if tracks is not None:
            for entity in self._fresh:
                if entity in tracks:
                    tracks[entity].push(server_time, state[entity], None)
            self._fresh.clear()
        entity = 0
        for i in range(0, len(deltas), 5):
            entity += deltas[i]
            old = state.get(entity)
            if old is None:
                raise ViewError(f"a delta for entity {entity}, which is not in view")
            new = EntityState(old.x + deltas[i + 1], old.y + deltas[i + 2], (old.yaw + deltas[i + 3]) % 65536, deltas[i + 4])
            state[entity] = new
            if tracks is not None:
                tracks[entity].push(server_time, new, previous)
        self.snapshot_time = server_time
        return len(deltas) // 5

    def poses(self, render_time: float, max_extrapolation: float) -> list[RemotePose]:
        """Every avatar in view at ``render_time`` (server clock), interpolated."""
        newest = self.snapshot_time if self.snapshot_time is not None else render_time
        out = []
        for entity, info in self.info.items():
            track = self.tracks.get(entity)
            if track is not None and track.samples:
                pose = track.sample(render_time, newest, max_extrapolation)
            else:
                pose = pose_of(self.state[entity])
            out.append(RemotePose(info, pose))
        return out
