"""The analytics cores, exactly: events, booth presence, aggregations, heatmaps."""

from __future__ import annotations

import numpy as np
import pytest
from support import small_expo

from server.analytics.aggregate import Funnel, all_booth_figures, booth_figures, percentile
from server.analytics.events import Event, EventKind, PositionSecond, unpack
from server.analytics.heatmap import PositionSampler, heatmap
from server.analytics.presence import BoothZones, PresenceTracker
from server.analytics.recorder import SampleBatch

K = EventKind
HOUR = 3600.0
DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % 86400  # a UTC midnight


# --------------------------------------------------------------------------- events


@pytest.mark.parametrize("kwargs, problem", [
    (dict(kind=K.BOOTH_LEFT), "dwell is given with booth_left"),
    (dict(kind=K.BOOTH_ENTERED, dwell=3.0), "dwell is given with booth_left"),
    (dict(kind=K.BOOTH_LEFT, dwell=-1.0), "non-negative"),
    (dict(kind=K.ORDER_PAID, sku="A", ref="o1"), "amount and currency"),
    (dict(kind=K.ORDER_PAID, sku="A", ref="o1", amount_minor=0, currency="KZT"), "positive"),
    (dict(kind=K.ORDER_PAID, sku="A", ref="o1", amount_minor=5, currency="kzt"), "ISO 4217"),
    (dict(kind=K.ORDER_PLACED, amount_minor=5, currency="KZT"), "sku and its order id"),
    (dict(kind=K.PRODUCT_VIEWED), "names its sku"),
    (dict(kind=K.CARD_EXCHANGED), "ref"),
    (dict(kind=K.BOOTH_ENTERED, visitor=""), "visitor must be"),
    (dict(kind=K.BOOTH_ENTERED, at=float("nan")), "UTC timestamp"),
    (dict(kind="booth_visited"), "unknown kind"),
])
def test_a_malformed_event_cannot_be_made_and_says_why(kwargs, problem):
    args = dict(at=10.0, visitor="v1", booth="b1") | kwargs
    with pytest.raises(ValueError, match=problem):
        Event(**args)


# --------------------------------------------------------------------------- presence

# kz-honey: footprint x 26..34, y 27..33 in hall "main" (index 0); open side south.


def walk(tracker: PresenceTracker, path, slot=0, hall=0):
    """Feed (time, x, y) points; all events in order."""
    out = []
    for t, x, y in path:
        out += tracker.update(t, np.array([slot]), np.array([[x, y]], dtype=float), np.array([hall]))
    return out


def test_a_walk_in_and_out_makes_one_passing_one_visit_and_its_exact_dwell():
    tracker = PresenceTracker(BoothZones.of(small_expo()), capacity=4)
    tracker.join(0, "v1")
    # from the south, 1 m a second: y=17 is 10 m off (passing), y=24 is 3 m off (entering)
    path = [(float(t), 30.0, 5.0 + t) for t in range(0, 26)]  # up to y=30, inside at t=19
    path += [(26.0 + t, 30.0, 30.0 - t) for t in range(0, 15)]  # back out: y=22.9.. 4 m off at y=23 (t=33)
    events = walk(tracker, path)
    kinds = [(e.kind, e.at) for e in events]
    assert kinds == [(K.BOOTH_PASSED, 12.0), (K.BOOTH_ENTERED, 19.0), (K.BOOTH_LEFT, 34.0)]
    assert events[-1].dwell == 15.0 and events[-1].booth == "kz-honey" and events[-1].hall == "main"
    assert all(e.visitor == "v1" for e in events)


def test_standing_on_the_line_is_one_visit_not_one_per_step():
    tracker = PresenceTracker(BoothZones.of(small_expo()), capacity=4)
    tracker.join(0, "v1")
    wobble = [(float(t), 30.0, 24.0 if t % 2 else 23.2) for t in range(0, 20)]  # 3.0 and 3.8 m off
    events = walk(tracker, wobble)
    assert [e.kind for e in events] == [K.BOOTH_PASSED, K.BOOTH_ENTERED]
    assert tracker.booth_of(0) == "kz-honey"


def test_leaving_the_expo_closes_the_visit_and_frees_the_slot():
    tracker = PresenceTracker(BoothZones.of(small_expo()), capacity=4)
    tracker.join(2, "v1")
    walk(tracker, [(5.0, 30.0, 30.0)], slot=2)
    (left,) = tracker.leave(2, 12.5)
    assert (left.kind, left.dwell, left.visitor) == (K.BOOTH_LEFT, 7.5, "v1")
    tracker.join(2, "v2")  # the slot is someone else's now: nothing of v1's visit carries over
    events = walk(tracker, [(20.0, 30.0, 30.0)], slot=2)
    assert [(e.kind, e.visitor) for e in events] == [(K.BOOTH_PASSED, "v2"), (K.BOOTH_ENTERED, "v2")]


def test_the_same_place_in_another_hall_is_not_the_booth():
    tracker = PresenceTracker(BoothZones.of(small_expo()), capacity=4)
    tracker.join(0, "v1")
    assert walk(tracker, [(1.0, 30.0, 30.0)], hall=1) == []


def test_many_avatars_at_once_each_get_their_own_events():
    tracker = PresenceTracker(BoothZones.of(small_expo()), capacity=8)
    for slot in range(5):
        tracker.join(slot, f"v{slot}")
    slots = np.arange(5)
    halls = np.zeros(5, dtype=int)
    inside = np.array([[30.0, 30.0], [27.0, 28.0], [90.0, 50.0], [30.0, 18.0], [33.0, 32.0]])
    events = tracker.update(1.0, slots, inside, halls)
    entered = sorted(e.visitor for e in events if e.kind is K.BOOTH_ENTERED)
    passed = sorted(e.visitor for e in events if e.kind is K.BOOTH_PASSED)
    assert entered == ["v0", "v1", "v4"] and passed == ["v0", "v1", "v3", "v4"]


# --------------------------------------------------------------------------- aggregations


def test_nearest_rank_percentiles():
    values = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 7.0, 6.0, 9.0, 8.0]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 90) == 9.0
    assert percentile([4.0], 90) == 4.0
    assert percentile([], 50) is None


def ev(at, kind, visitor, booth="b1", **kw):
    return Event(DAY0 + at, kind, visitor, booth, "main", **kw)


def test_booth_figures_from_a_known_log():
    log = [
        ev(9 * HOUR, K.BOOTH_PASSED, "a"), ev(9 * HOUR + 1, K.BOOTH_ENTERED, "a"),
        ev(9 * HOUR + 31, K.BOOTH_LEFT, "a", dwell=30.0),
        ev(9 * HOUR + 40, K.CATALOGUE_OPENED, "a"),  # opened after leaving: still a
        ev(9 * HOUR + 50, K.ORDER_PLACED, "a", sku="S", ref="o1", amount_minor=450000, currency="KZT"),
        ev(9 * HOUR + 60, K.ORDER_PAID, "a", sku="S", ref="o1", amount_minor=450000, currency="KZT"),
        ev(10 * HOUR, K.BOOTH_ENTERED, "a"), ev(10 * HOUR + 10, K.BOOTH_LEFT, "a", dwell=10.0),
        ev(10 * HOUR + 5, K.BOOTH_PASSED, "b"), ev(10 * HOUR + 6, K.BOOTH_ENTERED, "b"),
        ev(10 * HOUR + 66, K.BOOTH_LEFT, "b", dwell=60.0),
        ev(10 * HOUR + 70, K.CATALOGUE_OPENED, "b"),
        ev(10 * HOUR + 80, K.ORDER_PLACED, "b", sku="S", ref="o2", amount_minor=1250, currency="CNY"),
        ev(10 * HOUR + 81, K.ORDER_PAID, "b", sku="S", ref="o2", amount_minor=1250, currency="CNY"),
        ev(10 * HOUR + 90, K.BOOTH_PASSED, "c"),
        # d ordered from across the hall without walking in: ordered and paid, but the
        # funnel needs every stage before
        ev(11 * HOUR, K.ORDER_PLACED, "d", sku="S", ref="o3", amount_minor=50, currency="CNY"),
        ev(11 * HOUR, K.ORDER_PAID, "d", sku="S", ref="o3", amount_minor=50, currency="CNY"),
        ev(11 * HOUR, K.CARD_EXCHANGED, "b", ref="x1", other="staff"),
        ev(11 * HOUR, K.MEETING_BOOKED, "b", ref="m1", other="staff"),
        ev(11 * HOUR, K.QUOTE_REQUESTED, "d", sku="S", ref="po_1"),
        ev(9 * HOUR, K.BOOTH_ENTERED, "z", booth="b2"),  # another booth
    ]
    f = booth_figures(log, "b1")
    assert (f.visits, f.unique_visitors) == (3, 2)
    assert (f.dwell_p50, f.dwell_p90) == (30.0, 60.0)
    assert f.funnel == Funnel(passed=3, entered=2, opened_catalogue=2, ordered=2, paid=2)
    assert f.orders == 3
    assert f.revenue == (("CNY", 1300), ("KZT", 450000))
    assert (f.cards_exchanged, f.meetings_booked, f.quotes_requested) == (1, 1, 1)
    assert f.visits_by_hour[9] == 1 and f.visits_by_hour[10] == 2 and sum(f.visits_by_hour) == 3
    assert f.peak_hours == (10,)
    everyone = all_booth_figures(log)
    assert set(everyone) == {"b1", "b2"} and everyone["b2"].visits == 1
    assert everyone["b1"] == f


def test_a_booth_without_events_has_zero_figures_and_no_peak():
    f = booth_figures([], "quiet")
    assert (f.visits, f.unique_visitors, f.dwell_p50, f.peak_hours, f.revenue) == (0, 0, None, (), ())
    assert f.funnel == Funnel(0, 0, 0, 0, 0)


def test_tied_peak_hours_are_all_listed():
    log = [ev(h * HOUR, K.BOOTH_ENTERED, f"v{h}") for h in (8, 14)]
    assert booth_figures(log, "b1").peak_hours == (8, 14)


# --------------------------------------------------------------------------- heatmap


def test_heatmap_bins_visitor_seconds_into_the_right_cells():
    hall = small_expo().halls[0]  # 100 x 60 m
    xy = np.array([(30.2, 30.7)] * 10 + [(100.0, 60.0)] * 3)  # the far corner too
    hm = heatmap(xy, hall, cell=2.0)
    assert hm.counts.shape == (30, 50)
    assert hm.counts[15, 15] == 10 and hm.counts[29, 49] == 3 and hm.total == 13


def test_a_second_of_samples_is_a_row_per_hall_with_the_positions_bit_for_bit():
    rng = np.random.default_rng(5)
    pos = rng.uniform(0, 100, (1000, 2))
    pos[:3] = [(0.1 + 0.2, 2.0 - 1e-15), (5e-324, 99.99999999999999), (np.nextafter(2.0, 0), 60.0)]
    halls = rng.integers(0, 3, 1000)
    halls[halls == 1] = 2  # no visitor in the second hall: no row for it
    rows = SampleBatch(7.0, halls, pos).rows(("main", "annex", "roof"))
    assert [(r.at, r.hall, r.samples) for r in rows] == [(7.0, "main", (halls == 0).sum()), (7.0, "roof", (halls == 2).sum())]
    for row, hall in zip(rows, (0, 2)):
        assert unpack([row.xy]).tobytes() == pos[halls == hall].tobytes()
    assert PositionSecond.of(7.0, "main", pos[halls == 0]) == rows[0]


def test_heatmap_refuses_a_silly_cell_size():
    with pytest.raises(ValueError, match="cell size"):
        heatmap(np.zeros((0, 2)), small_expo().halls[0], cell=0)


def test_sampler_is_due_once_per_whole_second_whatever_the_ticks():
    sampler = PositionSampler()
    ticks = [100.0 + i * 0.05 for i in range(61)]  # 3 s of 20 Hz ticks
    due = [t for t in (sampler.due(now) for now in ticks) if t is not None]
    assert due == [100.0, 101.0, 102.0, 103.0]
