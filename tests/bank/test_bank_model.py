"""Model-based test of the whole bank service on SQLite: random operations, a tiny model of
what must happen, and a full audit of the ledger after every step (TigerBeetle's approach).
Covers payments, escrows (hold, post, void, expiry) and collectibles (issue, gifts under the
KYC, contact and holding-period rules)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, rule

from bank import fx
from bank.audit import audit
from bank.clock import ManualClock
from bank.errors import BankError
from bank.kyc import Submission
from bank.service import Bank, BankConfig, Idem, Principal, Role
from bank.sqlite_store import SQLiteStorage

CURRENCIES = ("MYR", "VND", "KZT")
PLATFORM = Principal(Role.PLATFORM)


class BankModel(RuleBasedStateMachine):
    visitors = Bundle("visitors")
    merchants = Bundle("merchants")
    intents = Bundle("intents")
    escrows = Bundle("escrows")
    items = Bundle("items")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.storage = SQLiteStorage(self.dir / "bank.sqlite3")
        self.clock = ManualClock()
        self.bank = Bank(self.storage, self.clock, BankConfig(welcome_usd=100, holding_period_days=1))
        self.balance: dict[str, int] = {}
        self.currency: dict[str, str] = {}
        self.intent: dict[str, dict] = {}  # id -> {merchant, amount, payer, expires, status}
        self.last_confirm: tuple[Principal, str, Idem, object] | None = None
        self.escrow: dict[str, dict] = {}  # id -> {payer, payee, amount, debit, expires, status}
        self.holder: dict[str, tuple[str, int]] = {}  # serial -> (holder, acquired at)
        self.verified: set[str] = set()
        # In the order they came: the ids are random, so sorting them would order people differently
        # each time hypothesis replays an example (FlakyStrategyDefinition).
        self.contacts: dict[frozenset[str], None] = {}
        self.edition: str | None = None
        self.visitor_ids: list[str] = []
        self.edition_left = 6

    def teardown(self) -> None:
        self.storage.close()
        shutil.rmtree(self.dir)

    @initialize(target=visitors)
    def two_verified_friends(self):  # noqa: ANN201 (hypothesis' multiple)
        """Every run starts with people who may give each other items, so gifts get past the checks."""
        a, b = self.open_visitor("MYR"), self.open_visitor("KZT")
        self.verified_friends(a, b)
        return multiple(a, b)

    @initialize(target=merchants)
    def a_merchant(self) -> str:
        return self.open_merchant("MYR")

    @rule(target=visitors, currency=st.sampled_from(CURRENCIES))
    def open_visitor(self, currency: str) -> str:
        body = self.bank.open_account("v", currency, None).body
        account = body["account"]
        self.balance[account["id"]] = fx.usd_equivalent(100, currency)
        self.currency[account["id"]] = currency
        self.visitor_ids.append(account["id"])
        return account["id"]

    @rule(target=merchants, currency=st.sampled_from(CURRENCIES))
    def open_merchant(self, currency: str) -> str:
        account = self.bank.create_merchant(PLATFORM, "m", currency, None, None).body
        self.balance[account["id"]] = 0
        self.currency[account["id"]] = currency
        self.visitor_ids.append(account["id"])
        return account["id"]

    @rule(target=intents, merchant=merchants, usd=st.integers(1, 60), ttl=st.integers(1, 120),
          payer=st.none() | visitors)
    def create_intent(self, merchant: str, usd: int, ttl: int, payer: str | None) -> str:
        amount = fx.usd_equivalent(usd, self.currency[merchant])
        body = self.bank.create_intent(PLATFORM, merchant_account_id=merchant, amount=amount,
                                       currency=self.currency[merchant], metadata={}, expires_in_seconds=ttl,
                                       payer_account_id=payer, idem=None).body
        self.intent[body["id"]] = {"merchant": merchant, "amount": amount, "payer": payer,
                                   "expires": self.clock.now_ms() + ttl * 1000, "status": "created"}
        return body["id"]

    def _status(self, intent_id: str) -> str:
        i = self.intent[intent_id]
        if i["status"] == "created" and self.clock.now_ms() >= i["expires"]:
            return "expired"
        return i["status"]

    @rule(visitor=visitors, intent_id=intents)
    def confirm(self, visitor: str, intent_id: str) -> None:
        i = self.intent[intent_id]
        q = fx.quote(self.currency[visitor], self.currency[i["merchant"]], i["amount"])
        if i["payer"] not in (None, visitor):
            expected = "not_your_intent"
        elif self._status(intent_id) != "created":
            expected = {"succeeded": "intent_already_succeeded", "canceled": "intent_canceled",
                        "expired": "intent_expired"}[self._status(intent_id)]
        elif self.balance[visitor] < q.debit:
            expected = "insufficient_funds"
        else:
            expected = "succeeded"
        who = Principal(Role.VISITOR, visitor)
        idem = Idem(who.scope, str(uuid.uuid4()), intent_id)
        try:
            reply = self.bank.confirm_intent(who, intent_id, idem)
            got = reply.body["status"]
        except BankError as exc:
            got, reply = exc.code, None
        assert got == expected
        if reply is not None:
            self.balance[visitor] -= q.debit
            self.balance[i["merchant"]] += i["amount"]
            i["status"] = "succeeded"
            self.last_confirm = (who, intent_id, idem, reply)

    @rule()
    def retry_last_confirmation(self) -> None:
        if self.last_confirm:
            who, intent_id, idem, reply = self.last_confirm
            again = self.bank.confirm_intent(who, intent_id, idem)
            assert (again.status, again.body, again.replayed) == (reply.status, reply.body, True)

    @rule(intent_id=intents)
    def cancel(self, intent_id: str) -> None:
        try:
            self.bank.cancel_intent(PLATFORM, intent_id, None)
        except BankError as exc:
            assert self._status(intent_id) != "created" and exc.code.startswith("intent_")
        else:
            assert self._status(intent_id) == "created"
            self.intent[intent_id]["status"] = "canceled"

    @rule(seconds=st.integers(1, 90))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        due = [k for k in self.intent if self.intent[k]["status"] == "created" and self._status(k) == "expired"]
        overdue = [k for k in self.escrow if self._escrow_status(k) == "expired"]
        assert self.bank.expire_due() == len(due) + len(overdue)
        for k in due:
            self.intent[k]["status"] = "expired"
        for k in overdue:
            self.escrow[k]["status"] = "voided"
            self.balance[self.escrow[k]["payer"]] += self.escrow[k]["debit"]

    # -- escrow
    def _escrow_status(self, escrow_id: str) -> str:
        e = self.escrow[escrow_id]
        if e["status"] == "pending" and self.clock.now_ms() >= e["expires"]:
            return "expired"
        return e["status"]

    @rule(target=escrows, visitor=visitors, merchant=merchants, usd=st.integers(1, 70), ttl=st.integers(1, 200))
    def hold(self, visitor: str, merchant: str, usd: int, ttl: int) -> str:
        amount = fx.usd_equivalent(usd, self.currency[merchant])
        q = fx.quote(self.currency[visitor], self.currency[merchant], amount)
        who = Principal(Role.VISITOR, visitor)
        try:
            body = self.bank.create_escrow(who, payee_account_id=merchant, amount=amount,
                                           currency=self.currency[merchant], end_to_end_id="PO", metadata={},
                                           expires_in_seconds=ttl, fx_lock_id=None, idem=None).body
        except BankError as exc:
            assert exc.code == "insufficient_funds" and self.balance[visitor] < q.debit
            return "esc_none"
        assert self.balance[visitor] >= q.debit and body["debit_amount"] == q.debit
        self.balance[visitor] -= q.debit
        self.escrow[body["id"]] = {"payer": visitor, "payee": merchant, "amount": amount, "debit": q.debit,
                                   "expires": self.clock.now_ms() + ttl * 1000, "status": "pending"}
        return body["id"]

    @rule(escrow_id=escrows, post=st.booleans())
    def finish_escrow(self, escrow_id: str, post: bool) -> None:
        if escrow_id == "esc_none":
            return
        e, status = self.escrow[escrow_id], self._escrow_status(escrow_id)
        try:
            (self.bank.post_escrow if post else self.bank.void_escrow)(PLATFORM, escrow_id, None)
        except BankError as exc:
            assert exc.code == {"posted": "escrow_already_posted", "voided": "escrow_voided",
                                "expired": "escrow_expired"}[status]
            return
        assert status == "pending"
        if post:
            self.balance[e["payee"]] += e["amount"]
            e["status"] = "posted"
        else:
            self.balance[e["payer"]] += e["debit"]
            e["status"] = "voided"

    # -- collectibles
    @rule(visitor=visitors)
    def verify(self, visitor: str) -> None:
        self.bank.submit_kyc(Principal(Role.VISITOR, visitor),
                             Submission("Li Wei Chen", "1990-01-01", "CN", "E1234567"), None)
        self.verified.add(visitor)

    @rule(a=visitors, b=visitors)
    def exchange_cards(self, a: str, b: str) -> None:
        if a != b:
            self.bank.add_contact(PLATFORM, a, b, None)
            self.contacts[frozenset((a, b))] = None

    @rule(a=visitors, b=visitors)
    def verified_friends(self, a: str, b: str) -> None:
        """Both checks and the card exchange at once, so gifts reach the holding-period rule."""
        self.verify(a)
        self.verify(b)
        self.exchange_cards(a, b)

    @rule(target=items, merchant=merchants, holder=visitors)
    def issue(self, merchant: str, holder: str) -> str:
        if self.edition is None:
            self.edition = self.bank.create_edition(
                PLATFORM, issuer_account_id=merchant, issuer_kind="exhibitor", kind="attendance", title="visit",
                size=6, price=0, currency=self.currency[merchant], product=None, batch=None, origin=None,
                event="booth", idem=None).body["id"]
        try:
            body = self.bank.issue_item(PLATFORM, self.edition, holder, None, None, None).body
        except BankError as exc:
            assert exc.code == "edition_complete" and self.edition_left == 0
            return "none"
        self.edition_left -= 1
        self.holder[body["serial"]] = (holder, self.clock.now_ms())
        return body["serial"]

    @rule(serial=items, data=st.data())
    def gift(self, serial: str, data: st.DataObject) -> None:
        """Mostly by the holder to one of its contacts, so every rule is reached; sometimes anyone to anyone."""
        if serial == "none":
            return
        holder, since = self.holder[serial]
        people = self.visitor_ids
        friends = list(dict.fromkeys(next(iter(c - {holder})) for c in self.contacts if holder in c))
        giver = holder if data.draw(st.integers(0, 4)) else data.draw(st.sampled_from(people))
        to = data.draw(st.sampled_from(friends)) if friends and data.draw(st.integers(0, 3)) else \
            data.draw(st.sampled_from(people))
        if data.draw(st.integers(0, 2)) == 0:  # the people do what a gift needs first (each step modelled)
            self.verified_friends(giver, to)
            if data.draw(st.integers(0, 2)):
                self.a_day_passes()
        if holder != giver:
            expected = "not_holder"
        elif to == giver:
            expected = "invalid_request"
        elif not {giver, to} <= self.verified:
            expected = "kyc_required"
        elif frozenset((giver, to)) not in self.contacts:
            expected = "not_a_contact"
        elif self.clock.now_ms() < since + 86_400_000:
            expected = "holding_period"
        else:
            expected = "given"
        try:
            self.bank.gift_item(Principal(Role.VISITOR, giver), serial, to, None)
            got = "given"
        except BankError as exc:
            got = exc.code
        assert got == expected
        if got == "given":
            self.holder[serial] = (to, self.clock.now_ms())

    @rule()
    def a_day_passes(self) -> None:
        self.clock.advance(86_400)

    @invariant()
    def ledger_matches_model(self) -> None:
        with self.storage.reading() as tx:
            for account_id, expected in self.balance.items():
                assert tx.account(account_id).balance == expected
            for intent_id, i in self.intent.items():
                assert tx.intent(intent_id).status == i["status"]
            for escrow_id, e in self.escrow.items():
                assert tx.pending(escrow_id).status == e["status"]
            for serial, (holder, _) in self.holder.items():
                assert tx.item(serial).holder_account_id == holder
        report = audit(self.storage)
        assert report.ok, report.problems
        assert report.holders == {serial: holder for serial, (holder, _) in self.holder.items()}


TestBankModel = BankModel.TestCase
TestBankModel.settings = settings(max_examples=30, stateful_step_count=50, deadline=None)
