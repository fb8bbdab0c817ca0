"""Delta encoding of snapshots against what each client was last sent, for all clients at once.

The table holds one row per (observer slot, target entity) pair that was last sent to the
observer, with the quantised state it was sent. Each tick ``diff`` compares it with the
visible pairs of the observers that can take a snapshot now: pairs new to an observer are
enters, pairs gone are leaves, pairs in both give deltas when their state changed. Observers
that cannot take a snapshot (slow readers) keep their rows, so their next delta is against
what they really have; TCP is ordered, so last-sent is a valid base.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocol.quantise import wrap_yaw_delta

_SHIFT = np.int64(32)


def _sorted_member(keys: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """For each of ``keys``, whether the sorted array ``sorted_set`` holds it."""
    if len(sorted_set) == 0:
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, keys), len(sorted_set) - 1)
    return sorted_set[at] == keys


def _keys(observers: np.ndarray, entities: np.ndarray) -> np.ndarray:
    return (observers.astype(np.int64) << _SHIFT) | entities.astype(np.int64)


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    """Per-tick changes, each array sorted by observer; ``*_offsets`` index it by observer
    slot (rows for slot s are ``[offsets[s], offsets[s+1])``)."""

    enter_targets: np.ndarray  # target slots entering each observer's view
    enter_offsets: np.ndarray
    leave_entities: np.ndarray  # entity ids leaving each observer's view
    leave_offsets: np.ndarray
    deltas: np.ndarray  # (k, 5) int64 rows: entity, dx, dy, dyaw, motion
    delta_offsets: np.ndarray


class SentTable:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.keys = np.zeros(0, dtype=np.int64)  # sorted
        self.states = np.zeros((0, 4), dtype=np.int32)

    def forget_observer(self, slot: int) -> None:
        """The observer's client changed (left or resumed): it has been sent nothing."""
        lo, hi = np.searchsorted(self.keys, [np.int64(slot) << _SHIFT, np.int64(slot + 1) << _SHIFT])
        if hi > lo:
            self.keys = np.delete(self.keys, np.s_[lo:hi])
            self.states = np.delete(self.states, np.s_[lo:hi], axis=0)

    def diff(
        self,
        observers: np.ndarray,
        targets: np.ndarray,
        entity: np.ndarray,
        quantised: np.ndarray,
        sending: np.ndarray,
    ) -> SnapshotDiff:
        """Compare visible pairs (observer slot, target slot) with what was sent, for the
        observers where ``sending[slot]``; record the result as sent."""
        take = sending[observers]
        observers, targets = observers[take], targets[take]
        new_keys = _keys(observers, entity[targets])
        order = np.argsort(new_keys, kind="stable")
        new_keys, targets, observers = new_keys[order], targets[order], observers[order]
        new_states = quantised[targets]

        old_observer = (self.keys >> _SHIFT).astype(np.int64)
        old_sending = sending[old_observer] if len(old_observer) else np.zeros(0, dtype=bool)
        old_keys, old_states = self.keys[old_sending], self.states[old_sending]

        in_old = _sorted_member(new_keys, old_keys)
        in_new = _sorted_member(old_keys, new_keys)
        # both sorted with the same key set where they overlap: rows align one to one
        common_new = np.flatnonzero(in_old)
        delta = new_states[common_new].astype(np.int64) - old_states[in_new]
        delta[:, 2] = wrap_yaw_delta(delta[:, 2])
        delta[:, 3] = new_states[common_new, 3]  # motion is sent as is, not as a difference
        changed = np.any(delta[:, :3] != 0, axis=1) | (new_states[common_new, 3] != old_states[in_new][:, 3])
        rows = common_new[changed]
        deltas = np.empty((len(rows), 5), dtype=np.int64)
        deltas[:, 0] = new_keys[rows] & 0xFFFFFFFF
        deltas[:, 1:] = delta[changed]

        entered = ~in_old
        left = ~in_new
        slots = np.arange(self.capacity + 1)
        diff = SnapshotDiff(
            enter_targets=targets[entered],
            enter_offsets=np.searchsorted(observers[entered], slots),
            leave_entities=(old_keys[left] & 0xFFFFFFFF),
            leave_offsets=np.searchsorted(old_keys[left] >> _SHIFT, slots),
            deltas=deltas,
            delta_offsets=np.searchsorted(new_keys[rows] >> _SHIFT, slots),
        )

        kept = ~old_sending
        if kept.any():
            keys = np.concatenate([self.keys[kept], new_keys])
            states = np.concatenate([self.states[kept], new_states])
            order = np.argsort(keys, kind="stable")
            self.keys, self.states = keys[order], states[order]
        else:
            self.keys, self.states = new_keys, new_states
        return diff
