"""The desktop client for real, offscreen: a bank process, the expo server in-process with
commerce, the Panda3D app joining over loopback. Pixels are read back from the renderer."""

from __future__ import annotations

import math
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
from client_link import default_expo, walk_thread
from panda3d.core import GeomVertexReader
from processes import free_port

import protocol as p
from client.desktop.app import ExpoApp
from client.desktop.crowd import Crowd
from client.desktop.layout import booth_view
from client.desktop.local_server import LocalServer
from client.desktop.settings import ConnectSettings
from client.desktop.shop import Stage
from client.desktop.steering import Autopilot
from client.desktop.text import plain
from client.desktop.wallet import Wallet
from client.pathfind import entrance
from server.config import ServerConfig
from world import default_expo_path, load_expo
from world.model import Category
from world.motion import AVATAR_RADIUS, booth_walls

BOOTH = "kz-altai-honey"
BOT_COLOUR = 0xD81E5B


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("desktop")


@pytest.fixture(scope="module")
def server(bank, scratch):
    with LocalServer(default_expo(), bank.server_config(scratch / "server")) as srv:
        yield srv


@pytest.fixture(scope="module")
def app(scratch):
    """One window per process: Panda3D keeps a single ShowBase."""
    # low: the pixel checks compare booth colours with the world file's, which high's
    # tone mapping (simplepbr) shifts; high's own look is checked by test_screenshot_cli
    app = ExpoApp(offscreen=True, size=(960, 540), wallet=Wallet(scratch / "config" / "wallet.json"), quality="low")
    yield app
    app.close()


def run_until(app: ExpoApp, done, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what or done}"
        app.step()
        time.sleep(0.005)


def join(app: ExpoApp, server: LocalServer, name: str) -> None:
    app.fixed_view = app.autopilot = None
    app.connect(ConnectSettings(server.url, name, 0x3BB273, "USD"))
    run_until(app, lambda: app.visit is not None and app.visit.hall_scene is not None, what="the hall")


def pixel(app: ExpoApp, point: tuple[float, float, float]) -> tuple[float, float, float]:
    """The rendered colour at a point of the hall (mean of a 3x3 patch), 0..1."""
    xy = app.project(point)
    assert xy is not None, f"{point} is not in view"
    image = app.win.getScreenshot()
    from panda3d.core import PNMImage

    pnm = PNMImage()
    image.store(pnm)
    x, y = xy
    samples = [pnm.getXel(x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    return tuple(sum(s[i] for s in samples) / 9 for i in range(3))


def shade_distance(seen, colour) -> float:
    """How far ``seen`` is from ``colour`` lit by any brightness: min over k of |seen - k c|."""
    c = [((colour >> s) & 0xFF) / 255 for s in (16, 8, 0)] if isinstance(colour, int) else list(colour)
    k = sum(a * b for a, b in zip(seen, c, strict=True)) / max(sum(b * b for b in c), 1e-9)
    k = min(max(k, 0.3), 1.8)
    return math.dist(seen, [k * v for v in c])


def watch_gathering(app: ExpoApp, crowd: Crowd, booth, spots: list[tuple[float, float]], timeout: float) -> None:
    """The crowd at ``spots`` in front of the booth, facing it, and the camera where the
    exhibitor's preview stands (walked there, so they are within view radius)."""
    crowd.gather(booth.hall, spots, (booth.footprint.centre.x, booth.footprint.centre.y), entrance(booth, 2.0))
    view = booth_view(booth, app.visit.expo)
    app.autopilot = Autopilot([(view.eye[0], view.eye[1])])
    app.fixed_view = view
    app.hud.hide()
    run_until(app, lambda: crowd.arrived == crowd.count and app.autopilot.done, timeout, "the crowd and the walk")


def test_joins_and_draws_booths_and_people_where_they_are(app, server):
    join(app, server, "Pixel Peeper")
    expo = app.visit.expo
    booth = expo.booth(BOOTH)
    crowd = Crowd(server.url, 1, prefix="pixel-guest", colours=[BOT_COLOUR])
    crowd.start()
    try:
        spot = entrance(booth, -1.8)
        watch_gathering(app, crowd, booth, [spot], 40)
        guest = crowd.bots[0].core.entity
        run_until(app, lambda: guest in app.avatars.nodes, 10, "the guest to be drawn")
        app.step(30)
        scene = app.visit.thread.scene()
        pose = next(o.pose for o in scene.others if o.info.entity == guest)
        assert math.dist((pose.x, pose.y), spot) < 0.8
        fp = booth.footprint
        floor = expo.halls[0].theme.floor.as_floats()
        wall = pixel(app, (fp.min_x + 0.21, fp.centre.y + 1.0, 1.3))  # the inside of the west wall
        assert shade_distance(wall, booth.primary.as_floats()) < 0.08, wall
        assert shade_distance(wall, floor) > 0.15, wall
        aisle = pixel(app, (fp.centre.x - 2.5, fp.min_y - 0.8, 0.0))
        assert shade_distance(aisle, floor) < 0.08, aisle
        body = pixel(app, (pose.x, pose.y, 1.05))  # the guest's torso
        assert shade_distance(body, BOT_COLOUR) < 0.1, body
        assert shade_distance(body, booth.primary.as_floats()) > 0.15, body
        # the static hall in a handful of draw calls: the product models and the booths' written
        # names and taglines add one per 3,000 vertices (the most llvmpipe draws in one call, so
        # flattening stops combining there)
        assert app.visit.hall_scene.geom_count() <= 10
    finally:
        crowd.stop()


@pytest.mark.slow
def test_name_tags_in_a_crowd_never_cover_each_other_and_fade_with_distance(app, server):
    """Eight people in a huddle in front of a booth: the tags drawn do not overlap on screen
    (lifted above each other, the rest not drawn), the nearest is opaque, and a walker's legs swing."""
    join(app, server, "Tag Reader")
    booth, crowd = app.visit.expo.booth(BOOTH), Crowd(server.url, 8, prefix="huddle", colours=[BOT_COLOUR])
    crowd.start()
    try:
        cx, cy = entrance(booth, -2.0)
        spots = [(cx + 0.45 * (i % 4) - 0.7, cy - 0.4 * (i // 4)) for i in range(8)]
        watch_gathering(app, crowd, booth, spots, 60)
        entities = [b.core.entity for b in crowd.bots]
        run_until(app, lambda: all(e in app.avatars.nodes for e in entities), 10, "the huddle to be drawn")
        app.step(10)
        boxes = []
        for e in entities:
            node = app.avatars.nodes[e]
            if node.tag.isHidden():
                continue
            lo, hi = node.tag.getTightBounds(app.world)
            corners = [app.project((x, y, z)) for x in (lo.x, hi.x) for y in (lo.y, hi.y) for z in (lo.z, hi.z)]
            xs, ys = [c[0] for c in corners if c], [c[1] for c in corners if c]
            boxes.append((min(xs), min(ys), max(xs), max(ys)))
        assert 2 <= len(boxes) < 8, boxes  # some lifted, some given way
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                overlap_x, overlap_y = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
                assert overlap_x <= 3 or overlap_y <= 3, (a, b)  # a billboard's box is a little loose
        cam = app.camera.getPos(app.world)
        nearest = min(entities, key=lambda e: (app.avatars.nodes[e].root.getPos(app.world) - cam).length())
        assert app.avatars.nodes[nearest].drawn is not None and app.avatars.nodes[nearest].drawn[0] == 1.0
        # one walks away: near the camera its legs swing
        walker = app.avatars.nodes[entities[0]]
        crowd.gather(booth.hall, [(cx + 3.0, cy - 1.0)], (cx + 6.0, cy - 1.0))
        swung: list[float] = []
        run_until(app, lambda: swung.append(abs(walker.limbs[0].getP())) or max(swung) > 8.0, 20, "the walker's legs to swing")
    finally:
        crowd.stop()


def test_booth_staff_wear_their_exhibitors_name_on_a_gold_tag(app):
    from client.desktop.scene_avatars import AvatarLayer
    from client.interpolation import Pose

    layer = AvatarLayer(app.render)
    try:
        layer.sync([(1, "Aigerim", BOT_COLOUR, 3, Pose(10.0, 10.0, 0.0, 0), False),
                    (2, "Visitor", BOT_COLOUR, 4, Pose(12.0, 10.0, 0.0, 0), False)], 0.02, {1: "Altai Bee Farms"})
        assert layer.nodes[1].tag.getTag("label") == "Aigerim  ·  Altai Bee Farms"
        assert layer.nodes[2].tag.getTag("label") == "Visitor"
    finally:
        layer.clear()
        layer.root.removeNode()


def test_walks_to_a_booth_on_the_keys_and_the_server_agrees(app, server):
    join(app, server, "Walker")
    core = app.visit.thread.core
    run_until(app, lambda: core.own is not None, what="the first state")
    start_y = core.own.state.y / 100
    app.messenger.send("w")  # held: the app takes an input a tick while it is down (one frame, held)
    t = time.monotonic()
    run_until(app, lambda: time.monotonic() - t > 1.5, what="walking")
    app.messenger.send("w-up")
    run_until(app, lambda: core.own.state.motion == 0 and not core.predictor.pending, what="the last ack")
    walked = core.own.state.y / 100 - start_y
    assert 2.5 < walked < 5.0, walked  # 2.5 m/s north (the initial heading) for about 1.5 s
    booth = app.visit.expo.booth(BOOTH)
    goal = entrance(booth, -1.5)
    app.autopilot = Autopilot([entrance(booth, 1.5), goal])
    run_until(app, lambda: app.autopilot.done, 40, "the walk to the booth")
    app.autopilot = None
    run_until(app, lambda: not core.predictor.pending, what="the last ack")
    at = (core.own.state.x / 100, core.own.state.y / 100)  # the server's word, not the prediction
    assert math.dist(at, goal) < 0.8, at
    assert app.visit.near == BOOTH
    assert app.hud.card_title.getText() == "Altai Bee Farms"


def test_across_a_server_restart_the_visitor_reads_what_happened_and_walks_again(app, tmp_path):
    """The server stops under a joined visitor and starts again on its port: the client joins
    afresh by itself, the chat says so in words (not the protocol's refusal of the old resume
    token) and the keys walk the new avatar."""
    config = ServerConfig(port=free_port(), data_dir=tmp_path)
    first = LocalServer(default_expo(), config).__enter__()
    try:
        join(app, first, "Restarted")
    finally:
        first.stop()
    with LocalServer(default_expo(), config) as again:
        core = app.visit.thread.core
        run_until(app, lambda: "* Reconnected." in app.visit.chat.lines, 20, "the new join")
        lines = list(app.visit.chat.lines)
        assert "* The server no longer had your place in the hall: you join again at the entrance." in lines
        assert not any(line.startswith("* refused") for line in lines), lines
        run_until(app, lambda: core.own is not None, what="the first state")
        start_y = core.own.state.y
        app.messenger.send("w")
        run_until(app, lambda: core.own.state.y - start_y > 100, 10, "walking after the restart")
        app.messenger.send("w-up")
        assert again.server.port == config.port


def test_a_certificate_given_to_you_arrives_at_once_with_a_toast(app, server, bank):
    """With nothing to give, H still opens the bank's real-name check (a contact can give only
    to a checked account; before, H said only "You hold no certificate to give."). Then a
    contact gives the visitor a certificate: the bank's webhook has the server push the new
    list, and the client says so (before, the gift showed only at the next I, and silently)."""
    import asyncio

    from bank.client import PlatformClient, VisitorClient
    from client.desktop.gift_panel import RealNameForm

    join(app, server, "Gift Taker")
    v = app.visit
    run_until(app, lambda: v.credential is not None and v.balance is not None, what="the bank account")
    run_until(app, lambda: app.deals._held is not None, what="the first list of certificates")
    app.messenger.send("i")
    assert "H: the bank's real-name check" in app.hud.inventory_text.getText()
    app.messenger.send("h")
    run_until(app, lambda: isinstance(app.gifts.part, RealNameForm), what="the real-name form")
    for entry, text in zip(app.gifts.part.entries, ("Gulnara Sadykova", "1991-09-30", "kz", "t12345678"), strict=True):
        entry.enterText(text)
    app.messenger.send("enter")
    run_until(app, lambda: not app.gifts.is_open, what="the bank's check")
    assert "contacts can give you certificates now" in app.hud.toast["text"] and not app.typing
    taker = v.credential.account_id
    booth = server.server.sim.expo.booth(BOOTH)
    edition = server.call(server.server.collectibles.open_edition(BOOTH, booth.catalogue[1].sku, 10, "2027-07", "Altai"))

    async def give() -> str:
        async with PlatformClient(bank.url, bank.platform_key) as platform, VisitorClient(bank.url) as giver:
            await giver.open_account("Dana Giver", "KZT")
            await giver.submit_kyc("Dana Nurlanovna", "1990-04-12", "KZ", "G12345678")
            giver_id = (await giver.me()).id
            await platform.add_contact(giver_id, taker)
            item = await platform.issue_item(edition.id, giver_id, order_id="order-given")
            await giver.gift_item(item.serial, taker)  # refused unless the form above checked the taker
            return item.serial

    serial = asyncio.run(give())
    run_until(app, lambda: any(item[0] == serial for item in app.deals.collectibles), what="the pushed list")
    run_until(app, lambda: "gave you a certificate" in app.hud.toast["text"], what="the toast")
    assert "Dana Giver gave you a certificate: " in app.hud.toast["text"]  # named as the bank names the contact
    assert f"No. {serial}. I shows it." in app.hud.toast["text"]
    save_shot(app, "certificate-given-toast")
    app.messenger.send("i")


def test_buys_a_product_end_to_end_and_a_refusal_says_why(app, server, scratch):
    join(app, server, "Shopper")
    v = app.visit
    run_until(app, lambda: v.credential is not None and v.balance is not None, what="the bank account")
    wallet_file = scratch / "config" / "wallet.json"
    assert stat.S_IMODE(os.stat(wallet_file).st_mode) == 0o600
    assert v.credential.token not in app.hud.wallet_text.getText()
    before = v.balance
    app.open_catalogue(BOOTH)
    run_until(app, lambda: BOOTH in v.stock, what="the stock")
    left = v.stock[BOOTH]["KZ-HONEY-500"]
    app.buy("KZ-HONEY-500")
    assert app.hud.confirming and "KZT 4,500.00" in app.hud.confirm_text.getText()
    assert v.checkout.confirming is not None and not v.checkout.busy  # nothing sent before the yes
    app.messenger.send("enter")
    run_until(app, lambda: v.checkout.current.finished, 30, "the receipt")
    done = v.checkout.current
    assert done.stage is Stage.DONE, done.message
    assert done.receipt.product_name == "Altai mountain honey, 500 g" and done.receipt.currency == "KZT"
    run_until(app, lambda: v.balance != before, what="the new balance")
    run_until(app, lambda: any(sku == "KZ-HONEY-500" for _b, sku, _n, _q in v.inventory), what="the inventory")
    app.messenger.send("i")  # the purchases panel: what you hold, then the receipt kept on disk
    run_until(app, lambda: done.receipt.order_id in app.hud.inventory_text.getText(), 10, "the receipt in the I panel")
    assert "KZT 4,500.00" in app.hud.inventory_text.getText()
    kept = app.orders.receipts(server.url)[0]
    assert (kept.order_id, kept.intent_id) == (done.receipt.order_id, done.receipt.intent_id)
    assert abs(kept.received_at - time.time()) < 60  # a date, not the server's monotonic settled_at
    assert stat.S_IMODE(os.stat(wallet_file.with_name("orders.json")).st_mode) == 0o600
    app.step(2)
    save_shot(app, "purchases-receipts")
    app.messenger.send("i")
    run_until(app, lambda: v.stock[BOOTH]["KZ-HONEY-500"] == left - 1, what="the stock to go down")
    run_until(app, lambda: app.own_price(BOOTH, "KZ-HONEY-500").startswith("≈ USD "), what="the FX quote")
    # felt slippers cost about 25 USD; what is left of the 20 USD welcome money is not enough
    felt = v.stock[BOOTH]["KZ-FELT-SLIP"]
    app.buy("KZ-FELT-SLIP")
    app.confirm_purchase(True)
    run_until(app, lambda: v.checkout.current.finished, 30, "the refusal")
    assert v.checkout.current.stage is Stage.FAILED
    assert "not enough money" in v.checkout.current.message
    asked = [0.0]

    def released() -> bool:
        if time.monotonic() - asked[0] > 0.3:
            asked[0] = time.monotonic()
            app.command(lambda core: core.query_stock(BOOTH))
        return v.stock[BOOTH]["KZ-FELT-SLIP"] == felt
    run_until(app, released, 15, "the stock to be released")


def test_a_live_edit_of_a_tagline_reaches_the_open_card_within_2_s(app, tmp_path):
    """Issue 13 defect 6: the exhibitor saves the booth file, the visitor standing at the
    booth reads the new tagline on the card, in the catalogue and on the booth's fascia."""
    world = tmp_path / "expo"
    shutil.copytree(default_expo_path(), world)
    with LocalServer(load_expo(world), ServerConfig(port=0, world=world, data_dir=tmp_path / "server")) as srv:
        join(app, srv, "Live Reader")
        booth = app.visit.expo.booth(BOOTH)
        app.autopilot = Autopilot([entrance(booth, 1.5), entrance(booth, -1.5)])
        run_until(app, lambda: app.autopilot.done and app.visit.near == BOOTH, 40, "the walk to the booth")
        app.autopilot = None
        app.step(2)
        assert app.hud.card_tagline.getText() == booth.tagline
        app.open_catalogue(BOOTH)
        booth_file = world / "booths" / f"{BOOTH}.toml"
        text = booth_file.read_text()
        booth_file.write_text(text.replace(f'tagline = "{booth.tagline}"', 'tagline = "Fresh from the Altai today"'))
        edited = time.monotonic()
        run_until(app, lambda: app.hud.card_tagline.getText() == "Fresh from the Altai today", 2.0, "the new tagline")
        assert time.monotonic() - edited < 2.0
        assert "Fresh from the Altai today" in app.hud.cat_sub.getText()
        assert app.visit.thread.core.expo.booth(BOOTH).tagline == "Fresh from the Altai today"
        assert "Fresh from the Altai today" in {label.text for label in app.visit.hall_scene.layout.labels}  # the fascia
        app.close_catalogue()


def span(app: ExpoApp, widget) -> tuple[float, float, float, float]:
    """A panel's frame on the screen (left, right, bottom, top, in the HUD's units)."""
    left, right, bottom, top = widget.getBounds()
    x, z, sx, sz = (widget.getX(app.hud.root), widget.getZ(app.hud.root), widget.getSx(app.hud.root), widget.getSz(app.hud.root))
    return x + left * sx, x + right * sx, z + bottom * sz, z + top * sz


def save_shot(app: ExpoApp, name: str) -> Path | None:
    """A screenshot for a person to look at, when EXPO_SCREENSHOTS names a directory."""
    folder = os.environ.get("EXPO_SCREENSHOTS")
    if not folder:
        return None
    from panda3d.core import Filename

    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    app.step(2)
    app.win.saveScreenshot(Filename.fromOsSpecific(str(path)))
    return path


def big_catalogue_world(root: Path, products: int = 12) -> Path:
    """The default expo with the honey booth selling ``products`` things."""
    world = root / "expo"
    shutil.copytree(default_expo_path(), world)
    booth_file = world / "booths" / f"{BOOTH}.toml"
    extra = "".join(f'''
[[catalogue]]
sku = "KZ-EXTRA-{i:02d}"
name = "Extra jar number {i}"
description = "Jar {i} of the autumn harvest."
price = "{1000 + i}"
stock = 5
max_per_visitor = 1
display = {{ primitive = "cylinder", colour = "#f0a30a", scale = 0.4 }}
image = "products/kz-honey-500.png"
''' for i in range(products - 4))
    booth_file.write_text(booth_file.read_text() + extra)
    return world


def test_the_catalogue_scrolls_past_a_page_and_shows_what_the_world_files_say(app, tmp_path):
    world = big_catalogue_world(tmp_path)
    expo = load_expo(world)
    with LocalServer(expo, ServerConfig(port=0, world=world, data_dir=tmp_path / "server")) as srv:
        join(app, srv, "Browser")
        v = app.visit
        greeted = time.monotonic() + 1.0  # nothing is asked of the bank this server has not: no error greets the visitor
        run_until(app, lambda: time.monotonic() > greeted or not app.hud.toast.isHidden())
        assert app.hud.toast.isHidden() or "bank" not in app.hud.toast["text"], app.hud.toast["text"]
        app.open_catalogue(BOOTH)
        run_until(app, lambda: BOOTH in v.stock, what="the stock")
        booth = expo.booth(BOOTH)
        skus = [pr.sku for pr in booth.catalogue]
        assert len(skus) == 12 and app.hud.shown_skus == skus[:4]
        about = app.hud.cat_about.getText()
        assert booth.description in about and "Staff: Aigerim Nurlanovna (Beekeeper), Daniyar Seitkali" in about
        rows = app.hud.catalogue_rows
        assert rows[0].description == booth.catalogue[0].description and rows[0].image.endswith("kz-honey-500.png")
        assert rows[0].limit == "limit 6 each"  # shown before anyone is refused
        assert not rows[0].can_buy and rows[0].blocked == "purchases are off on this server"
        assert "1–4 of 12" == app.hud.cat_page.getText()
        save_shot(app, "catalogue-page-1")
        app.messenger.send("page_down")
        app.messenger.send("page_down")
        assert app.hud.shown_skus == skus[8:12] and app.hud.cat_page.getText() == "9–12 of 12"
        app.messenger.send("page_down")  # past the end: stays
        assert app.hud.shown_skus == skus[8:12]
        app.messenger.send("wheel_up")
        assert app.hud.shown_skus == skus[4:8]
        save_shot(app, "catalogue-page-2")
        other = next(b for b in expo.booths_in(booth.hall) if b.id != BOOTH and len(b.catalogue) > 1)
        app.open_catalogue(other.id)  # another booth starts at its first product
        assert app.hud.shown_skus == [pr.sku for pr in other.catalogue[:4]]
        app.close_catalogue()


def test_pop_ups_fit_their_text_and_old_failures_do_not_come_back(app, server):
    join(app, server, "Reader")
    v = app.visit
    long = "Receipt: 1 × Hand-knotted Karabakh wool carpet, 2 × 3 m, with a certificate of origin — AZN 8,540.00 " * 2
    app.hud.show_toast(long, time.monotonic(), 5.0)
    app.hud.show_banner("Connection lost — the server at ws://127.0.0.1:8765/ does not answer; reconnecting in 8 s…")
    width = 2 * app.getAspectRatio()  # aspect2d units across the window
    for popup in (app.hud.toast, app.hud.banner):
        left, right, bottom, top = popup.getBounds()
        assert right - left < width * 0.95, popup  # wrapped, not spilling off the window
        assert top - bottom > 0.12  # several lines, inside the frame
    save_shot(app, "pop-ups")
    app.hud.hide_toast()
    app.hud.show_banner(None)
    run_until(app, lambda: v.credential is not None, what="the bank account")
    app.open_catalogue(BOOTH)
    run_until(app, lambda: BOOTH in v.stock, what="the stock")
    app.hud.show_toast(long, time.monotonic(), 5.0)  # as a receipt's comes, with the catalogue open: not under it
    toast, catalogue, chat = (span(app, w) for w in (app.hud.toast, app.hud.catalogue, app.hud.chat))
    assert toast[1] <= catalogue[0] and (toast[0] >= chat[1] or toast[2] >= chat[3]), (toast, catalogue, chat)
    save_shot(app, "toast-with-the-catalogue")
    app.hud.hide_toast()
    v.checkout.buy(BOOTH, "KZ-HONEY-500", "Honey", 1)
    app._act(v, v.checkout.on_error("unknown_product", "gone", p.Order.TYPE))
    assert not app.hud.toast.isHidden() and "no longer sold" in app.hud.cat_status.getText()
    app.hud.hide_toast()
    app._act(v, [])  # any later event of the purchase flow
    assert app.hud.toast.isHidden()  # the failure was said once, when it happened
    other = next(b for b in v.expo.booths_in(v.expo.booth(BOOTH).hall) if b.id != BOOTH and b.catalogue)
    app.open_catalogue(other.id)
    assert app.hud.cat_status.getText() == ""  # the honey booth's outcome stays there
    app.close_catalogue()


def test_every_script_of_the_partners_has_glyphs(app, server, capfd):
    from client.desktop.ui import _text

    capfd.readouterr()
    label = _text(app.aspect2d, app.font, "李伟 محمد Жанар", (0, 0), 0.08)
    label.textNode.generate()
    assert "No definition" not in capfd.readouterr().err
    label.destroy()


def test_people_in_view_counts_in_words():
    from client.desktop.app import people_in_view

    assert people_in_view(1) == "1 visitor in view" and people_in_view(2) == "2 visitors in view"


@pytest.mark.slow
def test_the_booth_flag_walks_the_visitor_to_the_booth_then_hands_back_the_keys(app, server):
    """`expo-client --booth ID`, the console directory's "walk me there"."""
    app.walk_to = BOOTH
    try:
        join(app, server, "Directed")
        core = app.visit.thread.core
        run_until(app, lambda: app.autopilot is not None, 10, "the walk to start")
        run_until(app, lambda: app.autopilot is None, 40, "the walk to end")
        run_until(app, lambda: not core.predictor.pending, what="the last ack")
        at = (core.own.state.x / 100, core.own.state.y / 100)
        assert math.dist(at, entrance(app.visit.expo.booth(BOOTH), 1.0)) < 0.8, at  # where walk_to_booth goes
    finally:
        app.walk_to = None


def test_standing_still_the_client_sleeps_between_frames(app, server):
    from client.desktop.app import IDLE_AFTER, IDLE_FPS

    join(app, server, "Idler")
    app.keys.clear()
    started = time.monotonic()
    run_until(app, lambda: time.monotonic() - started > IDLE_AFTER + 0.5, what="standing still")
    frames, started = 0, time.monotonic()
    while time.monotonic() - started < 2.0:
        app.step()
        frames += 1
    assert frames <= 2.0 * IDLE_FPS * 1.25, frames  # not as many frames as the renderer can draw
    app.messenger.send("w")  # a key: full speed again at once
    app.step(2)
    app.messenger.send("w-up")
    assert app.frame_cap == app.max_fps


def _window_rect(app: ExpoApp, node) -> tuple[int, int, int, int]:
    """A DirectGUI widget's frame in window pixels: left, top, right, bottom."""
    from panda3d.core import Point3

    left, right, bottom, top = node.getBounds()
    low = app.render2d.getRelativePoint(node, Point3(left, 0, bottom))
    high = app.render2d.getRelativePoint(node, Point3(right, 0, top))
    w, h = app.win.getXSize(), app.win.getYSize()
    return (int((low.x + 1) / 2 * w), int((1 - high.z) / 2 * h), int((high.x + 1) / 2 * w), int((1 - low.z) / 2 * h))


def _luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour in 0..1."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_the_keys_hint_reads_at_least_4_5_to_1_over_the_floor(app, server):
    from panda3d.core import PNMImage

    join(app, server, "Hint Reader")
    app.step(3)
    left, top, right, bottom = _window_rect(app, app.hud.help)
    pnm = PNMImage()
    app.win.getScreenshot().store(pnm)
    values = sorted(_luminance(pnm.getXel(x, y)) for x in range(max(left, 0), min(right, pnm.getXSize()))
                    for y in range(max(top, 0), min(bottom, pnm.getYSize())))
    text, ground = values[int(len(values) * 0.99)], values[len(values) // 2]  # the glyphs' cores, the panel
    contrast = (max(text, ground) + 0.05) / (min(text, ground) + 0.05)
    assert contrast >= 4.5, contrast
    save_shot(app, "keys-hint")


def test_a_larger_text_size_grows_every_panel_and_keeps_them_on_screen(app, server):
    join(app, server, "Large Print")
    v = app.visit
    app.open_catalogue(BOOTH)
    run_until(app, lambda: BOOTH in v.stock, what="the stock")
    panels = [app.hud.wallet, app.hud.place, app.hud.help, app.hud.catalogue]  # the chat narrows: see below
    before = [_window_rect(app, node) for node in panels]
    app.set_text_scale(1.4)
    app.step(2)
    try:
        w, h = app.win.getXSize(), app.win.getYSize()
        for node, (l0, _, r0, _) in zip(panels, before, strict=True):
            left, top, right, bottom = _window_rect(app, node)
            grown = 1.4 if node is not app.hud.catalogue else (2.0 - 0.26 - 0.04) / 1.5  # as far as it fits
            assert (right - left) == pytest.approx((r0 - l0) * grown, abs=3), node
            assert left >= -1 and top >= -1 and right <= w + 1 and bottom <= h + 1, node
        save_shot(app, "text-size-1.4")
    finally:
        app.set_text_scale(1.0)
        app.close_catalogue()


@pytest.mark.parametrize("scale", [1.0, 1.4, 1.8])
def test_at_any_text_size_the_booth_card_the_chat_and_the_key_help_do_not_cover_each_other(app, server, scale):
    """They grow from their own corners: from 1.3x the card covered the chat's lines and the
    key help the card's last line ("Press E to open the catalogue")."""
    join(app, server, "Wide Print")
    app.hud.show_card("Altai Bee Farms", "Kazakhstan", "Wildflower honey from the Kazakh Altai",
                      "Press E to open the catalogue")
    app.set_text_scale(scale)
    app.step(2)
    try:
        w, h = app.win.getXSize(), app.win.getYSize()
        rects = {name: _window_rect(app, getattr(app.hud, name)) for name in ("card", "chat", "help")}
        for name, (left, top, right, bottom) in rects.items():
            assert left >= -1 and top >= -1 and right <= w + 1 and bottom <= h + 1, (name, rects)
        for a, b in (("card", "chat"), ("card", "help"), ("chat", "help")):
            (l1, t1, r1, b1), (l2, t2, r2, b2) = rects[a], rects[b]
            assert r1 <= l2 or r2 <= l1 or b1 <= t2 or b2 <= t1, (a, b, rects)
        save_shot(app, f"bottom-row-{scale}")
    finally:
        app.hud.show_card(None)
        app.set_text_scale(1.0)


def test_the_directory_finds_a_booth_by_product_and_walks_there(app, server):
    join(app, server, "Finder")
    v = app.visit
    app.messenger.send("f")
    assert app.hud.directory_open and app.typing
    # Tab steps the category filter: drinks, then only drinks booths are listed
    for _step in range(2):
        app.messenger.send("tab")
    assert "drinks" in app.hud.directory_filter.getText()
    shown = [b["text"] for b in app.hud.directory_rows if not b.isHidden()]
    drinks = {b.exhibitor for b in v.expo.booths if b.category is Category.DRINKS}
    assert shown and all(any(t.startswith(name) for name in drinks) for t in shown), shown
    app.step(2)
    save_shot(app, "directory-drinks")
    for _step in range(len(Category) - 1):  # on round to every kind again
        app.messenger.send("tab")
    assert "all kinds" in app.hud.directory_filter.getText()
    app._directory_search("felt slippers")  # what typing in the box calls, per key
    assert app.hud.directory_rows[0]["text"].startswith("Altai Bee Farms")
    save_shot(app, "directory")
    app._directory_pick(0)
    assert not app.hud.directory_open and not app.typing
    run_until(app, lambda: app.autopilot is None, 40, "the walk")
    run_until(app, lambda: v.near == BOOTH, 5, "the booth")
    app.messenger.send("w")  # a key takes over at once
    app.messenger.send("w-up")


def test_walk_me_there_to_a_booth_in_another_hall_goes_around_the_booths_and_through_the_portal(app, server):
    """From the entrance, the straight line to the maritime hall's portal runs through the
    bank's booth: the walk plans round it, crosses, and plans the next hall's leg too."""
    join(app, server, "Far Walker")
    v = app.visit
    app.messenger.send("f")
    app._directory_search("dates")
    assert app.hud.directory_rows[0]["text"].startswith("Al-Ahsa Dates & Coffee")
    app._directory_pick(0)
    maritime = next(i for i, h in enumerate(v.expo.halls) if h.id == "maritime")
    closest = [math.inf]  # the server's word on where we are, to the nearest booth wall of our hall

    def walking(done) -> bool:
        own, hall = v.thread.core.own, v.expo.halls[v.hall_index].id
        if own is not None:
            x, y = own.state.x / 100, own.state.y / 100
            closest[0] = min(closest[0], *(math.hypot(max(x0 - x, 0, x - x1), max(y0 - y, 0, y - y1))
                                           for b in v.expo.booths_in(hall)
                                           for x0, y0, x1, y1 in booth_walls(b.footprint.min_x, b.footprint.min_y,
                                                                             b.footprint.max_x, b.footprint.max_y, b.facing)))
        return done()
    run_until(app, lambda: walking(lambda: v.hall_index == maritime), 40, "the portal")
    run_until(app, lambda: walking(lambda: app.autopilot is None), 40, "the walk")
    assert v.near == "sa-alahsa-dates"
    assert closest[0] > AVATAR_RADIUS + 0.05, closest  # round the booths, never pressed against a wall
    save_shot(app, "walked-to-another-hall")


def test_people_near_you_nearest_first_with_staff_marked():
    from client.desktop.app import people_near

    rows = people_near(0.0, 0.0, [("Far", None, 30.0, 0.0), ("Aigerim", "kz-altai-honey", 3.0, 4.0)],
                       {"kz-altai-honey": "Altai Bee Farms"})
    assert rows == ["Aigerim  ·  5 m  ·  staff of Altai Bee Farms", "Far  ·  30 m"]
    many = people_near(0.0, 0.0, [(f"P{i}", None, float(i), 0.0) for i in range(20)], {}, limit=3)
    assert many[-1] == "… and 17 more" and len(many) == 4


def test_the_minimap_and_the_hall_map_show_where_you_are(app, server):
    join(app, server, "Mapper")
    app.step(3)
    mini = app.hud.minimap
    assert mini.visible and mini.map.hall.id == app.visit.expo.halls[app.visit.hall_index].id
    own = app.visit.thread.scene().own
    x0, y0 = mini.origin
    mx, my = mini.map.point(own.x, own.y)
    assert (mini.me.getX(), mini.me.getZ()) == pytest.approx((x0 + mx, y0 + my))
    # the booths are one draw: two triangles each, in the booth's colour
    booths = mini.frame.find("booths").findAllMatches("**/+GeomNode")
    drawn = mini.map.booths(app.visit.expo, names=False)
    assert booths.getNumPaths() == 1 and booths[0].node().getGeom(0).getPrimitive(0).getNumPrimitives() == 2 * len(drawn)
    colours = GeomVertexReader(booths[0].node().getGeom(0).getVertexData(), "color")
    for booth in drawn:
        assert tuple(colours.getData4())[:3] == pytest.approx(booth.colour, abs=1e-6)
        for _ in range(3):
            colours.getData4()
    # everyone in view is a white dot where they stand, all in one draw
    others = [(1.0 + i * 0.37, 2.0 + i * 0.21) for i in range(150)]
    mini.update((own.x, own.y), others)
    people = mini.frame.find("people")
    assert people.findAllMatches("**/+GeomNode").getNumPaths() == 1 and mini.dots is not None
    vertices = mini.dots.template.vertex_count
    vdata = people.find("**/+GeomNode").node().getGeom(0).getVertexData()
    assert vdata.getNumRows() == vertices * len(others)
    reader, to_frame = GeomVertexReader(vdata, "vertex"), people.getMat(mini.frame)
    for x, y in others:
        corners = [to_frame.xformPoint(reader.getData3()) for _ in range(vertices)]
        px, py = mini.map.point(x, y)
        assert sum(c.x for c in corners) / vertices == pytest.approx(x0 + px, abs=1e-5)
        assert sum(c.z for c in corners) / vertices == pytest.approx(y0 + py, abs=1e-5)
    app.messenger.send("m")
    app.step(2)
    assert app.hud.bigmap.visible
    save_shot(app, "hall-map")
    app.messenger.send("m")
    assert not app.hud.bigmap.visible


def test_the_interface_speaks_the_language_chosen_and_remembers_it(app, tmp_path):
    from client.desktop.app import people_in_view
    from client.desktop.i18n import SPEAKER, Preferences

    prefs = Preferences(tmp_path / "preferences.json")
    app.leave()
    app.preferences = prefs
    try:
        app.set_language("ru")
        assert prefs.load() == {"language": "ru"}
        assert [people_in_view(n) for n in (1, 3, 5)] == [
            "1 посетитель в поле зрения", "3 посетителя в поле зрения", "5 посетителей в поле зрения"]
        app.set_language("zh_Hans")
        assert "服务器" in [c.getText() for c in app.connect_screen.frame.findAllMatches("**/+TextNode")
                            for c in [c.node()]] or app.hud.card_hint.getText() == "按 E 打开商品目录"
        assert app.hud.card_hint.getText() == "按 E 打开商品目录"
        app.step(2)
        save_shot(app, "connect-zh")
    finally:
        app.set_language("en")
        app.preferences = None
    assert SPEAKER.language == "en" and people_in_view(1) == "1 visitor in view"


def test_every_language_name_on_the_connect_screen_fits_its_button(app):
    app.leave()
    buttons = app.connect_screen.languages
    assert set(buttons) == {"en", "zh_Hans", "ms", "ru"}
    for code, button in buttons.items():
        text = button.component("text0").node()  # centred on the button
        x0, x1, _z0, _z1 = button["frameSize"]
        assert text.getWidth() * button["text_scale"][0] < x1 - x0, (code, text.getWidth() * button["text_scale"][0])


def test_a_booth_reads_in_the_visitors_language_where_its_world_file_has_it(app, server):
    """In Chinese, the Altai honey booth's card and catalogue use its [translations.zh_Hans]."""
    booth = load_expo(default_expo_path()).booth(BOOTH)
    exhibitor, tagline, about = booth.text_in("zh_Hans")
    assert exhibitor != booth.exhibitor and tagline != booth.tagline  # the packaged world file has them
    app.leave()
    app.set_language("zh_Hans")
    app.walk_to = BOOTH
    try:
        join(app, server, "Li Wei")
        run_until(app, lambda: app.autopilot is not None, 10, "the walk to start")
        run_until(app, lambda: app.autopilot is None, 40, "the walk to end")
        run_until(app, lambda: app.hud.card_tagline.getText() == tagline, 5, "the card in Chinese")
        run_until(app, lambda: app.hud.wallet_title.getText().startswith("余额  ·  acct"), 10, "the balance's title in Chinese")
        app.hud.set_inventory([])
        assert "暂无。" in app.hud.inventory_text.getText()  # an empty panel says so in Chinese
        app.hud.set_inventory(None)
        app.messenger.send("e")
        run_until(app, lambda: app.visit.catalogue == BOOTH, 5, "the catalogue")
        assert app.hud.cat_title.getText() == exhibitor
        assert tagline in app.hud.cat_sub.getText()
        assert {exhibitor, tagline} <= {label.text for label in app.visit.hall_scene.layout.labels}  # the fascia
        app.step(2)
        save_shot(app, "booth-catalogue-zh")
        app.messenger.send("e")
    finally:
        app.walk_to = None
        app.leave()
        app.set_language("en")


def test_the_hint_card_shows_the_keys_once_and_esc_puts_it_away_for_good(app, server, tmp_path):
    from client.desktop.hintcard import SEEN
    from client.desktop.i18n import Preferences

    app.leave()
    app.preferences = Preferences(tmp_path / "preferences.json")
    try:
        join(app, server, "Newcomer")
        run_until(app, lambda: app.hint_card is not None and app.hint_card.visible, 5, "the hint card")
        app.hud.show()
        app.step(2)
        save_shot(app, "hint-card")
        app.keys.clear()
        app.messenger.send("w")  # the card does not take the keys: a newcomer walks with it open
        assert app.keys.get("forward") and app.hint_card.visible
        app.messenger.send("w-up")
        app.messenger.send("escape")
        assert not app.hint_card.visible and app.preferences.load()[SEEN] is True
        app.leave()
        join(app, server, "Newcomer")
        app.step(5)
        assert app.hint_card is None or not app.hint_card.visible  # remembered: not shown again
    finally:
        app.leave()
        app.preferences = None


def _peer(server: LocalServer, name: str):
    """Another visitor, a plain client core on its own thread, with its card set."""
    from client import events as ev
    from client.core import ClientCore
    from client.threaded import ClientThread

    peer = ClientThread(ClientCore(name, BOT_COLOUR, 1), server.url)
    peer.start()
    seen: list = []
    deadline = time.monotonic() + 20
    while not any(isinstance(e, ev.Joined) for e in seen):
        assert time.monotonic() < deadline, f"{name} never joined"
        seen += peer.poll_events()
        time.sleep(0.01)
    peer.command(lambda core: core.set_card(name, "Bukhara Silk", "UZ", "seller", "uz", "Asia/Tashkent",
                                            "bob@bukhara.example", None))
    return peer


def test_cards_are_shown_only_after_both_consent_and_a_report_reaches_the_organisers(app, server, scratch):
    from client import events as ev
    from client.desktop.cards import MyCard
    from server.moderation import Moderation

    moderation = Moderation(scratch / "moderation.sqlite3", time.time)
    server.server.sim.moderation = moderation  # as the admin console does
    app.set_max_fps(0)
    app.set_my_card(MyCard("Aigerim", "Altai Honey", "KZ", "buyer", "ru", "Asia/Almaty", "aigerim@altai.example"))
    join(app, server, "Aigerim")
    bob = _peer(server, "Bobur")
    bob_events: list = []

    def pump() -> None:
        app.step()
        bob_events.extend(bob.poll_events())

    def wait(done, what: str) -> None:
        deadline = time.monotonic() + 20
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            pump()
            time.sleep(0.005)

    try:
        v = app.visit
        app.messenger.send("p")
        wait(lambda: (app._show_people(v) or True) and any(
            o.info.name == "Bobur" and o.info.entity in v.people for o in (v.thread.scene().others)), "Bobur in the list")
        bob_entity = next(o.info.entity for o in v.thread.scene().others if o.info.name == "Bobur")
        while v.people[v.selected] != bob_entity:
            app.messenger.send("]")
        assert "▶ Bobur" in app.hud.inventory_text.getText()
        # Aigerim offers (O), Bobur declines: no card either way, and she is told
        app.messenger.send("o")
        wait(lambda: any(isinstance(e, ev.CardOffered) for e in bob_events), "the offer at Bobur")
        offer = next(e.message for e in bob_events if isinstance(e, ev.CardOffered))
        assert offer.name == "Aigerim"
        bob.command(lambda core: core.answer_card(offer.exchange_id, False))
        wait(lambda: app.hud.toast_until and "declin" in app.hud.toast["text"].lower(), "the decline toast")
        assert not v.cards.cards and not any(isinstance(e, ev.CardShown) for e in bob_events)
        # Bobur offers: a prompt, nothing shown until she presses Y
        own_entity = next(o.info.entity for o in bob.scene().others if o.info.name == "Aigerim")
        bob.command(lambda core: core.offer_card(own_entity))
        wait(lambda: app.hud.prompt_text is not None, "the offer prompt")
        assert "Bobur" in app.hud.prompt_text and "Y accept" in app.hud.prompt_text
        save_shot(app, "card-offer-prompt")
        for _ in range(20):
            pump()
        assert not v.cards.cards and not any(isinstance(e, ev.CardShown) for e in bob_events)
        app.messenger.send("y")
        wait(lambda: v.cards.cards and any(isinstance(e, ev.CardShown) for e in bob_events), "both cards shown")
        assert app.hud.prompt_text is None
        assert v.cards.cards[0][1][:4] == ("Bobur", "Bukhara Silk", "UZ", "seller")
        shown_to_bob = next(e.message for e in bob_events if isinstance(e, ev.CardShown))
        assert shown_to_bob.card[:4] == ("Aigerim", "Altai Honey", "KZ", "buyer")
        assert app.hud.inventory_title == "Cards" and "Bukhara Silk" in app.hud.inventory_text.getText()
        save_shot(app, "card-shown")
        # R on the people list, a reason by number: the report is in the organisers' list
        app.messenger.send("p")
        v.selected = v.people.index(bob_entity)
        app._show_people(v)
        app.messenger.send("r")
        assert "1  spam" in app.hud.prompt_text
        app.messenger.send("1")  # spam; a purchase row would have been 1 without the question
        assert "Reported" in app.hud.toast["text"] and app.hud.prompt_text is None

        async def filed():
            return moderation.reports()

        wait(lambda: server.call(filed()), "the report at the server")
        (report,) = server.call(filed())
        assert (report.reporter, report.visitor, report.reason) == ("Aigerim", "Bobur", "spam")
    finally:
        bob.stop()
        server.server.sim.moderation = None
        app.leave()


def walk_thread_to(thread, expo, booth_id: str, timeout: float = 40.0) -> None:
    """Walk a plain client (another visitor, staff) into a booth of its hall, around the booths."""
    from client.desktop.nearby import entrance
    from client.pathfind import plan

    booth = expo.booth(booth_id)
    deadline = time.monotonic() + timeout
    while (scene := thread.scene()) is None:
        assert time.monotonic() < deadline, "no scene"
        time.sleep(0.05)
    hall = next(h for h in expo.halls if h.id == booth.hall)
    walk_thread(thread, plan(expo, hall, (scene.own.x, scene.own.y), entrance(booth, -1.0)), timeout)


def test_books_a_meeting_at_a_booth_the_reminder_walks_there_then_moves_and_cancels_it(app, tmp_path):
    """B at a booth lists its free times, a number books one, and the reminder's G walks you
    back; there B lists it again (from the server), V and a number move it, X and Y cancel it."""
    import secrets

    from client import events as ev
    from client.core import ClientCore
    from client.desktop.cards import MyCard
    from client.threaded import ClientThread
    from server.staff import issue_pass

    secret = secrets.token_urlsafe(16)
    config = ServerConfig(port=0, data_dir=tmp_path / "server", staff_secret=secret)  # no bank: the module's server hears its webhooks
    with LocalServer(default_expo(), config) as staffed:
        host = ClientThread(ClientCore("Dana Host", BOT_COLOUR, 1, staff_pass=issue_pass(secret, BOOTH)), staffed.url)
        host.start()
        host_events: list = []
        try:
            deadline = time.monotonic() + 20
            while not any(isinstance(e, ev.Joined) for e in host_events):
                assert time.monotonic() < deadline, "the host never joined"
                host_events += host.poll_events()
                time.sleep(0.01)
            starts = time.time() + 240  # within the reminder's lead: it comes at the next sweep
            host.command(lambda core: core.publish_slot(starts, 30))
            host.command(lambda core: core.publish_slot(starts + 3600, 30))
            walk_thread_to(host, default_expo(), BOOTH)  # on duty: at the booth
            app.set_max_fps(0)
            app.walk_to = BOOTH
            join(app, staffed, "Aigerim")
            v = app.visit
            run_until(app, lambda: v.near == BOOTH and app.autopilot is None, 40, "at the booth")
            app.walk_to = None
            run_until(app, lambda: "On duty: Dana Host" in app.hud.card_tagline.getText(), 10, "the staff on the card")
            save_shot(app, "booth-card-on-duty")

            # a click on the host's figure: its name, whose staff, and Offer card
            dana = next(o for o in v.thread.scene().others if o.info.name == "Dana Host")
            w, h = app.win.getXSize(), app.win.getYSize()
            assert app.pick_at(8, h - 8) is None and app.offer_panel is None  # the floor: nothing
            pixel = app.project((dana.pose.x, dana.pose.y, 1.1))
            assert pixel is not None and 0 <= pixel[0] < w and 0 <= pixel[1] < h, pixel
            assert app.pick_at(*pixel) == dana.info.entity
            shown = [n.node().getText() for n in app.offer_panel.frame.findAllMatches("**/+TextNode")]
            assert "Dana Host" in shown and "staff of Altai Bee Farms" in shown, shown
            assert "Offer card" in app.offer_panel.button["text"]
            app.step(2)
            save_shot(app, "avatar-clicked")
            app.my_card = None  # (the module's app may have one from another test)
            app.messenger.send("o")  # no card yet: the editor opens instead of an empty offer
            assert app.card_editor is not None and app.offer_panel is None
            app.messenger.send("escape")
            assert app.card_editor is None
            app.set_my_card(MyCard("Aigerim", "Altai Honey", "KZ", "buyer", "ru", "Asia/Almaty"))
            pixel = app.project((dana.pose.x, dana.pose.y, 1.1))  # the camera may still be easing round to the booth
            assert app.pick_at(*pixel) == dana.info.entity
            app.messenger.send("o")
            assert app.offer_panel is None and "Card offered" in app.hud.toast["text"]
            deadline = time.monotonic() + 20
            while not any(isinstance(e, ev.CardOffered) and e.message.name == "Aigerim" for e in host_events):
                assert time.monotonic() < deadline, "the offer never reached the host"
                app.step()
                host_events += host.poll_events()
            app.messenger.send("b")
            run_until(app, lambda: v.meetings is not None and len(v.meetings.free) == 2, 20, "the booth's slots")
            text = app.hud.inventory_text.getText()
            assert app.hud.inventory_title == "Meetings" and "Dana Host" in text and "30 min" in text, text
            app.messenger.send("1")
            run_until(app, lambda: any(b.status == "booked" for b in v.bookings.values()), 20, "the booking")
            assert "Meeting booked with Dana Host" in app.hud.toast["text"]
            run_until(app, lambda: v.reminded is not None, 40, "the reminder")
            assert "G walk me there" in app.hud.prompt_text
            save_shot(app, "meeting-reminder")
            # elsewhere in the hall, then G walks back to the booth
            here = v.expo.booth(BOOTH)
            other = next(b for b in v.expo.booths if b.hall == here.hall and b.id != BOOTH)
            app.walk_to_booth(v, other.id, v.hall_index)
            run_until(app, lambda: app.autopilot is None, 40, "the walk away")
            assert v.near != BOOTH and v.reminded is not None
            app.messenger.send("g")
            assert app.autopilot is not None and app.hud.prompt_text is None
            run_until(app, lambda: app.autopilot is None, 40, "the walk to the meeting")
            assert v.near == BOOTH
            host_events += host.poll_events()
            assert any(isinstance(e, ev.BookingUpdated) and e.message.visitor_name == "Aigerim" for e in host_events)

            # the panel anew, as after a restart: the server lists our booking with the free time
            if app._meetings_open(v):
                app.messenger.send("b")
            v.bookings.clear()
            app.messenger.send("b")
            run_until(app, lambda: v.meetings.mine and v.meetings.free, 20, "our meeting in the list")
            text = app.hud.inventory_text.getText()
            assert "Your meetings here:" in text and "X cancel" in text, text
            app.messenger.send("v")
            assert "Move your" in app.hud.inventory_text.getText()
            app.messenger.send("1")  # the one free time: an hour later
            run_until(app, lambda: [b.starts_at for b in v.meetings.mine.values()] == [pytest.approx(starts + 3600)],
                      20, "the move")
            assert "Meeting with Dana Host moved to" in app.hud.toast["text"]  # one move, not a cancel and a booking
            save_shot(app, "meeting-moved")
            app.messenger.send("x")
            assert "Cancel your meeting with Dana Host" in app.hud.prompt_text
            save_shot(app, "meeting-cancel-question")
            app.messenger.send("y")
            run_until(app, lambda: not v.meetings.mine, 20, "the cancel")
            assert "cancelled" in app.hud.toast["text"]
            run_until(app, lambda: len(v.meetings.free) == 2, 20, "both times free again")
            host_events += host.poll_events()
            host_saw = [(e.message.starts_at, e.message.status) for e in host_events if isinstance(e, ev.BookingUpdated)]
            later = pytest.approx(starts + 3600)
            assert (later, "booked") in host_saw and (later, "cancelled") in host_saw, host_saw  # the host was told
            host.stop()  # off duty: the card says so without the visitor moving
            run_until(app, lambda: "On duty" not in app.hud.card_tagline.getText(), 20, "the card without the host")
        finally:
            host.stop()
            app.leave()


def test_a_deal_from_request_to_delivery_with_the_deposit_in_escrow_and_a_certificate(app, bank, tmp_path):
    """Q at a booth asks for a quote (a wrong field says which), T lists the deals, Enter accepts the
    quotation after a question that names the deposit, the booth's staff ship, Enter pays the balance;
    Esc on a question moves no money, X cancels; a purchase brings a certificate into the inventory."""
    import secrets
    from dataclasses import replace

    from client import events as ev
    from client.core import ClientCore
    from client.threaded import ClientThread
    from server.staff import issue_pass

    secret = secrets.token_urlsafe(16)
    config = replace(bank.server_config(tmp_path / "server"), webhook_port=None, staff_secret=secret)
    with LocalServer(default_expo(), config) as staffed:
        staffed.call(staffed.server.collectibles.open_edition(BOOTH, "KZ-HONEY-500", 100, "2026-05", "Altai, KZ"))
        staff = ClientThread(ClientCore("Aigerim Staff", BOT_COLOUR, 1, staff_pass=issue_pass(secret, BOOTH)), staffed.url)
        staff.start()
        shipped: list[str] = []

        def ship() -> None:  # the booth's staff confirm the shipment of what is ordered
            for e in staff.poll_events():
                if isinstance(e, ev.DealUpdated) and e.message.state == "ordered" and e.message.deal_id not in shipped:
                    shipped.append(e.message.deal_id)
                    staff.command(lambda core, d=e.message.deal_id: core.confirm_shipment(d))
        try:
            app.set_max_fps(0)
            app.wallet.forget(bank.url)  # a new account with the welcome money, not the earlier shopper's
            app.walk_to = BOOTH
            join(app, staffed, "Dilnoza Buyer")
            v = app.visit
            run_until(app, lambda: v.near == BOOTH and app.autopilot is None, 40, "at the booth")
            app.walk_to = None
            run_until(app, lambda: v.credential is not None and v.balance_minor is not None, 20, "the bank account")
            start_balance = v.balance_minor
            desk = app.deals.desk
            app.messenger.send("q")
            form = app.deals.form
            assert form is not None and app.typing and form.sku == "KZ-HONEY-500"  # the price-listed product first
            form.set_value("qty", "a pallet")
            app.messenger.send("enter")
            assert app.deals.form is form and "Quantity" in form.status.getText()  # said, nothing sent
            form.set_value("qty", "1")
            app.messenger.send("tab")  # to the Incoterm
            app.messenger.send("arrow_right")
            assert form.incoterm == "CFR"
            app.messenger.send("tab")
            form.set_value("destination", "cn")
            assert form.country.getText() == "China"
            save_shot(app, "deal-request-form")
            app.messenger.send("enter")
            assert app.deals.form is None and not app.typing
            run_until(app, lambda: desk.current() is not None and desk.current().state == "quoted", 20, "the quotation")
            deal = desk.current()
            assert (deal.sku, deal.qty, deal.incoterm, deal.destination, deal.currency) == ("KZ-HONEY-500", 1, "CFR", "CN", "KZT")
            text = app.hud.inventory_text.getText()
            assert app.hud.inventory_title == "My deals" and "KZT 4,200.00 a unit" in text and "valid until" in text, text
            assert "lead time 14 days" in text and "Enter accept and pay the deposit" in text, text
            toast = plain(app.hud.toast["text"])  # the deals are open: T would close them, so it does not say T
            assert "Quotation for 1 × Altai mountain honey, 500 g: KZT 4,200.00 a unit." in toast and "T shows" not in toast, toast
            save_shot(app, "deal-quoted")
            app.messenger.send("enter")
            question = app.deals.question
            assert question is not None and "Deposit now: KZT 1,260.00" in question.text.getText()
            run_until(app, lambda: "≈ USD" in question.text.getText(), 10, "the deposit in dollars")
            save_shot(app, "deal-accept-question")
            app.messenger.send("enter")
            run_until(app, lambda: desk.deals[deal.deal_id].state == "ordered", 20, "the purchase order")
            run_until(app, lambda: v.balance_minor < start_balance, 10, "the deposit to leave the account")
            held = staffed.call(staffed.server.deals.bank.get_escrow(desk.deals[deal.deal_id].escrow_id))
            assert (held.status, held.amount, held.currency, held.end_to_end_id) == ("pending", 126000, "KZT", deal.deal_id)
            run_until(app, lambda: (ship(), desk.deals[deal.deal_id].state == "shipped")[1], 20, "the shipment")
            assert "Enter pay the balance" in app.hud.inventory_text.getText()
            after_deposit = v.balance_minor
            app.messenger.send("enter")
            assert "KZT 2,940.00" in app.deals.question.text.getText()
            app.messenger.send("enter")
            run_until(app, lambda: desk.deals[deal.deal_id].state == "delivered", 20, "the delivery")
            run_until(app, lambda: v.balance_minor < after_deposit, 10, "the balance to be paid")
            assert staffed.call(staffed.server.deals.bank.get_escrow(held.id)).status == "posted"
            save_shot(app, "deal-delivered")
            # a second request: no destination is a clear error; Esc on the question moves no money; X cancels
            app.messenger.send("q")
            app.deals.form.set_value("destination", "")  # the card's country, if any, cleared
            app.messenger.send("enter")
            assert "Destination" in app.deals.form.status.getText()
            app.deals.form.set_value("destination", "KZ")
            app.messenger.send("enter")
            run_until(app, lambda: desk.current().deal_id != deal.deal_id and desk.current().state == "quoted", 20,
                      "the second quotation")
            second = desk.current()
            before = v.balance_minor
            app.messenger.send("enter")
            app.messenger.send("escape")
            assert app.deals.question is None and not desk.busy
            app.messenger.send("x")
            assert "Cancel the deal" in app.deals.question.text.getText()
            app.messenger.send("enter")
            run_until(app, lambda: desk.deals[second.deal_id].state == "canceled", 20, "the cancel")
            assert v.balance_minor == before
            app.messenger.send("t")
            assert app.hud.inventory.isHidden()
            # a purchase of the certified honey: its certificate in the inventory
            app.open_catalogue(BOOTH)
            run_until(app, lambda: BOOTH in v.stock, what="the stock")
            app.buy("KZ-HONEY-500")
            app.messenger.send("enter")
            run_until(app, lambda: v.checkout.current.finished, 30, "the receipt")
            assert v.checkout.current.stage is Stage.DONE, v.checkout.current.message
            app.close_catalogue()
            app.messenger.send("i")
            run_until(app, lambda: "Certificates (1)" in app.hud.inventory_text.getText(), 20, "the certificate")
            text = app.hud.inventory_text.getText()
            (serial, *_rest, order_id, url) = app.deals.collectibles[0]
            assert serial in text and "batch 2026-05" in text and "Altai, KZ" in text and order_id in text, text
            assert url.endswith(serial) and "Altai Bee Farms" in text
            save_shot(app, "inventory-certificate")
        finally:
            staff.stop()
            app.leave()
