"""The link's timing as the client measures it from Ping/Pong: the round-trip time and the
server's clock (its offset from the client's). It is not a clock: it reads none, it is told
the times (``protocol.clock``'s monotonic readings) and estimates.

Each Pong gives one sample: the round-trip time, and an offset (server minus client clock)
assuming the reply took half the round trip. Samples with a long round trip were delayed
on one leg or the other and say little about the offset, so the offset comes from the
sample with the smallest round trip among the recent ones (the NTP clock filter idea);
the round-trip time itself is smoothed with an EWMA and a mean deviation (as TCP does).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClockSample:
    rtt: float
    offset: float  # server clock minus client clock, seconds


class LinkTiming:
    def __init__(self, window: int = 16, alpha: float = 0.125, beta: float = 0.25) -> None:
        self._samples: deque[ClockSample] = deque(maxlen=window)
        self._alpha = alpha
        self._beta = beta
        self._best: ClockSample | None = None
        self._rough_offset: float | None = None
        self.rtt: float | None = None  # smoothed round-trip time, seconds
        self.rtt_deviation: float = 0.0
        self.last_rtt: float | None = None

    def rough(self, server_time: float, client_time: float) -> None:
        """A one-way reading (e.g. Welcome.server_time on arrival): an offset good to a
        round trip, used only until the first Pong."""
        self._rough_offset = server_time - client_time

    def pong(self, sent_at: float, server_time: float, received_at: float) -> ClockSample:
        """Record a Pong for a Ping sent at ``sent_at`` (client clock) and received now."""
        rtt = max(0.0, received_at - sent_at)
        sample = ClockSample(rtt, server_time - (sent_at + received_at) / 2)
        self._samples.append(sample)
        self._best = min(self._samples, key=lambda s: s.rtt)
        self.last_rtt = rtt
        if self.rtt is None:
            self.rtt, self.rtt_deviation = rtt, rtt / 2
        else:
            self.rtt_deviation += self._beta * (abs(rtt - self.rtt) - self.rtt_deviation)
            self.rtt += self._alpha * (rtt - self.rtt)
        return sample

    @property
    def synced(self) -> bool:
        return self._best is not None

    @property
    def offset(self) -> float | None:
        """Server clock minus client clock: the min-RTT sample's, else the rough reading."""
        return self._best.offset if self._best is not None else self._rough_offset

    def server_time(self, client_time: float) -> float | None:
        offset = self.offset
        return None if offset is None else client_time + offset
