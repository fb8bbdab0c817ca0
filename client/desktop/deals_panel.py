"""B2B deals in the window: the request-a-quote form (Q at a booth), the "My deals" panel (T)
with the keys the selected deal's state allows (Enter accept and pay the deposit / pay the
balance, X cancel, [ ] choose), and the question asked before money moves (Enter yes, Esc
no). Decisions are ``deals.DealDesk``'s; this class shows them and carries its actions to
the world server (``app.command``) and the bank (``BankWorker``). The app hands it Enter,
Esc, the deal and collectible events, and the inventory's certificate lines.
"""

from __future__ import annotations

import time
import webbrowser
from typing import TYPE_CHECKING, Any

from direct.gui.DirectGui import DGG, DirectButton, DirectEntry, DirectFrame
from direct.showbase.DirectObject import DirectObject
from panda3d.core import TextNode

from client import events as ev
from server.deals.incoterms import INCOTERMS_2020
from world import iso

from . import deals as dl
from .collectibles import Collectible, arrival, certificate_lines, giver, next_to_check
from .i18n import _, country_name
from .pricing import QuoteKey, Quotes, money_minor
from .text import display
from .ui import BAD, GOLD, INK, MUTED, _text

if TYPE_CHECKING:
    from .app import ExpoApp, Visit

FIELDS = ("product", "qty", "incoterm", "destination")
TERMS = tuple(INCOTERMS_2020)
FIELD_COLOUR = (0.12, 0.15, 0.22, 0.9)
FOCUS_COLOUR = (0.22, 0.3, 0.48, 0.95)
PANEL_COLOUR = (0.05, 0.07, 0.12, 0.97)  # a form's or a question's frame, over the hall


def button_pair(frame: Any, font: Any, z: float, yes: str, no: str, on_yes: Any, on_no: Any,
                scale: float = 0.045) -> tuple[DirectButton, DirectButton]:
    """A form's or a question's two buttons: the gold one that goes ahead, the grey one that does not."""
    return (DirectButton(parent=frame, text=display(yes), text_font=font, scale=scale, pos=(-0.3, 0, z), pad=(0.4, 0.2),
                         frameColor=GOLD, text_fg=(0.08, 0.06, 0.02, 1), command=on_yes),
            DirectButton(parent=frame, text=display(no), text_font=font, scale=scale, pos=(0.3, 0, z), pad=(0.4, 0.2),
                         frameColor=(0.35, 0.37, 0.42, 1), text_fg=INK, command=on_no))


class QuoteForm:
    """Product, quantity, Incoterm, destination; Tab moves between them, ←/→ change the
    product and the Incoterm, Enter sends, Esc closes."""

    def __init__(self, parent: Any, font: Any, exhibitor: str, products: list[tuple[str, str, bool]],
                 destination: str, on_send: Any, on_close: Any) -> None:
        self.products = products  # (sku, name, has a price list)
        self.product_index = 0
        self.term_index = TERMS.index("FOB")
        self.focus_index = 1
        self.frame = DirectFrame(parent=parent, frameColor=PANEL_COLOUR, frameSize=(-0.8, 0.8, -0.5, 0.5))
        _text(self.frame, font, _("Request a quote"), (-0.72, 0.41), 0.055, GOLD)
        _text(self.frame, font, exhibitor, (-0.72, 0.35), 0.036, MUTED, wrap=40)
        self.rows: dict[str, DirectFrame] = {}
        labels = (_("Product"), _("Quantity"), _("Incoterm"), _("Destination"))
        for i, (name, label) in enumerate(zip(FIELDS, labels, strict=True)):
            z = 0.24 - i * 0.125
            self.rows[name] = DirectFrame(parent=self.frame, frameColor=FIELD_COLOUR, frameSize=(-0.76, 0.76, -0.055, 0.065),
                                          pos=(0, 0, z), state=DGG.NORMAL)
            self.rows[name].bind(DGG.B1PRESS, lambda _e, n=name: self.focus(FIELDS.index(n)))
            _text(self.rows[name], font, label, (-0.72, 0), 0.038, MUTED)
        self.product_text = _text(self.rows["product"], font, "", (-0.3, 0.012), 0.036, INK, wrap=21)
        self.product_note = _text(self.rows["product"], font, "", (-0.3, -0.038), 0.026, MUTED)
        self.term_text = _text(self.rows["incoterm"], font, "", (-0.3, 0.0), 0.036, INK)
        for name, step_of in (("product", self.step_product), ("incoterm", self.step_term)):
            for x, step, arrow in ((0.58, -1, "◀"), (0.68, 1, "▶")):
                DirectButton(parent=self.rows[name], text=arrow, text_font=font, scale=0.04, pos=(x, 0, 0.0),
                             frameColor=(0.25, 0.28, 0.36, 1), text_fg=INK, pad=(0.25, 0.1), command=step_of,
                             extraArgs=[step])
        self.entries = {}
        for name, value, width in (("qty", "1", 8), ("destination", destination, 3)):
            self.entries[name] = DirectEntry(parent=self.rows[name], initialText=value, pos=(-0.3, 0, -0.005), scale=0.04,
                                             width=width, entryFont=font, frameColor=(0.92, 0.93, 0.95, 1),
                                             text_fg=(0.05, 0.05, 0.08, 1), focus=0,
                                             focusInCommand=self._highlight, focusInExtraArgs=[FIELDS.index(name)])
        self.country = _text(self.rows["destination"], font, "", (-0.12, 0.0), 0.032, MUTED)
        for event in (DGG.TYPE, DGG.ERASE):
            self.entries["destination"].bind(event, lambda _e: self.show())
        self.status = _text(self.frame, font, "", (0, -0.315), 0.034, BAD, TextNode.ACenter, wrap=44)
        button_pair(self.frame, font, -0.42, _("Send request  (Enter)"), _("Cancel  (Esc)"), on_send, on_close)
        _text(self.frame, font, _("Tab next field · ←/→ change product or Incoterm"), (0, -0.245), 0.028, MUTED,
              TextNode.ACenter)
        self.focus(1)
        self.show()

    @property
    def sku(self) -> str:
        return self.products[self.product_index][0]

    @property
    def incoterm(self) -> str:
        return TERMS[self.term_index]

    def value(self, name: str) -> str:
        return self.entries[name].get()

    def set_value(self, name: str, text: str) -> None:
        self.entries[name].enterText(text)
        self.show()

    def focus(self, index: int) -> None:
        """Tab or a click on a row: that field takes the keys."""
        self._highlight(index)
        for i, name in enumerate(FIELDS):
            if name in self.entries:
                self.entries[name]["focus"] = 1 if i == self.focus_index else 0

    def _highlight(self, index: int) -> None:
        """The focused row lit (an entry clicked calls only this: setting focus from its own
        focus-in would answer every stale focus event with another)."""
        self.focus_index = index % len(FIELDS)
        for i, name in enumerate(FIELDS):
            self.rows[name]["frameColor"] = FOCUS_COLOUR if i == self.focus_index else FIELD_COLOUR

    def tab(self, step: int) -> None:
        self.focus(self.focus_index + step)
        self.say("")

    def arrow(self, step: int) -> None:
        """←/→ change the focused choice (in an entry they move its cursor instead)."""
        name = FIELDS[self.focus_index]
        if name == "product":
            self.step_product(step)
        elif name == "incoterm":
            self.step_term(step)

    def step_product(self, step: int) -> None:
        self.product_index = (self.product_index + step) % len(self.products)
        self.show()

    def step_term(self, step: int) -> None:
        self.term_index = (self.term_index + step) % len(TERMS)
        self.show()

    def show(self) -> None:
        """The choices as they stand; a change clears the last complaint."""
        self.say("")
        _sku, name, listed = self.products[self.product_index]
        self.product_text.setText(name)
        self.product_note.setText(_("a price list: quoted at once") if listed else _("the booth's staff answer"))
        self.term_text.setText(f"{self.incoterm} · {INCOTERMS_2020[self.incoterm]}")
        code = self.value("destination").strip().upper()
        self.country.setText(country_name(code) if code in iso.countries() else "")

    def say(self, text: str) -> None:
        self.status.setText(text)

    def destroy(self) -> None:
        for entry in self.entries.values():
            entry["focus"] = 0
        self.frame.destroy()


class Question:
    """Yes or no before money moves: Enter (or the gold button) says yes, Esc no."""

    def __init__(self, parent: Any, font: Any, text: str, on_answer: Any) -> None:
        self.frame = DirectFrame(parent=parent, frameColor=PANEL_COLOUR, frameSize=(-0.8, 0.8, -0.4, 0.4))
        self.text = _text(self.frame, font, "", (0, 0.3), 0.04, INK, TextNode.ACenter, wrap=36)
        self.yes, self.no = button_pair(self.frame, font, -0.3, _("Confirm  (Enter)"), _("Cancel  (Esc)"),
                                        lambda: on_answer(True), lambda: on_answer(False), scale=0.05)
        self.say(text)

    def say(self, text: str) -> None:
        self.text.setText(text)
        half = (max(1, self.text.rows()) * 0.05 + 0.2) / 2 + 0.06
        self.frame["frameSize"] = (-0.8, 0.8, -half, half)
        self.text.setPos(0, half - 0.08)
        for button in (self.yes, self.no):
            button.setZ(-half + 0.07)

    def destroy(self) -> None:
        self.frame.destroy()


class DealsPanel(DirectObject):
    """The deals of the visit in progress (a new visit starts an empty desk)."""

    def __init__(self, app: ExpoApp) -> None:
        super().__init__()
        self.app = app
        self.visit: Visit | None = None
        self.desk = dl.DealDesk()
        self.quotes = Quotes()
        self.collectibles: tuple[Collectible, ...] = ()
        self._checked: str | None = None  # the serial L opened last
        self._held: set[str] | None = None  # the serials of the visit's last list (None before the first)
        self.form: QuoteForm | None = None
        self.form_booth: str | None = None
        self.question: Question | None = None
        for key, do in (("q", self.open_form), ("t", self.toggle), ("x", lambda: self.ask("cancel"))):
            self.accept(key, self._unless_typing, [do])
        self.accept("[", self._select, [-1])
        self.accept("]", self._select, [1])
        self.accept("tab", self._tab)
        self.accept("arrow_left", self._arrow, [-1])
        self.accept("arrow_right", self._arrow, [1])

    # ------------------------------------------------------------------ the visit

    def _desk(self) -> Visit | None:
        """The visit's own desk: a new visit (another server, a reconnect) starts afresh."""
        v = self.app.visit
        if v is not self.visit:
            self.close_form()
            self.close_question()
            self.visit, self.desk, self.quotes, self.collectibles = v, dl.DealDesk(), Quotes(), ()
            self._held = None
        if v is not None:
            card = self.app.my_card
            self.desk.zone = card.timezone if card else None
            if v.expo is not None and not self.desk.names:
                self.desk.names = {(b.id, pr.sku): pr.name for b in v.expo.booths for pr in b.catalogue}
        return v

    def joined(self) -> None:
        """After each join: the deals and certificates as the server has them."""
        self._desk()
        self.desk.rejoined()
        self.app.command(lambda core: core.query_deals())
        self.app.command(lambda core: core.query_collectibles())

    def on_event(self, event: ev.Event) -> None:
        v = self._desk()
        if v is None:
            return
        match event:
            case ev.DealUpdated(message=deal):
                news = self.desk.on_status(deal)
                if news is not None and deal.state == "quoted" and not self.is_open:
                    news += " " + _("T shows your deals.")  # open, T would close them
                if news is not None:
                    self.app.hud.show_toast(news, time.monotonic(), 6.0, bad=deal.state in ("canceled", "expired"))
                if deal.state in ("ordered", "shipped", "delivered", "canceled"):
                    self.app._refresh_balance(v)  # money moved at the bank
                if self.question is None:
                    self.refresh()
            case ev.CollectiblesReceived(message=held):
                self.collectibles = held.items
                new = [(i[0], i[1]) for i in held.items if self._held is not None and i[0] not in self._held]
                self._held = {item[0] for item in held.items}
                if new:
                    self._announce(v, new)
                if self.app._purchases_shown():
                    self.app._show_inventory(v)
            case ev.ErrorReceived(message=message, ref=ref) if ref in dl.DEAL_MESSAGES:
                self.desk.on_error(message, ref)  # the step under way is over; the deal is as it was
                self.app.hud.show_toast(message, time.monotonic(), 6.0, bad=True)
                self.refresh()

    def _announce(self, v: Visit, new: list[tuple[str, str]]) -> None:
        """A toast for each certificate new to the visit, naming who gave it (the bank's
        provenance and contact list say); a purchase's certificate, or no bank, says only what it is."""
        def toast(found: dict[str, str | None]) -> None:
            for serial, title in new:
                self.app.hud.show_toast(arrival(title, serial, found.get(serial)), time.monotonic(), 6.0)

        if v.bank is None:
            toast({})
            return

        async def givers(bank: Any) -> dict[str, str | None]:
            names = {c.account_id: c.display_name for c in (await bank.contacts()).data}
            return {serial: giver([(m.kind, m.from_account_id) for m in (await bank.get_item(serial)).provenance], names)
                    for serial, _title in new}
        v.bank.submit(givers, lambda found, error: toast(found if error is None else {}))

    def check_certificate(self) -> None:
        """L, with your purchases shown: the next certificate's public check (the console's
        page, or the bank's) in the web browser; where there is none, the toast says so."""
        item = next_to_check(self.collectibles, self._checked)
        if item is None:
            return
        self._checked = serial = item[0]
        if webbrowser.open(item[7]):
            self.app.hud.show_toast(_("The check of No. {serial} is opening in your browser.").format(serial=serial),
                                    time.monotonic())
        else:
            self.app.hud.show_toast(_("No web browser here: the check's address is in the list."), time.monotonic(), bad=True)

    def certificates(self) -> list[str]:
        v = self._desk()
        if v is None or v.expo is None:
            return []
        return certificate_lines(self.collectibles, {b.id: b.exhibitor for b in v.expo.booths}, self.desk.names)

    # ------------------------------------------------------------------ keys

    def _unless_typing(self, do: Any) -> None:
        if self.form is not None or self.question is not None:
            return
        if self.app.typing or self.app.visit is None or self.app.hud.directory_open:
            return
        do()

    def _select(self, step: int) -> None:
        if self.is_open and self.question is None and not self.app.typing:
            self.desk.select(step)
            self.refresh()

    def _tab(self) -> None:
        if self.form is not None:
            self.form.tab(-1 if self.app.run_held else 1)

    def _arrow(self, step: int) -> None:
        if self.form is not None:
            self.form.arrow(step)

    def enter(self) -> bool:
        """Enter: send the form, say yes to the question, or, with My deals open, take the
        selected deal's next step (accept the quotation, pay the balance). True when it was ours."""
        if self.question is not None:
            self.answer(True)
            return True
        if self.form is not None:
            self.send_form()
            return True
        deal = self.desk.current() if self.is_open and not self.app.typing else None
        if deal is not None and {"accept", "pay"} & set(self.desk.allowed(deal)):
            self.ask("next")
            return True
        return False

    def escape(self) -> bool:
        if self.question is not None:
            self.answer(False)
            return True
        if self.form is not None:
            self.close_form()
            return True
        return False

    # ------------------------------------------------------------------ the form

    def open_form(self) -> None:
        """Q at a booth (or with its catalogue open): ask it for a quotation."""
        v = self._desk()
        if v is None or v.expo is None:
            return
        booth = v.expo.booth(v.catalogue or v.near or "")
        if booth is None or not booth.catalogue:
            self.app.hud.show_toast(_("Stand at a booth to request a quote (Q)."), time.monotonic(), bad=True)
            return
        if v.bank is None:
            self.app.hud.show_toast(_("Deals need the bank, and this server has none."), time.monotonic(), bad=True)
            return
        products = [(pr.sku, pr.name, pr.wholesale is not None) for pr in booth.catalogue]
        products.sort(key=lambda row: not row[2])  # the ones with a price list first
        country = self.app.my_card.country if self.app.my_card else ""
        self.form_booth = booth.id
        self.form = QuoteForm(self.app.aspect2d, self.app.font, booth.exhibitor, products, country, self.send_form,
                              self.close_form)
        self.form.frame.setScale(self.app.text_scale)
        self.app.typing = True  # the keys go to the form, not to walking
        self.app.keys.clear()

    def close_form(self) -> None:
        if self.form is not None:
            self.form.destroy()
            self.form = None
            self.app.typing = False

    def send_form(self) -> None:
        v = self._desk()
        form = self.form
        if v is None or form is None or self.form_booth is None:
            return
        try:
            request = dl.rfq(self.form_booth, form.sku, form.value("qty"), form.incoterm, form.value("destination"),
                             self.desk.new_key())
        except dl.FormError as problem:
            form.say(str(problem))
            return
        self.close_form()
        self._act(v, self.desk.request(request))
        self.show()

    # ------------------------------------------------------------------ the panel

    @property
    def is_open(self) -> bool:
        hud = self.app.hud
        return not hud.inventory.isHidden() and hud.inventory_title == _("My deals")

    def toggle(self) -> None:
        if self.is_open:
            self.app.hud.set_inventory(None)
        else:
            self.show()
            self.app.command(lambda core: core.query_deals())

    def show(self) -> None:
        if self._desk() is None:
            return
        self.app.hud.set_inventory(self.desk.lines() + ["", _("[ ] choose · T close")], _("My deals"),
                                   _("No deals yet: at a booth, Q requests a quote."))

    def refresh(self) -> None:
        if self.is_open:
            self.show()

    # ------------------------------------------------------------------ money moves only after a yes

    def ask(self, kind: str) -> None:
        """Enter: the selected deal's next step (accept the quotation, pay the balance); X: cancel
        (X cancels a meeting in the Meetings panel, which shares the place: one of them is open)."""
        v = self._desk()
        if v is None or not self.is_open or self.question is not None:
            return
        deal = self.desk.current()
        if deal is None:
            return
        if kind == "next":
            kind = "accept" if deal.state == "quoted" else "pay"
        if kind not in self.desk.allowed(deal):
            self.app.hud.show_toast(_("Not now: the deal is {state}.").format(state=dl.state_name(deal.state)),
                                    time.monotonic(), bad=True)
            return
        proposal = self._propose(v, kind)
        if proposal is not None:
            self.close_question()
            self.question = Question(self.app.aspect2d, self.app.font, proposal.text, self.answer)
            self.question.frame.setScale(self.app.text_scale)

    def _propose(self, v: Visit, kind: str) -> dl.Proposal | None:
        """The question for ``kind``, with the money in the visitor's currency as far as the bank has quoted it."""
        own_currency = v.credential.currency if v.credential else None
        rest = (self._own_amount(v, "rest", kind), self._left_short(v)) if kind == "accept" else (None, None)
        return self.desk.propose(kind, own_currency, self._own_amount(v, kind, kind), self._short_of(v, kind), *rest)

    def _due(self, v: Visit, kind: str) -> QuoteKey | None:
        """What the step takes, as a quote from the visitor's currency (one currency needs none)."""
        due = self.desk.money_due(kind)
        if due is None or v.credential is None:
            return None
        return QuoteKey(v.credential.currency, due[1], due[0])

    def _own_amount(self, v: Visit, due: str, kind: str) -> str | None:
        """What ``due`` takes in the visitor's currency: the bank's quote, "…" until it answers
        (then the question for ``kind`` is asked again with it)."""
        key = self._due(v, due)
        if key is None or v.bank is None or key.source == key.target:
            return None
        if self.quotes.wanted([key]):
            v.bank.submit(lambda bank: bank.quote(key.source, key.target, key.amount),
                          lambda q, err: self._quoted(v, key, q, err, kind))
        debit = self.quotes.debit(key)
        return "…" if debit is None else money_minor(debit, key.source)

    def _short_of(self, v: Visit, kind: str) -> str | None:
        """The visitor's balance, when what the step takes (in the visitor's currency) is known to be more."""
        key = self._due(v, kind)
        if key is None or v.balance_minor is None:
            return None
        debit = self.quotes.debit(key)
        return v.balance if debit is not None and debit > v.balance_minor else None

    def _left_short(self, v: Visit) -> str | None:
        deposit, rest = self._due(v, "accept"), self._due(v, "rest")
        if deposit is None or rest is None:
            return None
        return dl.left_short(v.balance_minor, self.quotes.debit(deposit), self.quotes.debit(rest), deposit.source)

    def _quoted(self, v: Visit, key: QuoteKey, quote: Any, error: BaseException | None, kind: str) -> None:
        if error is None:
            self.quotes.received(key, quote.debit_amount)
        else:
            self.quotes.failed(key)
        proposal = self.desk.proposal
        if self.question is not None and proposal is not None and proposal.kind == kind:
            again = self._propose(v, kind)
            if again is not None:
                self.question.say(again.text)

    def answer(self, yes: bool) -> None:
        v = self._desk()
        self.close_question()
        if v is None:
            return
        if yes:
            self._act(v, self.desk.confirm())
        else:
            self.desk.withdraw()
        self.refresh()

    def close_question(self) -> None:
        if self.question is not None:
            self.question.destroy()
            self.question = None

    def _act(self, v: Visit, actions: list[dl.Action]) -> None:
        for action in actions:
            match action:
                case dl.SendRfq(booth, sku, qty, incoterm, destination, key):
                    self.app.command(lambda core: core.request_quote(booth, sku, qty, incoterm, destination, key))
                case dl.HoldDeposit():
                    self._hold(v, action)
                case dl.SendPurchaseOrder(deal_id, escrow_id):
                    self.app.command(lambda core: core.place_purchase_order(deal_id, escrow_id))
                case dl.PayBalance(deal_id, intent_id, key):
                    assert v.bank is not None
                    v.bank.submit(lambda bank: bank.confirm_intent(intent_id, idempotency_key=key),
                                  lambda _r, err: self._balance_paid(v, deal_id, err))
                case dl.SendDelivered(deal_id):
                    self.app.command(lambda core: core.confirm_delivery(deal_id))
                case dl.SendCancelDeal(deal_id):
                    self.app.command(lambda core: core.cancel_deal(deal_id))
        self.refresh()

    def _hold(self, v: Visit, hold: dl.HoldDeposit) -> None:
        """The deposit into escrow at the bank, FX locked first when the visitor's account is in
        another currency (the quote's rate holds until the deal ends)."""
        assert v.bank is not None
        own = v.credential.currency if v.credential else hold.currency

        async def deposit(bank: Any) -> Any:
            lock_id = None
            if own != hold.currency:
                lock = await bank.lock_fx(hold.currency, hold.amount_minor, idempotency_key=f"fx-{hold.key}")
                lock_id = lock.id
            return await bank.create_escrow(hold.payee_account, hold.amount_minor, hold.currency, hold.deal_id,
                                            fx_lock_id=lock_id, idempotency_key=f"escrow-{hold.key}")

        def done(escrow: Any, error: BaseException | None) -> None:
            if error is not None:
                self._bank_refused(v, hold.deal_id, error)
            else:
                self._act(v, self.desk.deposit_held(hold.deal_id, escrow.id))
                self.app._refresh_balance(v)
        v.bank.submit(deposit, done)

    def _balance_paid(self, v: Visit, deal_id: str, error: BaseException | None) -> None:
        if error is not None and getattr(error, "code", "") != "intent_already_succeeded":
            self._bank_refused(v, deal_id, error)
            return
        self._act(v, self.desk.balance_paid(deal_id))
        self.app._refresh_balance(v)

    def _bank_refused(self, v: Visit, deal_id: str, error: BaseException) -> None:
        code = getattr(error, "code", type(error).__name__)
        message = BANK_SAYS.get(code)
        text = _(message) if message else _("The bank refused: {why}").format(why=getattr(error, "message", str(error)))
        self.desk.refused(deal_id, text)
        self.app.hud.show_toast(text + " " + _("Nothing was taken."), time.monotonic(), 6.0, bad=True)
        self.refresh()


BANK_SAYS = {
    "insufficient_funds": "Not enough money in your bank account for this.",
    "bank_unavailable": "The bank cannot be reached right now; try again shortly.",
    "invalid_token": "The bank does not know your account any more.",
}
