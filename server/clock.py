"""The server's clocks are the protocol's (``protocol.clock``): injected, so time-based rules
(rate limits, grace periods, expiry) test deterministically."""

from protocol.clock import Clock, ManualClock, SystemClock

__all__ = ["Clock", "ManualClock", "SystemClock"]
