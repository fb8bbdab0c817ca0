"""Per-visitor rate limits, one token bucket per message type: nothing a visitor may send
for free can be sent without bound (orders, queries, links, reports, cards...). Inputs are
bounded by the input rules (seq, hold, backlog) and chat by its own bucket; every other
type has a rate here, or the default one. The frame limits (server.config frame_rate,
flood_rate) still bound a connection as a whole."""

from __future__ import annotations

from dataclasses import dataclass

import protocol as p

from .clock import Clock
from .ratelimit import TokenBucket


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    burst: float


DEFAULT_RATE = Rate(2.0, 10.0)
RATES: dict[int, Rate | None] = {
    p.Input.TYPE: None,  # bounded by the input rules
    p.Chat.TYPE: None,  # its own bucket (chat_rate, chat_burst)
    p.DirectMessage.TYPE: None,  # the chat bucket too
    p.Hello.TYPE: None,  # once per connection
    p.Bye.TYPE: None,
    p.Ping.TYPE: Rate(2.0, 5.0),  # clients ping every 1.5 s
    p.Order.TYPE: Rate(2.0, 10.0),
    p.OrderPaid.TYPE: Rate(2.0, 10.0),
    p.CancelOrder.TYPE: Rate(2.0, 10.0),
    p.QueryStock.TYPE: Rate(4.0, 10.0),
    p.QueryInventory.TYPE: Rate(1.0, 5.0),
    p.LinkAccount.TYPE: Rate(0.2, 3.0),
    p.Report.TYPE: Rate(0.1, 3.0),
}


class RequestLimits:
    """One visitor's buckets, made on first use of each type."""

    __slots__ = ("_clock", "_buckets")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[int, TokenBucket] = {}

    def allow(self, message_type: int) -> bool:
        rate = RATES.get(message_type, DEFAULT_RATE)
        if rate is None:
            return True
        bucket = self._buckets.get(message_type)
        if bucket is None:
            bucket = self._buckets[message_type] = TokenBucket(rate.per_second, rate.burst, self._clock)
        return bucket.take()
