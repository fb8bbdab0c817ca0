"""The first-run hint card: the keys a newcomer needs, shown over the hall after the first
join, once. The keys line in the corner says the same in small print; a person who has
never played a game with W/A/S/D needs it said large, once, in their language.

It does not take the keys (you can walk with it open, which is how it is learnt); Esc or
its ✕ closes it, and the app remembers that in preferences.json (``SEEN``), so it never
comes back on that computer.
"""

from __future__ import annotations

from collections.abc import Callable

from direct.gui import DirectGuiGlobals as DGG
from direct.gui.DirectGui import DirectButton, DirectFrame, DirectLabel
from panda3d.core import NodePath, TextFont, TextNode

from .i18n import _
from .text import display

SEEN = "hint_card_seen"  # the preferences key
INK = (0.95, 0.96, 0.98, 1)
GOLD = (0.98, 0.78, 0.28, 1)


def hint_rows() -> list[tuple[str, str]]:
    """(keys, what they do), in the language in use."""
    return [("W  S", _("walk forward and back")), ("A  D", _("turn left and right")), ("Shift", _("hold to run")),
            (_("right mouse"), _("look around")), ("E", _("at a booth: its catalogue, 1-4 buy")),
            ("F", _("find a booth and walk there")), ("M", _("the hall map")), ("P", _("people near you")),
            ("I", _("your purchases and receipts")), ("Q  T", _("request a quote, your deals")), ("Enter", _("chat")),
            ("Esc", _("close this card"))]


class HintCard:
    def __init__(self, parent: NodePath, font: TextFont | None, on_close: Callable[[], None]) -> None:
        rows = hint_rows()
        height = 0.2 + 0.062 * len(rows)
        self.frame = DirectFrame(parent=parent, frameColor=(0.06, 0.08, 0.13, 0.94),
                                 frameSize=(-0.74, 0.74, -height, 0), pos=(0, 0, 0.82))
        DirectLabel(parent=self.frame, text=display(_("Welcome! How to get around")), text_font=font,
                    text_scale=0.056, text_fg=GOLD, frameColor=(0, 0, 0, 0), pos=(0, 0, -0.09))
        for i, (keys, what) in enumerate(rows):
            z = -0.17 - 0.062 * i
            DirectLabel(parent=self.frame, text=display(keys), text_font=font, text_scale=0.042, text_fg=GOLD,
                        text_align=TextNode.ARight, frameColor=(0, 0, 0, 0), pos=(-0.21, 0, z))
            DirectLabel(parent=self.frame, text=display(what), text_font=font, text_scale=0.042, text_fg=INK,
                        text_align=TextNode.ALeft, frameColor=(0, 0, 0, 0), pos=(-0.15, 0, z))
        DirectButton(parent=self.frame, text="✕", text_font=font, text_scale=0.05, text_fg=INK, relief=DGG.FLAT,
                     frameColor=(0, 0, 0, 0), pos=(0.68, 0, -0.07), command=on_close)
        self.frame.hide()

    @property
    def visible(self) -> bool:
        return not self.frame.isHidden()

    def show(self) -> None:
        self.frame.show()

    def hide(self) -> None:
        self.frame.hide()

    def destroy(self) -> None:
        self.frame.destroy()
