"""The 2D layer in DirectGUI: connect screen, HUD card, catalogue, wallet, inventory, chat,
banners. Widgets only: what to show comes from the app, what a click means goes back
through the callbacks given. Sizes are in aspect2d units (the window is 2 units tall)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from direct.gui.DirectGui import DGG, DirectButton, DirectEntry, DirectFrame, DirectLabel
from direct.gui.OnscreenImage import OnscreenImage
from direct.gui.OnscreenText import OnscreenText
from panda3d.core import NodePath, TextFont, TextNode

from world.model import Expo

from .copies import Copies
from .hallmap import MapFrame
from .i18n import LANGUAGES, _
from .mesh import MeshBuilder
from .scene_geometry import geom_node
from .settings import PALETTE, colour_hex
from .text import display

if TYPE_CHECKING:
    from .hallmap import MapFrame

INK = (0.95, 0.96, 0.98, 1)
MUTED = (0.72, 0.76, 0.82, 1)
PANEL = (0.06, 0.08, 0.13, 0.82)
GOLD = (0.98, 0.78, 0.28, 1)
BAD = (1.0, 0.45, 0.4, 1)
GOOD = (0.55, 0.9, 0.6, 1)


class Text(OnscreenText):
    """An OnscreenText that shows any script (``text.display``) and remembers the plain
    text it was given, so ``getText`` answers what the app set."""

    def setText(self, text: str) -> None:  # noqa: N802 (Panda3D's name)
        if getattr(self, "_plain", None) == text:
            return  # the HUD sets its lines every frame: shaping and a new layout only when they change
        self._plain = text
        super().setText(display(text))

    def getText(self) -> str:  # noqa: N802
        return getattr(self, "_plain", "")

    def rows(self) -> int:
        """Lines after word wrap (0 when empty)."""
        return self.textNode.getNumRows() if self.getText() else 0


CARD_HALF_WIDTH = 0.62  # the booth card's, at text scale 1
CORNER_WIDTH, CORNER_HEIGHT = 0.78, 0.2  # the wallet's and the place's panels (top corners), at text scale 1
CORNER_TEXT_WIDTH = CORNER_WIDTH - 0.06  # their lines, inside the panel's margins
CHAT_WIDTH, CHAT_MIN_WIDTH = 1.05, 0.68  # the chat panel's, at text scale 1; narrowed to the minimum to make room
EDGE, GAP = 0.03, 0.03  # panels from the window's edge, and from each other
CATALOGUE_WIDTH = 1.22  # a booth's catalogue, at the top right


@dataclass(frozen=True, slots=True)
class BottomRow:
    """Where the chat (bottom left) and the booth card (bottom centre) go."""

    chat_width: float  # in the chat panel's own units
    card_x: float  # the card's centre from the window's centre
    card_above_chat: bool  # no room side by side: the card stands on the chat


def bottom_row(scale: float, half_width: float) -> BottomRow:
    """The chat and the booth card at a text scale, in a window ``half_width`` wide each side
    of its centre (aspect2d units): the card centred when it clears the chat, else the chat
    narrower, then the card moved right; when even that does not fit (a narrow window at a
    large text size) the card goes above the chat. Both grow from their own corner, so at
    1.3x and more they met, and the card hid the chat's lines."""
    card_half = CARD_HALF_WIDTH * scale
    room = half_width - card_half - GAP - EDGE
    chat_width = min(CHAT_WIDTH, max(CHAT_MIN_WIDTH, room / scale))
    chat_right = EDGE + chat_width * scale - half_width
    card_x = max(0.0, chat_right + GAP + card_half)
    if card_x <= half_width - EDGE - card_half:
        return BottomRow(chat_width, card_x, False)
    return BottomRow(chat_width, 0.0, True)


TOAST_WRAP, TOAST_TEXT, TOAST_PAD = 32, 0.045, 0.04  # a toast's lines (characters), text size and padding


@dataclass(frozen=True, slots=True)
class ToastRoom:
    """Where a toast goes: its centre from the window's centre, its lines' wrap, and whether
    it stands on the chat (else at the bottom, above the booth card)."""

    x: float
    wordwrap: float
    above_chat: bool = False
    right: float | None = None  # the furthest right its frame may reach (Panda's wrapped lines can run a little over)


TOAST_MIN_WRAP = 20  # beside the chat, or else above it: a narrower toast is a column of words


def toast_room(scale: float, half_width: float, chat_width: float, catalogue_width: float | None) -> ToastRoom:
    """A toast at a text scale, centred, unless a booth's catalogue is open at the right (a
    receipt's and a certificate's toasts come while it is, and ran under it): then between
    the chat and the catalogue, its lines wrapped to the width between, or where that is too
    narrow, above the chat, as wide as the window left of the catalogue."""
    if catalogue_width is None:
        return ToastRoom(0.0, TOAST_WRAP)
    right = half_width - EDGE - catalogue_width - GAP

    def between(left: float, above_chat: bool) -> ToastRoom:
        wrap = ((right - left) / scale - 2 * TOAST_PAD) / TOAST_TEXT
        return ToastRoom((left + right) / 2, max(8.0, min(TOAST_WRAP, wrap)), above_chat, right)

    beside = between(-half_width + EDGE + chat_width * scale + GAP, False)
    return beside if beside.wordwrap >= TOAST_MIN_WRAP else between(-half_width + EDGE, True)


def corner_scale(scale: float, half_width: float) -> float:
    """The top corners' panels at a text scale, in a window ``half_width`` wide each side of
    its centre: as large as the text size asks, or as large as leaves a gap between them
    (a narrow window at a large text size: they met, the wallet's line over the hall's)."""
    return min(scale, (2 * half_width - 2 * EDGE - GAP) / (2 * CORNER_WIDTH))


def _fitted(font: TextFont | None, text: str, scale: float, width: float) -> float:
    """``scale``, or less so that ``text`` is at most ``width`` wide."""
    node = TextNode("measure")
    if font is not None:
        node.setFont(font)
    wide = node.calcWidth(text) * scale
    return scale if wide <= width else scale * width / wide


def _text(parent: NodePath, font: TextFont | None, text: str = "", pos=(0, 0), scale: float = 0.045, fg=INK,
          align: int = TextNode.ALeft, wrap: float | None = None) -> Text:
    out = Text(parent=parent, text="", pos=pos, scale=scale, fg=fg, align=align, font=font, wordwrap=wrap,
               mayChange=True)
    out.setText(text)
    return out


def _label(label: DirectLabel, text: str, bottom: float | None = None, top: float | None = None) -> None:
    """Set a self-sizing label's text (its frame follows: a pop-up as big as what it says),
    with its frame's bottom (or top) edge kept at the height given, however many lines."""
    label["text"] = display(text)
    label.resetFrameSize()
    _left, _right, low, high = label.getBounds()
    if bottom is not None:
        label.setZ(bottom - low * label.getSz())
    elif top is not None:
        label.setZ(top - high * label.getSz())


ROWS_PER_PAGE = 4


@dataclass(frozen=True, slots=True)
class CatalogueRow:
    """One product line as the catalogue shows it."""

    sku: str
    name: str
    price: str  # in the booth's currency
    own_price: str  # in the visitor's currency, or a placeholder
    stock: str
    can_buy: bool
    description: str = ""
    image: str | None = None  # a file to show beside the row
    limit: str = ""  # e.g. "limit 6 each, you have 2"
    blocked: str = ""  # why Buy is off, shown in the row

    def line(self) -> str:
        """Price, in the visitor's currency too when it is another, stock and limit."""
        prices = [self.price] + ([self.own_price] if self.own_price and self.own_price != self.price else [])
        return "   ·   ".join(["   ".join(prices), self.stock] + ([self.limit] if self.limit else []))


class HallMapPanel:
    """A hall drawn from a ``hallmap.MapFrame``: booth rectangles in their colours (names on
    the full map), you as a gold dot, the people in view as white ones, all in one draw
    (``copies.Copies``: a frame per person, a draw call each, was a sixth of a crowd's frame
    on a software renderer)."""

    DOT = 0.006  # half the side of a person's dot, in panel units

    def __init__(self, parent: NodePath, font: TextFont | None, pos: tuple[float, float], anchor_right: bool) -> None:
        self.font = font
        self.root = parent.attachNewNode("hall-map")
        self.root.setPos(pos[0], 0, pos[1])
        self.anchor_right = anchor_right
        self.frame: DirectFrame | None = None
        self.dots: Copies | None = None
        self.me: DirectFrame | None = None
        self.map: MapFrame | None = None

    def build(self, expo: Expo, mapframe: MapFrame, names: bool) -> None:
        self.root.getChildren().detach()
        self.map = mapframe
        w, h = mapframe.width, mapframe.height
        x0 = -w if self.anchor_right else 0.0
        self.origin = (x0, -h)
        self.frame = DirectFrame(parent=self.root, frameColor=(0.05, 0.07, 0.12, 0.97 if names else 0.85),
                                 frameSize=(x0 - 0.015, x0 + w + 0.015, -h - 0.015, 0.015))  # the full map hides the hall
        flat = self.frame.attachNewNode("booths")  # every booth in one draw, as the people below
        flat.setP(90)  # a mesh's x, y are the panel's x, z
        rects = MeshBuilder()
        for booth in mapframe.booths(expo, names):
            left, right, bottom, top = booth.rect
            rects.quad((x0 + left, -h + bottom, 0), (x0 + right, -h + bottom, 0), (x0 + right, -h + top, 0),
                       (x0 + left, -h + top, 0), (*booth.colour, 1.0))
            if names:
                r, g, b = booth.colour  # dark words on a light booth (a white one read as an empty square)
                ink = (0.08, 0.09, 0.12, 1) if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.6 else INK
                _text(self.frame, self.font, booth.label, (x0 + (left + right) / 2, -h + (bottom + top) / 2 - 0.008),
                      0.022, ink, TextNode.ACenter, wrap=(right - left) / 0.022)
        flat.attachNewNode(geom_node(rects.build(), "booths"))
        people = self.frame.attachNewNode("people")
        people.setP(90)
        square = MeshBuilder()
        d = self.DOT
        square.quad((-d, -d, 0), (d, -d, 0), (d, d, 0), (-d, d, 0), (1.0, 1.0, 1.0, 1.0))
        dot = square.build()
        self.dots = Copies(people, dot, lambda _key: dot.colours, "people")
        self.me = DirectFrame(parent=self.frame, frameColor=GOLD, frameSize=(-0.011, 0.011, -0.011, 0.011))
        if names:  # the full map says which dot is you
            _text(self.me, self.font, _("You are here"), (0.02, -0.008), 0.026, GOLD)

    def update(self, own: tuple[float, float], others: list[tuple[float, float]]) -> None:
        if self.map is None or self.me is None:
            return
        x0, y0 = self.origin
        mx, my = self.map.point(*own)
        self.me.setPos(x0 + mx, 0, y0 + my)
        if self.dots is not None:
            placed = self.map.points(others)
            self.dots.draw([None] * len(placed), x0 + placed[:, 0], y0 + placed[:, 1], np.zeros(len(placed)))

    def show(self) -> None:
        self.root.show()

    def hide(self) -> None:
        self.root.hide()

    @property
    def visible(self) -> bool:
        return not self.root.isHidden() and self.map is not None


class ConnectScreen:
    """Server, name, colour, currency; Tab and Shift+Tab move between the fields, Enter in
    any field joins, so nobody needs the mouse."""

    ORDER = ("server", "name", "colour", "currency")

    def __init__(self, parent: NodePath, font: TextFont | None, server: str, name: str, colour: int, currency: str,
                 on_join: Callable[[str, str, str, str], None],
                 on_text_size: Callable[[float], None] | None = None,
                 on_language: Callable[[str], None] | None = None) -> None:
        self.frame = DirectFrame(parent=parent, frameColor=PANEL, frameSize=(-0.75, 0.75, -0.62, 0.62), pos=(0, 0, 0))
        _text(self.frame, font, "Silk Road Expo", (0, 0.47), 0.09, GOLD, TextNode.ACenter)
        _text(self.frame, font, _("Walk the halls, meet exhibitors, buy from partner economies"), (0, 0.39), 0.038,
              MUTED, TextNode.ACenter)
        self.entries: dict[str, DirectEntry] = {}
        fields = (("server", _("Server"), server), ("name", _("Your name"), name), ("colour", _("Avatar colour"), colour_hex(colour)),
                  ("currency", _("Bank currency"), currency))
        for i, (key, label, value) in enumerate(fields):
            z = 0.24 - i * 0.15
            _text(self.frame, font, label, (-0.66, z), 0.042, MUTED)
            self.entries[key] = DirectEntry(parent=self.frame, initialText=value, pos=(-0.2, 0, z), scale=0.045,
                                            width=19, overflow=1, entryFont=font, frameColor=(0.92, 0.93, 0.95, 1),
                                            text_fg=(0.05, 0.05, 0.08, 1), command=self._entered,
                                            focusInCommand=self._focused, focusInExtraArgs=[key])
        for i, swatch in enumerate(PALETTE):
            rgb = tuple(((swatch >> s) & 0xFF) / 255 for s in (16, 8, 0))
            DirectButton(parent=self.frame, frameColor=(*rgb, 1), frameSize=(-0.03, 0.03, -0.03, 0.03),
                         pos=(-0.17 + i * 0.075, 0, -0.125), relief=DGG.FLAT,
                         command=self._pick, extraArgs=[colour_hex(swatch)])
        _text(self.frame, font, _("Text size"), (-0.66, -0.33), 0.036, MUTED)
        for i, (label, factor) in enumerate((("A−", 1 / 1.15), ("A+", 1.15))):
            DirectButton(parent=self.frame, text=label, text_font=font, scale=0.045, pos=(-0.36 + i * 0.12, 0, -0.33),
                         pad=(0.3, 0.15), frameColor=(0.25, 0.28, 0.36, 1), text_fg=INK,
                         command=on_text_size or (lambda f: None), extraArgs=[factor])
        _text(self.frame, font, _("Language"), (-0.14, -0.33), 0.036, MUTED)
        self.languages: dict[str, DirectButton] = {}
        for i, (code, language) in enumerate(LANGUAGES.items()):
            # a long name ("Bahasa Melayu") is set smaller rather than run past its button
            self.languages[code] = DirectButton(
                parent=self.frame, text=display(language), text_font=font, text_scale=_fitted(font, language, 0.032, 0.25),
                pos=(0.25 + (i % 2) * 0.275, 0, -0.3 - (i // 2) * 0.065), frameSize=(-0.135, 0.135, -0.022, 0.04),
                frameColor=(0.25, 0.28, 0.36, 1), text_fg=INK, relief=DGG.FLAT,
                command=on_language or (lambda c: None), extraArgs=[code])
        self.button = DirectButton(parent=self.frame, text=display(_("Enter the expo  (Enter)")), text_font=font, scale=0.06,
                                   pos=(0, 0, -0.5), pad=(0.6, 0.3), frameColor=GOLD, text_fg=(0.08, 0.06, 0.02, 1),
                                   command=self._join)
        self.error = DirectLabel(parent=self.frame, text="", text_font=font, text_scale=0.04, text_fg=INK,
                                 text_wordwrap=34, frameColor=(0.45, 0.12, 0.1, 0.95), pad=(0.04, 0.03),
                                 pos=(0, 0, -0.72))
        self.error.hide()
        self._on_join = on_join
        self.focused = "name" if not name else "server"
        self.focus(self.focused)

    def _focused(self, key: str) -> None:
        self.focused = key

    def focus(self, key: str) -> None:
        for k, entry in self.entries.items():
            entry["focus"] = 1 if k == key else 0
        self.focused = key

    def focus_next(self, step: int = 1) -> None:
        """Tab (``step`` 1) or Shift+Tab (-1): the next field takes the keys."""
        i = self.ORDER.index(self.focused) if self.focused in self.ORDER else -1
        self.focus(self.ORDER[(i + step) % len(self.ORDER)])

    def _pick(self, value: str) -> None:
        self.entries["colour"].enterText(value)

    def _entered(self, _text: str) -> None:
        self._join()

    def _join(self) -> None:
        e = self.entries
        self._on_join(e["server"].get(), e["name"].get(), e["colour"].get(), e["currency"].get())

    def show_error(self, text: str) -> None:
        if text:
            _label(self.error, text, top=-0.66)
            self.error.show()
        else:
            self.error.hide()

    @property
    def visible(self) -> bool:
        return not self.frame.isHidden()

    def values(self) -> tuple[str, str, str, str]:
        e = self.entries
        return e["server"].get(), e["name"].get(), e["colour"].get(), e["currency"].get()

    def destroy(self) -> None:
        self.frame.destroy()

    def show(self) -> None:
        self.frame.show()
        self.focus(self.focused)

    def hide(self) -> None:
        for entry in self.entries.values():
            entry["focus"] = 0
        self.frame.hide()


class Hud:
    """Everything shown over the hall."""

    def __init__(self, aspect2d: NodePath, font: TextFont | None, a2d_top_left: NodePath, a2d_top_right: NodePath,
                 a2d_bottom_left: NodePath, a2d_bottom_center: NodePath, a2d_bottom_right: NodePath,
                 a2d_top_center: NodePath,
                 on_buy: Callable[[str, int], None], on_close_catalogue: Callable[[], None],
                 on_chat: Callable[[str], None], on_confirm: Callable[[bool], None] | None = None,
                 on_search: Callable[[str], None] | None = None, on_pick: Callable[[int], None] | None = None) -> None:
        self.font = font
        self.root = aspect2d.attachNewNode("hud")
        self._bottom_left = a2d_bottom_left  # where the window's left edge is, for the bottom row
        # wallet, top left
        self.wallet = DirectFrame(parent=a2d_top_left, frameColor=PANEL, frameSize=(0, CORNER_WIDTH, -CORNER_HEIGHT, 0),
                                  pos=(EDGE, 0, -EDGE))
        self.wallet_title = _text(self.wallet, font, _("Bank"), (0.03, -0.06), 0.038, MUTED)
        self.wallet_text = _text(self.wallet, font, _("connecting…"), (0.03, -0.145), 0.046, INK)
        # where you are, top right
        self.place = DirectFrame(parent=a2d_top_right, frameColor=PANEL, frameSize=(-CORNER_WIDTH, 0, -CORNER_HEIGHT, 0),
                                 pos=(-EDGE, 0, -EDGE))
        self.place_title = _text(self.place, font, "", (-0.03, -0.07), 0.042, GOLD, TextNode.ARight)
        self.place_text = _text(self.place, font, "", (-0.03, -0.14), 0.034, MUTED, TextNode.ARight)
        # banner, top centre: reconnecting, errors; sized to its text
        self.banner = DirectLabel(parent=a2d_top_center, text="", text_font=font, text_scale=0.05, text_fg=INK,
                                  text_wordwrap=30, frameColor=(0.75, 0.28, 0.12, 0.92), pad=(0.04, 0.03),
                                  pos=(0, 0, -0.3))
        self.banner.hide()
        # toast, above the card; sized to its text
        self.toast = DirectLabel(parent=a2d_bottom_center, text="", text_font=font, text_scale=TOAST_TEXT, text_fg=INK,
                                 text_wordwrap=TOAST_WRAP, frameColor=(0.1, 0.3, 0.2, 0.9), pad=(TOAST_PAD, 0.03),
                                 pos=(0, 0, 0.62))
        self.toast.hide()
        self.toast_until = 0.0
        # a question waiting for a key (a card offer: Y/N; a report: its reason), top centre
        self.prompt = DirectLabel(parent=a2d_top_center, text="", text_font=font, text_scale=0.05, text_fg=INK,
                                  text_wordwrap=30, frameColor=(0.12, 0.2, 0.45, 0.94), pad=(0.04, 0.03),
                                  pos=(0, 0, -0.45))
        self.prompt.hide()
        # booth card, bottom centre; grows with the tagline
        self.card = DirectFrame(parent=a2d_bottom_center, frameColor=PANEL, frameSize=(-0.62, 0.62, 0, 0.3), pos=(0, 0, 0.14))
        self.card_title = _text(self.card, font, "", (0, 0.22), 0.05, GOLD, TextNode.ACenter, wrap=23)
        self.card_country = _text(self.card, font, "", (0, 0.155), 0.036, MUTED, TextNode.ACenter)
        self.card_tagline = _text(self.card, font, "", (0, 0.095), 0.04, INK, TextNode.ACenter, wrap=29)
        self.card_hint = _text(self.card, font, _("Press E to open the catalogue"), (0, 0.03), 0.032, GOLD, TextNode.ACenter)
        self.card.hide()
        # chat, bottom left
        self.chat = DirectFrame(parent=a2d_bottom_left, frameColor=(0.04, 0.05, 0.08, 0.55),
                                frameSize=(0, CHAT_WIDTH, 0, 0.5), pos=(EDGE, 0, 0.03))
        self.chat_text = _text(self.chat, font, "", (0.03, 0.44), 0.033, INK, wrap=30)
        # overflow: a line scrolls within the box (without it, typing stopped where the box ended:
        # about 45 of the 280 characters a chat line may have, fewer in a narrowed chat)
        self.chat_entry = DirectEntry(parent=self.chat, scale=0.036, pos=(0.03, 0, 0.03), width=27, overflow=1, entryFont=font,
                                      frameColor=(0.92, 0.93, 0.95, 0.95), text_fg=(0.05, 0.05, 0.08, 1),
                                      command=on_chat, focus=0, suppressKeys=True)
        self.chat_entry.hide()
        # help, bottom right: light text on its own dark panel, readable over any floor
        self.help = DirectLabel(parent=a2d_bottom_right, text=display(help_text()), text_font=font, text_scale=0.032,
                                text_fg=INK, text_align=TextNode.ARight, frameColor=(0.04, 0.05, 0.08, 0.88),
                                pad=(0.03, 0.02), pos=(-0.08, 0, 0.1))
        # catalogue, right side
        self.catalogue = DirectFrame(parent=a2d_top_right, frameColor=PANEL, frameSize=(-CATALOGUE_WIDTH, 0, -1.5, 0), pos=(-EDGE, 0, -0.26))
        self.cat_title = _text(self.catalogue, font, "", (-1.18, -0.08), 0.052, GOLD, wrap=19)
        self.cat_sub = _text(self.catalogue, font, "", (-1.18, -0.14), 0.032, MUTED, wrap=36)
        self.cat_about = _text(self.catalogue, font, "", (-1.18, -0.19), 0.03, INK, wrap=39)
        DirectButton(parent=self.catalogue, text="×", text_font=font, scale=0.06, pos=(-0.06, 0, -0.08),
                     frameColor=(0, 0, 0, 0), text_fg=INK, command=on_close_catalogue)
        self.cat_rows: list[NodePath] = []
        self.cat_page = _text(self.catalogue, font, "", (-0.6, -1.35), 0.032, MUTED, TextNode.ACenter)
        self.cat_prev = DirectButton(parent=self.catalogue, text="◀", text_font=font, scale=0.045, pos=(-0.9, 0, -1.34),
                                     frameColor=(0.25, 0.28, 0.36, 1), text_fg=INK, pad=(0.3, 0.1),
                                     command=self.scroll_catalogue, extraArgs=[-1])
        self.cat_next = DirectButton(parent=self.catalogue, text="▶", text_font=font, scale=0.045, pos=(-0.3, 0, -1.34),
                                     frameColor=(0.25, 0.28, 0.36, 1), text_fg=INK, pad=(0.3, 0.1),
                                     command=self.scroll_catalogue, extraArgs=[1])
        self.cat_status = _text(self.catalogue, font, "", (-1.18, -1.43), 0.032, INK, wrap=36)
        self.catalogue.hide()
        self.cat_first = 0  # the first product shown
        self._cat_content: tuple | None = None
        self._on_buy = on_buy
        # the purchase confirmation, centre
        self.confirm = DirectFrame(parent=aspect2d, frameColor=(0.05, 0.07, 0.12, 0.96), frameSize=(-0.7, 0.7, -0.32, 0.32))
        self.confirm_text = _text(self.confirm, font, "", (0, 0.2), 0.045, INK, TextNode.ACenter, wrap=28)
        self.confirm_yes = DirectButton(parent=self.confirm, text=display(_("Confirm  (Enter)")), text_font=font, scale=0.05,
                                        pos=(-0.3, 0, -0.24), pad=(0.4, 0.2), frameColor=GOLD,
                                        text_fg=(0.08, 0.06, 0.02, 1), command=on_confirm or (lambda yes: None),
                                        extraArgs=[True])
        self.confirm_no = DirectButton(parent=self.confirm, text=display(_("Cancel  (Esc)")), text_font=font, scale=0.05,
                                       pos=(0.3, 0, -0.24), pad=(0.4, 0.2), frameColor=(0.35, 0.37, 0.42, 1),
                                       text_fg=INK, command=on_confirm or (lambda yes: None), extraArgs=[False])
        self.confirm.hide()
        # inventory, left side
        self.inventory = DirectFrame(parent=a2d_top_left, frameColor=PANEL, frameSize=(0, 0.95, -0.9, 0), pos=(0.03, 0, -0.27))
        self.inventory_text = _text(self.inventory, font, "", (0.03, -0.07), 0.034, INK, wrap=26)
        self.inventory.hide()
        self.inventory_title = ""
        self.text_scale = 1.0
        self._build_directory(a2d_top_left, on_search or (lambda q: None), on_pick or (lambda i: None))
        self.minimap = HallMapPanel(a2d_top_right, font, (-0.045, -0.26), anchor_right=True)
        self.arrange()
        self.bigmap = HallMapPanel(aspect2d, font, (-0.9, 0.55), anchor_right=False)
        self.bigmap.hide()

    # ------------------------------------------------------------------ pieces

    def set_text_scale(self, scale: float) -> None:
        """Every panel grows from its own corner, so nothing leaves the screen at 1.5x."""
        self.text_scale = scale
        for node in (self.wallet, self.place, self.banner, self.toast, self.card, self.chat, self.help,
                     self.confirm, self.inventory, self.directory, self.prompt):
            node.setScale(scale)
        self.arrange()  # the key help's bottom edge stays on screen, the bottom row clear of it
        # the catalogue is as tall as the window allows: it grows only as far as it still fits
        self.catalogue.setScale(min(scale, (2.0 - 0.26 - 0.04) / 1.5))

    def arrange(self) -> None:
        """The bottom row for this text scale and window shape (again when the window changes):
        the chat, the booth card above the key help, neither over the other."""
        scale, half = self.text_scale, -self._bottom_left.getX(self.root)
        corners = corner_scale(scale, half)
        self.wallet.setScale(corners)
        self.place.setScale(corners)
        under_corner = -(EDGE + CORNER_HEIGHT * corners)  # the panels below the corners start there, however large
        self.minimap.root.setZ(under_corner - GAP)
        for panel in (self.inventory, self.directory):
            panel.setZ(under_corner - 0.04)
        row = bottom_row(scale, half)
        self.chat["frameSize"] = (0, row.chat_width, 0, 0.5)
        self.chat_text.setWordwrap((row.chat_width - 0.06) / 0.033)
        self.chat_entry["width"] = (row.chat_width - 0.08) / 0.036
        left, right, bottom, top = self.help.getBounds()
        help_scale = min(scale, (2 * half - 2 * EDGE) / (right - left))  # the key help fits the window's width
        self.help.setScale(help_scale)
        self.help.setPos(-EDGE - right * help_scale, 0, 0.04 - bottom * help_scale)
        help_top = 0.04 + (top - bottom) * help_scale
        help_left = 2 * half - EDGE - (right - left) * help_scale  # from the window's left edge
        lifted = help_left < EDGE + row.chat_width * scale  # under the chat: the chat stands on it
        self.chat.setZ(help_top + GAP if lifted else 0.03)
        chat_top = self.chat.getZ() + 0.5 * scale
        self.card.setPos(row.card_x, 0, (chat_top if row.card_above_chat else max(0.14, help_top)) + GAP)

    def show_banner(self, text: str | None) -> None:
        if text:
            _label(self.banner, text, top=-0.22)
            self.banner.show()
        else:
            self.banner.hide()

    def show_toast(self, text: str, now: float, seconds: float = 4.0, bad: bool = False) -> None:
        open_catalogue = None if self.catalogue.isHidden() else CATALOGUE_WIDTH * self.catalogue.getSx()
        room = toast_room(self.text_scale, -self._bottom_left.getX(self.root), self.chat["frameSize"][1], open_catalogue)
        self.toast["text_wordwrap"] = room.wordwrap
        self.toast["frameColor"] = (0.45, 0.12, 0.1, 0.92) if bad else (0.1, 0.3, 0.2, 0.9)  # first: it redraws the frame
        _label(self.toast, text, bottom=self.chat.getZ() + 0.5 * self.text_scale + GAP if room.above_chat else self._above_card())
        left, right, _bottom, _top = self.toast.getBounds()
        x = room.x - (left + right) / 2 * self.toast.getSx()
        self.toast.setX(x if room.right is None else min(x, room.right - right * self.toast.getSx()))
        self.toast.show()
        self.toast_until = now + seconds

    def _above_card(self) -> float:
        """Where a toast's bottom edge goes: above the booth card when it shows."""
        if self.card.isHidden():
            return 0.16
        return self.card.getZ() + self.card["frameSize"][3] * self.card.getSz() + GAP

    def show_prompt(self, text: str | None) -> None:
        if text:
            _label(self.prompt, text, top=-0.3)
            self.prompt.show()
        else:
            self.prompt.hide()

    @property
    def prompt_text(self) -> str | None:
        return None if self.prompt.isHidden() else self.prompt["text"]

    def hide_toast(self) -> None:
        self.toast.hide()
        self.toast_until = 0.0

    def tick(self, now: float) -> None:
        if self.toast_until and now > self.toast_until:
            self.hide_toast()

    def show_card(self, title: str | None, country: str = "", tagline: str = "", hint: str = "") -> None:
        if title is None:
            self.card.hide()
            return
        self.card_title.setText(title)
        self.card_country.setText(country)
        self.card_tagline.setText(tagline)
        self.card_hint.setText(hint)
        # stack from the bottom up, each as tall as its wrapped lines
        z = 0.03
        self.card_hint.setPos(0, z)
        z += 0.065
        tag_rows = max(1, self.card_tagline.rows())
        self.card_tagline.setPos(0, z + (tag_rows - 1) * 0.048)
        z += tag_rows * 0.048 + 0.012
        self.card_country.setPos(0, z)
        z += 0.065
        title_rows = max(1, self.card_title.rows())
        self.card_title.setPos(0, z + (title_rows - 1) * 0.06)
        z += title_rows * 0.06 + 0.02
        self.card["frameSize"] = (-0.62, 0.62, 0, z)
        self.card.show()

    def set_wallet(self, title: str, text: str) -> None:
        self._corner_line(self.wallet_title, title, 0.038)
        self._corner_line(self.wallet_text, text, 0.046)

    def set_place(self, title: str, text: str) -> None:
        self._corner_line(self.place_title, title, 0.042)
        self._corner_line(self.place_text, text, 0.034)

    def _corner_line(self, line: Text, text: str, scale: float) -> None:
        """A line of a top corner's panel, set smaller when it would run out of the panel
        ("purchases are off on this server" ran into the hall's name)."""
        line.setText(text)
        line.setScale(_fitted(self.font, display(text), scale, CORNER_TEXT_WIDTH))

    def set_chat(self, lines: list[str]) -> None:
        """The newest lines that fit the panel after wrapping."""
        shown = list(lines[-9:])
        while True:
            self.chat_text.setText("\n".join(shown))
            if self.chat_text.rows() <= 12 or len(shown) <= 1:
                return
            shown.pop(0)

    def set_inventory(self, lines: list[str] | None, title: str | None = None, empty: str | None = None) -> None:
        """The left panel: your purchases (I), or the people near you (P)."""
        if lines is None:
            self.inventory.hide()
            return
        title = title or _("Your purchases")
        self.inventory_title = title
        self.inventory_text.setText(f"{title}\n\n" + ("\n".join(lines) if lines else empty or _("Nothing yet.")))
        rows = self.inventory_text.rows()
        # a CJK line is taller than a Latin one: the text's own height, when it is more, keeps the last line inside
        height = max(rows * 0.041, self.inventory_text.textNode.getHeight() * 0.034 + 0.01)
        self.inventory["frameSize"] = (0, 0.95, -(0.08 + height), 0)
        self.inventory.show()

    def set_catalogue(self, title: str, subtitle: str, rows: list[CatalogueRow], status: str, about: str = "",
                      reset: bool = False) -> None:
        """Show a booth's products, ``ROWS_PER_PAGE`` at a time (◀ ▶, the mouse wheel or
        Page Up/Down scroll); ``reset`` goes back to the first page (another booth)."""
        if reset:
            self.cat_first = 0
        self._cat_content = (title, subtitle, rows, status, about)
        self.cat_first = max(0, min(self.cat_first, (len(rows) - 1) // ROWS_PER_PAGE * ROWS_PER_PAGE))
        for row in self.cat_rows:
            row.removeNode()
        self.cat_rows = []
        self.cat_title.setText(title)
        self.cat_sub.setText(subtitle)
        self.cat_about.setText(about)
        self.cat_sub.setPos(-1.18, -0.08 - 0.062 * self.cat_title.rows())
        top = -0.08 - 0.062 * self.cat_title.rows() - 0.04 * max(1, self.cat_sub.rows())
        self.cat_about.setPos(-1.18, top)
        top -= 0.037 * self.cat_about.rows() + 0.04
        height = (top + 1.28) / ROWS_PER_PAGE
        for i, row in enumerate(rows[self.cat_first:self.cat_first + ROWS_PER_PAGE]):
            z = top - i * height
            holder = self.catalogue.attachNewNode(f"row-{row.sku}")
            x = -1.18
            if row.image:
                OnscreenImage(parent=holder, image=row.image, pos=(-1.12, 0, z - 0.05), scale=0.055)
                x = -1.04
            _text(holder, self.font, row.name, (x, z - 0.02), 0.034, INK, wrap=24)
            _text(holder, self.font, row.description, (x, z - 0.06), 0.026, MUTED, wrap=34)
            _text(holder, self.font, row.line(), (x, z - 0.135), 0.027, GOLD if row.can_buy else MUTED, wrap=33)
            if row.blocked:
                _text(holder, self.font, row.blocked, (-0.13, z - 0.1), 0.024, BAD, TextNode.ACenter, wrap=9)
            DirectButton(parent=holder, text=display(_("Buy")), text_font=self.font, scale=0.04, pos=(-0.13, 0, z - 0.04),
                         pad=(0.5, 0.2), frameColor=GOLD if row.can_buy else (0.4, 0.4, 0.4, 1),
                         text_fg=(0.08, 0.06, 0.02, 1), command=self._on_buy, extraArgs=[row.sku, 1],
                         state=DGG.NORMAL if row.can_buy else DGG.DISABLED)
            self.cat_rows.append(holder)
        pages = len(rows) > ROWS_PER_PAGE
        last = min(len(rows), self.cat_first + ROWS_PER_PAGE)
        self.cat_page.setText(f"{self.cat_first + 1}–{last} of {len(rows)}" if pages else "")
        for button, on in ((self.cat_prev, self.cat_first > 0), (self.cat_next, last < len(rows))):
            button.show() if pages else button.hide()
            button["state"] = DGG.NORMAL if on else DGG.DISABLED
        self.cat_status.setText(status)
        self.catalogue.show()
        self.minimap.hide()  # the catalogue covers its corner
        self.help.hide()  # the catalogue reaches down to it: it comes back when the catalogue closes

    def scroll_catalogue(self, pages: int) -> None:
        if self._cat_content is None or self.catalogue.isHidden():
            return
        rows = self._cat_content[2]
        first = self.cat_first + pages * ROWS_PER_PAGE
        if 0 <= first < len(rows):
            self.cat_first = first
            self.set_catalogue(*self._cat_content)

    @property
    def catalogue_rows(self) -> list[CatalogueRow]:
        return list(self._cat_content[2]) if self._cat_content is not None else []

    @property
    def shown_skus(self) -> list[str]:
        """The products on the page showing (for tests and the keys)."""
        if self._cat_content is None or self.catalogue.isHidden():
            return []
        return [row.sku for row in self._cat_content[2][self.cat_first:self.cat_first + ROWS_PER_PAGE]]

    def hide_catalogue(self) -> None:
        if not self.catalogue.isHidden() and not self.wallet.isHidden():
            self.help.show()
            self.minimap.show()
        self.catalogue.hide()
        self.hide_confirm()

    def show_confirm(self, text: str) -> None:
        self.confirm_text.setText(text)
        rows = max(1, self.confirm_text.rows())
        half = (rows * 0.055 + 0.22) / 2 + 0.05
        self.confirm["frameSize"] = (-0.7, 0.7, -half, half)
        self.confirm_text.setPos(0, half - 0.09)
        for button in (self.confirm_yes, self.confirm_no):
            button.setZ(-half + 0.07)
        self.confirm.show()

    def hide_confirm(self) -> None:
        self.confirm.hide()

    @property
    def confirming(self) -> bool:
        return not self.confirm.isHidden()

    # ------------------------------------------------------------------ the booth directory

    def _build_directory(self, parent: NodePath, on_search: Callable[[str], None],
                         on_pick: Callable[[int], None]) -> None:
        font = self.font
        self.directory = DirectFrame(parent=parent, frameColor=PANEL, frameSize=(0, 1.6, -1.12, 0), pos=(0.03, 0, -0.27))  # wide enough for exhibitor · country · hall
        _text(self.directory, font, _("Find a booth"), (0.04, -0.08), 0.05, GOLD)
        _text(self.directory, font, _("exhibitor, country or product · Enter walks you to the first · Esc closes"),
              (0.04, -0.13), 0.026, MUTED, wrap=46)
        self.directory_entry = DirectEntry(parent=self.directory, scale=0.04, pos=(0.04, 0, -0.22), width=28,
                                           entryFont=font, frameColor=(0.92, 0.93, 0.95, 0.97),
                                           text_fg=(0.05, 0.05, 0.08, 1), command=lambda _t: on_pick(0), focus=0)
        # keys typed here still reach the app (it ignores them while typing), so Esc and F12 work
        for event in (DGG.TYPE, DGG.ERASE):
            self.directory_entry.bind(event, lambda _e: on_search(self.directory_entry.get()))
        self.directory_rows: list[DirectButton] = []
        for i in range(8):
            button = DirectButton(parent=self.directory, text="", text_font=font, text_scale=0.034, text_fg=INK,
                                  text_align=TextNode.ALeft, frameColor=(0.12, 0.15, 0.22, 0.9),
                                  frameSize=(-0.01, 1.51, -0.04, 0.065), pos=(0.05, 0, -0.33 - i * 0.1),
                                  relief=DGG.FLAT, command=on_pick, extraArgs=[i])
            button.hide()
            self.directory_rows.append(button)
        self.directory_empty = _text(self.directory, font, "", (0.05, -0.33), 0.034, MUTED)
        self.directory_filter = _text(self.directory, font, "", (1.56, -0.08), 0.032, GOLD, TextNode.ARight)
        self.directory.hide()

    def set_directory_filter(self, label: str) -> None:
        """The category filter, top right of the directory: what Tab changes."""
        self.directory_filter.setText(_("Tab ▸ {kind}").format(kind=label))

    def open_directory(self) -> None:
        self.directory.show()
        self.directory_entry.enterText("")
        self.directory_entry["focus"] = 1

    def close_directory(self) -> None:
        self.directory_entry["focus"] = 0
        self.directory.hide()

    @property
    def directory_open(self) -> bool:
        return not self.directory.isHidden()

    def set_directory(self, lines: list[str]) -> None:
        """The results, one line each (at most eight), numbered as the keys that pick them."""
        for i, button in enumerate(self.directory_rows):
            if i < len(lines):
                button["text"] = display(lines[i])
                button.show()
            else:
                button.hide()
        self.directory_empty.setText("" if lines else "No booth matches; try a country or a product.")

    def open_chat(self) -> None:
        self.chat_entry.show()
        self.chat_entry.enterText("")
        self.chat_entry["focus"] = 1

    def close_chat(self) -> None:
        self.chat_entry["focus"] = 0
        self.chat_entry.hide()

    def destroy(self) -> None:
        """Every widget gone (the language changed: a new Hud says it all anew)."""
        for widget in (self.wallet, self.place, self.banner, self.toast, self.card, self.chat, self.help, self.catalogue,
                       self.confirm, self.inventory, self.directory, self.prompt):
            widget.destroy()
        for node in (self.root, self.minimap.root, self.bigmap.root):
            node.removeNode()

    def show(self) -> None:
        for node in (self.wallet, self.place, self.chat, self.help, self.minimap.root):
            node.show()

    def hide(self) -> None:
        for node in (self.wallet, self.place, self.chat, self.help, self.card, self.catalogue, self.inventory,
                     self.banner, self.toast, self.confirm, self.directory, self.prompt, self.minimap.root,
                     self.bigmap.root):
            node.hide()


def help_text() -> str:
    return (_("W/S walk · A/D turn · Shift run · right mouse: look, A/D step aside") + " · "
            + _("Q request a quote · T my deals") + "\n"
            + _("E catalogue · 1-4 buy · PgUp/PgDn scroll · F find a booth · I purchases · P people · M map · "
                "Enter chat · Esc close · F12 picture"))
