"""The desktop client's pure parts, without Panda3D: geometry, the purchase flow, the
wallet file, chat, steering, money."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import stat
from decimal import Decimal

import numpy as np
import pytest
from client_link import default_expo

import protocol as p
from client.desktop import chat, settings
from client.desktop.atlas import WHITE, pack
from client.desktop.figure import avatar_mesh, figure_parts, limb_pivots, swing
from client.desktop.layout import HALL_WALL_HEIGHT, HallBuilder, Label, booth_front, booth_view, hall_assets, spawn_view
from client.desktop.mesh import MeshBuilder
from client.desktop.nearby import Route, booth_at, route, spots_near
from client.desktop.pricing import QuoteKey, Quotes, money
from client.desktop.shop import Busy, Checkout, ConfirmPayment, Refresh, SendCancel, SendOrder, SendOrderPaid, Stage
from client.desktop.steering import Autopilot, FollowCamera, Keys, steer
from client.desktop.ui import (
    CATALOGUE_WIDTH,
    CHAT_WIDTH,
    TOAST_PAD,
    TOAST_TEXT,
    TOAST_WRAP,
    BottomRow,
    ToastRoom,
    bottom_row,
    toast_room,
)
from client.desktop.wallet import BankCredential, Wallet
from client.pathfind import entrance
from world.model import Expo
from world.motion import AVATAR_RADIUS, PORTAL_COOLDOWN, HallGeometry, booth_walls, portal_hops, step


def _face_normals(mesh) -> np.ndarray:
    a, b, c = (mesh.positions[mesh.triangles[:, i]] for i in range(3))
    return np.cross(b - a, c - a)


def _winding_agrees(mesh) -> float:
    """Share of triangles whose winding points the same way as their vertex normals."""
    face = _face_normals(mesh)
    vertex = mesh.normals[mesh.triangles].sum(axis=1)
    area = np.linalg.norm(face, axis=1) > 1e-9
    return float(np.mean(np.einsum("ij,ij->i", face[area], vertex[area]) > 0))


def test_every_primitive_faces_outwards():
    m = MeshBuilder()
    m.box((0, 0, 0), (1, 2, 3), (1, 0, 0, 1), bottom=True)
    m.cylinder((5, 0, 0), 0.5, 1.0, (0, 1, 0, 1))
    m.cone((8, 0, 0), 0.5, 1.0, (0, 0, 1, 1))
    m.sphere((10, 0, 1), 0.5, (1, 1, 0, 1), squash=0.6)
    m.arch((14, 0, 0), 2.0, 0.2, (0.0, 1.0), (0, 1, 1, 1))
    m.disc((20, 0, 0), 1.0, (1, 1, 1, 1))
    m.annulus((24, 0, 0), 0.5, 1.0, (1, 1, 1, 1))
    m.sign((30, 0, 1), 2.0, 1.0, (1.0, 0.0), (1, 1, 1, 1))
    mesh = m.build()
    assert _winding_agrees(mesh) == 1.0  # back-face culling would hide anything else
    assert mesh.triangles.max() < mesh.vertex_count


def test_a_sign_is_readable_from_where_it_faces():
    m = MeshBuilder()
    m.sign((0, 0, 1), 4.0, 1.0, (0.0, -1.0), (1, 1, 1, 1), uv=(0, 0, 1, 1))
    mesh = m.build()
    assert np.allclose(mesh.normals, [0, -1, 0])
    # u grows to the right of a viewer standing south and looking north: +x
    left, right = mesh.positions[mesh.uvs[:, 0] == 0], mesh.positions[mesh.uvs[:, 0] == 1]
    assert left[:, 0].max() < right[:, 0].min()


def test_a_mesh_splits_into_its_textured_and_its_plain_triangles():
    white = (0.25, 0.75)
    m = MeshBuilder(white)
    m.box((0, 0, 0), (1, 1, 1), (1, 0, 0, 1))  # plain: every corner at the white texel
    m.sign((3, 0, 1), 2.0, 1.0, (0.0, -1.0), (1, 1, 1, 1), uv=(0, 0, 0.5, 0.5))
    m.cylinder((6, 0, 0), 0.5, 1.0, (0, 1, 0, 1))
    mesh = m.build()
    signs, plain = mesh.split_plain(white)
    assert len(signs.triangles) + len(plain.triangles) == len(mesh.triangles)
    assert np.allclose(plain.uvs, white) and not np.allclose(signs.uvs, white)
    assert signs.triangles.max() < signs.vertex_count and plain.triangles.max() < plain.vertex_count

    def corners(part):  # each triangle as its three corners' positions
        return sorted(map(tuple, part.positions[part.triangles].reshape(-1, 9).round(5).tolist()))
    assert sorted(corners(signs) + corners(plain)) == corners(mesh)
    assert _winding_agrees(plain) == 1.0 and _winding_agrees(signs) == 1.0


def test_the_floor_drawn_without_its_texture_has_its_grout_where_the_texture_puts_it():
    from client.desktop.layout import FLOOR_TILE, GROUT

    expo = default_expo()
    hall = expo.halls[0]
    grout = HallBuilder(expo, hall, {}, (0.0, 0.0)).build().grout
    lo, hi = grout.bounds()
    assert lo[0] >= 0 and lo[1] >= 0 and hi[0] <= hall.width and hi[1] <= hall.depth and 0 < lo[2] == hi[2] < 0.01
    quads = grout.positions.reshape(-1, 4, 3)  # a line is a quad: GROUT wide, across the hall
    widths, middles = np.ptp(quads[:, :, :2], axis=1), quads[:, :, :2].mean(axis=1)
    across = widths.argmin(axis=1)  # 0: a line running north-south, 1: east-west
    assert np.allclose(widths.min(axis=1), GROUT, atol=1e-5)  # float32 metres across a 120 m hall
    seams = middles[np.arange(len(quads)), across] / FLOOR_TILE
    assert np.allclose(seams, seams.round()) and seams.min() >= 1  # on the texture's tile seams
    assert (across == 0).sum() == math.ceil(hall.width / FLOOR_TILE) - 1
    assert (across == 1).sum() == math.ceil(hall.depth / FLOOR_TILE) - 1


def test_atlas_packs_without_overlap_and_uvs_stay_inside():
    sizes = {f"banner-{i}": (256, 64) for i in range(25)} | {f"logo-{i}": (64, 64) for i in range(25)}
    layout = pack(sizes)
    boxes = [(q.x, q.y, q.x + q.width, q.y + q.height) for q in layout.placements.values()]
    for i, a in enumerate(boxes):
        assert a[2] <= layout.width and a[3] <= layout.height
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    assert WHITE in layout.placements and layout.height & (layout.height - 1) == 0
    for key in sizes:
        u0, v0, u1, v1 = layout.uv(key)
        assert 0 < u0 < u1 < 1 and 0 < v0 < v1 < 1
    with pytest.raises(ValueError):
        pack({"huge": (4096, 10)})


def test_hall_layout_draws_the_walls_the_server_collides_with():
    expo = default_expo()
    hall = expo.halls[0]
    assets = hall_assets(expo, hall)
    regions = {path: (0.1, 0.1, 0.2, 0.2) for path in assets}
    layout = HallBuilder(expo, hall, regions, (0.0, 0.0)).build()
    pos, colours = layout.solid.positions, layout.solid.colours
    for booth in expo.booths_in(hall.id):
        primary = np.array(booth.primary.as_floats(), dtype=np.float32)
        mine = np.all(np.isclose(colours[:, :3], primary, atol=1e-6), axis=1)
        for x0, y0, x1, y1 in booth_walls(booth.footprint.min_x, booth.footprint.min_y,
                                          booth.footprint.max_x, booth.footprint.max_y, booth.facing):
            corner = np.all(np.isclose(pos[:, :2], [x1, y1], atol=1e-4), axis=1) & mine
            assert corner.any(), (booth.id, (x0, y0, x1, y1))
        # nothing of the booth's primary colour stands in the open side's doorway
        fp = booth.footprint
        doorway = (mine & (pos[:, 1] < fp.min_y + 0.19) & (pos[:, 0] > fp.min_x + 0.3) & (pos[:, 0] < fp.max_x - 0.3)
                   & (pos[:, 2] < 2.5))
        assert not doorway.any(), booth.id
    texts = {label.text for label in layout.labels}
    assert "KAZAKHSTAN" in texts and expo.name in texts and "To Maritime Silk Road Hall" in texts
    assert len(layout.glow.positions) > 0  # the portal
    # a ceiling over the whole hall, facing down (from above, the overview camera sees through it), with lights
    ceiling = layout.ceiling
    assert np.allclose(ceiling.positions[:, 2], HALL_WALL_HEIGHT, atol=0.05)
    assert (_face_normals(ceiling)[:, 2] < -0.99).all()
    lo, hi = ceiling.bounds()
    assert lo[0] <= 0 and lo[1] <= 0 and hi[0] >= hall.width and hi[1] >= hall.depth
    assert (ceiling.colours[:, :3].min(axis=1) > 0.9).sum() >= 4 * 4  # light panels, 4 corners each
    # each product's picture on a card at the counter's front, facing the aisle (south)
    honey = expo.booth("kz-altai-honey").product("KZ-HONEY-500").image
    assert honey in assets
    pictured = HallBuilder(expo, hall, {**regions, honey: (0.5, 0.5, 0.6, 0.6)}, (0.0, 0.0)).build().solid
    card = np.all((pictured.uvs >= 0.5) & (pictured.uvs <= 0.6), axis=1)
    assert card.sum() == 4  # one quad
    assert (pictured.positions[card][:, 2] > 1.0).all() and (pictured.normals[card][:, 1] < -0.99).all()


def test_a_booth_without_a_banner_image_has_its_name_and_tagline_written_on_it_in_the_visitors_language():
    """An edit of the tagline, or a visitor reading Chinese, changes what the fascia says (the
    name again on the back wall); a booth's own banner artwork is shown as it is."""
    expo = default_expo()
    hall = expo.halls[0]
    booth = expo.booth("kz-altai-honey")
    assert booth.banner is None and booth.hall == hall.id
    fp = booth.footprint

    def written(ex: Expo, language: str = "en") -> list[Label]:
        return [label for label in HallBuilder(ex, hall, {}, (0.0, 0.0), language=language).build().labels
                if label.fit is not None and fp.min_x - 0.1 < label.position[0] < fp.max_x + 0.1
                and fp.min_y - 0.1 < label.position[1] < fp.max_y + 0.1]

    front_and_back = written(expo)
    assert sorted(label.text for label in front_and_back) == sorted([booth.exhibitor, booth.tagline, booth.exhibitor])
    assert all(label.facing == booth_front(booth) for label in front_and_back)
    assert {label.text for label in written(expo, "zh_Hans")} == set(booth.text_in("zh_Hans")[:2])
    edited = dataclasses.replace(expo, booths=tuple(
        dataclasses.replace(b, tagline="Fresh from the Altai today") if b.id == booth.id else b for b in expo.booths))
    assert "Fresh from the Altai today" in {label.text for label in written(edited)}
    own_art = dataclasses.replace(booth, banner="banners/altai.png")
    regions = {"banners/altai.png": (0.1, 0.1, 0.2, 0.2)}
    with_art = dataclasses.replace(expo, booths=tuple(own_art if b.id == booth.id else b for b in expo.booths))
    labels = HallBuilder(with_art, hall, regions, (0.0, 0.0)).build().labels
    assert booth.tagline not in {label.text for label in labels}


def test_booth_view_looks_into_the_booth_from_the_aisle():
    expo = default_expo()
    for booth in expo.booths:
        view = booth_view(booth, expo)
        x, y, _ = view.eye
        fp = booth.footprint
        assert y < fp.min_y  # every default booth opens south: the camera stands south of it
        assert booth_at(expo, booth.hall, x, y, reach=0.0) is None  # not inside another booth
    s = spawn_view(expo.halls[0])
    assert s.target[1] > s.eye[1]  # towards the keynote, north of the spawn


def test_avatar_figure_is_the_visitors_colour_and_faces_forwards():
    mesh = avatar_mesh(0xE4572E, 3)
    assert _winding_agrees(mesh) > 0.99
    body = np.all(np.isclose(mesh.colours[:, :3], [0xE4 / 255, 0x57 / 255, 0x2E / 255]), axis=1)
    assert body.sum() > 100
    lo, hi = mesh.bounds()
    assert 1.75 < hi[2] < 1.9 and abs(lo[2]) < 0.05
    eyes = mesh.positions[np.all(mesh.colours[:, :3] < 0.11, axis=1) & (mesh.positions[:, 2] > 1.5)]
    assert eyes[:, 1].mean() > 0.1  # the eyes are on the +y side: the model's front


def test_near_figure_walks_in_pieces_the_same_figure_swinging_opposite_limbs():
    whole, parts = avatar_mesh(0xE4572E, 3), figure_parts(0xE4572E, 3)
    assert len(parts.trunk.positions) + 2 * len(parts.leg.positions) + 2 * len(parts.arm.positions) == len(whole.positions)
    (_, _, hip), (_, _, shoulder) = limb_pivots()[0], limb_pivots()[2]
    (leg_lo, leg_hi), (arm_lo, arm_hi) = parts.leg.bounds(), parts.arm.bounds()
    assert leg_hi[2] <= 0.001 and abs(hip + leg_lo[2]) < 0.01  # from the hip down to the floor
    assert arm_hi[2] <= 0.001 and 0.6 < shoulder + arm_lo[2] < 0.8  # from the shoulder to the hand
    assert swing(0.0) == (0.0, 0.0, 0.0, 0.0)  # standing: limbs straight
    left_leg, right_leg, left_arm, right_arm = swing(math.pi / 2)
    assert left_leg > 15 and right_leg == -left_leg  # one leg forward, the other back
    assert left_arm < 0 < right_arm  # each arm against the leg on its side


def _checkout() -> Checkout:
    keys = iter(f"key-{i}" for i in range(100))
    return Checkout(new_key=lambda: next(keys))


def _status(status: str, key: str = "key-0", intent: str | None = "pi_1", message: str = "") -> p.OrderStatus:
    return p.OrderStatus("ord_1", key, status, "kz-altai-honey", "KZ-HONEY-500", 2, "9000.00", "KZT", intent, 100.0, message)


def test_purchase_goes_order_pay_receipt():
    shop = _checkout()
    assert shop.buy("kz-altai-honey", "KZ-HONEY-500", "Honey", 2) == [SendOrder("kz-altai-honey", "KZ-HONEY-500", 2, "key-0")]
    with pytest.raises(Busy):
        shop.buy("kz-altai-honey", "KZ-HONEY-500", "Honey", 1)
    assert shop.on_status(_status("pending_payment", key="other")) == []  # someone else's order key
    assert shop.on_status(_status("pending_payment")) == [ConfirmPayment("pi_1", "confirm-key-0")]
    assert shop.current.stage is Stage.PAYING and "KZT 9,000.00" in shop.current.message
    assert shop.on_paid() == [SendOrderPaid("ord_1"), Refresh()]
    receipt = p.Receipt("ord_1", "kz-altai-honey", "KZ-HONEY-500", "Honey", 2, "9000.00", "KZT", "pi_1", 101.0)
    assert shop.on_receipt(receipt) == [Refresh()]
    assert shop.current.stage is Stage.DONE and shop.current.receipt == receipt and not shop.busy
    assert shop.on_status(_status("fulfilled")) == []  # after the receipt, nothing more to do


@pytest.mark.parametrize("code, words", [("insufficient_funds", "not enough money"), ("bank_unavailable", "cannot be reached"),
                                         ("weird", "refused by the bank")])
def test_a_refused_payment_releases_the_stock(code, words):
    shop = _checkout()
    shop.buy("kz-altai-honey", "KZ-HONEY-500", "Honey", 2)
    shop.on_status(_status("pending_payment"))
    assert shop.on_bank_refused(code, "no") == [SendCancel("ord_1")]
    assert shop.current.stage is Stage.FAILED and words in shop.current.message


def test_a_retried_payment_that_went_through_counts_as_paid():
    shop = _checkout()
    shop.buy("b", "s", "Thing", 1)
    shop.on_status(_status("pending_payment"))
    assert shop.on_bank_refused("intent_already_succeeded", "") == [SendOrderPaid("ord_1"), Refresh()]


def test_server_refusals_end_the_purchase_with_the_reason():
    shop = _checkout()
    shop.buy("b", "s", "Thing", 1)
    assert shop.on_status(_status("failed", message="sold out", intent=None)) == []
    assert "sold out" in shop.current.message and not shop.busy
    shop.buy("b", "s", "Thing", 1)
    assert shop.on_error("rate_limited", "slow down", p.Chat.TYPE) == []  # not about the order
    assert shop.busy
    shop.on_error("not_allowed", "no bank", p.Order.TYPE)
    assert "not open" in shop.current.message and not shop.busy
    shop.buy("b", "s", "Thing", 1)
    shop.on_status(_status("pending_payment", key="key-2"))
    shop.on_status(_status("expired", key="key-2"))
    assert "expired" in shop.current.message


def test_wallet_keeps_the_token_owner_only(tmp_path):
    path = tmp_path / "config" / "wallet.json"
    wallet = Wallet(path)
    assert wallet.load("http://127.0.0.1:1") is None
    cred = BankCredential("http://127.0.0.1:1", "acc_1", "secret-token", "MYR")
    wallet.save(cred)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert Wallet(path).load("http://127.0.0.1:1/") == cred  # a trailing slash is the same bank
    wallet.save(BankCredential("http://127.0.0.1:2", "acc_2", "t2", "USD"))
    assert wallet.load("http://127.0.0.1:1") == cred
    wallet.forget("http://127.0.0.1:1")
    assert wallet.load("http://127.0.0.1:1") is None and wallet.load("http://127.0.0.1:2").account_id == "acc_2"
    path.write_text("{not json")
    assert wallet.load("http://127.0.0.1:2") is None  # a damaged file is a first run, not a crash


def test_chat_prefixes_pick_the_channel():
    assert chat.parse("hello") == chat.Outgoing(chat.PROXIMITY, "hello")
    assert chat.parse("/booth  any discounts?") == chat.Outgoing(chat.BOOTH, "any discounts?")
    assert chat.parse("/announce Talk at 3pm") == chat.Outgoing(chat.ANNOUNCEMENT, "Talk at 3pm")
    assert chat.parse("   ") is None and chat.parse("/booth ") is None
    with pytest.raises(chat.ChatError):
        chat.parse("/shout hi")
    with pytest.raises(chat.ChatError):
        chat.parse("x" * 281)
    log = chat.ChatLog(keep=2)
    log.add(chat.BOOTH, "Aru", "hi", "kz-altai-honey")
    log.add(chat.PROXIMITY, "Ben", "yo")
    log.note("lost")
    assert list(log.lines) == ["Ben: yo", "* lost"]


def test_steering_turns_and_walks_along_the_heading():
    c = steer(Keys(forward=True), 0.0, 0.1)
    assert (c.move_x, c.move_y, c.run) == (1.0, 0.0, False)
    c = steer(Keys(left=True), 0.0, 0.5)
    assert c.yaw == pytest.approx(1.1) and (c.move_x, c.move_y) == (0.0, 0.0)
    c = steer(Keys(back=True, run=True), math.pi / 2, 0.1)
    assert c.move_y == pytest.approx(-0.6) and not c.run
    assert -math.pi <= steer(Keys(left=True), 3.1, 1.0).yaw < math.pi


def test_follow_camera_eases_behind_and_stays_in_the_hall():
    cam = FollowCamera(bounds=(20.0, 20.0))
    first = cam.update(10.0, 10.0, 0.0, 0.016)
    assert first.eye[0] == pytest.approx(10.0 - cam.distance) and first.eye[2] == cam.height
    moved = cam.update(12.0, 10.0, 0.0, 0.016)
    assert 10.0 - cam.distance < moved.eye[0] < 12.0 - cam.distance  # eases, does not jump
    corner = FollowCamera(bounds=(20.0, 20.0)).update(1.0, 1.0, 0.0, 0.016)
    assert corner.eye[0] >= 0.6


@pytest.mark.parametrize("start_in_the_portal", [False, True])
def test_autopilot_walks_to_a_booth_in_another_hall_around_the_booths_and_through_the_portal(start_in_the_portal):
    """Walk me there to another hall, under the server's motion and portal rules: around the
    bank's booth to the portal, then on from where it puts us. Starting in the portal's circle
    while it still rests (just came through), the pilot steps within it until it goes."""
    expo = default_expo()
    geometry = HallGeometry.from_expo(expo)
    hall, booth = expo.halls[0], expo.booth("sa-alahsa-dates")
    portal = hall.portals[0]
    start = (portal.position.x, portal.position.y) if start_in_the_portal else (hall.spawn.x, hall.spawn.y)
    goal, centre = entrance(booth, 1.0), (booth.footprint.centre.x, booth.footprint.centre.y)
    pilot = Autopilot.along(route(expo, hall.id, start, booth.hall, goal), face=centre)
    halls, pos = np.array([0], np.int16), np.array([start])
    ready_at, yaw, t = 2.0 if start_in_the_portal else 0.0, 0.0, 0.0
    walls = {h.id: walls_of(expo, h.id) for h in expo.halls}
    closest = math.inf  # to a booth wall: a straight leg into the portal pressed against the bank's booth
    for _ in range(20 * 120):
        c = pilot.update(float(pos[0, 0]), float(pos[0, 1]), yaw, 0.05)
        yaw, t = c.yaw, t + 0.05
        pos = step(geometry, halls, pos, np.array([[c.move_x, c.move_y]]), np.array([c.run]), 0.05)
        x, y = pos[0]
        closest = min(closest, *(math.hypot(max(x0 - x, 0, x - x1), max(y0 - y, 0, y - y1))
                                 for x0, y0, x1, y1 in walls[expo.halls[halls[0]].id]))
        who, to_halls, targets = portal_hops(geometry, halls, pos, np.array([t >= ready_at]))
        if len(who):
            halls, pos, ready_at = to_halls.copy(), targets, t + PORTAL_COOLDOWN
            pilot.crossed()
        if pilot.done:
            break
    assert pilot.done and expo.halls[halls[0]].id == "maritime"
    assert booth_at(expo, "maritime", *pos[0]) is booth, (t, pos[0])
    facing = math.atan2(centre[1] - pos[0, 1], centre[0] - pos[0, 0])
    assert abs(math.remainder(yaw - facing, math.tau)) < 0.01, (yaw, facing)  # turned to the booth, not along the aisle
    assert closest > AVATAR_RADIUS + 0.05, closest  # it never walked into a wall


def test_autopilot_reaches_a_booth_under_the_servers_own_motion_rules():
    expo = default_expo()
    geometry = HallGeometry.from_expo(expo)
    booth = expo.booth("kz-altai-honey")
    hall = expo.halls[0]
    goal = entrance(booth, -1.5)
    pilot = Autopilot([goal])
    pos = np.array([[hall.spawn.x, hall.spawn.y]])
    yaw = 0.0
    for _ in range(600):
        c = pilot.update(float(pos[0, 0]), float(pos[0, 1]), yaw, 0.05)
        yaw = c.yaw
        pos = step(geometry, np.array([0], np.int16), pos, np.array([[c.move_x, c.move_y]]), np.array([c.run]), 0.05)
        if pilot.done:
            break
    assert pilot.done and math.dist(pos[0], goal) < 0.6
    assert booth_at(expo, hall.id, *pos[0]) is booth


def walls_of(expo: Expo, hall: str) -> list[tuple[float, float, float, float]]:
    return [w for b in expo.booths_in(hall)
            for w in booth_walls(b.footprint.min_x, b.footprint.min_y, b.footprint.max_x, b.footprint.max_y, b.facing)]


def hits_a_booth(expo: Expo, hall: str, points: list[tuple[float, float]]) -> bool:
    """Whether walking straight from point to point crosses a booth wall (sampled every 5 cm)."""
    walls = walls_of(expo, hall)
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        n = max(1, int(math.dist((ax, ay), (bx, by)) / 0.05))
        for i in range(n + 1):
            x, y = ax + (bx - ax) * i / n, ay + (by - ay) * i / n
            if any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in walls):
                return True
    return False


def test_routes_and_crowd_spots():
    expo = default_expo()
    booth = next(b for b in expo.booths if b.hall == "maritime")
    hall, portal = expo.halls[0], expo.halls[0].portals[0]
    spawn = (hall.spawn.x, hall.spawn.y)
    way = route(expo, "silk-road", spawn, "maritime", (1.0, 2.0))
    assert way.portal == portal and way.here[-1] == (portal.position.x, portal.position.y) == (116.0, 36.0)
    assert way.there[-1] == (1.0, 2.0)
    # each leg keeps out of its hall's booths; from the entrance, the bank's booth stands in the straight line
    assert hits_a_booth(expo, "silk-road", [spawn, (116.0, 36.0)])
    assert not hits_a_booth(expo, "silk-road", [spawn, *way.here])
    assert not hits_a_booth(expo, "maritime", [(portal.target.x, portal.target.y), *way.there])
    assert route(expo, "maritime", (3.0, 3.0), "maritime", (1.0, 2.0)) == Route(((1.0, 2.0),))
    with pytest.raises(ValueError, match="no portal from maritime to nowhere"):
        route(expo, "maritime", (3.0, 3.0), "nowhere", (1.0, 2.0))
    spots = spots_near(booth, 10)
    assert len(spots) == 10
    assert all(booth_at(expo, "maritime", x, y) is booth for x, y in spots)


def test_booth_at_picks_the_booth_you_stand_at():
    expo = default_expo()
    kz = expo.booth("kz-altai-honey")
    assert booth_at(expo, "silk-road", *entrance(kz, 1.0)) is kz
    assert booth_at(expo, "silk-road", expo.halls[0].spawn.x, expo.halls[0].spawn.y) is None


def test_a_catalogue_line_names_a_price_in_the_visitors_currency_only_when_it_is_another():
    from client.desktop.ui import CatalogueRow

    row = CatalogueRow("KZ-KURT-300", "Kurt", "KZT 2,500.00", "KZT 2,500.00", "131 left", True, limit="limit 5 each")
    assert row.line() == "KZT 2,500.00   ·   131 left   ·   limit 5 each"
    abroad = dataclasses.replace(row, own_price="≈ USD 5.20", limit="")
    assert abroad.line() == "KZT 2,500.00   ≈ USD 5.20   ·   131 left"
    assert dataclasses.replace(row, own_price="").line().startswith("KZT 2,500.00   ·   ")  # no account yet


def test_money_and_quotes():
    assert money(Decimal("4500"), "KZT") == "KZT 4,500.00"
    assert money(Decimal("120000"), "VND") == "VND 120,000"
    quotes = Quotes()
    same, other = QuoteKey("KZT", "KZT", 450000), QuoteKey("USD", "KZT", 450000)
    assert quotes.wanted([same, other, other]) == [other]
    assert quotes.in_own_currency(same) == "KZT 4,500.00"
    assert quotes.in_own_currency(other) == "≈ …"
    quotes.received(other, 951)
    assert quotes.in_own_currency(other) == "≈ USD 9.51"
    assert quotes.wanted([other]) == []


def test_connect_settings_say_what_is_wrong():
    ok, problems = settings.check("ws://127.0.0.1:8765", "  Aru   Bek ", "#E4572E", "myr")
    assert problems == {} and ok == settings.ConnectSettings("ws://127.0.0.1:8765", "Aru Bek", 0xE4572E, "MYR")
    bad, problems = settings.check("http://x", "!", "red", "dollars")
    assert bad is None and set(problems) == {"server", "name", "colour", "currency"}


def test_buy_asks_first_and_a_no_sends_nothing():
    shop = _checkout()
    proposal = shop.propose("kz-altai-honey", "KZ-HONEY-500", "Honey", 1)
    assert proposal.stage is Stage.CONFIRMING and not shop.busy and shop.confirming is proposal
    shop.withdraw()
    assert shop.current is None
    shop.propose("kz-altai-honey", "KZ-HONEY-500", "Honey", 1)
    assert shop.confirm() == [SendOrder("kz-altai-honey", "KZ-HONEY-500", 1, "key-1")]
    assert shop.busy and shop.confirming is None and shop.confirm() == []
    with pytest.raises(Busy):
        shop.propose("b", "s", "Thing", 1)


def test_a_finished_purchase_is_forgotten_when_another_catalogue_opens():
    shop = _checkout()
    shop.buy("b", "s", "Thing", 1)
    shop.on_status(_status("failed", message="sold out", intent=None))
    shop.forget_finished()
    assert shop.current is None
    shop.buy("b", "s", "Thing", 1)
    shop.forget_finished()  # still under way: kept
    assert shop.busy


@pytest.mark.parametrize("changes, reason", [
    ({}, None),
    ({"purchases_on": False}, "purchases are off"),
    ({"has_account": False}, "account is opening"),
    ({"busy": True}, "under way"),
    ({"left": None}, "checking stock"),
    ({"left": 0}, "sold out"),
    ({"owned": 6}, "limit reached: 6 per visitor"),
    ({"cost_minor": 2001}, "more than your balance"),
    ({"cost_minor": None}, None),  # not quoted yet: the bank decides
    ({"limit": 0, "owned": 99}, None),  # no limit
])
def test_buy_is_disabled_with_the_reason_when_it_cannot_succeed(changes, reason):
    from client.desktop.shop import buy_blocker

    args = dict(purchases_on=True, has_account=True, busy=False, left=5, owned=2, limit=6, cost_minor=2000,
                balance_minor=2000) | changes
    got = buy_blocker(**args)
    assert (got is None) if reason is None else (reason in got)


def test_descriptions_name_the_year_the_expo_is_held():
    import re

    expo = default_expo()
    for booth in expo.booths:
        for text in [booth.description, *(pr.description for pr in booth.catalogue)]:
            for year in re.findall(r"Expo (\d{4})", text):
                assert int(year) == expo.starts.year, (booth.id, text)


def test_a_second_of_turning_turns_as_far_at_5_fps_as_at_60():
    from client.desktop.steering import frame_dt

    def turned(fps: float) -> float:
        yaw, t, last = 0.0, 0.0, 0.0
        while t < 1.0 - 1e-9:
            t += 1.0 / fps
            yaw = steer(Keys(left=True), yaw, frame_dt(t, last)).yaw
            last = t
        return yaw

    assert turned(5) == pytest.approx(turned(60)) == pytest.approx(2.2)
    assert frame_dt(10.0, 2.0) == 0.5  # a stall is not a long key hold


def test_mouse_look_turns_by_the_mouse_and_a_d_step_sideways():
    c = steer(Keys(left=True, strafe=True), 0.0, 0.5, turn_by=0.3)
    assert c.yaw == pytest.approx(0.3)  # the keys did not turn
    assert (c.move_x, c.move_y) == pytest.approx((-0.8 * math.sin(0.3), 0.8 * math.cos(0.3)))  # to the left
    c = steer(Keys(forward=True, right=True, strafe=True), 0.0, 0.1)
    assert math.hypot(c.move_x, c.move_y) == pytest.approx(1.0) and c.move_y < 0


def _inside(point, rect, margin=0.0) -> bool:
    return rect[0] - margin < point[0] < rect[2] + margin and rect[1] - margin < point[1] < rect[3] + margin


def test_the_camera_never_stands_inside_a_booth_or_behind_its_header():
    expo = default_expo()
    hall = expo.halls[0]
    booths = [(b.footprint.min_x, b.footprint.min_y, b.footprint.max_x, b.footprint.max_y) for b in expo.booths_in(hall.id)]
    booth = expo.booth("kz-altai-honey")
    fp = booth.footprint
    mine = (fp.min_x, fp.min_y, fp.max_x, fp.max_y)
    checked = 0
    # walk along the aisle beside the booth and into it, looking every way
    for x, y in [(fp.min_x - 1.0, fp.centre.y), (fp.max_x + 1.0, fp.centre.y), (fp.centre.x, fp.min_y - 1.0),
                 (fp.centre.x, fp.centre.y), entrance(booth, -1.0)]:
        for yaw in [i * math.pi / 8 for i in range(16)]:
            cam = FollowCamera(bounds=(hall.width, hall.depth), booths=booths)
            pose = cam.update(x, y, yaw, 0.016)
            eye = pose.eye[:2]
            if _inside((x, y), mine):
                assert _inside(eye, mine), (x, y, yaw, eye)  # held in by its walls and header
                assert pose.eye[2] < 2.6 or _inside(eye, mine, -0.3)
            for rect in booths:
                if not _inside((x, y), rect):
                    assert not _inside(eye, rect), (x, y, yaw, eye, rect)
            checked += 1
    assert checked == 80
    free = FollowCamera(bounds=(hall.width, hall.depth), booths=booths).update(hall.spawn.x, hall.spawn.y, math.pi / 2, 0.016)
    assert free.eye[2] == pytest.approx(4.2)  # nothing in the way: the usual view


def test_the_directory_finds_booths_by_name_country_and_product():
    from client.desktop.directory import fold, search

    expo = default_expo()
    assert fold("Šumadija Ünïcode") == "sumadija unicode"
    assert search(expo, "sumadija")[0].booth.id == "rs-sumadija-orchards"  # without the accent
    china = search(expo, "china")
    assert {"cn-hangzhou-silk", "cn-yunnan-tea"} <= {m.booth.id for m in china}
    assert all(m.booth.country == "CN" for m in china)
    honey = search(expo, "honey")
    assert "kz-altai-honey" in [m.booth.id for m in honey[:2]]
    slippers = search(expo, "felt slippers")
    assert slippers[0].booth.id == "kz-altai-honey" and slippers[0].why == "Felt slippers"  # found by its product
    assert search(expo, "kazakhstan honey")[0].booth.id == "kz-altai-honey"  # every word must match
    assert search(expo, "honey zzzz") == []
    assert search(expo, "阿尔泰")[0].booth.id == "kz-altai-honey"  # in a language its world file gives
    assert search(expo, "пасеки")[0].booth.id == "kz-altai-honey"


def test_the_directory_filters_by_category_and_tab_steps_through_every_kind():
    from client.desktop.directory import next_category, search
    from world.model import Category

    expo = default_expo()
    drinks = search(expo, "", limit=50, category=Category.DRINKS)
    assert {m.booth.id for m in drinks} >= {"cn-yunnan-tea", "ge-kakheti-cellars", "ke-kiambu-coffee"}
    assert all(m.booth.category is Category.DRINKS for m in drinks)
    assert [m.booth.id for m in search(expo, "china", category=Category.DRINKS)] == ["cn-yunnan-tea"]
    assert {m.booth.id for m in search(expo, "textiles", limit=50)} == {
        b.id for b in expo.booths if b.category is Category.TEXTILES}  # the kind is a word to search by too
    seen, kind = [], None
    for _ in range(len(Category) + 1):
        kind = next_category(kind)
        seen.append(kind)
    assert seen == [*Category, None]
    everything = search(expo, "", limit=100)
    assert len(everything) == len(expo.booths)
    assert [m.hall for m in everything] == sorted(m.hall for m in everything)


def test_a_planned_route_walks_around_the_booths_under_the_servers_rules():
    from client.pathfind import plan

    expo = default_expo()
    geometry = HallGeometry.from_expo(expo)
    hall = expo.halls[0]
    start = entrance(expo.booth("kz-altai-honey"), -1.5)  # inside a booth, behind it the Tokaj row
    goal = entrance(expo.booth("hu-tokaj-heritage"), 1.0)
    route_ = plan(expo, hall, start, goal)
    assert route_[-1] == goal and len(route_) >= 2  # out of the booth, around, in: not a straight line
    pos = np.array([start])
    pilot = Autopilot(route_, run=False)
    for _ in range(20 * 40):
        c = pilot.update(float(pos[0, 0]), float(pos[0, 1]), 0.0, 0.05)
        pos = step(geometry, np.zeros(1, np.int16), pos, np.array([[c.move_x, c.move_y]]), np.zeros(1, bool), 0.05)
        if pilot.done:
            break
    assert pilot.done and math.dist(pos[0], goal) < 0.8


def test_the_hall_map_puts_booths_and_people_where_they_stand():
    from client.desktop.hallmap import MapFrame

    expo = default_expo()
    hall = expo.halls[0]
    frame = MapFrame(hall, 0.6)
    assert frame.height == pytest.approx(0.6 * hall.depth / hall.width)
    assert frame.point(0, 0) == (0, 0) and frame.point(hall.width, hall.depth) == pytest.approx((0.6, frame.height))
    assert frame.point(-5, 500) == pytest.approx((0.0, frame.height))  # never off the map
    places = [(-5, 500), (0, 0), (12.5, 7.25), (hall.width + 1, -1)]
    assert np.allclose(frame.points(places), [frame.point(x, y) for x, y in places])
    assert frame.points([]).shape == (0, 2)
    booths = {b.booth_id: b for b in frame.booths(expo, names=True)}
    honey = booths["kz-altai-honey"]
    fp = expo.booth("kz-altai-honey").footprint
    assert honey.label == "Altai Bee Farms"
    assert honey.rect == pytest.approx((fp.min_x * frame.scale, fp.max_x * frame.scale, fp.min_y * frame.scale,
                                        fp.max_y * frame.scale))
    assert len(booths) == len(expo.booths_in(hall.id))


def test_meeting_times_read_in_the_visitors_own_time_zone():
    from client.desktop.meetings import meeting_time

    noon_utc = 1_800_000_000 - 1_800_000_000 % 86400 + 12 * 3600
    assert meeting_time(noon_utc, "Asia/Tokyo") == "21:00 Asia/Tokyo"  # UTC+9, no daylight saving
    assert meeting_time(noon_utc, "Europe/Budapest") in ("13:00 Europe/Budapest", "14:00 Europe/Budapest")
    assert meeting_time(noon_utc, None) == "12:00 UTC"  # no card yet
    assert meeting_time(noon_utc, "Mars/Olympus_Mons") == "12:00 UTC"  # an unknown zone says it shows UTC


def test_on_duty_is_the_booth_s_own_staff_at_the_booth():
    from client.desktop.nearby import on_duty

    expo = default_expo()
    booth = expo.booths[0]
    other = expo.booths[1]
    inside, outside = entrance(booth, -1.0), entrance(booth, 12.0)
    people = [("zoe", booth.id, *inside), ("Adil", booth.id, *inside), ("Ben", other.id, *inside),
              ("Cara", None, *inside), ("Dev", booth.id, *outside)]
    assert on_duty(booth, people) == ("Adil", "zoe")  # not another booth's staff, a visitor, or staff off in the hall
    assert on_duty(booth, []) == ()


def test_a_toast_goes_between_the_chat_and_an_open_catalogue_or_above_the_chat():
    assert toast_room(1.0, 16 / 9, CHAT_WIDTH, None) == ToastRoom(0.0, TOAST_WRAP)  # centred, as drawn
    for scale, half_width in ((1.0, 16 / 9), (1.5, 16 / 9), (1.0, 4 / 3), (1.5, 900 / 800)):
        chat = bottom_row(scale, half_width).chat_width
        catalogue = CATALOGUE_WIDTH * min(scale, 1.7 / 1.5)  # as tall as the window lets it grow
        room = toast_room(scale, half_width, chat, catalogue)
        half = (room.wordwrap * TOAST_TEXT + 2 * TOAST_PAD) * scale / 2  # the widest its wrapped lines make it
        assert room.x + half <= half_width - 0.03 - catalogue  # clear of the catalogue
        assert room.x - half >= -half_width + 0.03 + (0 if room.above_chat else chat * scale)  # and of the chat
        assert room.wordwrap >= 8
    assert not toast_room(1.0, 16 / 9, CHAT_WIDTH, CATALOGUE_WIDTH).above_chat  # a wide window: beside the chat
    assert toast_room(1.0, 4 / 3, bottom_row(1.0, 4 / 3).chat_width, CATALOGUE_WIDTH).above_chat


def test_the_bottom_row_gives_way_as_the_text_grows():
    wide = 16 / 9
    assert bottom_row(1.0, wide) == BottomRow(CHAT_WIDTH, 0.0, False)  # side by side as drawn
    narrowed = bottom_row(1.4, wide)
    assert narrowed.chat_width < CHAT_WIDTH and not narrowed.card_above_chat
    chat_right = 0.03 + narrowed.chat_width * 1.4 - wide
    assert narrowed.card_x - 0.62 * 1.4 >= chat_right  # the card's left edge clears the chat
    assert narrowed.card_x + 0.62 * 1.4 <= wide  # and its right edge stays in the window
    assert bottom_row(1.8, 4 / 3).card_above_chat  # no room side by side: the card stands on the chat
