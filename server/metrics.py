"""Prometheus metrics of one server, in a registry of its own so tests can run many servers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# tick durations in seconds: fine steps up to the 50 ms budget of a 20 Hz tick
TICK_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02,
    0.025, 0.03, 0.035, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
)


class ServerMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.clients = Gauge("expo_clients", "Connected visitors", registry=r)
        self.avatars = Gauge("expo_avatars", "Avatars in the halls, including ones awaiting resume", registry=r)
        self.tick_seconds = Histogram("expo_tick_seconds", "Time to compute one tick and write its frames", buckets=TICK_BUCKETS, registry=r)
        self.tick_lag_seconds = Gauge("expo_tick_lag_seconds", "How late the last tick started", registry=r)
        self.bytes_out = Counter("expo_bytes_out", "Bytes queued to clients", registry=r)
        self.frames_out = Counter("expo_frames_out", "Frames queued to clients", registry=r)
        self.frames_in = Counter("expo_frames_in", "Frames received from clients", registry=r)
        self.bytes_in = Counter("expo_bytes_in", "Bytes received from clients", registry=r)
        self.skipped_snapshots = Counter("expo_skipped_snapshots", "Snapshots skipped for clients with a full send buffer", registry=r)
        self.slow_drops = Counter("expo_slow_client_drops", "Clients dropped because they stopped reading", registry=r)
        self.rejected = Counter("expo_rejected_frames", "Inbound frames rejected, by error code", ["code"], registry=r)
        self.joins = Counter("expo_joins", "Visitors who joined", registry=r)
        self.resumes = Counter("expo_resumes", "Sessions resumed after a lost connection", registry=r)
        self.leaves = Counter("expo_leaves", "Avatars removed, by reason", ["reason"], registry=r)
        self.chat_lines = Counter("expo_chat_lines", "Chat lines delivered, by channel", ["channel"], registry=r)
        self.portal_hops = Counter("expo_portal_hops", "Avatars moved between halls", registry=r)
        self.orders = Counter("expo_orders", "Orders by final status", ["status"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
