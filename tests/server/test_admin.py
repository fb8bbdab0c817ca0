"""The console's window into the server: counts, crowd and tick alerts, announcements."""

from __future__ import annotations

import pytest

import protocol as p
from server.admin import Admin, TickWindow
from server.app import ExpoServer
from server.config import ServerConfig
from server.metrics import ServerMetrics
from server.moderation import Moderation
from server.simulation import Peer
from world import default_expo_path, load_expo


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def admin() -> Admin:
    server = ExpoServer(load_expo(default_expo_path()), ServerConfig(port=0, max_clients=64))  # not started: no sockets
    return Admin(server, Moderation(":memory:", Clock()), Clock())


def join(admin: Admin, name: str, hall: str, x: float, y: float) -> Peer:
    sim = admin.server.sim
    peer = Peer()
    sim.open_peer(peer)
    sim.on_frame(peer, p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0)))
    assert isinstance(p.decode_server(peer.outbox[0]), p.Welcome)
    slot = peer.session.slot
    sim.avatars.hall[slot], sim.avatars.pos[slot] = sim.hall_index[hall], (x, y)
    peer.outbox.clear()
    return peer


def test_counts_per_hall_and_booth_and_a_crowd_alert_over_the_threshold(admin: Admin):
    booth = admin.expo.booth("kz-altai-honey")
    centre = booth.footprint.centre
    for n in range(5):
        join(admin, f"at-booth-{n}", booth.hall, centre.x + 0.1 * n, centre.y)
    join(admin, "sailor", "maritime", 50, 30)
    census = admin.census()
    assert census.per_hall == {"silk-road": 5, "maritime": 1}
    assert census.per_booth["kz-altai-honey"] == 5 and sum(census.per_booth.values()) == 5
    assert [a.kind for a in admin.alerts(crowd_threshold=4, census=census)] == ["crowd"]
    assert "5 visitors within 10 m in Silk Road Hall" in admin.alerts(crowd_threshold=4)[0].message
    assert admin.alerts(crowd_threshold=5) == []


def test_the_tick_window_reads_the_p99_of_the_last_ticks_only():
    metrics, clock = ServerMetrics(), Clock()
    window = TickWindow(metrics.tick_seconds, clock, window=10.0)
    assert window.p99() == (None, 0)
    for _ in range(1000):
        metrics.tick_seconds.observe(0.004)
    assert window.p99() == (0.004, 1000)  # everything so far, from the first sample
    clock.now += 11
    window.p99()
    for _ in range(100):
        metrics.tick_seconds.observe(0.06)
    clock.now += 11
    assert window.p99() == (0.075, 100)  # the slow ticks of the last window, not diluted by the old fast ones


def test_an_announcement_reaches_one_hall_or_all_and_bad_ones_are_refused(admin: Admin):
    silk = join(admin, "Aru", "silk-road", 60, 10)
    sea = join(admin, "Bek", "maritime", 50, 10)
    assert admin.announce("Doors close at six", "maritime") == 1
    assert silk.outbox == [] and p.decode_server(sea.outbox.pop()).text == "Doors close at six"
    assert admin.announce("Keynote now", None) == 2
    for text, hall, error in (("  ", None, "needs some text"), ("x" * 281, None, "at most 280"), ("hi", "moon", "no hall")):
        with pytest.raises(ValueError, match=error):
            admin.announce(text, hall)
