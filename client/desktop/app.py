"""The visitor's window: a ShowBase that draws what the client core knows and sends what
the visitor does.

The network runs in its own thread (``client.threaded.ClientThread``), the bank calls in
another (``bank_worker``); each frame only drains their events, reads the latest scene and
pushes the keys held, so nothing here waits on a socket. Decisions live in the pure modules
(``shop``, ``chat``, ``steering``, ``nearby``, ``pricing``); this class wires them to
Panda3D and DirectGUI. Objects are passed explicitly: no ``base``/``render`` builtins.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from direct.showbase.ShowBase import ShowBase
from panda3d.core import AntialiasAttrib, ClockObject, Fog, ModifierButtons, Point2, Point3, loadPrcFileData

import protocol as p
from bank.client import BankAPIError
from client import events as ev
from client.core import ClientCore, NotJoined
from client.identity import IdentityFile
from client.threaded import ClientThread
from world import iso
from world.assets import PROJECT_ASSETS
from world.model import Booth, BoothKind, Category, Expo, Product

from ..pathfind import entrance
from . import chat as chatmod
from .bank_worker import BankWorker
from .cards import REPORT_REASONS, CardDesk, CardFile, MyCard
from .directory import category_label, next_category
from .hallmap import MapFrame
from .hintcard import SEEN as HINTS_SEEN
from .hintcard import HintCard
from .i18n import LANGUAGES, SPEAKER, Preferences, _, country_name, n_
from .layout import View, booth_view
from .meetings import Book, Cancel, MeetingDesk, Mode, Move, meeting_time
from .nearby import booth_at, on_duty, route
from .orders import OrderHistory, receipt_lines
from .pbr import SHADOW_FILM, PbrLighting, pbr_lighting
from .pricing import QuoteKey, Quotes, money
from .products import ProductModels
from .scene_avatars import AvatarLayer
from .scene_geometry import load_font, text_node
from .scene_hall import HallScene, add_lights, build_hall
from .settings import ConnectSettings, check, colour_hex, parse_colour
from .shop import Busy, Checkout, ConfirmPayment, Refresh, SendCancel, SendOrder, SendOrderPaid, Stage, buy_blocker
from .steering import MOUSE_TURN, Autopilot, FollowCamera, Keys, frame_dt, steer
from .wallet import BankCredential, Wallet

BACKGROUND = (0.13, 0.14, 0.17, 1)
MOVE_KEYS = {"w": "forward", "arrow_up": "forward", "s": "back", "arrow_down": "back",
             "a": "left", "arrow_left": "left", "d": "right", "arrow_right": "right"}
ACCOUNT_GONE = {"invalid_token", "unauthenticated", "account_not_found"}
ACTIVE_FPS = 60  # the frame cap while anything moves or is pressed
IDLE_FPS = 6  # standing still with nothing moving: the client sleeps between frames (a key wakes it)
IDLE_AFTER = 1.5  # seconds without input or movement before the idle cap applies


@dataclass(frozen=True, slots=True)
class Look:
    """What a quality setting draws: "low" keeps software renderers (no GPU) usable."""

    figure_detail: float  # metres from the camera within which figures have full detail
    tag_distance: float  # metres within which name tags are drawn
    fill_light: bool
    fog: bool
    pbr: bool = False  # physically based shading with soft shadows (client/desktop/pbr.py)
    fine_filtering: bool = True  # trilinear mipmaps and anisotropy; off: bilinear (scene_hall.cheap_filtering)


if TYPE_CHECKING:
    from .card_editor import CardEditor, OfferPanel

QUALITIES = {"low": Look(12.0, 18.0, False, False, fine_filtering=False), "high": Look(25.0, 40.0, True, True, pbr=True)}




def people_near(x: float, y: float, others: list[tuple[str, str | None, float, float]],
                exhibitors: dict[str, str], limit: int = 14) -> list[str]:
    """The people in view, nearest first: name, how far, and whose staff they are."""
    rows = sorted((math.hypot(ox - x, oy - y), name, staff) for name, staff, ox, oy in others)
    return [f"{name}  ·  {d:.0f} m" + (f"  ·  staff of {exhibitors.get(staff, staff)}" if staff else "")
            for d, name, staff in rows[:limit]] + ([f"… and {len(rows) - limit} more"] if len(rows) > limit else [])


def people_in_view(count: int) -> str:
    return n_("{count} visitor in view", "{count} visitors in view", count).format(count=count)


def booth_about(booth: Booth, language: str = "en") -> str:
    """The booth's description (in ``language`` if the world file has it) and who is
    there, for the catalogue's header."""
    staff = ", ".join(f"{m.name} ({m.role})" if m.role else m.name for m in booth.staff)
    return booth.text_in(language)[2] + ("\n" + _("Staff: {staff}").format(staff=staff) if staff else "")


def configure_panda(offscreen: bool, size: tuple[int, int] = (1280, 720), multisamples: int = 0) -> None:
    """Settings that must be in place before the ShowBase opens its window."""
    lines = [f"win-size {size[0]} {size[1]}", "audio-library-name null", "sync-video false",
             "window-title Silk Road Expo", "notify-level-display error", "notify-level-device fatal",
             "textures-power-2 none", "print-pipe-types false"]
    if offscreen:
        # Each frame finished before the next: a window's buffer swap bounds the frames the
        # driver has queued, an offscreen buffer does not, and Mesa's software renderer then
        # queues thousands of undrawn frames, which the next texture upload or screenshot
        # must wait for (a portal hop hung for minutes).
        lines += ["window-type offscreen", "gl-finish true"]
        if not os.environ.get("DISPLAY"):  # no X server: straight to EGL, not a failed X11 try first
            lines.append("load-display p3headlessgl")
    if multisamples:
        lines += ["framebuffer-multisample 1", f"multisamples {multisamples}"]
    loadPrcFileData("expo-client", "\n".join(lines))


def style_of(name: str) -> int:
    """A stable body style from the name, so a visitor looks the same every visit."""
    return hashlib.blake2b(name.casefold().encode(), digest_size=1).digest()[0]


@dataclass
class Visit:
    """Everything that belongs to one joined connection (and dies with it)."""

    settings: ConnectSettings
    thread: ClientThread
    expo: Expo | None = None
    hall_index: int | None = None
    hall_scene: HallScene | None = None
    yaw: float = 1.5707963
    bank: BankWorker | None = None
    credential: BankCredential | None = None
    balance: str | None = None
    balance_minor: int | None = None  # in the account's currency
    failure_shown: str | None = None  # the purchase key whose failure was last toasted
    stock: dict[str, dict[str, int]] = field(default_factory=dict)
    inventory: list[tuple[str, str, str, int]] = field(default_factory=list)
    quotes: Quotes = field(default_factory=Quotes)
    checkout: Checkout = field(default_factory=Checkout)
    chat: chatmod.ChatLog = field(default_factory=chatmod.ChatLog)
    catalogue: str | None = None  # booth id of the open catalogue
    near: str | None = None
    joined: bool = False
    snapshots: int = 0
    visitor_id: str | None = None  # who the server knows us as (Welcome)
    cards: CardDesk = field(default_factory=CardDesk.empty)
    people: list[int] = field(default_factory=list)  # entities of the people list, as shown
    selected: int = 0  # the row of the people list that O (offer card) and R (report) act on
    reporting: int | None = None  # the entity whose report waits for a reason (1-4)
    meetings: MeetingDesk | None = None  # the meetings panel of one booth (B)
    moving: str | None = None  # the booking a move was asked for ("" once its old time is cancelled)
    on_duty: tuple[str, ...] = ()  # the staff at the booth whose card shows
    picked: int | None = None  # the avatar clicked (its entity): O offers it your card
    bookings: dict[str, p.Booking] = field(default_factory=dict)  # booking id -> as it stands
    reminded: p.MeetingReminder | None = None  # the meeting G walks you to

    def purchases(self) -> BankWorker:
        """The bank the server named: a payment step only comes when purchases are on."""
        if self.bank is None:
            raise RuntimeError("a payment step came, but the server named no bank (purchases are off)")
        return self.bank


def _product(expo: Expo, booth_id: str, sku: str) -> tuple[Booth, Product]:
    """A booth's product the visitor is looking at (its catalogue is open, so both exist)."""
    booth = expo.booth(booth_id)
    product = booth.product(sku) if booth is not None else None
    if booth is None or product is None:
        raise KeyError(f"no product {sku!r} at booth {booth_id!r} in this expo")
    return booth, product


class ExpoApp(ShowBase):
    def __init__(self, *, offscreen: bool = False, size: tuple[int, int] = (1280, 720), wallet: Wallet,
                 assets_root: Path = PROJECT_ASSETS, defaults: ConnectSettings | None = None,
                 multisamples: int = 0, screenshot_dir: Path | None = None, quality: str = "high",
                 preferences: Preferences | None = None, card_file: CardFile | None = None) -> None:
        if quality not in QUALITIES:
            raise ValueError(f"quality {quality!r}: one of {', '.join(QUALITIES)}")
        self.quality = quality
        if quality == "low":
            multisamples = 0
        configure_panda(offscreen, size, multisamples)
        self.screenshot_dir = screenshot_dir
        self.screenshots_taken = 0
        super().__init__(windowType="offscreen" if offscreen else None)
        self.disableMouse()
        self.wallet = wallet
        self.identity = IdentityFile(wallet.path.with_name("identity.json"))  # beside the wallet
        self.orders = OrderHistory(wallet.path.with_name("orders.json"))  # the receipts, for the I panel
        self.hint_card: HintCard | None = None  # the keys, after the first join on this computer
        self.assets_root = assets_root
        self.win.setClearColor(BACKGROUND)
        self.camLens.setFov(70)
        self.camLens.setNearFar(0.2, 400)
        self.world = self.render.attachNewNode("world")
        self.lighting: PbrLighting | None = None
        if QUALITIES[quality].pbr:
            self.lighting = pbr_lighting(self.render, multisamples)
        else:
            add_lights(self.render, fill=QUALITIES[quality].fill_light)
        self.products = ProductModels(assets_root)
        self.render.setAntialias(AntialiasAttrib.MMultisample if multisamples else AntialiasAttrib.MNone)
        fog = Fog("haze")
        fog.setColor(*BACKGROUND[:3])
        fog.setLinearRange(60, 180)
        if QUALITIES[quality].fog:
            self.world.setFog(fog)
        look = QUALITIES[quality]
        self.avatars = AvatarLayer(self.world, look.figure_detail, look.tag_distance)
        self.camera_rig = FollowCamera()
        self.font = load_font(True)
        self.effects = self.world.attachNewNode("effects")
        self.keys: dict[str, bool] = {}
        self.run_held = False
        self.typing = False
        self.visit: Visit | None = None
        self.fixed_view: View | None = None  # the screenshot mode's camera
        self.autopilot: Autopilot | None = None  # walks for previews and tests instead of the keys
        self.walk_to: str | None = None  # a booth to walk to once joined (expo-client --booth)
        self.status_text = ""
        self._last_frame = time.monotonic()
        self._last_activity = self._last_frame
        self._mouse_x: float | None = None
        self.text_scale = 1.0
        self.clock = ClockObject.getGlobalClock()
        self.max_fps = ACTIVE_FPS  # 0: no frame cap at all (benchmarks' peer)
        self.frame_cap = 0
        self.set_max_fps(ACTIVE_FPS)
        d = defaults or ConnectSettings("ws://127.0.0.1:8765/", "", 0x2E86AB)
        self.preferences = preferences
        self.card_file = card_file
        self.my_card: MyCard | None = card_file.load() if card_file is not None else None
        self.card_editor: CardEditor | None = None  # K: your card, open over the hall
        self._after_card: Callable[[], None] | None = None  # what waits for the card being edited
        self.offer_panel: OfferPanel | None = None  # a clicked avatar's name and Offer card
        remembered = preferences.load() if preferences is not None else {}
        if remembered.get("language") in LANGUAGES:
            SPEAKER.use(remembered["language"])
        self._build_panels(d.server, d.name, colour_hex(d.colour), d.currency)
        from .deals_panel import DealsPanel  # DirectGUI needs the ShowBase first
        from .gift_panel import GiftPanel

        self.deals = DealsPanel(self)  # Q request a quote, T my deals
        self.gifts = GiftPanel(self)  # H, with your purchases shown: give a certificate to a contact
        from .late_keys import LateKeys

        self.late_keys = LateKeys(self.clock.getFrameCount)  # what was typed in the frame Enter or F opened a box
        self.found: list = []  # the directory's results (directory.Match)
        self.directory_category: Category | None = None  # the directory's filter (Tab)
        self._directory_closed_frame = -1
        self.hud.hide()
        self._bind_keys()
        self.taskMgr.add(self._frame, "expo-frame", sort=-10)

    # ------------------------------------------------------------------ keys

    def _build_panels(self, server: str, name: str, colour: str, currency: str) -> None:
        """The connect screen and the HUD, in the language in use."""
        from . import card_editor  # noqa: F401 (imported now, so K opens the form at once: no keys lost to a slow first frame)
        from .ui import ConnectScreen, Hud  # DirectGUI needs the ShowBase first

        self.connect_screen = ConnectScreen(self.aspect2d, self.font, server, name, parse_colour(colour), currency,
                                            self._join_clicked, self.grow_text, self.set_language)
        self.hud = Hud(self.aspect2d, self.font, self.a2dTopLeft, self.a2dTopRight, self.a2dBottomLeft,
                       self.a2dBottomCenter, self.a2dBottomRight, self.a2dTopCenter,
                       self.buy, self.close_catalogue, self._chat_entered, self.confirm_purchase,
                       self._directory_search, self._directory_pick)

    def set_language(self, language: str) -> None:
        """Chosen on the connect screen: every panel anew in that language, remembered."""
        if self.visit is not None:
            return  # the connect screen's choice; the hall keeps its language until the next visit
        SPEAKER.use(language)
        if self.preferences is not None:
            self.preferences.save(language=language)
        values = self.connect_screen.values()
        try:
            parse_colour(values[2])
        except ValueError:
            values = (values[0], values[1], "#888888", values[3])
        self.connect_screen.destroy()
        self.hud.destroy()
        self._build_panels(*values)
        self.hud.hide()
        for key, pages in (("page_down", 1), ("page_up", -1), ("wheel_down", 1), ("wheel_up", -1)):
            self.accept(key, self.hud.scroll_catalogue, [pages])
        self.set_text_scale(self.text_scale)

    def _bind_keys(self) -> None:
        # Without modifier buttons Panda3D sends "w", never "shift-w": Shift+W walks (and
        # runs) whichever was pressed first, and so does any other combination.
        for thrower in self.buttonThrowers or ():
            thrower.node().setModifierButtons(ModifierButtons())
            thrower.node().setButtonDownEvent("button-down")  # any key or click: awake at full rate
            thrower.node().setKeystrokeEvent("keystroke")  # typed characters, in order with the keys (card editor)
        if self.mouseWatcherNode is not None:
            self.mouseWatcherNode.setModifierButtons(ModifierButtons())
        for key, what in MOVE_KEYS.items():
            self.accept(key, self._key, [what, True])
            self.accept(key + "-up", self._key, [what, False])
        self.accept("shift", self._run, [True])
        self.accept("shift-up", self._run, [False])
        self.accept("mouse3", self._look, [True])
        self.accept("mouse3-up", self._look, [False])
        self.accept("e", self._interact)
        self.accept("i", self._toggle_inventory)
        self.accept("l", self._with_purchases, [self.deals.check_certificate])
        self.accept("h", self._with_purchases, [self.gifts.open])
        self.accept("f", self.open_directory)
        self.accept("p", self._toggle_people)
        self.accept("m", self._toggle_map)
        self.accept("enter", self._enter)
        self.accept("escape", self._escape)
        self.accept("tab", self._tab)
        for key, pages in (("page_down", 1), ("page_up", -1), ("wheel_down", 1), ("wheel_up", -1)):
            self.accept(key, self.hud.scroll_catalogue, [pages])
        self.accept("window-event", self._window_event)
        self.accept("button-down", self._woken)
        for row in range(1, 10):  # Buy without the mouse: the row's number (5-9: meeting times)
            self.accept(str(row), self._buy_row, [row - 1])
        self.accept("f12", self.save_screenshot)
        self.accept("[", self._select_person, [-1])
        self.accept("]", self._select_person, [1])
        self.accept("o", self._offer_card, ["o"])
        self.accept("r", self._report_selected)
        self.accept("y", self._answer_offer, [True])
        self.accept("n", self._answer_offer, [False])
        self.accept("c", self._toggle_cards)
        self.accept("b", self._list_slots)
        self.accept("g", self._walk_to_meeting)
        self.accept("x", self._meeting_key, ["x"])
        self.accept("v", self._meeting_key, ["v"])
        self.accept("k", self.edit_card, ["k"])
        self.accept("mouse1", self._clicked)

    def _key(self, what: str, down: bool) -> None:
        self.keys[what] = down and not self.typing and not self.connect_screen.visible
        if self.keys[what] and self.autopilot is not None and self.fixed_view is None:
            self.autopilot = None  # the visitor takes over from "walk me there"
        self._last_activity = time.monotonic()

    def _run(self, down: bool) -> None:
        self.run_held = down
        self._last_activity = time.monotonic()

    def _woken(self, _button=None) -> None:
        self._last_activity = time.monotonic()
        if self.max_fps and self.frame_cap != self.max_fps:
            self.frame_cap = self.max_fps
            self.clock.setFrameRate(self.max_fps)

    def _look(self, down: bool) -> None:
        self.keys["look"] = down
        self._mouse_x = None

    def open_directory(self) -> None:
        """F: the booth directory, its search box taking the keys."""
        v = self.visit
        if v is None or v.expo is None or self.typing:
            return
        self.typing = True
        self.keys.clear()
        self.hud.open_directory()
        self.late_keys.opened(self.hud.directory_entry, self._directory_search)
        self.directory_category = None
        self.hud.set_directory_filter(category_label(None))
        self._directory_search("")

    def close_directory(self) -> None:
        self.typing = False
        self._directory_closed_frame = self.clock.getFrameCount()
        self.hud.close_directory()

    def _directory_search(self, query: str) -> None:
        from .directory import search

        v = self.visit
        if v is None or v.expo is None:
            return
        self.found = search(v.expo, query, category=self.directory_category)
        self.hud.set_directory([f"{m.booth.text_in(SPEAKER.language)[0]}  ·  {m.why}  ·  {m.hall}" for m in self.found])

    def _directory_pick(self, index: int) -> None:
        """A result clicked, or Enter for the first: walk there (any move key takes over)."""
        v = self.visit
        self.close_directory()
        if v is None or index >= len(self.found) or v.hall_index is None:
            return
        self.walk_to_booth(v, self.found[index].booth.id, v.hall_index)

    def _buy_row(self, index: int) -> None:
        if self.visit is not None and self.visit.reporting is not None and not self.typing:
            self._report_reason(index)
            return
        if self.visit is not None and self._meetings_open(self.visit) and not self.typing:
            self._book_row(index)
            return
        shown = self.hud.shown_skus
        if not self.typing and not self.hud.confirming and index < len(shown):
            row = self.hud.catalogue_rows[self.hud.cat_first + index]
            if row.can_buy:
                self.buy(row.sku)
            else:
                self.hud.show_toast(f"{row.name}: {row.blocked}", time.monotonic(), bad=True)

    def save_screenshot(self) -> Path | None:
        """F12: the window as a PNG in ``screenshot_dir`` (for bug reports, and the tests)."""
        if self.screenshot_dir is None:
            return None
        from panda3d.core import Filename

        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.screenshot_dir / f"expo-{time.strftime('%Y%m%d-%H%M%S')}-{self.screenshots_taken:03d}.png"
        self.screenshots_taken += 1
        self.win.saveScreenshot(Filename.fromOsSpecific(str(path)))
        return path

    def _tab(self) -> None:
        if self.gifts.tab():
            return
        if self.card_editor is not None:
            self.card_editor.focus_next(-1 if self.run_held else 1)
        elif self.connect_screen.visible:
            self.connect_screen.focus_next(-1 if self.run_held else 1)
        elif self.hud.directory_open:  # the directory's category filter, the next kind
            self.directory_category = next_category(self.directory_category)
            self.hud.set_directory_filter(category_label(self.directory_category))
            self._directory_search(self.hud.directory_entry.get())

    def _window_event(self, window) -> None:
        """ShowBase's own handling first (this handler takes its place: without it a resized
        window kept the old aspect ratio, stretched, and a window closed did not quit).
        Keys released while the window had no focus never send their "-up": forget them.
        A window of another shape moves the window's edges: the bottom row is laid out anew."""
        self.windowEvent(window)
        if window is not None and window == self.win and not window.getProperties().getForeground():
            self.keys.clear()
            self.run_held = False
        if window is not None and window == self.win:
            self.hud.arrange()

    def grow_text(self, factor: float) -> None:
        """The text-size setting: every panel, from 0.8x to 1.8x."""
        self.set_text_scale(self.text_scale * factor)

    def set_text_scale(self, scale: float) -> None:
        self.text_scale = min(max(scale, 0.8), 1.8)
        self.hud.set_text_scale(self.text_scale)
        self.connect_screen.frame.setScale(self.text_scale)

    def held(self) -> Keys:
        if self.typing:
            return Keys()
        k = self.keys
        return Keys(k.get("forward", False), k.get("back", False), k.get("left", False), k.get("right", False),
                    self.run_held, k.get("look", False))

    def _mouse_turn(self) -> float:
        """Radians the mouse turned the heading this frame (mouse look: right button held)."""
        if not self.keys.get("look") or self.mouseWatcherNode is None or not self.mouseWatcherNode.hasMouse():
            self._mouse_x = None
            return 0.0
        x = self.mouseWatcherNode.getMouseX() * self.win.getXSize() / 2
        last, self._mouse_x = self._mouse_x, x
        self._last_activity = time.monotonic()
        return 0.0 if last is None else -(x - last) * MOUSE_TURN

    def _enter(self) -> None:
        if self.card_editor is not None:
            self.card_editor.save()
            return
        if self.clock.getFrameCount() == self._directory_closed_frame:
            return  # that Enter picked a booth in the directory
        if self.late_keys.pending(self.hud.chat_entry):  # Enter, a line, Enter, all in one (slow) frame
            self._chat_entered(self.hud.chat_entry.get())
            return
        if self.late_keys.pending(self.hud.directory_entry):
            self._directory_pick(0)
            return
        if self.gifts.enter() or self.deals.enter():
            return  # the real-name form or the quote form sent, a gift chosen, a question answered
        if self.hud.confirming:
            self.confirm_purchase(True)
            return
        if self.visit is not None and self.visit.joined and not self.typing:
            self.typing = True
            self.keys.clear()
            self.hud.open_chat()
            self.late_keys.opened(self.hud.chat_entry)

    def _escape(self) -> None:
        if self.gifts.escape() or self.deals.escape():
            return
        if self.card_editor is not None:
            self.card_editor.cancel()
        elif self.offer_panel is not None:
            self.close_pick()
        elif self.visit is not None and self.visit.meetings is not None and self.visit.meetings.back():
            self._show_meetings(self.visit)
        elif self.visit is not None and self.visit.reporting is not None:
            self.visit.reporting = None
            self.hud.show_prompt(None)
            self._prompt_offer(self.visit)
        elif self.visit is not None and self.visit.reminded is not None and not self.visit.cards.current():
            self.visit.reminded = None
            self.hud.show_prompt(None)
        elif self.hud.confirming:
            self.confirm_purchase(False)
        elif self.hud.directory_open:
            self.close_directory()
        elif self.typing:
            self.typing = False
            self.hud.close_chat()
        elif self.visit is not None and self.visit.catalogue:
            self.close_catalogue()
        elif self.hint_card is not None and self.hint_card.visible:
            self.close_hint_card()  # last of the pop-ups: Esc closes whatever was opened over it first
        else:
            self.hud.set_inventory(None)

    def _interact(self) -> None:
        v = self.visit
        if self.typing or v is None:
            return
        if v.catalogue:
            self.close_catalogue()
        elif v.near:
            self.open_catalogue(v.near)

    # ------------------------------------------------------------------ connecting

    def _join_clicked(self, server: str, name: str, colour: str, currency: str) -> None:
        settings, problems = check(server, name, colour, currency)
        if settings is None:
            self.connect_screen.show_error("; ".join(f"{k}: {m}" for k, m in problems.items()))
            return
        self.connect(settings)

    def connect(self, settings: ConnectSettings) -> None:
        """Join the expo at ``settings.server``; replaces any earlier visit."""
        self.leave()
        core = ClientCore(settings.name, settings.colour, style_of(settings.name),
                          visitor_token=self.identity.token(settings.server))
        self.visit = Visit(settings, ClientThread(core, settings.server))
        self.visit.thread.start()
        self.connect_screen.hide()
        self.hud.show()
        self.hud.set_wallet(_("Bank"), "…")
        self.hud.show_banner(f"Connecting to {settings.server}…")

    def _first_run_hints(self) -> None:
        """The hint card, until the visitor has closed it once (remembered in preferences;
        without preferences, as in previews and tests, never)."""
        if self.preferences is None or self.preferences.load().get(HINTS_SEEN) or self.fixed_view is not None:
            return
        if self.hint_card is None:
            self.hint_card = HintCard(self.aspect2d, self.font, self.close_hint_card)
        self.hint_card.show()

    def close_hint_card(self) -> None:
        """Esc or the card's ✕: closed, and not shown again on this computer."""
        if self.hint_card is not None and self.hint_card.visible:
            self.hint_card.hide()
            if self.preferences is not None:
                self.preferences.save(**{HINTS_SEEN: True})

    def leave(self) -> None:
        v, self.visit = self.visit, None
        if v is None:
            return
        v.thread.stop()
        if v.bank is not None:
            v.bank.close()
        if v.hall_scene is not None:
            v.hall_scene.destroy()
        self.avatars.clear()
        self.effects.getChildren().detach()
        self.close_pick()
        self.hud.show_card(None)  # nothing of this visit shows in the next
        if self.hint_card is not None:  # not closed yet: again at the next join, in its language
            self.hint_card.destroy()
            self.hint_card = None
        self.hud.hide_catalogue()
        self.hud.hide_toast()

    def back_to_connect(self, message: str) -> None:
        self.leave()
        self.hud.hide()
        self.connect_screen.show()
        self.connect_screen.show_error(message)

    def command(self, do) -> bool:
        """Run a core command on the network thread; False (and a note) when not joined."""
        v = self.visit
        if v is None:
            return False
        try:
            v.thread.command(do)
            return True
        except (NotJoined, TimeoutError, ConnectionError) as exc:
            v.chat.note(f"not sent: {exc}")
            return False

    # ------------------------------------------------------------------ the frame

    def _frame(self, task):
        now = time.monotonic()
        dt, self._last_frame = frame_dt(now, self._last_frame), now
        v = self.visit
        if v is not None:
            events = v.thread.poll_events()
            for event in events:
                self._on_event(v, event)
                if not isinstance(event, (ev.SnapshotReceived, ev.PongReceived)):  # these change nothing shown
                    self._last_activity = now
            if self.visit is v:  # an event may have ended the visit
                if v.bank is not None:
                    v.bank.poll()
                self._draw(v, dt)
        self.hud.tick(now)
        self._pace(now)
        return task.cont

    def _pace(self, now: float) -> None:
        """The frame cap: 60 fps while something happens, 15 when the visitor stands still
        and nobody in view moves, so an idle client leaves the CPU alone."""
        if any(self.keys.values()) or self.autopilot is not None or self.typing or self.avatars.moving:
            self._last_activity = now
        idle = now - self._last_activity > IDLE_AFTER
        fps = min(IDLE_FPS, self.max_fps) if idle else self.max_fps
        if self.max_fps and self.frame_cap != fps:
            self.frame_cap = fps
            self.clock.setFrameRate(fps)

    def set_max_fps(self, fps: int) -> None:
        """The cap while something happens (the idle cap is lower); 0 takes every cap off."""
        self.max_fps = fps
        if fps:
            self.clock.setMode(ClockObject.MLimited)
            self.clock.setFrameRate(fps)
            self.frame_cap = fps
        else:
            self.clock.setMode(ClockObject.MNormal)
            self.frame_cap = 0

    def _draw(self, v: Visit, dt: float) -> None:
        scene = v.thread.scene()
        if scene is None or v.expo is None:
            return
        if scene.hall != v.hall_index:
            self._enter_hall(v, scene.hall)
        if self.autopilot is not None and self.autopilot.done and self.fixed_view is None:
            self.autopilot = None  # a walk to a booth is over: the keys steer again
        if self.autopilot is not None:
            controls = self.autopilot.update(scene.own.x, scene.own.y, v.yaw, dt)
        else:
            controls = steer(self.held(), v.yaw, dt, turn_by=self._mouse_turn())
        v.yaw = controls.yaw
        v.thread.set_controls(controls.move_x, controls.move_y, controls.yaw, controls.run)
        own = scene.own
        core = v.thread.core
        drawn = [(e.info.entity, e.info.name, e.info.colour, e.info.style, e.pose, False) for e in scene.others]
        if core.entity is not None and self.fixed_view is None:
            drawn.append((core.entity, v.settings.name, v.settings.colour, style_of(v.settings.name), own, True))
        staffed = {e.info.entity: of for e in scene.others if (of := e.info.staff_of)}  # tags name their exhibitor
        exhibitors = {b.id: b.text_in(SPEAKER.language)[0] for b in v.expo.booths} if staffed else {}
        self.avatars.sync(drawn, dt, {entity: exhibitors.get(of, of) for entity, of in staffed.items()})
        if self.fixed_view is not None:
            self.camera.setPos(*self.fixed_view.eye)
            self.camera.lookAt(Point3(*self.fixed_view.target))
        else:
            pose = self.camera_rig.update(own.x, own.y, v.yaw, dt)
            self.camera.setPos(*pose.eye)
            self.camera.lookAt(Point3(*pose.target))
            if core.entity in self.avatars.nodes:  # pulled in against a wall: our own head is in the way
                mine = self.avatars.nodes[core.entity]
                mine.root.hide() if self.camera_rig.reach < self.camera_rig.FIRST_PERSON else mine.root.show()
        if self.lighting is not None:  # the shadow map covers the floor just ahead of the camera
            ahead = self.camera.getPos(self.render) + self.camera.getQuat(self.render).getForward() * (SHADOW_FILM / 3)
            self.lighting.follow(ahead.x, ahead.y)
        self.avatars.place_figures(self.camera)  # near ones walk, far ones are copies in one draw
        # our name hides a metre away; the others' tags fade, stack and give way by distance
        self.avatars.place_tags(self.camera, self.win.getYSize() / 2 / math.tan(math.radians(self.camLens.getVfov()) / 2),
                                hide_own=self.fixed_view is None and self.camera_rig.reach < 0.6)
        hall = v.expo.halls[scene.hall]
        booth = booth_at(v.expo, hall.id, own.x, own.y)
        near = booth.id if booth else None
        duty = on_duty(booth, [(o.info.name, o.info.staff_of, o.pose.x, o.pose.y) for o in scene.others]) if booth else ()
        if near != v.near or duty != v.on_duty:  # staff arriving or leaving change the card at once
            v.near, v.on_duty = near, duty
            self._show_card(v, booth if self.fixed_view is None else None)  # a fixed view does not show us
        if v.catalogue is not None:
            self.hud.show_card(None)  # the catalogue says all the card would
        self.hud.set_place(hall.name, f"{people_in_view(len(scene.others) + 1)}  ·  {v.expo.name}")
        others = [(o.pose.x, o.pose.y) for o in scene.others]
        for panel in (self.hud.minimap, self.hud.bigmap):
            if panel.visible:
                panel.update((own.x, own.y), others)

    def _enter_hall(self, v: Visit, index: int, rebuild: bool = False) -> None:
        """Build hall ``index``'s scene; ``rebuild``: the same hall after a world edit, so the
        people, the camera and the open catalogue stay."""
        if v.hall_scene is not None:
            v.hall_scene.destroy()
            if self.autopilot is not None and not rebuild:
                self.autopilot.crossed()  # the portal it was heading for did its job
        if not rebuild:
            self.avatars.clear()
            self.effects.getChildren().detach()
        assert v.expo is not None
        v.hall_scene = build_hall(v.expo, v.expo.halls[index], self.assets_root, self.products,
                                  fine_filtering=QUALITIES[self.quality].fine_filtering, language=SPEAKER.language)
        v.hall_scene.root.reparentTo(self.world)
        v.hall_index = index
        self.camera_rig.bounds = (v.expo.halls[index].width, v.expo.halls[index].depth)
        self.camera_rig.booths = [(b.footprint.min_x, b.footprint.min_y, b.footprint.max_x, b.footprint.max_y)
                                  for b in v.expo.booths_in(v.expo.halls[index].id)]
        hall = v.expo.halls[index]
        self.hud.minimap.build(v.expo, MapFrame(hall, 0.5), names=False)
        self.hud.bigmap.build(v.expo, MapFrame(hall, 1.8), names=True)
        if not self.hud.bigmap.root.isHidden():
            self.hud.bigmap.hide()
        if rebuild:
            return
        self.camera_rig.snap()
        if v.catalogue:
            self.close_catalogue()

    def _expo_changed(self, v: Visit, expo: Expo) -> None:
        """Exhibitors edited the world files: rebuild the hall (walls, banners, labels), and
        show the new card and catalogue, so nobody reads yesterday's tagline."""
        v.expo = expo
        if v.hall_index is not None:
            if v.hall_index < len(expo.halls):
                self._enter_hall(v, v.hall_index, rebuild=True)
            else:  # the hall went: the next snapshot says where the server put us
                v.hall_index = None
        v.near = None  # the next frame shows the card afresh
        if v.catalogue is not None:
            if expo.booth(v.catalogue) is None:
                self.close_catalogue()
            else:
                self._refresh_catalogue(v)

    def _show_card(self, v: Visit, booth: Booth | None) -> None:
        if booth is None:
            self.hud.show_card(None)
            return
        country = country_name(booth.country)
        hint = _("Press E to open an account and the catalogue") if booth.kind is BoothKind.BANK else _("Press E to open the catalogue")
        exhibitor, tagline, _about = booth.text_in(SPEAKER.language)  # the visitor's language where given
        if v.on_duty:
            tagline += "\n" + _("On duty: {names}").format(names=", ".join(v.on_duty))
        self.hud.show_card(exhibitor, country, tagline, hint + "  ·  " + _("B meeting times") + "  ·  " + _("Q quote"))

    # ------------------------------------------------------------------ events

    def _on_event(self, v: Visit, event: ev.Event) -> None:
        match event:
            case ev.Joined():
                first = not v.joined
                v.joined, v.expo = True, event.expo
                v.visitor_id = event.welcome.visitor_id
                self.identity.remember(v.settings.server, event.welcome.visitor_token)
                self.hud.show_banner(None)
                if first:
                    v.chat.note(_("Welcome to {expo}, {name}!").format(expo=event.expo.name, name=v.settings.name))
                    self._first_run_hints()
                    if self.walk_to is not None:
                        self.walk_to_booth(v, self.walk_to, event.welcome.own.hall)
                    if self.my_card is not None:
                        self._send_card(self.my_card)
                    if event.welcome.bank_url:
                        self._open_bank(v, event.welcome.bank_url)
                    else:
                        self.hud.set_wallet(_("Bank"), _("purchases are off on this server"))
                else:
                    v.chat.note(_("Reconnected."))
                    if self.my_card is not None:
                        self._send_card(self.my_card)
                self.command(lambda core: core.query_inventory())
                if event.welcome.bank_url:  # a server without a bank has no deals to ask about
                    self.deals.joined()
            case ev.ExpoChanged():
                self._expo_changed(v, event.expo)
            case ev.SnapshotReceived():
                v.snapshots += 1
            case ev.Refused():
                if event.code in ("name_taken", "name_invalid", "version_mismatch", "not_allowed"):
                    reason = _("That name is in use at the expo; choose another.") if event.code == "name_taken" else event.message
                    self.back_to_connect(reason)
                    return
                if event.code == "resume_failed":  # the core joins afresh at once: say what happened, not the code
                    v.chat.note(_("The server no longer had your place in the hall: you join again at the entrance."))
                else:
                    v.chat.note(f"refused: {event.message}")
            case ev.Disconnected():
                if event.retry_in is None:
                    if v.joined:
                        self.back_to_connect(f"Disconnected: {event.reason}")
                    else:
                        self.back_to_connect(f"Cannot reach {v.settings.server}: {event.reason}")
                    return
                what = "Connection lost" if v.joined else f"Cannot reach {v.settings.server}"
                self.hud.show_banner(f"{what} — reconnecting in {event.retry_in:.0f} s…")
            case ev.Closed():
                if event.code == "shutdown":
                    self.hud.show_banner("The server is restarting — reconnecting…")
            case ev.ChatReceived():
                line = event.line
                v.chat.add(line.channel, line.name, line.text, line.booth)
            case ev.StockReceived():
                v.stock[event.stock.booth] = dict(event.stock.items)
                self._refresh_catalogue(v)
            case ev.InventoryReceived():
                v.inventory = list(event.inventory.items)
                if not self.hud.inventory.isHidden():
                    self._show_inventory(v)
            case ev.OrderUpdated():
                self._act(v, v.checkout.on_status(event.status))
            case ev.ReceiptReceived():
                self._act(v, v.checkout.on_receipt(event.receipt))
                r = event.receipt
                self.orders.add(v.settings.server, r, time.time())
                self.hud.show_toast(_("Receipt: {qty} × {name} — {price}").format(
                    qty=r.qty, name=r.product_name, price=money(Decimal(r.amount), r.currency)), time.monotonic(), 6.0)
            case ev.DealUpdated() | ev.CollectiblesReceived():
                self.deals.on_event(event)
            case ev.ErrorReceived():
                self.deals.on_event(event)
                acted = v.checkout.busy
                self._act(v, v.checkout.on_error(event.code, event.message, event.ref))
                if not (acted and event.ref == p.Order.TYPE):
                    v.chat.note(event.message)
            case ev.BoothEffectSeen():
                self._sale_effect(v, event.effect.booth)
            case ev.SlotsReceived():
                self._slots_received(v, event.message)
            case ev.BookingUpdated():
                self._booking_updated(v, event.message)
            case ev.MeetingReminded():
                v.reminded = event.message
                self._prompt_offer(v)
            case ev.CardSaved():
                v.chat.note(_("Your card is saved: others see it once you both agree."))
            case ev.CardOffered():
                v.cards.offered(event.message)
                self._prompt_offer(v)
            case ev.CardAnswered():
                self._card_answered(v, event.message)
            case ev.CardShown():
                v.cards.shown(event.message)
                self.hud.show_toast(_("Card received: {name}").format(name=event.message.card[0]), time.monotonic(), 6.0)
                self._show_cards(v)
                self._prompt_offer(v)  # its offer may have been waiting for our answer (offers that crossed)
        self.hud.set_chat(list(v.chat.lines))

    # ------------------------------------------------------------------ the bank

    def _open_bank(self, v: Visit, bank_url: str) -> None:
        cred = self.wallet.load(bank_url)
        v.bank = bank = BankWorker(bank_url, cred.token if cred else None)
        v.credential = cred
        if cred is None:
            self._open_account(v, bank)
        else:
            self._refresh_balance(v)
            self._link_account(v)

    def _open_account(self, v: Visit, bank: BankWorker) -> None:
        self.hud.set_wallet(_("Bank"), _("opening your account…"))
        currency = v.settings.currency

        def done(opened, error) -> None:
            if error is not None:
                self.hud.set_wallet(_("Bank"), _("no account"))
                v.chat.note(_("The bank could not open an account: {reason}").format(reason=getattr(error, "message", error)))
                return
            v.credential = BankCredential(bank.bank_url, opened.account.id, opened.token, opened.account.currency)
            self.wallet.save(v.credential)
            bank.use_token(opened.token)
            self._link_account(v)
            v.chat.note(_("Bank account {account} opened in {currency}.").format(account=opened.account.id,
                                                                               currency=opened.account.currency))
            self._set_balance(v, opened.account.balance_display, opened.account.balance)
        bank.submit(lambda visitor: visitor.open_account(v.settings.name, currency), done)

    def _link_account(self, v: Visit) -> None:
        """Ask the bank to vouch to the server that the account is ours: orders need it."""
        visitor_id = v.visitor_id
        if v.bank is None or visitor_id is None:
            return

        def done(proof, error) -> None:
            if error is not None:
                v.chat.note(_("The bank could not vouch for your account: {reason}").format(reason=getattr(error, "message", error)))
            else:
                self.command(lambda core: core.link_account(proof.proof))
        v.bank.submit(lambda bank: bank.account_proof(visitor_id), done)

    def _refresh_balance(self, v: Visit) -> None:
        def done(account, error) -> None:
            if isinstance(error, BankAPIError) and error.code in ACCOUNT_GONE and v.bank is not None:
                self.wallet.forget(v.bank.bank_url)  # the bank was reset: start a new account
                v.bank.use_token(None)
                self._open_account(v, v.bank)
            elif error is not None:
                self.hud.set_wallet(_("Bank"), _("unavailable"))
            else:
                self._set_balance(v, account.balance_display, account.balance)
        if v.bank is not None:
            v.bank.submit(lambda bank: bank.me(), done)

    def _set_balance(self, v: Visit, display: str, minor: int | None = None) -> None:
        v.balance, v.balance_minor = display, minor
        acct = v.credential.account_id if v.credential else ""
        self.hud.set_wallet(_("Balance") + f"  ·  {acct}", display)
        self._refresh_catalogue(v)

    # ------------------------------------------------------------------ catalogue and buying

    def open_catalogue(self, booth_id: str) -> None:
        v = self.visit
        booth = v.expo.booth(booth_id) if v is not None and v.expo is not None else None
        if v is None or booth is None:
            return
        another = v.catalogue != booth_id
        v.catalogue = booth_id
        if another:
            v.checkout.withdraw()
            v.checkout.forget_finished()  # its outcome was about the last booth
        self.command(lambda core: core.query_stock(booth_id))
        if v.bank is not None and v.credential is not None:
            own = v.credential.currency
            keys = [QuoteKey(own, pr.currency, iso.to_minor_units(pr.price, pr.currency)) for pr in booth.catalogue]
            for key in v.quotes.wanted(keys):
                self._ask_quote(v, v.bank, key)
        self._refresh_catalogue(v, reset=another)

    def _ask_quote(self, v: Visit, bank: BankWorker, key: QuoteKey) -> None:
        bank.submit(lambda visitor: visitor.quote(key.source, key.target, key.amount),
                    lambda q, err: self._quoted(v, key, q, err))

    def own_price(self, booth_id: str, sku: str) -> str:
        """A product's price in the visitor's currency as the bank quoted it ("" without an account)."""
        v = self.visit
        if v is None or v.credential is None or v.expo is None:
            return ""
        _booth, pr = _product(v.expo, booth_id, sku)
        return v.quotes.in_own_currency(QuoteKey(v.credential.currency, pr.currency, iso.to_minor_units(pr.price, pr.currency)))

    def _quoted(self, v: Visit, key: QuoteKey, quote, error) -> None:
        if error is None:
            v.quotes.received(key, quote.debit_amount)
        else:
            v.quotes.failed(key)
        self._refresh_catalogue(v)

    def close_catalogue(self) -> None:
        if self.visit is not None:
            self.visit.catalogue = None
            self.visit.checkout.withdraw()
        self.hud.hide_catalogue()

    def cost_minor(self, booth_id: str, sku: str, qty: int = 1) -> int | None:
        """What ``qty`` of a product costs in the visitor's currency, minor units (None
        before the bank quoted it)."""
        v = self.visit
        if v is None or v.credential is None or v.expo is None:
            return None
        _booth, pr = _product(v.expo, booth_id, sku)
        debit = v.quotes.debit(QuoteKey(v.credential.currency, pr.currency, iso.to_minor_units(pr.price, pr.currency)))
        return None if debit is None else debit * qty

    def owned(self, booth_id: str, sku: str) -> int:
        v = self.visit
        return sum(q for b, s, _n, q in v.inventory if b == booth_id and s == sku) if v else 0

    def _refresh_catalogue(self, v: Visit, reset: bool = False) -> None:
        if v.catalogue is None or v.expo is None:
            return
        from .ui import CatalogueRow

        booth = v.expo.booth(v.catalogue)
        if booth is None:
            self.close_catalogue()
            return
        stock = v.stock.get(booth.id, {})
        rows = []
        for pr in booth.catalogue:
            left = stock.get(pr.sku)
            own_price = self.own_price(booth.id, pr.sku)
            stock_text = "…" if left is None else (_("sold out") if left == 0 else _("{left} left").format(left=left))
            owned = self.owned(booth.id, pr.sku)
            blocked = buy_blocker(purchases_on=v.bank is not None, has_account=v.credential is not None,
                                  busy=v.checkout.busy, left=left, owned=owned, limit=pr.limit_per_visitor,
                                  cost_minor=self.cost_minor(booth.id, pr.sku), balance_minor=v.balance_minor)
            limit = ("" if not pr.limit_per_visitor else
                     _("limit {limit} (you have {owned})").format(limit=pr.limit_per_visitor, owned=owned) if owned else
                     _("limit {limit} each").format(limit=pr.limit_per_visitor))
            image = self.assets_root / pr.image if pr.image and (self.assets_root / pr.image).is_file() else None
            rows.append(CatalogueRow(pr.sku, pr.name, money(pr.price, pr.currency), own_price, stock_text,
                                     blocked is None, pr.description, str(image) if image else None, limit,
                                     blocked or ""))
        country = country_name(booth.country)
        cur = v.checkout.current
        status = cur.message if cur is not None and cur.booth == booth.id else ""
        if v.bank is None:
            status = status or _("Purchases are off on this server.")
        exhibitor, tagline, _about = booth.text_in(SPEAKER.language)
        self.hud.set_catalogue(exhibitor, f"{country}  ·  {tagline}", rows, status, booth_about(booth, SPEAKER.language),
                               reset=reset)

    def buy(self, sku: str, qty: int = 1) -> None:
        """Buy pressed: show the total in the booth's currency and the visitor's, and wait
        for Confirm (Enter) or Cancel (Esc); nothing is sent before that."""
        v = self.visit
        if v is None or v.catalogue is None or v.expo is None:
            return
        booth, product = _product(v.expo, v.catalogue, sku)
        try:
            v.checkout.propose(v.catalogue, sku, product.name, qty)
        except Busy:
            self.hud.show_toast(_("One purchase at a time: wait for the receipt."), time.monotonic(), bad=True)
            return
        total = money(product.price * qty, product.currency)
        cost = self.cost_minor(booth.id, sku, qty)
        own = v.credential.currency if v.credential else None
        if own is None or own == product.currency:
            yours = ""
        elif cost is None:
            yours = "\n" + _("about … in {currency} (the bank is quoting)").format(currency=own)
        else:
            yours = f"\n≈ {money(iso.from_minor_units(cost, own), own)} " + _("from your account")
        exhibitor = booth.text_in(SPEAKER.language)[0]
        self.hud.show_confirm(_("Buy {qty} × {name}\nfrom {exhibitor}").format(qty=qty, name=product.name, exhibitor=exhibitor)
                              + f"\n\n{total}{yours}")

    def confirm_purchase(self, yes: bool) -> None:
        v = self.visit
        self.hud.hide_confirm()
        if v is None:
            return
        if yes:
            self._act(v, v.checkout.confirm())
        else:
            v.checkout.withdraw()
            self._refresh_catalogue(v)

    def _act(self, v: Visit, actions) -> None:
        for action in actions:
            match action:
                case SendOrder(booth, sku, qty, key):
                    if not self.command(lambda core: core.order(booth, sku, qty, key)):
                        v.checkout.on_error("not_joined", "not connected", p.Order.TYPE)
                case ConfirmPayment(intent_id, key):
                    v.purchases().submit(lambda bank: bank.confirm_intent(intent_id, idempotency_key=key),
                                         lambda result, error: self._paid(v, error))
                case SendOrderPaid(order_id):
                    self.command(lambda core: core.order_paid(order_id))
                case SendCancel(order_id):
                    self.command(lambda core: core.cancel_order(order_id))
                case Refresh():
                    self._refresh_balance(v)
                    self.command(lambda core: core.query_inventory())
                    if v.catalogue:
                        self.command(lambda core, b=v.catalogue: core.query_stock(b))
        cur = v.checkout.current
        if cur is not None and cur.stage is Stage.FAILED and v.failure_shown != cur.key:
            v.failure_shown = cur.key  # said once, when it happened; never again later
            self.hud.show_toast(cur.message, time.monotonic(), 6.0, bad=True)
        self._refresh_catalogue(v)

    def _paid(self, v: Visit, error) -> None:
        if error is None:
            self._act(v, v.checkout.on_paid())
        else:
            code = getattr(error, "code", type(error).__name__)
            self._act(v, v.checkout.on_bank_refused(code, getattr(error, "message", str(error))))

    def _toggle_inventory(self) -> None:
        v = self.visit
        if self.typing or v is None:
            return
        if self.hud.inventory.isHidden():
            self.command(lambda core: core.query_inventory())
            self.command(lambda core: core.query_collectibles())
            self._show_inventory(v)
        else:
            self.hud.set_inventory(None)

    def _with_purchases(self, do: Callable[[], None]) -> None:
        """L and H: a certificate's check or gift, only with your purchases shown."""
        if not self.typing and self.visit is not None and self._purchases_shown():
            do()

    def _purchases_shown(self) -> bool:
        """The I panel is open (not the people or meetings in its place)."""
        return not self.hud.inventory.isHidden() and self.hud.inventory_title == _("Your purchases")

    def _toggle_map(self) -> None:
        """M: the whole hall, every booth named, where you and the people in view are."""
        if self.typing or self.visit is None:
            return
        big = self.hud.bigmap
        big.hide() if big.visible else big.show()

    def _toggle_people(self) -> None:
        v = self.visit
        if self.typing or v is None:
            return
        if self.hud.inventory.isHidden() or self.hud.inventory_title != _("People near you"):
            self._show_people(v)
        else:
            self.hud.set_inventory(None)

    def _show_people(self, v: Visit) -> None:
        scene = v.thread.scene()
        if scene is None or v.expo is None:
            return
        names = {b.id: b.exhibitor for b in v.expo.booths}
        others = [(o.info.name, o.info.staff_of, o.pose.x, o.pose.y) for o in scene.others]
        lines = people_near(scene.own.x, scene.own.y, others, names)
        order = sorted((math.hypot(o.pose.x - scene.own.x, o.pose.y - scene.own.y), o.info.name, o.info.staff_of or "",
                        o.info.entity) for o in scene.others)
        v.people = [entity for *_rest, entity in order[:len(lines)]]
        if v.people:
            v.selected = max(0, min(v.selected, len(v.people) - 1))
            lines = [("▶ " if i == v.selected else "   ") + line for i, line in enumerate(lines)]
            lines.append("")
            lines.append(_("[ ] choose · O offer your card · R report · C cards"))
        self.hud.set_inventory(lines, _("People near you"), _("Nobody in view: the hall is quiet here."))

    # ------------------------------------------------------------------ cards and reports

    def set_my_card(self, card: MyCard) -> None:
        """Your card (the CLI's --card-* flags, or K's editor): kept in card.json, sent now
        if joined and you agreed to share it."""
        self.my_card = card
        if self.card_file is not None:
            self.card_file.save(card)
        if self.visit is not None and self.visit.joined:
            self._send_card(card)

    def _send_card(self, card: MyCard) -> None:
        if card.share:
            self.command(lambda core: core.set_card(*card.as_sent()))

    def _card_shareable(self) -> bool:
        return self.my_card is not None and self.my_card.share and not self.my_card.missing()

    def edit_card(self, key: str | None = None) -> None:
        """K: your card in a form over the hall (Tab between fields, Enter saves, Esc cancels)."""
        if self.typing or self.card_editor is not None or self.hud.directory_open or self.visit is None:
            return
        from .card_editor import CardEditor, initial

        values, share = initial(self.my_card, self.visit.settings.name, SPEAKER.language)
        self.typing = True  # the keys go to the form: nobody walks off while typing a name
        self.keys.clear()
        self.card_editor = CardEditor(self.aspect2d, self.font, values, share, self._card_edited, self._card_editor_closed,
                                      swallow=key)
        self.card_editor.frame.setScale(self.text_scale)

    def _card_edited(self, card: MyCard) -> None:
        self.set_my_card(card)
        self.hud.show_toast(_("Card saved.") if card.share else _("Card saved on this computer only (not shared)."),
                            time.monotonic(), 5.0)

    def _card_editor_closed(self) -> None:
        self.card_editor = None
        self.typing = False
        then, self._after_card = self._after_card, None
        if then is not None and self._card_shareable():
            then()  # what the card was needed for (Y to an offer, O to someone): done, not asked again

    def _people_open(self, v: Visit) -> bool:
        return not self.hud.inventory.isHidden() and self.hud.inventory_title == _("People near you")

    def _selected_person(self) -> tuple[Visit, int] | None:
        v = self.visit
        if v is None or self.typing or self.hud.directory_open or not self._people_open(v) or not v.people:
            return None
        return v, v.people[v.selected]

    def _select_person(self, step: int) -> None:
        v = self.visit
        if v is None or self.typing or not self._people_open(v) or not v.people:
            return
        v.selected = (v.selected + step) % len(v.people)
        self._show_people(v)

    def _card_needed(self, key: str | None, then: Callable[[], None]) -> None:
        """The card editor first; ``then`` once a shareable card is saved."""
        self.hud.show_toast(_("Your card first: fill it in and tick the box to share it (K)."),
                            time.monotonic(), 6.0, bad=True)
        self.edit_card(key)
        if self.card_editor is not None:
            self._after_card = then

    def _clicked(self) -> None:
        """A click in the hall (DirectGUI's buttons keep their own clicks): the avatar under it."""
        mw = self.mouseWatcherNode
        if self.typing or self.visit is None or mw is None or not mw.hasMouse():
            return
        w, h = self.win.getXSize(), self.win.getYSize()
        self.pick_at(int((mw.getMouseX() + 1) / 2 * w), int((1 - mw.getMouseY()) / 2 * h))

    def pick_at(self, x: int, y: int) -> int | None:
        """Window pixel (x right, y down): the nearest avatar whose figure it shows, its name
        and Offer card shown; None (and nothing shown) when it is floor or a booth."""
        from .card_editor import OfferPanel  # noqa: F811 (DirectGUI, once the ShowBase is up)
        from .picking import pick

        v = self.visit
        if v is None:
            return None
        w, h = self.win.getXSize(), self.win.getYSize()
        near, far = Point3(), Point3()
        if not self.camLens.extrude(Point2(x / w * 2 - 1, 1 - y / h * 2), near, far):
            return None
        origin, end = self.world.getRelativePoint(self.cam, near), self.world.getRelativePoint(self.cam, far)
        figures = [(e, tuple(node.root.getPos(self.world))) for e, node in self.avatars.nodes.items() if not node.own]
        entity = pick(tuple(origin), tuple(end - origin), figures)
        self.close_pick()
        scene = v.thread.scene()
        other = next((o for o in scene.others if o.info.entity == entity), None) if scene and entity is not None else None
        if other is None:
            return None
        v.picked = entity
        booth = v.expo.booth(other.info.staff_of) if v.expo and other.info.staff_of else None
        self.offer_panel = OfferPanel(self.a2dTopCenter, self.font, other.info.name,
                                      booth.exhibitor if booth else other.info.staff_of, self._offer_card, self.close_pick)
        return entity

    def close_pick(self) -> None:
        if self.offer_panel is not None:
            self.offer_panel.destroy()
        self.offer_panel = None
        if self.visit is not None:
            self.visit.picked = None

    def _offer_card(self, key: str | None = None) -> None:
        v = self.visit
        if v is not None and v.picked is not None and not self.typing:
            chosen: tuple[Visit, int] | None = (v, v.picked)
            self.close_pick()
        else:
            chosen = self._selected_person()
        if chosen is None:
            return
        _v, entity = chosen

        def offer() -> None:
            if self.command(lambda core: core.offer_card(entity)):
                self.hud.show_toast(_("Card offered: they see it only if they accept."), time.monotonic())
        if self._card_shareable():
            offer()
        else:
            self._card_needed(key, offer)

    def _report_selected(self) -> None:
        chosen = self._selected_person()
        if chosen is None:
            return
        v, entity = chosen
        v.reporting = entity
        reasons = "\n".join(f"{i}  {reason}" for i, reason in enumerate(REPORT_REASONS, 1))
        self.hud.show_prompt(_("Report this visitor to the organisers? Press the reason's number, Esc to cancel.")
                             + "\n" + reasons)

    def _report_reason(self, index: int) -> None:
        v = self.visit
        assert v is not None and v.reporting is not None, "a reason is asked for only while a report waits"
        if index >= len(REPORT_REASONS):
            return
        entity, v.reporting = v.reporting, None
        self.hud.show_prompt(None)
        if self.command(lambda core: core.report(entity, REPORT_REASONS[index])):
            self.hud.show_toast(_("Reported ({reason}): the organisers will look into it.").format(
                reason=REPORT_REASONS[index]), time.monotonic(), 6.0)
        self._prompt_offer(v)

    def _prompt_offer(self, v: Visit) -> None:
        """The oldest offer waiting for your answer, or nothing."""
        if v.reporting is not None:
            return  # the report's question stays until answered
        offer = v.cards.current()
        if offer is None:
            self.hud.show_prompt(self._reminder_text(v))
            return
        whose = _(" (staff of {booth})").format(booth=offer.booth) if offer.booth else ""
        self.hud.show_prompt(_("{name}{whose} offers to exchange business cards.").format(name=offer.name, whose=whose)
                             + "\n" + _("Y accept · N decline"))

    def _answer_offer(self, accept: bool) -> None:
        v = self.visit
        if v is None or self.typing or self.hud.directory_open or v.reporting is not None:
            return
        offer = v.cards.current()
        if v.meetings is not None and v.meetings.mode is Mode.CONFIRM_CANCEL and self._meetings_open(v):
            self._meeting_request(v, v.meetings.answer(accept))
            return
        if offer is None:
            return
        if accept and not self._card_shareable():
            self._card_needed("y", lambda: self._answer_offer(True))
            return
        v.cards.answered(offer.exchange_id)
        self.command(lambda core: core.answer_card(offer.exchange_id, accept))
        self._prompt_offer(v)

    def _card_answered(self, v: Visit, answer: p.CardAnswer) -> None:
        if answer.state == "offered":
            return
        if answer.state != "accepted":
            v.cards.answered(answer.exchange_id)  # expired or withdrawn: no more to answer
            self._prompt_offer(v)
        self.hud.show_toast(answer.message, time.monotonic(), 6.0, bad=answer.state != "accepted")

    # ------------------------------------------------------------------ meetings

    def _meetings_open(self, v: Visit) -> bool:
        return v.meetings is not None and not self.hud.inventory.isHidden() and self.hud.inventory_title == _("Meetings")

    def _list_slots(self) -> None:
        """B at a booth: its meeting times (1-9 book, X cancel, V move yours); B again closes."""
        v = self.visit
        if v is None or self.typing or self.hud.directory_open:
            return
        if self._meetings_open(v):
            v.meetings = None
            self.hud.set_inventory(None)
            self._prompt_offer(v)
            return
        booth = v.catalogue or v.near
        if booth is None:
            self.hud.show_toast(_("Stand at a booth to see its meeting times (B)."), time.monotonic(), bad=True)
            return
        v.meetings = MeetingDesk(booth)
        self._show_meetings(v)
        self.command(lambda core: core.list_slots(booth))  # Slots, and a Booking for each of yours there

    def _show_meetings(self, v: Visit) -> None:
        desk = v.meetings
        if desk is None:
            return
        booth = v.expo.booth(desk.booth) if v.expo else None
        exhibitor = booth.exhibitor if booth else desk.booth
        zone = self.my_card.timezone if self.my_card else None
        self.hud.set_inventory(desk.lines(exhibitor, zone), _("Meetings"))
        question = desk.question(zone)
        if question is not None:
            self.hud.show_prompt(question)
        elif v.reporting is None and v.cards.current() is None:
            self.hud.show_prompt(self._reminder_text(v))

    def _slots_received(self, v: Visit, slots: p.Slots) -> None:
        if v.meetings is None or v.meetings.booth != slots.booth:
            return  # a list nobody has open
        v.meetings.received(slots)
        self._show_meetings(v)

    def _meeting_key(self, key: str) -> None:
        """X: cancel your meeting here (Y/N asks first); V: move it (then a number)."""
        v = self.visit
        if v is None or self.typing or v.meetings is None or not self._meetings_open(v):
            return
        if not (v.meetings.cancel_key() if key == "x" else v.meetings.move_key()):
            self.hud.show_toast(_("You have no meeting at this booth."), time.monotonic(), bad=True)
        self._show_meetings(v)

    def _book_row(self, index: int) -> None:
        v = self.visit
        assert v is not None and v.meetings is not None, "a row is booked only from an open list"
        self._meeting_request(v, v.meetings.number(index))

    def _meeting_request(self, v: Visit, request: Book | Move | Cancel | None) -> None:
        if request is not None:
            v.moving = request.booking_id if isinstance(request, Move) else None
        match request:
            case Book(slot_id):
                self.command(lambda core: core.book_slot(slot_id))
            case Move(booking_id, slot_id):
                self.command(lambda core: core.reschedule_booking(booking_id, slot_id))
            case Cancel(booking_id):
                self.command(lambda core: core.cancel_booking(booking_id))
        self._show_meetings(v)
        if v.meetings is not None and v.meetings.question(None) is None:
            self._prompt_offer(v)

    def _booking_updated(self, v: Visit, booking: p.Booking) -> None:
        known = v.bookings.get(booking.booking_id)
        v.bookings[booking.booking_id] = booking
        when = meeting_time(booking.starts_at, self.my_card.timezone if self.my_card else None)
        if known is not None and known.status == booking.status:
            pass  # told again (the list of yours at a booth): nothing happened
        elif booking.status != "booked" and v.moving == booking.booking_id:
            v.moving = ""  # the old time of a move: its new one follows
        elif booking.status == "booked" and v.moving == "":
            v.moving = None
            self.hud.show_toast(_("Meeting with {host} moved to {when}.").format(host=booking.host_name, when=when),
                                time.monotonic(), 6.0)
        elif booking.status == "booked":
            self.hud.show_toast(_("Meeting booked with {host} at {when}.").format(host=booking.host_name, when=when),
                                time.monotonic(), 6.0)
        else:
            self.hud.show_toast(_("Meeting at {when} cancelled.").format(when=when), time.monotonic(), 6.0, bad=True)
        if v.meetings is not None and v.meetings.booth == booking.booth:
            listed_free = any(item[0] == booking.slot_id for item in v.meetings.free)
            v.meetings.updated(booking)
            if (booking.status != "booked" and known is not None) or (booking.status == "booked" and listed_free):
                self.command(lambda core: core.list_slots(booking.booth))  # the freed or taken time, anew
            self._show_meetings(v)

    def _reminder_text(self, v: Visit) -> str | None:
        r = v.reminded
        if r is None:
            return None
        booth = v.expo.booth(r.booth) if v.expo else None
        exhibitor = booth.exhibitor if booth else r.booth
        when = meeting_time(r.starts_at, self.my_card.timezone if self.my_card else None)
        return (_("Meeting with {name} at {booth}, {when}.").format(name=r.with_name, booth=exhibitor, when=when)
                + "\n" + _("G walk me there · Esc dismiss"))

    def _walk_to_meeting(self) -> None:
        v = self.visit
        if v is None or self.typing or self.hud.directory_open or v.reminded is None or v.hall_index is None:
            return
        booth, v.reminded = v.reminded.booth, None
        self._prompt_offer(v)
        self.walk_to_booth(v, booth, v.hall_index)

    def _toggle_cards(self) -> None:
        v = self.visit
        if v is None or self.typing or self.hud.directory_open:
            return
        if self.hud.inventory.isHidden() or self.hud.inventory_title != _("Cards"):
            self._show_cards(v)
        else:
            self.hud.set_inventory(None)

    def _show_cards(self, v: Visit) -> None:
        lines = v.cards.lines()
        self.hud.set_inventory(lines + ["", _("K edit your card")] if lines else [], _("Cards"),
                               _("No cards yet: offer yours from the people list (P).") + "\n\n" + _("K edit your card"))

    def _show_inventory(self, v: Visit) -> None:
        names = {b.id: b.exhibitor for b in v.expo.booths} if v.expo else {}
        held = [f"{qty} × {name}  ({names.get(booth, booth)})" for booth, _sku, name, qty in v.inventory]
        receipts = receipt_lines(self.orders.receipts(v.settings.server), names, self.my_card.timezone if self.my_card else None)
        certificates = self.deals.certificates()
        lines = held + certificates + (["", _("Receipts, newest first"), *receipts] if receipts else [])
        if not certificates and v.bank is not None:  # how to be given one: only to an account the bank checked
            lines = (lines or [_("Nothing yet.")]) + [
                "", _("H: the bank's real-name check, so that your contacts can give you certificates")]
        self.hud.set_inventory(lines)

    # ------------------------------------------------------------------ chat and effects

    def _chat_entered(self, text: str) -> None:
        self.typing = False
        self.hud.close_chat()
        v = self.visit
        if v is None:
            return
        try:
            out = chatmod.parse(text)
        except chatmod.ChatError as exc:
            v.chat.note(str(exc))
        else:
            if out is not None:
                self.command(lambda core: core.chat(out.channel, out.text))
        self.hud.set_chat(list(v.chat.lines))

    def _sale_effect(self, v: Visit, booth_id: str) -> None:
        """A "Sold!" that rises above the booth and fades: everyone nearby sees trade happen."""
        booth = v.expo.booth(booth_id) if v.expo else None
        if booth is None:
            return
        tn = text_node("Sold!", (1.0, 0.85, 0.3, 1), self.font)
        node = self.effects.attachNewNode(tn.generate())
        node.setBillboardPointEye()
        node.setLightOff(1)
        node.setScale(0.6)
        c = booth.footprint.centre
        node.setPos(c.x, c.y, 3.9)
        interval = node.posInterval(2.0, Point3(c.x, c.y, 5.2))
        interval.start()
        self.taskMgr.doMethodLater(2.0, lambda task: node.removeNode(), f"sold-{id(node)}")

    # ------------------------------------------------------------------ helpers for previews and tests

    def walk_to_booth(self, v: Visit, booth_id: str, hall_index: int) -> None:
        """Walk to a booth's entrance, as a booth directory's "walk me there" asks."""
        assert v.expo is not None
        booth = v.expo.booth(booth_id)
        if booth is None:
            v.chat.note(_("There is no booth {booth} in {expo}.").format(booth=repr(booth_id), expo=v.expo.name))
            return
        hall = v.expo.halls[hall_index]
        goal = entrance(booth, 1.0)  # at the booth: its card shows
        own = v.thread.core.own_pose()
        start = (own.x, own.y) if own is not None else (hall.spawn.x, hall.spawn.y)
        try:
            way = route(v.expo, hall.id, start, booth.hall, goal)
        except ValueError:  # no portal leads there from here
            v.chat.note(_("There is no way from {hall} to {exhibitor}.").format(
                hall=hall.name, exhibitor=booth.text_in(SPEAKER.language)[0]))
            return
        self.autopilot = Autopilot.along(way, face=(booth.footprint.centre.x, booth.footprint.centre.y))
        v.chat.note(_("Walking you to {exhibitor}...").format(exhibitor=booth.text_in(SPEAKER.language)[0]))

    def step(self, frames: int = 1) -> None:
        for _frame in range(frames):
            self.taskMgr.step()

    def look_at_booth(self, booth_id: str) -> None:
        expo = self.visit.expo if self.visit else None
        booth = expo.booth(booth_id) if expo else None
        if expo is None or booth is None:
            raise KeyError(f"no booth {booth_id!r} in this expo")
        self.fixed_view = booth_view(booth, expo)

    def project(self, point: tuple[float, float, float]) -> tuple[int, int] | None:
        """Window pixel (x right, y down) of a point in the hall, or None off screen."""
        p3 = self.cam.getRelativePoint(self.world, Point3(*point))
        p2 = Point2()
        if not self.camLens.project(p3, p2):
            return None
        w, h = self.win.getXSize(), self.win.getYSize()
        return int((p2.x + 1) / 2 * w), int((1 - p2.y) / 2 * h)

    def close(self) -> None:
        """Leave the expo (Bye), stop the threads, close the window."""
        self.leave()
        self.destroy()
