"""The console in headless Chromium against a real world server and real bots on loopback.

An organiser logs in with the keyboard, watches the bots' dots move on the live map, mutes a
chatting bot and a visitor's client stops hearing it; an exhibitor, with a login the
organiser issued in the browser, mistypes a price (the error shows by the field), then sets
it, and a connected client's catalogue shows the new price. Screenshots of each page go to
the test's directory (or $CONSOLE_SCREENSHOTS) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest
from console_support import copy_expo
from processes import BIN, free_port, start, stop
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as when
from selenium.webdriver.support.ui import WebDriverWait

from client import events as ev
from client.core import ClientCore
from client.threaded import ClientThread

BOOTH = "kz-altai-honey"
CHATTY = "chatty-1-0"  # expo-bots names bots PREFIX-SEED-INDEX


@pytest.fixture(scope="module")
def expo(tmp_path_factory):
    """A server with its console, four bots wandering and one chatting at the entrance."""
    tmp = tmp_path_factory.mktemp("browser")
    root = copy_expo(tmp)
    port, console = free_port(), free_port()
    server = start([str(BIN / "expo-server"), "--port", str(port), "--console-port", str(console), "--world", str(root),
                    "--data-dir", str(tmp / "data"), "--log-level", "warning"],
                   f"http://127.0.0.1:{port}/healthz", log=tmp / "server.log",
                   timeout=120)  # a fresh checkout compiles the server's kernels first (tens of seconds on a busy machine)
    url = f"ws://127.0.0.1:{port}/"
    bots = [subprocess.Popen([str(BIN / "expo-bots"), "--server", url, "--count", str(n), "--mix", mix, "--name-prefix", prefix,
                              "--duration", "120", "--quiet", "--progress", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n, mix, prefix in ((4, "wander=1", "walker"), (1, "chat=1", "chatty"))]
    try:
        yield {"url": url, "console": f"http://127.0.0.1:{console}", "root": root, "data": tmp / "data",
               "token": (tmp / "data" / "console" / "organiser.token").read_text().strip(),
               "shots": Path(os.environ.get("CONSOLE_SCREENSHOTS", tmp / "shots"))}
    finally:
        for bot in bots:
            bot.terminate()
            bot.wait(10)
        stop(server)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1400",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def visitor(expo):
    """A visitor's client (the client core over a real socket) standing at the entrance."""
    client = ClientThread(ClientCore("Watcher"), expo["url"])
    client.start()
    deadline = time.monotonic() + 10
    while client.scene() is None:
        assert time.monotonic() < deadline, "the visitor did not join"
        time.sleep(0.1)
    yield client
    client.stop()


def shoot(driver, expo, name: str) -> Path:
    expo["shots"].mkdir(parents=True, exist_ok=True)
    path = expo["shots"] / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait(driver, seconds: float = 20) -> WebDriverWait:
    return WebDriverWait(driver, seconds)


def chat_from(events: list, name: str) -> list[str]:
    return [e.line.text for e in events if isinstance(e, ev.ChatReceived) and e.line.name == name]


def dots(driver) -> dict[str, tuple[str, str]]:
    return driver.execute_script(
        "const out = {}; document.querySelectorAll('#map-silk-road .dots circle').forEach("
        "c => { out[c.dataset.entity] = [c.getAttribute('cx'), c.getAttribute('cy')]; }); return out;")


def log_in(driver, expo, token: str) -> None:
    """With the keyboard only: the token field has the focus; type, then Enter."""
    driver.delete_all_cookies()
    driver.get(expo["console"] + "/login")
    def focused_token_field(d):  # autofocus lands once the page has loaded, maybe after get() returned
        field = d.switch_to.active_element
        return field if field.get_attribute("id") == "token" else None

    wait(driver, 5).until(focused_token_field, "the token field did not get the focus").send_keys(token, Keys.ENTER)


def test_the_organiser_watches_bots_walk_and_mutes_a_chatty_one(expo, browser, visitor):
    log_in(browser, expo, expo["token"])
    wait(browser).until(when.title_contains("Halls and moderation"))
    wait(browser, 15).until(lambda d: len(dots(d)) >= 6)  # four walkers, the chatty bot, the visitor
    before = dots(browser)
    time.sleep(1.5)
    after = dots(browser)
    moved = [e for e in before if e in after and before[e] != after[e]]
    assert len(moved) >= 2, (before, after)
    assert int(browser.execute_script("return document.body.dataset.liveFrames")) >= 6  # at least 4 a second
    assert browser.find_element(By.CSS_SELECTOR, '[data-hall-count="silk-road"]').text == str(len(after))
    shoot(browser, expo, "organiser")

    deadline = time.monotonic() + 15
    heard: list[str] = []
    while not heard:
        assert time.monotonic() < deadline, "the chatty bot never reached the visitor"
        heard = chat_from(visitor.poll_events(), CHATTY)
        time.sleep(0.2)

    name = browser.find_element(By.ID, "name")
    name.send_keys(CHATTY)
    browser.find_element(By.ID, "reason").send_keys("repeating itself")
    browser.find_element(By.CSS_SELECTOR, 'button[value="mute"]').click()
    wait(browser).until(when.text_to_be_present_in_element((By.CSS_SELECTOR, ".notice"), f"{CHATTY} is muted"))
    shoot(browser, expo, "organiser-muted")
    visitor.poll_events()  # what was on its way before the mute
    time.sleep(0.5)
    visitor.poll_events()
    time.sleep(5)  # the bot chats every 1-3 s
    assert chat_from(visitor.poll_events(), CHATTY) == []

    walkers = len(dots(browser))
    name = browser.find_element(By.ID, "name")
    name.clear()
    name.send_keys("walker-1-0")
    browser.find_element(By.ID, "reason").send_keys("pushing through the crowd")
    browser.find_element(By.ID, "minutes").send_keys("30")
    browser.find_element(By.CSS_SELECTOR, 'button[value="ban"]').click()
    wait(browser).until(when.text_to_be_present_in_element((By.CSS_SELECTOR, ".notice"), "walker-1-0 is banned for 30 min"))
    wait(browser, 10).until(lambda d: len(dots(d)) == walkers - 1)  # its reconnects are refused: the dot stays away
    time.sleep(2)
    assert len(dots(browser)) == walkers - 1
    assert "pushing through the crowd" in browser.find_element(By.ID, "mod-h").find_element(By.XPATH, "..").text
    browser.execute_script("document.getElementById('mod-h').scrollIntoView()")
    shoot(browser, expo, "organiser-banned")


def test_an_exhibitor_fixes_a_price_and_a_visitor_sees_it(expo, browser, visitor):
    token = issue_login(browser, expo, BOOTH)
    assert token.startswith("exh_")

    log_in(browser, expo, token)
    wait(browser).until(when.title_contains("Altai Bee Farms"))
    price = browser.find_element(By.ID, "p0-price")
    price.clear()
    price.send_keys("49.999")  # KZT has two decimals
    price.submit()
    error = wait(browser).until(when.presence_of_element_located((By.ID, "p0-price-error")))
    assert "at most 2 decimals" in error.text
    assert browser.find_element(By.ID, "p0-price").get_attribute("aria-describedby").endswith("p0-price-error")
    shoot(browser, expo, "booth-error")

    visitor.poll_events()
    price = browser.find_element(By.ID, "p0-price")
    price.clear()
    price.send_keys("4990")
    price.submit()
    wait(browser).until(when.text_to_be_present_in_element((By.CSS_SELECTOR, ".notice"), "Saved"))
    shoot(browser, expo, "booth-saved")
    deadline = time.monotonic() + 3
    changed = None
    while changed is None:
        assert time.monotonic() < deadline, "the visitor's catalogue did not change"
        changed = next((e for e in visitor.poll_events() if isinstance(e, ev.ExpoChanged)), None)
        time.sleep(0.1)
    assert changed.expo.booth(BOOTH).catalogue[0].price == Decimal("4990")

    browser.get(expo["console"] + "/booth/cn-yunnan-tea")  # another booth's page
    assert "only your own booth" in browser.find_element(By.TAG_NAME, "main").text


def issue_login(driver, expo, booth: str) -> str:
    """The organiser issues an exhibitor login in the browser; its token, shown once."""
    log_in(driver, expo, expo["token"])
    wait(driver).until(when.title_contains("Halls"))
    driver.get(expo["console"] + "/organiser/exhibitors")
    from selenium.webdriver.support.select import Select

    Select(driver.find_element(By.ID, "issue-booth")).select_by_value(booth)
    driver.find_element(By.CSS_SELECTOR, 'form[aria-label="Issue a login"] button').click()
    return wait(driver).until(when.presence_of_element_located((By.ID, "issued-token"))).text


def until(what: str, done, timeout: float = 20.0):  # generous: the machine may be busy with other tests
    deadline = time.monotonic() + timeout
    while not (value := done()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def test_a_card_exchanged_in_the_hall_is_a_lead_the_exhibitor_downloads(expo, browser, visitor, tmp_path):
    staff_pass = subprocess.run([str(BIN / "expo-server"), "--staff-pass", BOOTH, "--data-dir", str(expo["data"])],
                                capture_output=True, text=True, check=True).stdout.strip()
    staff = ClientThread(ClientCore("Aigerim N", staff_pass=staff_pass), expo["url"])
    staff.start()
    try:
        until("the staff to join", staff.scene)
        staff.command(lambda core: core.set_card("Aigerim Nurlanovna", "Altai Bee Farms", "KZ", "Beekeeper", "kk", "Asia/Almaty"))
        until("the staff's card", lambda: any(isinstance(e, ev.CardSaved) for e in staff.poll_events()))
        visitor.command(lambda core: core.set_card("Watcher Person", "Tea Importers Ltd", "GB", "Buyer", "en", "Europe/London"))
        until("the card to be saved", lambda: any(isinstance(e, ev.CardSaved) for e in visitor.poll_events()))
        visitor.set_controls(-0.85, 0.52, 2.59)  # staff stand at their booth: walk from the spawn (60, 6) towards it
        entity = until("the staff in view", lambda: next(
            (o.info.entity for o in visitor.scene().others if o.info.staff_of == BOOTH), None))
        visitor.set_controls()
        visitor.command(lambda core: core.offer_card(entity))
        offer = until("the offer", lambda: next((e.message for e in staff.poll_events() if isinstance(e, ev.CardOffered)), None))
        staff.command(lambda core: core.answer_card(offer.exchange_id, True))
        until("the exchange", lambda: any(isinstance(e, ev.CardAnswered) and e.message.state == "accepted"
                                          for e in visitor.poll_events()))
    finally:
        staff.stop()

    token = issue_login(browser, expo, BOOTH)
    log_in(browser, expo, token)
    wait(browser).until(when.title_contains("Altai Bee Farms"))
    assert "Watcher" in browser.find_element(By.ID, "leads").text
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    link = browser.find_element(By.ID, "leads-csv")
    browser.execute_script("arguments[0].scrollIntoView()", link)
    shoot(browser, expo, "booth-leads")
    link.send_keys(Keys.ENTER)  # the keyboard again
    path = until("the download", lambda: next(iter(tmp_path.glob("*-leads.csv")), None))
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(until("the whole file", lambda: path.read_bytes()).decode("utf-8-sig"))))
    assert [(r["visitor_id"], r["name"], r["company"], r["sources"]) for r in rows] == [
        (visitor.core.visitor_id, "Watcher Person", "Tea Importers Ltd", "card")]


def test_pages_reflow_at_200_percent_zoom_and_the_directory_walks_you_there(expo, browser):
    log_in(browser, expo, expo["token"])
    wait(browser).until(when.title_contains("Halls"))
    browser.set_window_size(640, 1000)  # a 1280 px wide window at 200 %: the same CSS pixels
    try:
        for path, name in (("/organiser", "organiser-200"), (f"/booth/{BOOTH}", "booth-200"), ("/directory", "directory-200")):
            browser.get(expo["console"] + path)
            overflow = browser.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, (path, overflow)
            shoot(browser, expo, name)
        command = browser.find_element(By.ID, f"walk-{BOOTH}").text
        assert command == f"expo-client --server {expo['url']} --booth {BOOTH}"
    finally:
        browser.set_window_size(1280, 1400)
    browser.get(expo["console"] + "/directory")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"  # the first stop for the keyboard
    for _ in range(40):  # Tab on to a booth's link: it is a stop for the keyboard too
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if browser.switch_to.active_element.text == "Walk me there":
            break
    link = browser.switch_to.active_element
    assert link.text == "Walk me there" and link.get_attribute("href").startswith("expo://"), link.text
    assert "?booth=" in link.get_attribute("href")
    shoot(browser, expo, "directory")


# The contrast of every piece of text against the ground it is drawn on (the first ancestor
# with an opaque background), by the WCAG 2 formula; SVG labels are drawn with a halo and
# are left out. Returns the texts under 4.5:1 (3:1 for large text).
LOW_CONTRAST = """
const lum = (c) => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => v / 255)
  .map((v) => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const ground = (el) => { for (; el; el = el.parentElement) { const bg = getComputedStyle(el).backgroundColor;
  const a = bg.match(/[\\d.]+/g); if (a && (a.length < 4 || Number(a[3]) > 0.9)) return bg; } return "rgb(255, 255, 255)"; };
const out = [];
for (const el of document.querySelectorAll("body *")) {
  if (el.closest("svg") || !el.getClientRects().length) continue;
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  const st = getComputedStyle(el);
  if (st.visibility === "hidden") continue;
  const [a, b] = [lum(st.color), lum(ground(el))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const large = parseFloat(st.fontSize) >= 24 || (parseFloat(st.fontSize) >= 18.66 && Number(st.fontWeight) >= 700);
  if (ratio < (large ? 3 : 4.5)) out.push(el.tagName + " " + el.textContent.trim().slice(0, 40) + " " + ratio.toFixed(2));
}
return out;
"""
FOCUSABLE = ("a[href], button, input:not([type=hidden]), select, textarea, summary")


def test_every_page_reads_with_contrast_and_works_with_the_tab_key_alone(expo, browser):
    """On the organiser's, a booth's and the directory page: no text under the WCAG AA
    contrast; Tab reaches every link, button and field in turn, each with a visible ring."""
    from selenium.webdriver.common.action_chains import ActionChains

    log_in(browser, expo, expo["token"])
    wait(browser).until(when.title_contains("Halls"))
    for path in ("/organiser", f"/booth/{BOOTH}", "/directory", "/organiser/exhibitors"):
        browser.get(expo["console"] + path)
        assert browser.execute_script(LOW_CONTRAST) == [], path
        count = browser.execute_script(  # each element that takes the focus, and its ring, as the page sees it
            "window.focused = []; document.addEventListener('focusin', (e) => window.focused.push("
            "[e.target, getComputedStyle(e.target).outlineStyle]));"
            f"return [...document.querySelectorAll({FOCUSABLE!r})].filter((e) => e.getClientRects().length).length")
        ActionChains(browser).send_keys(*[Keys.TAB] * (count + 15)).perform()  # every target, and scrollable tables
        missed = browser.execute_script(
            "const seen = new Set(window.focused.map(([e]) => e));"
            f"return [...document.querySelectorAll({FOCUSABLE!r})].filter((e) => e.getClientRects().length && !seen.has(e))"
            ".map((e) => e.outerHTML.slice(0, 120))")
        assert missed == [], (path, missed)
        rings = {ring for _, ring in browser.execute_script("return window.focused")}
        assert rings == {"solid"}, (path, rings)


@pytest.fixture(scope="module")
def expo_with_a_bank(tmp_path_factory):
    """A server with its console and a real bank beside it, as `make run` starts them."""
    tmp = tmp_path_factory.mktemp("browser-bank")
    root = copy_expo(tmp)
    port, console, bank_port = free_port(), free_port(), free_port()
    key = "browser-test-platform-key"
    bank = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", str(tmp / "bank.sqlite3"),
                  "--platform-key", key], f"http://127.0.0.1:{bank_port}/healthz", log=tmp / "bank.log")
    try:
        server = start([str(BIN / "expo-server"), "--port", str(port), "--console-port", str(console), "--world", str(root),
                        "--data-dir", str(tmp / "data"), "--bank-url", f"http://127.0.0.1:{bank_port}", "--log-level",
                        "warning"], f"http://127.0.0.1:{port}/healthz", log=tmp / "server.log", timeout=120,
                       env={**os.environ, "EXPO_BANK_PLATFORM_KEY": key})
        try:
            yield {"url": f"ws://127.0.0.1:{port}/", "console": f"http://127.0.0.1:{console}",
                   "token": (tmp / "data" / "console" / "organiser.token").read_text().strip(),
                   "shots": Path(os.environ.get("CONSOLE_SCREENSHOTS", tmp / "shots"))}
        finally:
            stop(server)
    finally:
        stop(bank)


def test_an_exhibitor_answers_a_request_for_quotation_with_the_keyboard(expo_with_a_bank, browser):
    """A buyer in the hall asks the tea booth (no price list) for a quotation; the exhibitor
    tabs into the request's form, types a price the form refuses (said under that box, the
    focus can go straight back), then a right one: the buyer's client reads the quotation."""
    expo = expo_with_a_bank
    buyer = ClientThread(ClientCore("Mei Buyer"), expo["url"])
    buyer.start()
    try:
        until("the buyer to join", buyer.scene)
        buyer.command(lambda core: core.request_quote("cn-yunnan-tea", "CN-PUER-357", 60, "FOB", "MY", "rfq-keys"))
        asked = until("the request", lambda: next((e.message for e in buyer.poll_events() if isinstance(e, ev.DealUpdated)
                                                   and e.message.state == "requested"), None))
        log_in(browser, expo, issue_login(browser, expo, "cn-yunnan-tea"))
        wait(browser).until(when.title_contains("Yunnan"))
        first = browser.find_element(By.ID, f"{asked.deal_id}-t0-price")
        first.send_keys("eighteen", Keys.ENTER)  # Enter in a box sends its form
        error = wait(browser).until(when.presence_of_element_located((By.ID, f"{asked.deal_id}-t0-price-error")))
        assert "a price above 0" in error.text
        # the page comes back at the section the form was sent from, not at its top
        top = browser.execute_script("return document.getElementById('deals-h').getBoundingClientRect().top")
        assert abs(top) < 5, top
        shoot(browser, expo, "deal-quote-error")
        box = browser.find_element(By.ID, f"{asked.deal_id}-t0-price")
        assert box.get_attribute("aria-invalid") == "true" and box.get_attribute("value") == "eighteen"
        box.clear()
        box.send_keys("18", Keys.TAB, "50", Keys.TAB, "15.05", Keys.ENTER)  # the second tier, by Tab
        said = wait(browser).until(when.presence_of_element_located((By.CSS_SELECTOR, "#deals-h + .notice")))
        assert said.text.startswith(f"Quotation sent for {asked.deal_id}: 15.05 CNY a unit") and said.is_displayed()
        assert 0 <= browser.execute_script("return arguments[0].getBoundingClientRect().top", said) < 900  # in view
        shoot(browser, expo, "deal-quoted")
        quoted = until("the quotation", lambda: next((e.message for e in buyer.poll_events() if isinstance(e, ev.DealUpdated)
                                                      and e.message.state == "quoted"), None))
        assert (quoted.deal_id, quoted.unit_price, quoted.total) == (asked.deal_id, "15.05", "903.00")
    finally:
        buyer.stop()
