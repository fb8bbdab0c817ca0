"""``client.pathfind``: ``route`` goes straight on when nothing is in the way (no search), around
the booths when a row of them stands between (a bot's walk from a booth to a portal);
``entrance`` is the way in, on the open side, for the bots and the desktop client alike."""

from __future__ import annotations

import dataclasses

from client_link import default_expo

from client.pathfind import _clear_line, entrance, obstacles, route
from world.model import FACING_NORMALS, Facing
from world.motion import booth_walls

AVATAR = 0.35  # the avatar's radius (protocol/README: the position is kept this far from a wall)


def test_a_clear_line_is_walked_as_it_is_and_a_blocked_one_around_the_booths():
    expo = default_expo()
    maritime = next(h for h in expo.halls if h.id == "maritime")
    walls = obstacles(expo, maritime)
    portal = (maritime.portals[0].position.x, maritime.portals[0].position.y)
    assert route(expo, maritime, (6.0, 22.5), portal) == [portal]  # in the aisle beside it
    start = (12.0, 11.5)  # in front of the booth at x 8-16, y 13-19, which stands between
    assert not _clear_line(walls, maritime, start, portal)
    legs = route(expo, maritime, start, portal)
    assert len(legs) > 1 and legs[-1] == portal
    # no leg passes through a wall (the grid's diagonal steps may shave the planner's wider clearance)
    real = [(x0 - AVATAR, y0 - AVATAR, x1 + AVATAR, y1 + AVATAR) for b in expo.booths_in(maritime.id)
            for x0, y0, x1, y1 in booth_walls(b.footprint.min_x, b.footprint.min_y, b.footprint.max_x,
                                              b.footprint.max_y, b.facing)]
    assert all(_clear_line(real, maritime, a, b) for a, b in zip([start, *legs], legs))


def test_the_entrance_is_beyond_the_open_side_and_inside_on_the_way_in():
    first = default_expo().booths[0]
    for booth in [dataclasses.replace(first, facing=facing) for facing in Facing]:
        fp, (fx, fy) = booth.footprint, FACING_NORMALS[booth.facing]
        out_x, out_y = entrance(booth, 1.5)
        in_x, in_y = entrance(booth, -1.0)
        # 1.5 m beyond the open side's middle, along its normal; 1 m inside
        edge = (fp.centre.x + fx * fp.width / 2, fp.centre.y + fy * fp.depth / 2)
        assert (out_x - edge[0], out_y - edge[1]) == (fx * 1.5, fy * 1.5)
        assert fp.min_x < in_x < fp.max_x and fp.min_y < in_y < fp.max_y
        assert not (fp.min_x <= out_x <= fp.max_x and fp.min_y <= out_y <= fp.max_y)
