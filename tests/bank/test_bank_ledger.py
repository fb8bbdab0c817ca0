"""The ledger rules as pure functions, and a model-based test of them (hypothesis state machine)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bank import ledger
from bank.ledger import (
    GENESIS_HASH,
    Account,
    AccountKind,
    Entry,
    InsufficientFunds,
    LedgerBug,
    Posting,
    TransactionKind,
)


def acct(id_: str, kind: AccountKind = AccountKind.VISITOR, currency: str = "MYR", balance: int = 0) -> Account:
    return Account(id_, kind, currency, id_, balance, 0)


FUND = acct("fund", AccountKind.FUNDING)


def book(accounts: dict[str, Account], entries: list[Entry], postings: list[Posting], txn: str = "t") -> None:
    """Apply a transaction to in-memory state, the way storage does."""
    new, updated = ledger.post(transaction_id=txn, kind=TransactionKind.GRANT, postings=postings,
                               accounts=accounts, last=entries[-1] if entries else None, created_at=1)
    entries += new
    accounts.update({a.id: a for a in updated})


def test_post_produces_chained_entries_and_balances() -> None:
    accounts = {"fund": FUND, "a": acct("a")}
    entries: list[Entry] = []
    book(accounts, entries, [Posting("fund", -500), Posting("a", 500)], "t1")
    book(accounts, entries, [Posting("a", -200), Posting("fund", 200)], "t2")
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert accounts["a"].balance == 300 and accounts["fund"].balance == -300
    assert [e.balance_after for e in entries if e.account_id == "a"] == [500, 300]
    assert ledger.audit(accounts.values(), entries).ok


def test_only_the_funding_account_may_go_negative() -> None:
    accounts = {"fund": FUND, "a": acct("a", balance=0), "b": acct("b")}
    with pytest.raises(InsufficientFunds) as err:
        ledger.post(transaction_id="t", kind=TransactionKind.PAYMENT, postings=[Posting("a", -1), Posting("b", 1)],
                    accounts=accounts, last=None, created_at=1)
    assert err.value.account.id == "a" and err.value.needed == 1
    for kind in (AccountKind.FX, AccountKind.FEES, AccountKind.MERCHANT):
        with pytest.raises(InsufficientFunds):
            ledger.post(transaction_id="t", kind=TransactionKind.GRANT,
                        postings=[Posting("x", -1), Posting("b", 1)],
                        accounts={"x": acct("x", kind), "b": acct("b")}, last=None, created_at=1)


@pytest.mark.parametrize("postings, accounts, why", [
    ([Posting("fund", -5), Posting("a", 4)], None, "sum to zero"),
    ([Posting("fund", -5)], None, "at least two"),
    ([Posting("fund", -5), Posting("a", 5), Posting("a", 0)], None, "at most once"),
    ([Posting("fund", -5), Posting("a", 0)], None, "non-zero"),
    ([Posting("fund", -5), Posting("ghost", 5)], None, "unknown account"),
    # sums to zero overall, but MYR and KZT each do not: double entry is per currency
    ([Posting("fund", -5), Posting("k", 5)], {"k": acct("k", currency="KZT")}, "per currency"),
    ([Posting("fund", -(2**63)), Posting("a", 2**63)], None, "out of range"),
])
def test_programming_errors_are_refused(postings, accounts, why) -> None:
    table = {"fund": FUND, "a": acct("a"), **(accounts or {})}
    with pytest.raises(LedgerBug, match=why):
        ledger.post(transaction_id="t", kind=TransactionKind.GRANT, postings=postings, accounts=table,
                    last=None, created_at=1)


def _ledger() -> tuple[dict[str, Account], list[Entry]]:
    accounts = {"fund": FUND, "a": acct("a"), "b": acct("b")}
    entries: list[Entry] = []
    book(accounts, entries, [Posting("fund", -1000), Posting("a", 1000)], "t1")
    book(accounts, entries, [Posting("a", -300), Posting("b", 300)], "t2")
    book(accounts, entries, [Posting("b", -100), Posting("a", 100)], "t3")
    return accounts, entries


def test_audit_passes_a_sound_ledger() -> None:
    accounts, entries = _ledger()
    report = ledger.audit(accounts.values(), entries)
    assert report.ok and report.entries == 6 and report.transactions == 3 and report.totals == {"MYR": 0}


@pytest.mark.parametrize("tamper, expect", [
    (lambda es, ac: es.__setitem__(3, replace(es[3], amount=es[3].amount + 1)), "entry altered"),
    (lambda es, ac: es.__setitem__(3, replace(es[3], amount=999, balance_after=999)), "entry altered"),
    (lambda es, ac: es.pop(2), "missing or reordered"),
    (lambda es, ac: es.insert(0, es.pop(1)), "prev_hash does not match"),
    (lambda es, ac: ac.__setitem__("a", replace(ac["a"], balance=ac["a"].balance + 1)), "stored balance"),
    (lambda es, ac: ac.pop("b"), "unknown account"),
])
def test_audit_finds_tampering(tamper, expect) -> None:
    accounts, entries = _ledger()
    tamper(entries, accounts)
    report = ledger.audit(accounts.values(), entries)
    assert not report.ok
    assert any(expect in p for p in report.problems), report.problems


def test_audit_finds_rehashed_forgery_through_balances() -> None:
    """Re-hashing a forged chain keeps the chain valid, but the money no longer adds up."""
    accounts, entries = _ledger()
    forged: list[Entry] = []
    for e in entries:
        if e.seq == 2:
            e = replace(e, amount=e.amount + 50, balance_after=e.balance_after + 50)
        draft = replace(e, prev_hash=forged[-1].hash if forged else GENESIS_HASH, hash="")
        forged.append(replace(draft, hash=ledger.entry_hash(draft)))
    problems = ledger.audit(accounts.values(), forged).problems
    assert any("does not sum to zero" in p for p in problems)
    assert any("recomputed" in p for p in problems)


def _json_canonical(e: Entry) -> bytes:
    """The chain's canonical encoding as json.dumps made it when the chain began (hashes depend on it)."""
    fields = {"seq": e.seq, "transaction_id": e.transaction_id, "kind": str(e.kind), "account_id": e.account_id,
              "currency": e.currency, "amount": e.amount, "balance_after": e.balance_after, "intent_id": e.intent_id,
              "created_at": e.created_at, "prev_hash": e.prev_hash}
    for optional in ("ref", "uetr", "end_to_end_id"):
        if getattr(e, optional) is not None:
            fields[optional] = getattr(e, optional)
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


#: Text with what JSON must escape (or may not): control characters, DEL, quotes, backslashes,
#: non-ASCII, a lone surrogate, among plain printable ASCII.
TEXT = st.text(st.sampled_from("\x00\x1f\x7f\"\\/é\u2028\ud800\U0001f600") | st.characters(min_codepoint=0x20,
                                                                                    max_codepoint=0x7e),
               max_size=12)


@settings(max_examples=500)
@given(txn=TEXT, account=TEXT, intent=st.none() | TEXT, ref=st.none() | TEXT, uetr=st.none() | TEXT,
       e2e=st.none() | TEXT, amount=st.integers(-ledger.INT64_MAX, ledger.INT64_MAX),
       seq=st.integers(1, ledger.INT64_MAX))
def test_canonical_encoding_is_byte_for_byte_what_json_dumps_made(txn, account, intent, ref, uetr, e2e, amount,
                                                                  seq) -> None:
    """msgspec encodes the common case; any text needing an escape (control characters, quotes,
    backslashes, DEL, non-ASCII, lone surrogates) must still come out exactly as json.dumps wrote it,
    or every later hash of a stored chain would change."""
    e = Entry(seq, txn, TransactionKind.ESCROW_HOLD, account, "MYR", amount, 7, intent, 1_764_000_000_000,
              GENESIS_HASH, "", ref, uetr, e2e)
    assert ledger.canonical_encoding(e) == _json_canonical(e)


CURRENCIES = ("MYR", "KZT")


class LedgerModel(RuleBasedStateMachine):
    """Random grants and transfers against a dict model; the ledger must agree after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.accounts: dict[str, Account] = {f"fund-{c}": acct(f"fund-{c}", AccountKind.FUNDING, c) for c in CURRENCIES}
        self.entries: list[Entry] = []
        self.model: dict[str, int] = {a: 0 for a in self.accounts}
        self.txns = 0

    def _try(self, postings: list[Posting]) -> bool:
        self.txns += 1
        try:
            book(self.accounts, self.entries, postings, f"t{self.txns}")
        except InsufficientFunds:
            return False
        return True

    @rule(currency=st.sampled_from(CURRENCIES))
    def open(self, currency: str) -> None:
        id_ = f"acc-{len(self.accounts)}"
        self.accounts[id_] = acct(id_, AccountKind.VISITOR, currency)
        self.model[id_] = 0

    @precondition(lambda self: len(self.accounts) > 2)
    @rule(data=st.data(), amount=st.integers(1, 10**6))
    def grant(self, data, amount: int) -> None:
        target = data.draw(st.sampled_from([a for a in self.accounts if not a.startswith("fund")]))
        fund = f"fund-{self.accounts[target].currency}"
        assert self._try([Posting(fund, -amount), Posting(target, amount)])
        self.model[fund] -= amount
        self.model[target] += amount

    @precondition(lambda self: len(self.accounts) > 3)
    @rule(data=st.data(), amount=st.integers(1, 10**6))
    def transfer(self, data, amount: int) -> None:
        visitors = [a for a in self.accounts if not a.startswith("fund")]
        src = data.draw(st.sampled_from(visitors))
        same = [a for a in visitors if a != src and self.accounts[a].currency == self.accounts[src].currency]
        if not same:
            return
        dst = data.draw(st.sampled_from(same))
        ok = self._try([Posting(src, -amount), Posting(dst, amount)])
        assert ok == (self.model[src] >= amount)
        if ok:
            self.model[src] -= amount
            self.model[dst] += amount

    @invariant()
    def agrees_with_model(self) -> None:
        assert {a: acc.balance for a, acc in self.accounts.items()} == self.model
        report = ledger.audit(self.accounts.values(), self.entries)
        assert report.ok, report.problems
        assert all(v >= 0 for a, v in self.model.items() if not a.startswith("fund"))


TestLedgerModel = LedgerModel.TestCase
TestLedgerModel.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
