"""Name tags in a crowd: nearest first and opaque, fading with distance, never overlapping."""

from __future__ import annotations

from client.desktop.nametags import MAX_PIXELS, MAX_ROWS, TagPlace, TagSpot, arrange

PPU = 360 / 0.7  # a 720-pixel-high window with a 70-degree field of view, roughly


def tag(entity: int, right: float, forward: float, up: float = 0.0, own: bool = False) -> TagSpot:
    return TagSpot(entity, right, forward, up, 1.2, 0.26, own)


def boxes(spots: list[TagSpot], places: list[TagPlace]) -> list[tuple[float, float, float, float]]:
    by_id = {s.entity: s for s in spots}
    out = []
    for p in places:
        s = by_id[p.entity]
        k = PPU / s.forward
        w, h = s.width * k * p.scale, s.height * k * p.scale
        y = (s.up + p.lift) * k
        out.append((s.right * k - w / 2, y - h / 2, s.right * k + w / 2, y + h / 2))
    return out


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_near_tags_are_opaque_far_ones_fade_and_past_the_reach_none_is_drawn() -> None:
    spots = [tag(1, -3.0, 4.0), tag(2, 0.0, 12.0), tag(3, 3.0, 16.0), tag(4, 6.0, 30.0)]
    places = {p.entity: p for p in arrange(spots, 18.0, PPU)}
    assert places[1].alpha == 1.0
    assert 0.0 < places[3].alpha < places[2].alpha < 1.0
    assert 4 not in places


def test_a_crowd_in_one_spot_stacks_a_few_rows_and_culls_the_rest_nearest_first() -> None:
    crowd = [tag(i, 0.05 * (i % 3), 6.0 + 0.3 * i) for i in range(12)]
    places = arrange(crowd, 18.0, PPU)
    assert [p.entity for p in places] == [0, 1, 2]  # the nearest three, one above the other
    assert [p.row for p in places] == list(range(MAX_ROWS + 1))
    assert places[0].lift == 0.0 < places[1].lift < places[2].lift
    drawn = boxes(crowd, places)
    assert not any(overlap(a, b) for i, a in enumerate(drawn) for b in drawn[i + 1:])


def test_people_apart_keep_their_tags_in_place() -> None:
    spots = [tag(i, -6.0 + 3.0 * i, 8.0) for i in range(5)]
    places = arrange(spots, 18.0, PPU)
    assert len(places) == 5 and all(p.row == 0 for p in places)


def test_two_walking_side_by_side_do_not_swap_rows_every_step() -> None:
    spots = [tag(1, 0.0, 6.0), tag(2, 0.1, 6.5)]
    first = {p.entity: p.row for p in arrange(spots, 18.0, PPU)}
    assert first == {1: 0, 2: 1}
    # the second person steps a little nearer than the first: the rows stay as they were
    spots = [tag(1, 0.0, 6.4), tag(2, 0.1, 6.2)]
    assert {p.entity: p.row for p in arrange(spots, 18.0, PPU, {1})} == first
    # and once clearly nearer, the nearer one takes the place
    spots = [tag(1, 0.0, 8.0), tag(2, 0.1, 6.2)]
    assert {p.entity: p.row for p in arrange(spots, 18.0, PPU, {1})} == {2: 0, 1: 1}


def test_our_own_tag_comes_first_and_a_tag_at_the_lens_is_scaled_down_not_filling_the_view() -> None:
    spots = [tag(1, 0.0, 0.9), tag(2, 0.0, 5.0, own=True), tag(3, 0.0, -2.0)]
    places = {p.entity: p for p in arrange(spots, 18.0, PPU)}
    assert 3 not in places  # behind the camera
    assert places[2].row == 0
    close = places[1]
    assert close.scale < 1.0 and 0.26 * PPU / 0.9 * close.scale <= MAX_PIXELS + 1e-6


def test_tags_too_small_to_read_are_not_drawn() -> None:
    assert arrange([tag(1, 0.0, 30.0)], 60.0, 200.0) == []
