"""Giving a certificate away, in the window: H with your purchases shown. The real-name form
when the bank has not checked you yet (Tab between fields, Enter sends), then the choice of
certificate (←/→) and contact ([ ]), then the question before it leaves (Enter yes, Esc
back). Decisions are ``gifting.GiftDesk``'s; this class shows them and carries its actions
to the bank (``BankWorker``), then asks the world server for the list again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from direct.gui.DirectGui import DirectEntry, DirectFrame
from direct.showbase.DirectObject import DirectObject
from panda3d.core import TextNode

from bank.client import BankAPIError

from . import gifting as gf
from .deals_panel import FIELD_COLOUR, FOCUS_COLOUR, PANEL_COLOUR, Question, button_pair
from .i18n import _
from .ui import BAD, GOLD, GOOD, INK, MUTED, _text

if TYPE_CHECKING:
    from .app import ExpoApp, Visit

Part = TypeVar("Part", "RealNameForm", "Chooser", Question)


def _refusal(exc: BaseException) -> gf.Refusal:
    if isinstance(exc, BankAPIError):
        return gf.Refusal(exc.code, exc.message, exc.field)
    return gf.Refusal("unavailable", str(exc) or type(exc).__name__)


class RealNameForm:
    """The bank's mock real-name check: legal name, date of birth, country, document number."""

    WIDTHS = (16, 10, 3, 16)

    def __init__(self, parent: Any, font: Any, on_send: Any, on_close: Any) -> None:
        self.frame = DirectFrame(parent=parent, frameColor=PANEL_COLOUR, frameSize=(-0.8, 0.8, -0.55, 0.55))
        _text(self.frame, font, _("Your real name, for the bank"), (-0.72, 0.45), 0.055, GOLD)
        _text(self.frame, font, _("A gift of a certificate needs both sides checked by the bank. This is the expo's "
                                  "mock check: the bank keeps only the outcome, no copy of the document."),
              (-0.72, 0.38), 0.03, MUTED, wrap=48)
        self.rows: list[DirectFrame] = []
        self.entries: list[DirectEntry] = []
        labels = (_("Legal name"), _("Date of birth"), _("Country (2 letters)"), _("Document number"))
        for i, (label, width) in enumerate(zip(labels, self.WIDTHS, strict=True)):
            row = DirectFrame(parent=self.frame, frameColor=FIELD_COLOUR, frameSize=(-0.76, 0.76, -0.055, 0.065),
                              pos=(0, 0, 0.2 - i * 0.125))
            _text(row, font, label, (-0.72, 0), 0.038, MUTED)
            self.entries.append(DirectEntry(parent=row, initialText="", pos=(-0.2, 0, -0.005), scale=0.04, width=width,
                                            entryFont=font, frameColor=(0.92, 0.93, 0.95, 1), overflow=1,
                                            text_fg=(0.05, 0.05, 0.08, 1), focus=0,
                                            focusInCommand=self._highlight, focusInExtraArgs=[i]))
            self.rows.append(row)
        _text(self.frame, font, _("YYYY-MM-DD · e.g. KZ, CN, MY · capital letters and digits"), (0, -0.3), 0.028,
              MUTED, TextNode.ACenter)
        self.status = _text(self.frame, font, "", (0, -0.37), 0.032, BAD, TextNode.ACenter, wrap=46)
        button_pair(self.frame, font, -0.48, _("Send to the bank  (Enter)"), _("Cancel  (Esc)"), on_send, on_close)
        self.focus_index = 0
        self.focus(0)

    def values(self) -> tuple[str, str, str, str]:
        name, born, country, document = (entry.get() for entry in self.entries)
        return name, born, country, document

    def focus(self, index: int) -> None:
        self._highlight(index)
        for i, entry in enumerate(self.entries):
            entry["focus"] = 1 if i == self.focus_index else 0

    def _highlight(self, index: int) -> None:
        self.focus_index = index % len(self.entries)
        for i, row in enumerate(self.rows):
            row["frameColor"] = FOCUS_COLOUR if i == self.focus_index else FIELD_COLOUR

    def say(self, text: str, colour: tuple[float, float, float, float] = BAD) -> None:
        self.status.setText(text)
        self.status.setFg(colour)

    def destroy(self) -> None:
        for entry in self.entries:
            entry["focus"] = 0
        self.frame.destroy()


class Chooser:
    """Which certificate to whom: the desk's lines, its last word, Give and Close."""

    def __init__(self, parent: Any, font: Any, on_give: Any, on_close: Any) -> None:
        self.frame = DirectFrame(parent=parent, frameColor=PANEL_COLOUR, frameSize=(-0.8, 0.8, -0.4, 0.4))
        _text(self.frame, font, _("Give a certificate"), (-0.72, 0.3), 0.055, GOLD)
        self.lines = _text(self.frame, font, "", (-0.72, 0.2), 0.038, INK, wrap=38)  # inside the frame at 0.8
        self.status = _text(self.frame, font, "", (0, -0.18), 0.032, BAD, TextNode.ACenter, wrap=46)
        button_pair(self.frame, font, -0.32, _("Give  (Enter)"), _("Close  (Esc)"), on_give, on_close)

    def show(self, lines: list[str], status: str, good: bool) -> None:
        self.lines.setText("\n".join(lines))
        self.status.setText(status)
        self.status.setFg(GOOD if good else BAD)

    def destroy(self) -> None:
        self.frame.destroy()


class GiftPanel(DirectObject):
    def __init__(self, app: ExpoApp, now: Any = lambda: datetime.now(UTC)) -> None:
        super().__init__()
        self.app = app
        self.desk = gf.GiftDesk(now)
        self.visit: Visit | None = None
        self.part: RealNameForm | Chooser | Question | None = None  # one panel at a time
        self.accept("arrow_left", self._step, [self.desk.step_item, -1])
        self.accept("arrow_right", self._step, [self.desk.step_item, 1])
        self.accept("[", self._step, [self.desk.step_contact, -1])
        self.accept("]", self._step, [self.desk.step_contact, 1])

    @property
    def is_open(self) -> bool:
        return self.desk.stage is not gf.Stage.CLOSED

    def open(self) -> None:
        """H with your purchases shown."""
        v = self.app.visit
        if v is None or self.is_open:
            return
        if v.bank is None or v.credential is None:
            self.app.hud.show_toast(_("Gifts need the bank, and you have no account there."), time.monotonic(), bad=True)
            return
        self.visit = v
        self._act(self.desk.open())

    def _act(self, actions: list[gf.Action]) -> None:
        v = self.visit
        for action in actions:
            assert v is not None and v.bank is not None
            match action:
                case gf.LoadGiftInfo():
                    v.bank.submit(self._load, self._loaded)
                case gf.SubmitRealName(name, born, country, document, key):
                    v.bank.submit(lambda bank: bank.submit_kyc(name, born, country, document, idempotency_key=key),
                                  lambda _r, err: self._answered(self.desk.real_name_done, err))
                case gf.SendGift(serial, to_account, key):
                    v.bank.submit(lambda bank: bank.gift_item(serial, to_account, idempotency_key=key),
                                  lambda _r, err: self._answered(self.desk.gifted, err))
        self.view()

    @staticmethod
    async def _load(bank: Any) -> tuple[Any, Any, Any]:
        return await bank.me(), await bank.contacts(), await bank.items()

    def _loaded(self, got: Any, error: BaseException | None) -> None:
        if error is not None:
            self.desk.load_failed(_refusal(error).message)
        else:
            me, contacts, items = got
            self.desk.loaded(me.kyc == "verified",
                             [gf.Contact(c.account_id, c.display_name, c.kyc == "verified") for c in contacts.data],
                             [gf.Holding(i.serial, i.edition.title, i.giftable_from) for i in items.data])
        self.view()

    def _answered(self, answer: Any, error: BaseException | None) -> None:
        answer(None if error is None else _refusal(error))
        if self.desk.done:
            self.app.command(lambda core: core.query_collectibles())  # the list, as the bank now has it
        self.view()

    # ------------------------------------------------------------------ keys the app hands on

    def enter(self) -> bool:
        if isinstance(self.part, RealNameForm) and self.desk.stage is gf.Stage.REAL_NAME:
            self._act(self.desk.real_name(*self.part.values()))
        elif self.is_open:
            self._act(self.desk.enter())
        else:
            return False
        return True

    def escape(self) -> bool:
        if not self.is_open:
            return False
        self.desk.escape()
        self.view()
        return True

    def tab(self) -> bool:
        if not isinstance(self.part, RealNameForm):
            return False
        self.part.focus(self.part.focus_index + (-1 if self.app.run_held else 1))
        return True

    def _step(self, step_of: Any, step: int) -> None:
        if self.desk.stage is gf.Stage.CHOOSING:
            step_of(step)
            self.view()

    def _answer(self, yes: bool) -> None:
        if yes:
            self.enter()
        else:
            self.escape()

    # ------------------------------------------------------------------ the view

    def view(self) -> None:
        """What the desk's stage shows: one panel at a time, the keys kept from the hall while open."""
        stage, app = self.desk.stage, self.app
        if stage in (gf.Stage.REAL_NAME, gf.Stage.CHECKING):
            checking = stage is gf.Stage.CHECKING
            form = self._shown(RealNameForm, lambda: RealNameForm(app.aspect2d, app.font, self.enter, self.escape))
            form.say(_("Asking the bank…") if checking else self.desk.status, MUTED if checking else BAD)
            if self.desk.field is not None and not checking:
                form.focus(gf.REAL_NAME_FIELDS.index(self.desk.field))  # where the bank found the fault
        elif stage in (gf.Stage.CHOOSING, gf.Stage.SENDING):
            sending = stage is gf.Stage.SENDING
            chooser = self._shown(Chooser, lambda: Chooser(app.aspect2d, app.font, self.enter, self.escape))
            chooser.show(self.desk.lines(), _("Giving…") if sending else self.desk.status, sending or self.desk.status_good)
        elif stage is gf.Stage.CONFIRMING:
            self._shown(Question, lambda: Question(app.aspect2d, app.font, self.desk.question(), self._answer))
        else:
            self._close()
            if stage is gf.Stage.CLOSED and self.desk.status:
                app.hud.show_toast(self.desk.status, time.monotonic(), 6.0, bad=not self.desk.status_good)
                self.desk.status = ""
        if self.visit is not None:  # ours since H: the keys go to the panel, not to walking
            app.typing = self.is_open
            app.keys.clear()
        if not self.is_open:
            self.visit = None

    def _shown(self, kind: type[Part], make: Callable[[], Part]) -> Part:
        """The panel of ``kind``, made in place of any other unless it is up already."""
        if not isinstance(self.part, kind):
            self._close()
            self.part = make()
            self.part.frame.setScale(self.app.text_scale)
        return self.part

    def _close(self) -> None:
        if self.part is not None:
            self.part.destroy()
            self.part = None
