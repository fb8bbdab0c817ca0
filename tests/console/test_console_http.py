"""The console over real HTTP against a running world server: logins, sessions, CSRF, who
sees what, moderation that reaches real visitors' sockets, booth edits that reach them."""

from __future__ import annotations

import asyncio
import contextlib
import re
import stat
import time
from decimal import Decimal

import pytest
from console_support import Browser, console_url, hello, next_of, none_of, organiser_token, running_server, visitor

import protocol as p
from world import from_manifest

BOOTH = "kz-altai-honey"
COOKIE_NAME = "expo_console="
OTHER = "cn-yunnan-tea"


@pytest.fixture
async def server(tmp_path):
    async with running_server(tmp_path) as srv:
        yield srv


@pytest.fixture
async def organiser(server):
    browser = Browser(console_url(server))
    assert (await browser.login(organiser_token(server))).status_code == 303
    yield browser
    await browser.close()


async def exhibitor_of(server, organiser: Browser, booth: str) -> Browser:
    page = await organiser.post("/organiser/exhibitors", {"booth": booth, "label": "test"})
    token = re.search(r'<code id="issued-token">([^<]+)</code>', page.text)[1]
    browser = Browser(console_url(server))
    assert (await browser.login(token)).headers["location"] == f"/booth/{booth}"
    return browser


async def test_the_organiser_token_is_made_once_private_and_random(tmp_path):
    async with running_server(tmp_path) as first:
        token_file = first.config.data_dir / "console" / "organiser.token"
        token = organiser_token(first)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and len(token) >= 40
    async with running_server(tmp_path / "again") as other:
        assert organiser_token(other) != token  # another expo, another token


async def test_login_cookie_is_httponly_and_strict_and_bad_tokens_are_refused(server):
    browser = Browser(console_url(server))
    try:
        assert (await browser.get("/organiser")).headers["location"].startswith("/login")
        refused = await browser.login("not-the-token")
        assert refused.status_code == 401 and "not valid" in refused.text
        assert COOKIE_NAME not in refused.headers.get("set-cookie", "")  # no session, only a new login form
        accepted = await browser.login(organiser_token(server))
        cookie = accepted.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        page = await browser.get("/organiser")
        assert page.status_code == 200 and "Silk Road Hall" in page.text
        assert page.text.count('<svg class="heatmap"') == len(server.sim.expo.halls)  # one per hall, from the samples
        assert "default-src 'self'" in page.headers["content-security-policy"]
        await browser.post("/logout", {})
        assert (await browser.get("/organiser")).status_code == 303
        forged = await browser.http.post("/login", data={"token": organiser_token(server), "csrf": "x" * 32})
        assert forged.status_code == 403 and "set-cookie" in forged.headers and COOKIE_NAME not in forged.headers["set-cookie"]
        browser.http.cookies.clear()
        cross_site = await browser.http.post("/login", data={"token": organiser_token(server)})  # no cookie, no field
        assert cross_site.status_code == 403
    finally:
        await browser.close()


async def test_login_is_rate_limited_per_address(server):
    guesser = Browser(console_url(server), source="127.0.0.9")
    try:
        statuses = [(await guesser.login(f"guess-{n}")).status_code for n in range(7)]
        assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
        # even the right token waits: a limited address learns nothing
        assert (await guesser.login(organiser_token(server))).status_code == 429
        other = Browser(console_url(server), source="127.0.0.10")
        assert (await other.login(organiser_token(server))).status_code == 303
        await other.close()
    finally:
        await guesser.close()


async def test_an_office_behind_one_address_logs_in_as_often_as_it_needs(server):
    """Only wrong tokens spend attempts: twelve right logins in a row from one address (an
    organiser's team behind one NAT) all get in, and the address may still mistype a few."""
    office = Browser(console_url(server), source="127.0.0.11")
    try:
        assert [(await office.login(organiser_token(server))).status_code for _ in range(12)] == [303] * 12
        assert [(await office.login(f"typo-{n}")).status_code for n in range(6)] == [401] * 5 + [429]
    finally:
        await office.close()


async def test_every_post_needs_the_sessions_csrf_token(server, organiser):
    ws, _ = await visitor(server, "Aru")
    try:
        for path, data in [("/organiser/moderate", {"action": "kick", "name": "Aru", "reason": "x"}),
                           ("/organiser/announce", {"text": "hi"}),
                           ("/organiser/exhibitors", {"booth": BOOTH}),
                           (f"/booth/{BOOTH}", {"tagline": "forged"}),
                           ("/logout", {})]:
            missing = await organiser.post(path, data, csrf=False)
            wrong = await organiser.http.post(path, data={**data, "csrf": "0" * 43})
            assert (missing.status_code, wrong.status_code) == (403, 403), path
        assert "Aru" in {s.name for s in server.sim.sessions.values()}
        assert server.sim.expo.booth(BOOTH).tagline != "forged"
        anonymous = Browser(console_url(server))
        assert (await anonymous.post("/organiser/announce", {"text": "hi", "csrf": organiser.csrf})).status_code == 401
        await anonymous.close()
    finally:
        await ws.close()


# Every endpoint of the console behind a login, with the request that would use it. The test
# below fails for a route missing here, so a new endpoint cannot skip the check.
PUBLIC = {("/", "GET"), ("/login", "GET"), ("/login", "POST"), ("/logout", "POST"), ("/directory", "GET"),
          ("/static/{name}", "GET"), ("/certificates", "GET")}
ORGANISER_ONLY = {
    ("/organiser", "GET"): ("/organiser", {}),
    ("/organiser/live", "GET"): ("/organiser/live", {}),
    ("/organiser/exhibitors", "GET"): ("/organiser/exhibitors", {}),
    ("/organiser/moderate", "POST"): ("/organiser/moderate", {"action": "ban", "name": "Aru", "reason": "y"}),
    ("/organiser/announce", "POST"): ("/organiser/announce", {"text": "free tea"}),
    ("/organiser/exhibitors", "POST"): ("/organiser/exhibitors", {"booth": OTHER}),
    ("/organiser/exhibitors/revoke", "POST"): ("/organiser/exhibitors/revoke", {"digest": "0" * 64}),
    ("/organiser/reports/{report}", "POST"): ("/organiser/reports/1", {}),
    ("/organiser/processes/{process}/dismiss", "POST"): ("/organiser/processes/p1/dismiss", {}),
}
BOOTH_ENDPOINTS = {  # {booth} is filled with the exhibitor's own booth, then with another's
    ("/booth/{booth}", "GET"): ("/booth/{booth}", {}),
    ("/booth/{booth}/orders.csv", "GET"): ("/booth/{booth}/orders.csv", {}),
    ("/booth/{booth}/leads.csv", "GET"): ("/booth/{booth}/leads.csv", {}),
    ("/booth/{booth}", "POST"): ("/booth/{booth}", {"tagline": "hijacked"}),
    ("/booth/{booth}/leads", "POST"): ("/booth/{booth}/leads", {"visitor": "x", "notes": "y"}),
    ("/booth/{booth}/slots", "POST"): ("/booth/{booth}/slots", {"host": "x", "starts": "2030-01-01T10:00", "minutes": "30"}),
    ("/booth/{booth}/editions", "POST"): ("/booth/{booth}/editions", {"sku": "KZ-HONEY-500", "size": "5", "batch": "b",
                                                                     "origin": "o"}),
    **{(f"/booth/{{booth}}/deals/{{deal}}/{step}", "POST"): (f"/booth/{{booth}}/deals/po_x/{step}", {"t0.price": "1"})
       for step in ("quote", "ship", "decline")},
}


async def test_every_endpoint_refuses_another_booths_login(server, organiser):
    routes = {(route.path, method) for route in server._console.console.app.routes for method in route.methods - {"HEAD"}}
    assert routes == PUBLIC | set(ORGANISER_ONLY) | set(BOOTH_ENDPOINTS)  # a new endpoint is listed here too
    aru, _ = await visitor(server, "Aru")
    mine = await exhibitor_of(server, organiser, BOOTH)
    try:
        other_file = server.sim.expo.root / "booths" / f"{OTHER}.toml"
        before = other_file.read_text()
        for (_, method), (path, data) in BOOTH_ENDPOINTS.items():
            own = await (mine.get(path.format(booth=BOOTH)) if method == "GET" else mine.post(path.format(booth=BOOTH), data))
            assert own.status_code in (200, 400, 404), (method, path, own.status_code)  # its own: served, or its form refused
            other = await (mine.get(path.format(booth=OTHER)) if method == "GET" else mine.post(path.format(booth=OTHER), data))
            assert other.status_code == 403 and "only your own booth" in other.text, (method, path)
        for (_, method), (path, data) in ORGANISER_ONLY.items():
            response = await (mine.get(path) if method == "GET" else mine.post(path, data))
            assert response.status_code == 403 and "for the organiser only" in response.text, (method, path)
        assert other_file.read_text() == before
        assert "Aru" in {s.name for s in server.sim.sessions.values()}  # the ban did not happen
        assert [login.booth for login in server._console.console.credentials.logins()] == [BOOTH]  # nor the issue
        assert (await mine.get("/booth/no-such-booth")).status_code == 403  # not even whether it exists
    finally:
        await aru.close()
        await mine.close()


async def test_revoking_a_login_ends_its_sessions(server, organiser):
    mine = await exhibitor_of(server, organiser, BOOTH)
    try:
        page = await organiser.get("/organiser/exhibitors")
        digest = re.search(r'name="digest" value="([0-9a-f]{64})"', page.text)[1]
        assert "is revoked" in (await organiser.post("/organiser/exhibitors/revoke", {"digest": digest})).text
        assert (await mine.get(f"/booth/{BOOTH}")).status_code == 303  # back to the login
    finally:
        await mine.close()


async def test_mute_kick_ban_and_announce_reach_real_visitors(server, organiser):
    aru, aru_welcome = await visitor(server, "Aru")
    bek, _ = await visitor(server, "Bek")
    try:
        await aru.send(p.encode(p.Chat(p.Channel.PROXIMITY, "hello Bek")))
        assert (await next_of(bek, p.ChatLine)).text == "hello Bek"

        page = await organiser.post("/organiser/moderate", {"action": "mute", "name": "aru", "reason": "spam", "minutes": "10"})
        assert page.status_code == 200 and "muted" in page.text
        await aru.send(p.encode(p.Chat(p.Channel.PROXIMITY, "buy now")))
        error = await next_of(aru, p.Error)
        assert error.code == "not_allowed" and "spam" in error.message
        await none_of(bek, p.ChatLine, 0.5)

        page = await organiser.post("/organiser/moderate", {"action": "mute", "name": "aru", "reason": "", "minutes": "ten"})
        assert page.status_code == 400 and "is not a number of minutes" in page.text and "say why" in page.text

        await organiser.post("/organiser/announce", {"text": "The keynote starts in 5 minutes", "hall": "silk-road"})
        line = await next_of(bek, p.ChatLine)
        assert (line.channel, line.entity, line.name, line.text) == (p.Channel.ANNOUNCEMENT, 0, "Organisers", "The keynote starts in 5 minutes")
        everyone = await organiser.post("/organiser/announce", {"text": "Doors close at six", "hall": ""})
        assert "Announced to every hall: 2 visitors" in everyone.text
        assert (await next_of(bek, p.ChatLine)).text == "Doors close at six"

        page = await organiser.post("/organiser/moderate", {"action": "ban", "name": "Aru", "reason": "harassment", "minutes": "60"})
        assert "banned" in page.text
        closing = await next_of(aru, p.Closing)
        assert closing.code == "kicked" and "harassment" in closing.message
        again = await asyncio.wait_for(hello(server, "Aru", aru_welcome.visitor_token), 5)
        assert isinstance(again, p.Refused) and again.code == "banned"
        assert "harassment" in (await organiser.get("/organiser")).text  # listed in force

        page = await organiser.post("/organiser/moderate", {"action": "kick", "name": "Bek", "reason": "closing time"})
        assert "removed" in page.text and (await next_of(bek, p.Closing)).code == "kicked"
    finally:
        await aru.close()
        await bek.close()


async def test_a_ban_follows_the_person_not_the_name(server, organiser):
    """Two visitors called Li Wei: the organiser bans one, picked by visitor id from the list;
    the other still joins and chats, and the banned one is refused under any name."""
    first, first_welcome = await visitor(server, "Li Wei")
    second, second_welcome = await visitor(server, "Li Wei")
    listener, _ = await visitor(server, "Bek")
    try:
        assert first_welcome.visitor_id != second_welcome.visitor_id
        tagged = second_welcome.display_name
        assert tagged.startswith("Li Wei #"), tagged
        page = await organiser.get("/organiser")
        for welcome in (first_welcome, second_welcome):  # the list offers each person by id
            assert f'value="{welcome.visitor_id}"' in page.text

        ambiguous = await organiser.post("/organiser/moderate", {"action": "ban", "name": "li wei", "reason": "spam"})
        assert ambiguous.status_code == 400 and "2 visitors here are called" in ambiguous.text
        assert tagged in ambiguous.text and "pick one from the list" in ambiguous.text
        await none_of(first, p.Closing, 0.3)

        page = await organiser.post("/organiser/moderate", {"action": "ban", "name": second_welcome.visitor_id,
                                                            "reason": "harassment"})
        assert page.status_code == 200 and f"{tagged} is banned" in page.text
        assert (await next_of(second, p.Closing)).code == "kicked"
        await none_of(first, p.Closing, 0.3)

        await first.send(p.encode(p.Chat(p.Channel.PROXIMITY, "still here")))
        assert (await next_of(listener, p.ChatLine)).text == "still here"
        namesake = await asyncio.wait_for(hello(server, "Li Wei"), 5)  # a third Li Wei, someone new
        assert isinstance(namesake, p.Welcome)
        renamed = await asyncio.wait_for(hello(server, "Totally Someone Else", second_welcome.visitor_token), 5)
        assert isinstance(renamed, p.Refused) and renamed.code == "banned" and "harassment" in renamed.message

        lifted = await organiser.post("/organiser/moderate", {"action": "unban", "name": second_welcome.visitor_id})
        assert "ban is lifted" in lifted.text
        back = await asyncio.wait_for(hello(server, "Li Wei", second_welcome.visitor_token), 5)
        assert isinstance(back, p.Welcome) and back.visitor_id == second_welcome.visitor_id
    finally:
        for ws in (first, second, listener):
            await ws.close()


async def test_a_mute_follows_the_person_across_a_name_change(server, organiser):
    aru, aru_welcome = await visitor(server, "Aru")
    bek, _ = await visitor(server, "Bek")
    try:
        page = await organiser.post("/organiser/moderate", {"action": "mute", "name": "Aru", "reason": "spam"})
        assert "Aru is muted" in page.text
        await aru.close()
        renamed, renamed_welcome = await visitor(server, "Not Aru", aru_welcome.visitor_token)
        assert renamed_welcome.visitor_id == aru_welcome.visitor_id
        await renamed.send(p.encode(p.Chat(p.Channel.PROXIMITY, "buy now")))
        error = await next_of(renamed, p.Error)
        assert error.code == "not_allowed" and "spam" in error.message
        await none_of(bek, p.ChatLine, 0.5)

        newcomer, _ = await visitor(server, "Aru")  # the name is free for someone else to chat under
        await newcomer.send(p.encode(p.Chat(p.Channel.PROXIMITY, "hello")))
        assert (await next_of(bek, p.ChatLine)).text == "hello"
        await newcomer.close()
        await renamed.close()
        unknown = await organiser.post("/organiser/moderate", {"action": "kick", "name": "Nobody", "reason": "x"})
        assert unknown.status_code == 400 and "no visitor &#x27;Nobody&#x27; is here" in unknown.text
    finally:
        await aru.close()
        await bek.close()


async def test_reports_filed_by_visitors_show_and_can_be_handled(server, organiser):
    aru, _ = await visitor(server, "Aru")
    bek, bek_welcome = await visitor(server, "Bek")
    try:
        await aru.send(p.encode(p.Report(bek_welcome.entity, "shouting at the tea booth")))
        await asyncio.sleep(0.2)
        page = await organiser.get("/organiser")
        assert "shouting at the tea booth" in page.text and "<td>Silk Road Hall</td>" in page.text  # the hall by its name
        report_id = re.search(r'action="/organiser/reports/(\d+)"', page.text)[1]
        page = await organiser.post(f"/organiser/reports/{report_id}", {})
        assert "handled" in page.text and "shouting at the tea booth" not in page.text
    finally:
        await aru.close()
        await bek.close()


async def test_a_bad_booth_edit_shows_each_error_by_its_field_and_writes_nothing(server, organiser):
    booth_file = server.sim.expo.root / "booths" / f"{BOOTH}.toml"
    before = booth_file.read_text()
    page = await organiser.post(f"/booth/{BOOTH}", {
        "tagline": "  ", "p0.price": "45.5x", "p1.stock": "lots", "new.sku": "KZ-HONEY-500", "new.name": "Again",
        "new.description": "dup", "new.price": "1", "new.stock": "1", "new.max_per_visitor": "1"})
    assert page.status_code == 400
    for fid in ("tagline", "p0-price", "p1-stock", "new-sku"):
        assert re.search(rf'id="{fid}-error"', page.text), fid
    assert 'value="45.5x"' in page.text  # what was typed stays in the form
    assert booth_file.read_text() == before


@pytest.mark.parametrize("broken", ["a syntax error", "removed"])
async def test_a_booth_file_broken_by_hand_is_said_on_the_page_and_a_save_writes_nothing(server, organiser, broken):
    booth_file = server.sim.expo.root / "booths" / f"{BOOTH}.toml"
    if broken == "removed":
        booth_file.unlink()
    else:
        booth_file.write_text(booth_file.read_text().replace("tagline = ", "tagline = = ", 1))
    before = booth_file.read_text() if booth_file.exists() else None
    page = await organiser.get(f"/booth/{BOOTH}")
    assert page.status_code == 200 and f"booths/{BOOTH}.toml does not load (" in page.text, page.text
    assert 'id="p0-price"' not in page.text and "Orders and balance" in page.text  # no form to lose it; the rest works
    saved = await organiser.post(f"/booth/{BOOTH}", {"tagline": "Honey"})
    assert saved.status_code == 409 and "does not load" in saved.text
    assert (booth_file.read_text() if booth_file.exists() else None) == before
    assert server.sim.expo.booth(BOOTH).tagline != "Honey"


async def test_a_price_edit_reaches_a_connected_visitor_at_once(server, organiser):
    ws, _ = await visitor(server, "Aru")
    try:
        page = await organiser.get(f"/booth/{BOOTH}")
        assert 'id="p0-price"' in page.text
        saved = await organiser.post(f"/booth/{BOOTH}", {"p0.price": "4990", "tagline": "Honey from the Altai, new season"})
        assert saved.status_code == 200 and "Saved" in saved.text
        update = await next_of(ws, p.ExpoUpdate, timeout=2)
        booth = from_manifest(update.manifest).booth(BOOTH)
        assert booth.catalogue[0].price == Decimal("4990") and booth.tagline == "Honey from the Altai, new season"
        text = (server.sim.expo.root / "booths" / f"{BOOTH}.toml").read_text()
        assert text.startswith("# Altai Bee Farms") and 'price = "4990"' in text
        await none_of(ws, p.ExpoUpdate, 2.5)  # the watcher does not apply it a second time
    finally:
        await ws.close()


async def test_the_live_stream_carries_every_avatar(server, organiser):
    ws, welcome = await visitor(server, "Aru")
    try:
        async with organiser.http.stream("GET", "/organiser/live") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            frame = None
            async with asyncio.timeout(3):
                async for line in lines:
                    if line.startswith("data: "):
                        import json

                        frame = json.loads(line[6:])
                        break
        hall = server.sim.expo.halls[0]
        [[entity, x, y, staff]] = frame["halls"][hall.id]
        assert (entity, x, y, staff) == (welcome.entity, round(hall.spawn.x * 10), round(hall.spawn.y * 10), 0)
        assert frame["names"] == {str(welcome.entity): "Aru"} and frame["halls_count"][hall.id] == 1
    finally:
        await ws.close()


async def test_the_directory_lists_every_booth_with_a_walk_command(server, organiser):
    browser = Browser(console_url(server))  # no login: visitors use it too
    try:
        page = await browser.get("/directory")
        assert page.status_code == 200
        host, port = server.config.host, server.port
        for booth in server.sim.expo.booths:
            assert f"--booth {booth.id}</code>" in page.text  # the command beside the link, for those without the handler
            assert f'href="expo://{host}:{port}/?booth={booth.id}">Walk me there</a>' in page.text
        halls = (await organiser.get("/organiser")).text
        for hall in server.sim.expo.halls:  # each hall of the organiser's page opens its part of the directory
            assert f'href="/directory#dir-{hall.id}"' in halls and f'id="dir-{hall.id}"' in page.text
    finally:
        await browser.close()


async def test_an_exhibitor_annotates_and_exports_its_own_leads_only(server, organiser):
    import csv
    import io

    from server.people.leads import LeadSource, Touch

    services = server.exhibitors
    for booth, who, name in ((BOOTH, "aru", "Aru"), (OTHER, "bek", "Bek")):
        await services.db.run(services.people.add_touch, Touch(booth, who, name, time.time(), LeadSource.ORDER, f"ord-{who}"))
    mine = await exhibitor_of(server, organiser, BOOTH)
    try:
        page = await mine.get(f"/booth/{BOOTH}")
        anchors = re.findall(r'<h2 id="([a-z-]+-h)"', page.text)
        assert set(anchors) == {"edit-h", "sales-h", "leads-h", "slots-h", "stats-h"}, anchors
        assert re.findall(r'<li><a href="#([a-z-]+-h)"', page.text) == anchors  # the contents list the page's order
        leads = page.text[page.text.index('id="leads"'):page.text.index("</table>", page.text.index('id="leads"'))]
        analytics = page.text[page.text.index('id="stats-h"'):]
        assert 'aria-label="Funnel: passed by, entered, opened the catalogue, ordered, paid"' in analytics
        assert analytics.count('<svg class="heatmap"') == 1 and 'stroke-width="0.6"' in analytics  # its booth outlined
        assert "Visits: <strong>" in analytics
        assert "Aru" in leads and "Bek" not in leads

        saved = await mine.post(f"/booth/{BOOTH}/leads", {"visitor": "aru", "notes": "Wants 200 jars for a shop", "rating": "5"})
        assert saved.status_code == 200 and "Lead saved" in saved.text
        refused = await mine.post(f"/booth/{BOOTH}/leads", {"visitor": "aru", "notes": "x", "rating": "9"})
        assert refused.status_code == 400 and "rating must be 1 to 5" in refused.text

        download = await mine.get(f"/booth/{BOOTH}/leads.csv")
        assert download.headers["content-disposition"] == f'attachment; filename="{BOOTH}-leads.csv"'
        rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert [(r["visitor_id"], r["name"], r["sources"], r["rating"], r["notes"]) for r in rows] == [
            ("aru", "Aru", "order", "5", "Wants 200 jars for a shop")]

        assert (await mine.get(f"/booth/{OTHER}/leads.csv")).status_code == 403
        assert (await mine.post(f"/booth/{OTHER}/leads", {"visitor": "bek", "notes": "mine now", "rating": "1"})).status_code == 403
        assert (await mine.post(f"/booth/{BOOTH}/leads", {"visitor": "bek", "notes": "not my lead"})).status_code == 404
        [bek] = await services.db.run(services.people.leads, OTHER)
        assert (bek.notes, bek.rating) == ("", None)
    finally:
        await mine.close()


async def test_an_exhibitor_publishes_meeting_slots_for_its_staff(tmp_path):
    """The host is a staff member in the hall, by visitor id (as when staff publish there),
    so a booking reaches the person and their slots are checked against each other."""
    import datetime as dt
    import secrets

    from websockets.asyncio.client import connect

    from server.staff import issue_pass

    secret = secrets.token_hex(16)
    async with running_server(tmp_path, staff_secret=secret) as server:
        organiser = Browser(console_url(server))
        assert (await organiser.login(organiser_token(server))).status_code == 303
        mine = await exhibitor_of(server, organiser, BOOTH)
        staff = await connect(f"ws://127.0.0.1:{server.port}/", compression=None)
        try:
            later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(second=0, microsecond=0)
            starts = later.strftime("%Y-%m-%dT%H:%M")
            nobody = await mine.post(f"/booth/{BOOTH}/slots", {"host": "v_nobody", "starts": starts, "minutes": "30"})
            assert nobody.status_code == 400 and "staff in the hall" in nobody.text

            await staff.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Aigerim N", 0, 0, staff_pass=issue_pass(secret, BOOTH))))
            welcome = p.decode_server(await staff.recv())
            assert isinstance(welcome, p.Welcome)
            host = welcome.visitor_id
            page = await mine.get(f"/booth/{BOOTH}")
            assert f'<option value="{host}">Aigerim N</option>' in page.text
            ok = await mine.post(f"/booth/{BOOTH}/slots", {"host": host, "starts": starts, "minutes": "30"})
            assert ok.status_code == 200 and "Published" in ok.text
            slots_table = ok.text[ok.text.index('id="slots"'):]
            assert later.strftime("%Y-%m-%d %H:%M UTC") in slots_table and "free" in slots_table
            overlap = await mine.post(f"/booth/{BOOTH}/slots", {"host": host, "starts": starts, "minutes": "45"})
            assert overlap.status_code == 400 and "overlaps" in overlap.text and 'id="starts-error"' in overlap.text
            for data, message in [({"starts": "tomorrow"}, "give a date and time"), ({"minutes": "2"}, "minutes"),
                                  ({"host": "Aigerim Nurlanovna"}, "staff in the hall"),
                                  ({"starts": "2020-01-01T10:00"}, "in the future")]:
                page = await mine.post(f"/booth/{BOOTH}/slots", {"host": host, "starts": starts, "minutes": "30", **data})
                assert page.status_code == 400 and message in page.text, data
            other = await mine.post(f"/booth/{OTHER}/slots", {"host": host, "starts": starts, "minutes": "30"})
            assert other.status_code == 403
            slots = await server.exhibitors.db.run(server.exhibitors.people.slots, BOOTH, 0.0)
            assert [(s.host, s.host_name, s.minutes, taken) for s, taken in slots] == [(host, "Aigerim N", 30, False)]

            buyer, _ = await visitor(server, "Dana Buyer")  # a visitor books it in the hall: the calendar names them
            try:
                await buyer.send(p.encode(p.BookSlot(slots[0][0].id)))
                assert (await next_of(buyer, p.Booking)).status == "booked"
            finally:
                await buyer.close()
            calendar = (await mine.get(f"/booth/{BOOTH}")).text
            calendar = calendar[calendar.index('id="slots"'):calendar.index("</table>", calendar.index('id="slots"'))]
            assert "Meeting calendar" in calendar and "<td>Aigerim N</td><td>Dana Buyer</td>" in calendar, calendar
        finally:
            await staff.close()
            await organiser.close()
            await mine.close()


async def test_a_crowd_over_the_threshold_and_slow_ticks_raise_alerts_on_the_organisers_page(server, organiser):
    """41 visitors standing at the spawn are a crowd (the threshold is 40 in a 10 m square);
    ticks made slower than the 25 ms budget show as a tick alert, in the page and the live feed."""
    import json

    from server.admin import CROWD_THRESHOLD

    page = await organiser.get("/organiser")
    assert 'id="alerts"' in page.text and "alert-crowd" not in page.text and "alert-tick" not in page.text
    crowd = [await visitor(server, f"Visitor {n}") for n in range(CROWD_THRESHOLD + 1)]
    tick = server.sim.tick

    def slow_tick() -> None:  # the real tick, then 40 ms more: what an overloaded hall looks like
        tick()
        time.sleep(0.04)

    server.sim.tick = slow_tick
    try:
        await asyncio.sleep(1.5)  # some slow ticks in the window
        page = await organiser.get("/organiser")
        crowd_alert = re.search(r'<li class="alert-crowd">([^<]+)', page.text)
        assert crowd_alert and f"{CROWD_THRESHOLD + 1} visitors within 10 m in Silk Road Hall" in crowd_alert[1]
        tick_alert = re.search(r'<li class="alert-tick">([^<]+)', page.text)
        assert tick_alert and "(budget 25 ms)" in tick_alert[1], page.text[page.text.index('id="alerts"'):][:600]
        async with organiser.http.stream("GET", "/organiser/live") as stream:
            async with asyncio.timeout(5):
                async for line in stream.aiter_lines():
                    if line.startswith("data: ") and "alerts" in (frame := json.loads(line[6:])):
                        break
        assert {a["kind"] for a in frame["alerts"]} == {"crowd", "tick"} and frame["tick_p99_ms"] > 25
    finally:
        server.sim.tick = tick
        for ws, _ in crowd:
            await ws.close()


async def test_an_exhibitor_adds_and_removes_products_and_a_visitor_sees_it_at_once(server, organiser):
    import tomllib

    from console import booth_form

    mine = await exhibitor_of(server, organiser, BOOTH)
    ws, _ = await visitor(server, "Aru")
    try:
        booth_file = server.sim.expo.root / "booths" / f"{BOOTH}.toml"
        form = booth_form.form_values(tomllib.loads(booth_file.read_text()))  # what the page's form holds
        page = await mine.get(f"/booth/{BOOTH}")
        for name in form:  # the page has a field for each value of the file
            assert f'name="{name}"' in page.text, name
        removed = form["p1.sku"]
        duplicate = await mine.post(f"/booth/{BOOTH}", {**form, "new.sku": form["p0.sku"], "new.name": "Again",
                                                       "new.price": "1", "new.stock": "1"})
        assert duplicate.status_code == 400 and 'id="new-sku-error"' in duplicate.text
        added = {"new.sku": "KZ-WAX-100", "new.name": "Beeswax candle", "new.description": "Hand-dipped.",
                 "new.price": "1500", "new.stock": "20", "new.max_per_visitor": "4"}
        saved = await mine.post(f"/booth/{BOOTH}", {**form, **added, "p1.remove": "1"})
        assert saved.status_code == 200 and "Saved" in saved.text
        catalogue = from_manifest((await next_of(ws, p.ExpoUpdate, timeout=3)).manifest).booth(BOOTH).catalogue
        skus = [pr.sku for pr in catalogue]
        assert "KZ-WAX-100" in skus and removed not in skus
        wax = next(pr for pr in catalogue if pr.sku == "KZ-WAX-100")
        assert (wax.name, wax.price, wax.stock) == ("Beeswax candle", Decimal("1500"), 20)
        assert 'value="KZ-WAX-100"' in saved.text and f'value="{removed}"' not in saved.text
    finally:
        await ws.close()
        await mine.close()


async def linked_visitor(server, name: str, currency: str):
    """A visitor's socket and bank wallet, the account linked to the visitor as orders need."""
    from bank.client import VisitorClient

    ws, welcome = await visitor(server, name)
    wallet = VisitorClient(welcome.bank_url)
    await wallet.open_account(name, currency)
    await ws.send(p.encode(p.LinkAccount((await wallet.account_proof(welcome.visitor_id)).proof)))
    await next_of(ws, p.AccountLinked)
    return ws, wallet


@contextlib.asynccontextmanager
async def server_with_a_bank(tmp_path):
    """The world server with a real expo-bank process beside it (its webhooks too)."""
    from processes import BIN, free_port, start, stop

    key, secret = "console-test-platform-key", "console-test-webhook-secret"
    bank_port, webhook_port = free_port(), free_port()
    bank = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", str(tmp_path / "bank.sqlite3"),
                  "--platform-key", key, "--webhook-secret", secret,
                  "--webhook-url", f"http://127.0.0.1:{webhook_port}/bank/webhook"],
                 f"http://127.0.0.1:{bank_port}/healthz", log=tmp_path / "bank.log")
    try:
        async with running_server(tmp_path, bank_url=f"http://127.0.0.1:{bank_port}", bank_platform_key=key,
                                  webhook_secret=secret, webhook_port=webhook_port) as server:
            yield server
    finally:
        stop(bank)


async def test_an_exhibitor_sees_its_orders_and_its_merchant_balance_at_the_bank(tmp_path):
    """A real bank: a visitor buys two jars of honey and pays; the exhibitor's page shows the
    order and the merchant account's balance, the organiser's the sale; another booth sees neither."""
    async with server_with_a_bank(tmp_path) as server:
        organiser = Browser(console_url(server))
        assert (await organiser.login(organiser_token(server))).status_code == 303
        mine, theirs = (await exhibitor_of(server, organiser, BOOTH), await exhibitor_of(server, organiser, OTHER))
        # certificates of origin for the honey: refused by field first, then opened
        bad = await mine.post(f"/booth/{BOOTH}/editions", {"sku": "KZ-HONEY-500", "size": "0", "batch": " ", "origin": "Altai"})
        assert bad.status_code == 400
        assert 'id="size-error" role="alert">a whole number from 1 to 100,000' in bad.text, bad.text
        assert 'id="batch-error" role="alert">say which' in bad.text
        assert 'value="Altai"' in bad.text  # what was typed stays
        opened = await mine.post(f"/booth/{BOOTH}/editions", {"sku": "KZ-HONEY-500", "size": "100", "batch": "2027-05",
                                                              "origin": "Katon-Karagay, East Kazakhstan"})
        assert opened.status_code == 200 and "Opened: 100 certificates of origin for Altai mountain honey, 500 g (KZ-HONEY-500), batch 2027-05." in opened.text
        assert "<td>Altai mountain honey, 500 g (KZ-HONEY-500)</td><td>2027-05</td><td>Katon-Karagay, East Kazakhstan</td><td>0 of 100</td>" in opened.text
        assert '<a href="#certs-h">Certificates of origin</a>' in opened.text
        ws, wallet = await linked_visitor(server, "Aru", "KZT")
        try:
            await ws.send(p.encode(p.Order(BOOTH, "KZ-HONEY-500", 2, "order-1")))
            status = await next_of(ws, p.OrderStatus, where=lambda m: m.key == "order-1")
            await wallet.confirm_intent(status.intent_id)
            await ws.send(p.encode(p.OrderPaid(status.order_id)))
            await next_of(ws, p.OrderStatus, timeout=10, where=lambda m: m.status == "fulfilled")

            page = (await mine.get(f"/booth/{BOOTH}")).text
            balance = page[page.index("Merchant balance at the bank"):page.index("</table>", page.index("Merchant balance"))]
            assert "<td>KZT</td><td>9,000.00</td>" in balance, balance  # 2 x 4,500 KZT, the code said once
            orders = page[page.index('id="orders"'):page.index("</table>", page.index('id="orders"'))]
            assert "KZ-HONEY-500" in orders and "9,000.00 KZT" in orders and "fulfilled" in orders, orders
            csv_text = (await mine.get(f"/booth/{BOOTH}/orders.csv")).text
            assert status.order_id in csv_text and ",2,9000.00,KZT,fulfilled" in csv_text
            deadline = time.monotonic() + 10  # the certificate is issued at the bank after the fulfilment
            while "<td>1 of 100</td>" not in (page := (await mine.get(f"/booth/{BOOTH}")).text):
                assert time.monotonic() < deadline, page[page.index('id="certs-h"'):][:1500]
                await asyncio.sleep(0.2)
            (item,) = (await wallet.items()).data
            assert (item.edition.product, item.edition.batch, item.order_id) == ("KZ-HONEY-500", "2027-05", status.order_id)
            await ws.send(p.encode(p.QueryCollectibles()))
            (held,) = (await next_of(ws, p.Collectibles)).items
            assert held[7] == f"{console_url(server)}/certificates?serial={item.serial}"  # a page for people, not JSON
            anyone = Browser(console_url(server))  # the public page, without a login
            try:
                shown = await anyone.get(f"/certificates?serial={item.serial}")
                assert shown.status_code == 200, shown.text
                for fact in ("<dd>Altai Bee Farms (Kazakhstan)</dd>", "<dd>1 of 100</dd>", "<dd>2027-05</dd>", "<dd>Katon-Karagay, East Kazakhstan</dd>",
                             f"<dd>{status.order_id}</dd>", f"<td>{item.provenance[0].hash}</td>"):
                    assert fact in shown.text, fact
                typed = await anyone.get(f"/certificates?serial={item.edition.id}-1")  # "1 of 100", as read
                assert typed.status_code == 200 and f"<strong>{item.serial}</strong>" in typed.text
                unknown = await anyone.get(f"/certificates?serial={item.serial[:-1]}9")
                assert unknown.status_code == 404 and "never issued" in unknown.text
                sneaky = await anyone.get("/certificates?serial=../v1/accounts/me")
                assert sneaky.status_code == 400 and "is not a serial" in sneaky.text
            finally:
                await anyone.close()
            sales = (await organiser.get("/organiser")).text
            assert "<td>Altai Bee Farms</td><td>1</td><td>2</td><td>9,000.00 KZT</td>" in sales
            other = (await theirs.get(f"/booth/{OTHER}")).text
            assert "KZ-HONEY-500" not in other and "9,000.00" not in other
            assert (await theirs.get(f"/booth/{BOOTH}/orders.csv")).status_code == 403
        finally:
            await ws.close()
            await wallet.aclose()
            for browser in (organiser, mine, theirs):
                await browser.close()


async def test_an_exhibitor_quotes_ships_and_declines_requests_for_quotation_in_the_console(tmp_path):
    """A buyer in the hall asks the tea booth (no price list) for a quotation; its exhibitor
    answers in the console (a wrong box said, what was typed kept), the buyer deposits into
    escrow and orders, the exhibitor confirms the shipment (the deposit is paid, the balance
    billed) and declines a second request. Another booth's login sees none of it."""
    sku = "CN-PUER-357"
    async with server_with_a_bank(tmp_path) as server:
        organiser = Browser(console_url(server))
        assert (await organiser.login(organiser_token(server))).status_code == 303
        tea, honey = await exhibitor_of(server, organiser, OTHER), await exhibitor_of(server, organiser, BOOTH)
        ws, wallet = await linked_visitor(server, "Mei", "CNY")
        try:
            await ws.send(p.encode(p.RequestQuote(OTHER, sku, 60, "FOB", "MY", "rfq-1")))
            asked = await next_of(ws, p.DealStatus, where=lambda m: m.key == "rfq-1" and m.state == "requested")
            deadline = time.monotonic() + 10  # the RFQ makes Mei a lead of the booth at the next write of the events
            while "<td>Mei</td><td>rfq</td>" not in (page := await tea.get(f"/booth/{OTHER}")).text:
                assert time.monotonic() < deadline, page.text
                await asyncio.sleep(0.1)
            assert '<a href="#deals-h">Requests for quotation</a>' in page.text
            listed = page.text[page.text.index('id="deals"'):page.text.index("</table>", page.text.index('id="deals"'))]
            assert asked.deal_id in listed and "<td>60</td>" in listed and "FOB → Malaysia" in listed, listed
            assert "<td>Mei</td>" in listed, listed  # the buyer by the name in the hall, not a visitor id
            assert f"{asked.deal_id} for Mei: 60 ×" in page.text
            assert "requests for quotation 1;" in page.text  # the booth's analytics count it
            quote = f"/booth/{OTHER}/deals/{asked.deal_id}/quote"
            wrong = await tea.post(quote, {"t0.qty": "1", "t0.price": "18", "t1.qty": "50", "t1.price": "cheap",
                                           "valid_days": "7", "lead_days": "14", "deposit_percent": "30"})
            assert wrong.status_code == 400
            assert f'id="{asked.deal_id}-t1-price-error" role="alert">a price above 0' in wrong.text, wrong.text
            assert 'value="cheap"' in wrong.text and 'value="18"' in wrong.text  # what was typed stays
            await none_of(ws, p.DealStatus, 0.3, where=lambda m: m.state == "quoted")
            sent = await tea.post(quote, {"t0.qty": "1", "t0.price": "18", "t1.qty": "50", "t1.price": "15.05",
                                          "valid_days": "7", "lead_days": "14", "deposit_percent": "30"})
            assert sent.status_code == 200 and f"Quotation sent for {asked.deal_id}: 15.05 CNY a unit, 903.00 CNY in all" in sent.text
            quoted = await next_of(ws, p.DealStatus, where=lambda m: m.deal_id == asked.deal_id and m.state == "quoted")
            assert (quoted.unit_price, quoted.total, quoted.deposit, quoted.lead_days) == ("15.05", "903.00", "270.90", 14)
            again = await tea.post(quote, {"t0.price": "1", "valid_days": "7", "lead_days": "1", "deposit_percent": "1"})
            assert f"deal {asked.deal_id} is quoted, not requested" in again.text  # quoted once

            lock = await wallet.lock_fx(quoted.currency, quoted.deposit_minor)
            escrow = await wallet.create_escrow(quoted.payee_account, quoted.deposit_minor, quoted.currency,
                                                quoted.deal_id, fx_lock_id=lock.id, idempotency_key="escrow-1")
            await ws.send(p.encode(p.PlacePurchaseOrder(quoted.deal_id, escrow.id)))
            await next_of(ws, p.DealStatus, where=lambda m: m.deal_id == asked.deal_id and m.state == "ordered")
            assert f'action="/booth/{OTHER}/deals/{asked.deal_id}/ship#deals-h"' in (await tea.get(f"/booth/{OTHER}")).text
            shipped_page = await tea.post(f"/booth/{OTHER}/deals/{asked.deal_id}/ship", {})
            assert f"Shipped {asked.deal_id}: the deposit is paid to you" in shipped_page.text
            shipped = await next_of(ws, p.DealStatus, where=lambda m: m.deal_id == asked.deal_id and m.state == "shipped")
            assert shipped.balance_intent_id is not None
            assert (await wallet.get_escrow(escrow.id)).status == "posted"

            await ws.send(p.encode(p.RequestQuote(OTHER, sku, 5, "CIF", "KZ", "rfq-2")))
            second = await next_of(ws, p.DealStatus, where=lambda m: m.key == "rfq-2" and m.state == "requested")
            assert (await honey.post(f"/booth/{OTHER}/deals/{second.deal_id}/decline", {})).status_code == 403
            assert (await honey.post(f"/booth/{BOOTH}/deals/{second.deal_id}/decline", {})).status_code == 404
            assert second.deal_id not in (await honey.get(f"/booth/{BOOTH}")).text
            declined = await tea.post(f"/booth/{OTHER}/deals/{second.deal_id}/decline", {})
            assert f"Declined {second.deal_id}." in declined.text
            await next_of(ws, p.DealStatus, where=lambda m: m.deal_id == second.deal_id and m.state == "canceled")
        finally:
            await ws.close()
            await wallet.aclose()
            for browser in (organiser, tea, honey):
                await browser.close()


async def test_a_mute_is_lifted_from_its_row_in_the_list(server, organiser):
    aru, aru_welcome = await visitor(server, "Aru")
    bek, _ = await visitor(server, "Bek")
    try:
        page = await organiser.post("/organiser/moderate", {"action": "mute", "name": "Aru", "reason": "spam"})
        row = re.search(r'<input type="hidden" name="name" value="([^"]+)"><button type="submit" name="action" '
                        r'value="(unmute)" aria-label="Lift the mute of Aru">Lift</button>', page.text)
        assert row and row[1] == aru_welcome.visitor_id
        lifted = await organiser.post("/organiser/moderate", {"name": row[1], "action": row[2]})
        assert "may chat again" in lifted.text and "Mutes and bans in force: none." in lifted.text
        await aru.send(p.encode(p.Chat(p.Channel.PROXIMITY, "sorry")))
        assert (await next_of(bek, p.ChatLine)).text == "sorry"
    finally:
        await aru.close()
        await bek.close()
