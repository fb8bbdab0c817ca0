"""The 2D layer in DirectGUI: connect screen, HUD card, catalogue, wallet, inventory, chat,
banners. Widgets only: what to show comes from the app, what a click means goes back
through the callbacks given. Sizes are in aspect2d units (the window is 2 units tall)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from direct.gui.DirectGui import DGG, DirectButton, DirectEntry, DirectFrame, DirectLabel
from direct.gui.OnscreenText import OnscreenText
from panda3d.core import NodePath, TextFont, TextNode

from .settings import PALETTE, colour_hex

INK = (0.95, 0.96, 0.98, 1)
MUTED = (0.72, 0.76, 0.82, 1)
PANEL = (0.06, 0.08, 0.13, 0.82)
GOLD = (0.98, 0.78, 0.28, 1)
BAD = (1.0, 0.45, 0.4, 1)
GOOD = (0.55, 0.9, 0.6, 1)


def _text(parent: NodePath, font: TextFont | None, text: str = "", pos=(0, 0), scale: float = 0.045, fg=INK,
          align: int = TextNode.ALeft, wrap: float | None = None) -> OnscreenText:
    return OnscreenText(parent=parent, text=text, pos=pos, scale=scale, fg=fg, align=align, font=font,
                        wordwrap=wrap, mayChange=True)


@dataclass(frozen=True, slots=True)
class CatalogueRow:
    """One product line as the catalogue shows it."""

    sku: str
    name: str
    price: str  # in the booth's currency
    own_price: str  # in the visitor's currency, or a placeholder
    stock: str
    can_buy: bool


class ConnectScreen:
    def __init__(self, parent: NodePath, font: TextFont | None, server: str, name: str, colour: int, currency: str,
                 on_join: Callable[[str, str, str, str], None]) -> None:
        self.frame = DirectFrame(parent=parent, frameColor=PANEL, frameSize=(-0.75, 0.75, -0.62, 0.62), pos=(0, 0, 0))
        _text(self.frame, font, "Silk Road Expo", (0, 0.47), 0.09, GOLD, TextNode.ACenter)
        _text(self.frame, font, "Walk the halls, meet exhibitors, buy from partner economies", (0, 0.39), 0.038,
              MUTED, TextNode.ACenter)
        self.entries: dict[str, DirectEntry] = {}
        fields = (("server", "Server", server), ("name", "Your name", name), ("colour", "Avatar colour", colour_hex(colour)),
                  ("currency", "Bank currency", currency))
        for i, (key, label, value) in enumerate(fields):
            z = 0.24 - i * 0.15
            _text(self.frame, font, label, (-0.66, z), 0.042, MUTED)
            self.entries[key] = DirectEntry(parent=self.frame, initialText=value, pos=(-0.2, 0, z), scale=0.045,
                                            width=19, entryFont=font, frameColor=(0.92, 0.93, 0.95, 1),
                                            text_fg=(0.05, 0.05, 0.08, 1))
        for i, swatch in enumerate(PALETTE):
            rgb = tuple(((swatch >> s) & 0xFF) / 255 for s in (16, 8, 0))
            DirectButton(parent=self.frame, frameColor=(*rgb, 1), frameSize=(-0.03, 0.03, -0.03, 0.03),
                         pos=(-0.17 + i * 0.075, 0, -0.1), relief=DGG.FLAT,
                         command=self._pick, extraArgs=[colour_hex(swatch)])
        self.error = _text(self.frame, font, "", (0, -0.3), 0.04, BAD, TextNode.ACenter, wrap=34)
        self.button = DirectButton(parent=self.frame, text="Enter the expo", text_font=font, scale=0.06,
                                   pos=(0, 0, -0.48), pad=(0.6, 0.3), frameColor=GOLD, text_fg=(0.08, 0.06, 0.02, 1),
                                   command=self._join)
        self._on_join = on_join

    def _pick(self, value: str) -> None:
        self.entries["colour"].enterText(value)

    def _join(self) -> None:
        e = self.entries
        self._on_join(e["server"].get(), e["name"].get(), e["colour"].get(), e["currency"].get())

    def show_error(self, text: str) -> None:
        self.error.setText(text)

    def show(self) -> None:
        self.frame.show()

    def hide(self) -> None:
        self.frame.hide()


class Hud:
    """Everything shown over the hall."""

    def __init__(self, aspect2d: NodePath, font: TextFont | None, a2d_top_left: NodePath, a2d_top_right: NodePath,
                 a2d_bottom_left: NodePath, a2d_bottom_center: NodePath, a2d_bottom_right: NodePath,
                 a2d_top_center: NodePath,
                 on_buy: Callable[[str, int], None], on_close_catalogue: Callable[[], None],
                 on_chat: Callable[[str], None]) -> None:
        self.font = font
        self.root = aspect2d.attachNewNode("hud")
        # wallet, top left
        self.wallet = DirectFrame(parent=a2d_top_left, frameColor=PANEL, frameSize=(0, 0.78, -0.2, 0), pos=(0.03, 0, -0.03))
        self.wallet_title = _text(self.wallet, font, "Bank", (0.03, -0.06), 0.038, MUTED)
        self.wallet_text = _text(self.wallet, font, "connecting…", (0.03, -0.145), 0.046, INK)
        # where you are, top right
        self.place = DirectFrame(parent=a2d_top_right, frameColor=PANEL, frameSize=(-0.78, 0, -0.2, 0), pos=(-0.03, 0, -0.03))
        self.place_title = _text(self.place, font, "", (-0.03, -0.07), 0.042, GOLD, TextNode.ARight)
        self.place_text = _text(self.place, font, "", (-0.03, -0.14), 0.034, MUTED, TextNode.ARight)
        # banner, top centre: reconnecting, errors
        self.banner = DirectLabel(parent=a2d_top_center, text="", text_font=font, text_scale=0.05, text_fg=INK,
                                  frameColor=(0.75, 0.28, 0.12, 0.92), pad=(0.3, 0.2), pos=(0, 0, -0.3))
        self.banner.hide()
        # toast, above the card
        self.toast = DirectLabel(parent=a2d_bottom_center, text="", text_font=font, text_scale=0.045, text_fg=INK,
                                 frameColor=(0.1, 0.3, 0.2, 0.9), pad=(0.3, 0.2), pos=(0, 0, 0.56))
        self.toast.hide()
        self.toast_until = 0.0
        # booth card, bottom centre
        self.card = DirectFrame(parent=a2d_bottom_center, frameColor=PANEL, frameSize=(-0.62, 0.62, 0, 0.3), pos=(0, 0, 0.14))
        self.card_title = _text(self.card, font, "", (0, 0.22), 0.05, GOLD, TextNode.ACenter)
        self.card_country = _text(self.card, font, "", (0, 0.155), 0.036, MUTED, TextNode.ACenter)
        self.card_tagline = _text(self.card, font, "", (0, 0.095), 0.04, INK, TextNode.ACenter, wrap=28)
        self.card_hint = _text(self.card, font, "Press E to open the catalogue", (0, 0.03), 0.032, GOLD, TextNode.ACenter)
        self.card.hide()
        # chat, bottom left
        self.chat = DirectFrame(parent=a2d_bottom_left, frameColor=(0.04, 0.05, 0.08, 0.55), frameSize=(0, 1.05, 0, 0.5),
                                pos=(0.03, 0, 0.03))
        self.chat_text = _text(self.chat, font, "", (0.03, 0.44), 0.033, INK, wrap=30)
        self.chat_entry = DirectEntry(parent=self.chat, scale=0.036, pos=(0.03, 0, 0.03), width=27, entryFont=font,
                                      frameColor=(0.92, 0.93, 0.95, 0.95), text_fg=(0.05, 0.05, 0.08, 1),
                                      command=on_chat, focus=0, suppressKeys=True)
        self.chat_entry.hide()
        # help, bottom right
        self.help = _text(a2d_bottom_right, font, "W/S walk · A/D turn · Shift run · E catalogue\nI inventory · Enter chat (/booth, /announce) · Esc close",
                          (-0.04, 0.09), 0.03, MUTED, TextNode.ARight)
        # catalogue, right side
        self.catalogue = DirectFrame(parent=a2d_top_right, frameColor=PANEL, frameSize=(-1.22, 0, -1.5, 0), pos=(-0.03, 0, -0.26))
        self.cat_title = _text(self.catalogue, font, "", (-1.18, -0.08), 0.052, GOLD)
        self.cat_sub = _text(self.catalogue, font, "", (-1.18, -0.14), 0.034, MUTED, wrap=34)
        DirectButton(parent=self.catalogue, text="×", text_font=font, scale=0.06, pos=(-0.06, 0, -0.08),
                     frameColor=(0, 0, 0, 0), text_fg=INK, command=on_close_catalogue)
        self.cat_rows: list[NodePath] = []
        self.cat_status = _text(self.catalogue, font, "", (-1.18, -1.43), 0.036, INK, wrap=32)
        self.catalogue.hide()
        self._on_buy = on_buy
        # inventory, left side
        self.inventory = DirectFrame(parent=a2d_top_left, frameColor=PANEL, frameSize=(0, 0.95, -0.9, 0), pos=(0.03, 0, -0.27))
        self.inventory_text = _text(self.inventory, font, "", (0.03, -0.07), 0.034, INK, wrap=26)
        self.inventory.hide()

    # ------------------------------------------------------------------ pieces

    def show_banner(self, text: str | None) -> None:
        if text:
            self.banner["text"] = text
            self.banner.show()
        else:
            self.banner.hide()

    def show_toast(self, text: str, now: float, seconds: float = 4.0, bad: bool = False) -> None:
        self.toast["text"] = text
        self.toast["frameColor"] = (0.45, 0.12, 0.1, 0.92) if bad else (0.1, 0.3, 0.2, 0.9)
        self.toast.show()
        self.toast_until = now + seconds

    def tick(self, now: float) -> None:
        if self.toast_until and now > self.toast_until:
            self.toast.hide()
            self.toast_until = 0.0

    def show_card(self, title: str | None, country: str = "", tagline: str = "", hint: str = "") -> None:
        if title is None:
            self.card.hide()
            return
        self.card_title.setText(title)
        self.card_country.setText(country)
        self.card_tagline.setText(tagline)
        self.card_hint.setText(hint)
        self.card.show()

    def set_wallet(self, title: str, text: str) -> None:
        self.wallet_title.setText(title)
        self.wallet_text.setText(text)

    def set_place(self, title: str, text: str) -> None:
        self.place_title.setText(title)
        self.place_text.setText(text)

    def set_chat(self, lines: list[str]) -> None:
        self.chat_text.setText("\n".join(lines[-9:]))

    def set_inventory(self, lines: list[str] | None) -> None:
        if lines is None:
            self.inventory.hide()
            return
        self.inventory_text.setText("Your purchases\n\n" + ("\n".join(lines) if lines else "Nothing yet."))
        self.inventory.show()

    def set_catalogue(self, title: str, subtitle: str, rows: list[CatalogueRow], status: str) -> None:
        for row in self.cat_rows:
            row.removeNode()
        self.cat_rows = []
        self.cat_title.setText(title)
        self.cat_sub.setText(subtitle)
        for i, row in enumerate(rows[:8]):
            z = -0.3 - i * 0.14
            holder = self.catalogue.attachNewNode(f"row-{row.sku}")
            _text(holder, self.font, row.name, (-1.18, z), 0.036, INK)
            _text(holder, self.font, f"{row.price}   {row.own_price}   ·   {row.stock}", (-1.18, z - 0.05), 0.03, MUTED)
            DirectButton(parent=holder, text="Buy", text_font=self.font, scale=0.04, pos=(-0.13, 0, z - 0.02),
                         pad=(0.5, 0.2), frameColor=GOLD if row.can_buy else (0.4, 0.4, 0.4, 1),
                         text_fg=(0.08, 0.06, 0.02, 1), command=self._on_buy, extraArgs=[row.sku, 1],
                         state=DGG.NORMAL if row.can_buy else DGG.DISABLED)
            self.cat_rows.append(holder)
        self.cat_status.setText(status)
        self.catalogue.show()

    def hide_catalogue(self) -> None:
        self.catalogue.hide()

    def open_chat(self) -> None:
        self.chat_entry.show()
        self.chat_entry.enterText("")
        self.chat_entry["focus"] = 1

    def close_chat(self) -> None:
        self.chat_entry["focus"] = 0
        self.chat_entry.hide()

    def show(self) -> None:
        for node in (self.wallet, self.place, self.chat, self.help):
            node.show()

    def hide(self) -> None:
        for node in (self.wallet, self.place, self.chat, self.help, self.card, self.catalogue, self.inventory,
                     self.banner, self.toast):
            node.hide()
