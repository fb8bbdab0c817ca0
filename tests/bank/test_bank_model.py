"""Model-based test of the whole bank service on SQLite: random operations, a tiny model of
what must happen, and a full audit of the ledger after every step (TigerBeetle's approach)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from bank import fx
from bank.audit import audit
from bank.clock import ManualClock
from bank.errors import BankError
from bank.service import Bank, BankConfig, Idem, Principal, Role
from bank.sqlite_store import SQLiteStorage

CURRENCIES = ("MYR", "VND", "KZT")
PLATFORM = Principal(Role.PLATFORM)


class BankModel(RuleBasedStateMachine):
    visitors = Bundle("visitors")
    merchants = Bundle("merchants")
    intents = Bundle("intents")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.storage = SQLiteStorage(self.dir / "bank.sqlite3")
        self.clock = ManualClock()
        self.bank = Bank(self.storage, self.clock, BankConfig(welcome_usd=100))
        self.balance: dict[str, int] = {}
        self.currency: dict[str, str] = {}
        self.intent: dict[str, dict] = {}  # id -> {merchant, amount, payer, expires, status}
        self.last_confirm: tuple[Principal, str, Idem, object] | None = None

    def teardown(self) -> None:
        self.storage.close()
        shutil.rmtree(self.dir)

    @rule(target=visitors, currency=st.sampled_from(CURRENCIES))
    def open_visitor(self, currency: str) -> str:
        body = self.bank.open_account("v", currency, None).body
        account = body["account"]
        self.balance[account["id"]] = fx.usd_equivalent(100, currency)
        self.currency[account["id"]] = currency
        return account["id"]

    @rule(target=merchants, currency=st.sampled_from(CURRENCIES))
    def open_merchant(self, currency: str) -> str:
        account = self.bank.create_merchant(PLATFORM, "m", currency, None, None).body
        self.balance[account["id"]] = 0
        self.currency[account["id"]] = currency
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
        assert self.bank.expire_due() == len(due)
        for k in due:
            self.intent[k]["status"] = "expired"

    @invariant()
    def ledger_matches_model(self) -> None:
        with self.storage.reading() as tx:
            for account_id, expected in self.balance.items():
                assert tx.account(account_id).balance == expected
            for intent_id, i in self.intent.items():
                assert tx.intent(intent_id).status == i["status"]
        report = audit(self.storage)
        assert report.ok, report.problems


TestBankModel = BankModel.TestCase
TestBankModel.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
