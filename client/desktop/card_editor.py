"""Your business card, edited in the window: the same fields as the CLI's ``--card-*`` flags,
checked by the server's own rules field by field before anything is kept, so a wrong
country code says so beside the field and loses none of what was typed.

``check_card`` and ``typed`` are the pure part; ``CardEditor`` is the DirectGUI form. The app
routes Tab, Enter and Esc to it (modifier buttons are off, so Shift+Tab is the app's to see).

The fields are not DirectEntry: Panda3D hands all of a frame's keystrokes to the focused
entry before the app hears that frame's Tab, so on a slow (software) renderer letters typed
just after a Tab landed in the field before it. The form takes the window's ``keystroke``
events instead, which arrive in order with the Tab, Backspace and Enter buttons."""

from __future__ import annotations

from collections.abc import Callable

from direct.gui.DirectGui import DGG, DirectButton, DirectFrame, DirectLabel
from direct.showbase.DirectObject import DirectObject
from panda3d.core import NodePath, TextFont, TextNode

from server.people.cards import CardError, make_card

from .cards import MyCard
from .i18n import _, n_
from .late_keys import typed
from .text import display
from .ui import BAD, GOLD, INK, MUTED, _text

FIELDS = ("name", "company", "country", "role", "email", "phone", "language", "timezone")
ORDER = (*FIELDS, "share")  # what Tab walks through: the consent box last before Save
REQUIRED = ("name", "company", "country", "role", "language", "timezone")
# a card every rule accepts: each field is tried in it alone, so every wrong field is named at once
_VALID = {"name": "N", "company": "C", "country": "KZ", "role": "R", "language": "en", "timezone": "UTC"}


def labels() -> dict[str, tuple[str, str]]:
    """Each field's label and example, in the language in use."""
    return {"name": (_("Name"), ""), "company": (_("Company"), ""), "country": (_("Country"), _("e.g. KZ, CN, MY")),
            "role": (_("Role"), _("e.g. buyer")), "email": (_("E-mail"), _("optional")),
            "phone": (_("Phone"), _("optional")), "language": (_("Language"), _("e.g. en, zh-Hans, ru")),
            "timezone": (_("Time zone"), _("e.g. Asia/Almaty"))}


def check_card(values: dict[str, str], share: bool) -> tuple[MyCard | None, dict[str, str]]:
    """The card as typed (normalised as the server keeps it), or None and a reason per
    wrong field."""
    problems: dict[str, str] = {}
    for field in FIELDS:
        value = values.get(field, "")
        if field in REQUIRED and not value.strip():
            problems[field] = _("needed")
            continue
        try:
            make_card(**(_VALID | {field: value}))
        except CardError as exc:
            problems[field] = str(exc).removeprefix(f"{field}: ")
    if problems:
        return None, problems
    card = make_card(**{f: values.get(f, "") for f in FIELDS})
    return MyCard(card.name, card.company, card.country, card.role, card.language, card.timezone, card.email,
                  card.phone, share), {}


MAX_FIELD = 80
SHOWN = 27  # characters a field shows: the end of a longer value, where one types


def initial(card: MyCard | None, display_name: str, language: str) -> tuple[dict[str, str], bool]:
    """What the form starts with: the saved card, or your display name and the interface's language."""
    if card is not None:
        return {f: getattr(card, f) or "" for f in FIELDS}, card.share
    return {f: "" for f in FIELDS} | {"name": display_name, "language": language.replace("_", "-"),
                                      "timezone": "UTC"}, True


class CardEditor(DirectObject):
    """The form, centre screen: eight fields, the consent box, Save and Cancel."""

    def __init__(self, parent: NodePath, font: TextFont | None, values: dict[str, str], share: bool,
                 on_save: Callable[[MyCard], None], on_close: Callable[[], None], swallow: str | None = None) -> None:
        """``swallow``: the character of the key that opened the form, whose keystroke is still
        to come (it is no letter of the name)."""
        super().__init__()
        self.frame = DirectFrame(parent=parent, frameColor=(0.05, 0.07, 0.12, 1), frameSize=(-0.95, 0.95, -0.8, 0.8))
        self.frame.setBin("gui-popup", 20)  # over every panel of the hall (the first-run hint card too)
        _text(self.frame, font, _("Your business card"), (0, 0.68), 0.065, GOLD, TextNode.ACenter)
        _text(self.frame, font, _("Shown only to people you exchange cards with, when both agree."), (0, 0.61),
              0.034, MUTED, TextNode.ACenter)
        self.values = {f: values.get(f, "") for f in FIELDS}
        self.fields: dict[str, DirectButton] = {}
        self.notes: dict[str, object] = {}
        texts = labels()
        for i, field in enumerate(FIELDS):
            z = 0.48 - i * 0.115
            label, example = texts[field]
            _text(self.frame, font, label, (-0.88, z), 0.04, MUTED)
            self.fields[field] = DirectButton(  # a click puts the keys here
                parent=self.frame, text="", text_font=font, text_scale=0.042, text_fg=(0.05, 0.05, 0.08, 1),
                text_align=TextNode.ALeft, text_pos=(0.015, -0.005), relief=DGG.FLAT, frameSize=(0, 0.75, -0.03, 0.055),
                pos=(-0.5, 0, z), command=self.focus, extraArgs=[field])
            self.notes[field] = _text(self.frame, font, example, (0.27, z), 0.032, MUTED, wrap=19)
        self.share = share
        z = 0.48 - len(FIELDS) * 0.115
        self.share_box = DirectButton(parent=self.frame, text="", text_font=font, text_scale=0.04, text_fg=INK,
                                      text_align=TextNode.ALeft, frameColor=(0.16, 0.19, 0.27, 1), relief=DGG.FLAT,
                                      frameSize=(-0.02, 1.76, -0.035, 0.06), pos=(-0.88, 0, z), command=self.toggle_share)
        self.share_note = _text(self.frame, font, "", (-0.88, z - 0.075), 0.03, MUTED, wrap=58)
        self.save_button = DirectButton(parent=self.frame, text=display(_("Save  (Enter)")), text_font=font, scale=0.05,
                                        pos=(-0.25, 0, -0.6), pad=(0.5, 0.25), frameColor=GOLD,
                                        text_fg=(0.08, 0.06, 0.02, 1), command=self.save)
        DirectButton(parent=self.frame, text=display(_("Cancel  (Esc)")), text_font=font, scale=0.05,
                     pos=(0.3, 0, -0.6), pad=(0.5, 0.25), frameColor=(0.25, 0.28, 0.36, 1), text_fg=INK,
                     command=self.cancel)
        self.error = DirectLabel(parent=self.frame, text="", text_font=font, text_scale=0.036, text_fg=INK,
                                 text_wordwrap=44, frameColor=(0.45, 0.12, 0.1, 0.95), pad=(0.03, 0.02),
                                 pos=(0, 0, -0.73))
        self.error.hide()
        self._on_save, self._on_close = on_save, on_close
        self.examples = {f: texts[f][1] for f in FIELDS}
        self.problems: dict[str, str] = {}
        self.focused = "name"
        self._draw_share()
        self.focus("name")
        self.accept("space", self._space)
        self._swallow = swallow
        self.accept("keystroke", self._keystroke)
        self.accept("backspace", self._keystroke, ["backspace"])
        self.accept("backspace-repeat", self._keystroke, ["backspace"])

    # ------------------------------------------------------------------ keys

    def focus(self, field: str) -> None:
        self.focused = field
        for name in self.fields:
            self._draw_field(name)
        self._draw_share()

    def _draw_field(self, field: str) -> None:
        value, here = self.values[field], field == self.focused
        shown = ("…" + value[-SHOWN:] if len(value) > SHOWN else value) + ("|" if here else "")
        self.fields[field]["text"] = display(shown)
        self.fields[field]["frameColor"] = (1.0, 0.97, 0.84, 1) if here else (0.86, 0.87, 0.9, 1)

    def _keystroke(self, key: str) -> None:
        swallow, self._swallow = self._swallow, None
        if key == swallow:
            return
        if self.focused in self.values:
            self.values[self.focused] = typed(self.values[self.focused], key, MAX_FIELD)
            self._draw_field(self.focused)

    def focus_next(self, step: int = 1) -> None:
        """Tab (1) or Shift+Tab (-1)."""
        i = ORDER.index(self.focused) if self.focused in ORDER else -1
        self.focus(ORDER[(i + step) % len(ORDER)])

    def _space(self) -> None:
        if self.focused == "share":  # in a field a space is a space
            self.toggle_share()

    def toggle_share(self) -> None:
        self.share = not self.share
        self._draw_share()

    def _draw_share(self) -> None:
        mark = "[x]" if self.share else "[  ]"
        self.share_box["text"] = display(f"{mark}  " + _("I agree to share this card with people I exchange cards with"))
        self.share_box["frameColor"] = (0.3, 0.36, 0.52, 1) if self.focused == "share" else (0.16, 0.19, 0.27, 1)
        self.share_note.setText(_("Space ticks the box.") + "  " + (
            "" if self.share else _("Unticked: the card stays on this computer and nobody is shown it.")))

    # ------------------------------------------------------------------ saving

    def save(self) -> None:
        card, problems = check_card(self.values, self.share)
        self.problems = problems
        for field, note in self.notes.items():
            reason = problems.get(field)
            note.setText(reason or self.examples[field])  # type: ignore[attr-defined]
            note["fg"] = BAD if reason else MUTED  # type: ignore[index]
        if card is None:
            self.error["text"] = display(n_("Not saved: {count} field to correct (in red).",
                                            "Not saved: {count} fields to correct (in red).", len(problems))
                                         .format(count=len(problems)))
            self.error.resetFrameSize()
            self.error.show()
            self.focus(next(f for f in FIELDS if f in problems))
            return
        self._on_save(card)
        self.close()

    def cancel(self) -> None:
        self.close()

    def close(self) -> None:
        self.ignoreAll()
        self.frame.destroy()
        self._on_close()



class OfferPanel:
    """A clicked avatar: its name, and Offer card (O) or close (Esc, ×)."""

    def __init__(self, parent: NodePath, font: TextFont | None, name: str, staff_of: str | None,
                 on_offer: Callable[[], None], on_close: Callable[[], None]) -> None:
        self.frame = DirectFrame(parent=parent, frameColor=(0.05, 0.07, 0.12, 0.94), frameSize=(-0.48, 0.48, -0.18, 0.08),
                                 pos=(0, 0, -0.1))  # along the top edge: clear of the figures and their tags
        _text(self.frame, font, name, (0, 0.02), 0.05, GOLD, TextNode.ACenter)
        if staff_of:
            _text(self.frame, font, _("staff of {booth}").format(booth=staff_of), (0, -0.04), 0.032, MUTED,
                  TextNode.ACenter)
        self.button = DirectButton(parent=self.frame, text=display(_("Offer card  (O)")), text_font=font, scale=0.042,
                                   pos=(-0.08, 0, -0.13), pad=(0.4, 0.2), frameColor=GOLD,
                                   text_fg=(0.08, 0.06, 0.02, 1), command=on_offer)
        DirectButton(parent=self.frame, text="×", text_font=font, scale=0.05, pos=(0.36, 0, -0.13),
                     frameColor=(0.25, 0.28, 0.36, 1), text_fg=INK, pad=(0.3, 0.1), command=on_close)

    def destroy(self) -> None:
        self.frame.destroy()
