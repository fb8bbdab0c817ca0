"""The bank's operations: who may do what, and which records change together.

Every money movement is one ``storage.writing()`` transaction that asks ``bank.ledger`` for
the entries, updates the intent, queues the webhook event in the outbox and keeps the
idempotency record, so a crash leaves either all of it or none. Methods return :class:`Reply`
(status + JSON body) because the body is what an idempotent retry must get back verbatim.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from babel.numbers import format_currency

from . import fx, idempotency, intents, ledger
from .clock import Clock, SystemClock, to_datetime
from .errors import BankError
from .intents import Intent, IntentStateError, IntentStatus, Payment
from .ledger import Account, AccountKind, Entry, Posting, TransactionKind
from .ratelimit import KeyedLimiter, Limit
from .schemas import (
    AccountOut,
    EntryListOut,
    EntryOut,
    IntentListOut,
    IntentOut,
    OpenedAccountOut,
    PaymentOut,
    QuoteOut,
)
from .storage import Delivery, IdempotencyRecord, IntentQuery, Reader, Storage, Writer
from .webhooks import retry_delay

TOKEN_PREFIX = "ebt_"


class Role(StrEnum):
    PLATFORM = "platform"  # the world server: merchants and intents, never a visitor's money
    VISITOR = "visitor"  # one account's holder: pays intents, reads own account


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    account_id: str | None = None  # set for visitors

    @property
    def scope(self) -> str:
        return f"{self.role}:{self.account_id or ''}"


ANONYMOUS_SCOPE = "anonymous:"


@dataclass(frozen=True, slots=True)
class Idem:
    """An idempotent request: who sent it (scope), the client's key, and what it asked for."""

    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class BankConfig:
    welcome_usd: int = 1000  # granted to each new visitor account, in its currency
    fx_float_usd: int = 1_000_000_000  # each FX account's initial liquidity
    intent_ttl_seconds: int = 15 * 60
    spread: Fraction = fx.DEFAULT_SPREAD
    webhook_urls: tuple[str, ...] = ()
    max_delivery_attempts: int = 20
    #: All welcome grants of this expo together, in USD: past it, accounts open with nothing.
    welcome_budget_usd: int = 2_000_000
    #: Anonymous account opening, per client address and overall.
    open_per_address: Limit = Limit(burst=60, per_second=1.0)
    open_overall: Limit = Limit(burst=300, per_second=20.0)


def internal_account_id(kind: AccountKind, currency: str) -> str:
    return f"bank:{kind}:{currency}"


def token_hash(token: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough (no password stretching needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _display(amount: int, currency: str) -> str:
    return format_currency(
        Decimal(amount).scaleb(-fx.minor_units(currency)), currency, format="¤¤ #,##0.00", locale="en"
    )


def account_out(a: Account) -> AccountOut:
    return AccountOut(
        id=a.id, kind=str(a.kind), currency=a.currency, display_name=a.display_name, balance=a.balance,
        balance_display=_display(a.balance, a.currency), created_at=to_datetime(a.created_at), reference=a.reference,
    )


def intent_out(i: Intent, now: int) -> IntentOut:
    p = i.payment
    return IntentOut(
        id=i.id, status=str(intents.effective_status(i, now)), merchant_account_id=i.merchant_account_id,
        amount=i.amount, currency=i.currency, metadata=dict(i.metadata), payer_account_id=i.payer_account_id,
        created_at=to_datetime(i.created_at), updated_at=to_datetime(i.updated_at),
        expires_at=to_datetime(i.expires_at),
        payment=PaymentOut(
            payer_account_id=p.payer_account_id, transaction_id=p.transaction_id, debit_amount=p.debit_amount,
            debit_currency=p.debit_currency, fee=p.fee,
        ) if p else None,
    )


def entry_out(e: Entry) -> EntryOut:
    return EntryOut(
        seq=e.seq, transaction_id=e.transaction_id, kind=str(e.kind), amount=e.amount, currency=e.currency,
        balance_after=e.balance_after, intent_id=e.intent_id, created_at=to_datetime(e.created_at),
    )


def _json(model) -> dict:
    return model.model_dump(mode="json")


def _not_found(what: str, id_: str) -> BankError:
    return BankError(404, f"{what}_not_found", f"no {what.replace('_', ' ')} {id_!r}")


class Bank:
    def __init__(
        self,
        storage: Storage,
        clock: Clock | None = None,
        config: BankConfig | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.storage = storage
        self.clock = clock or SystemClock()
        self.config = config or BankConfig()
        self._random_bytes = random_bytes
        self._jitter = jitter
        self._open_limiter = KeyedLimiter(self.config.open_per_address, self.config.open_overall, self.clock.now_ms())
        self._setup()

    # -- helpers
    def _new_id(self, prefix: str) -> str:
        return prefix + self._random_bytes(12).hex()

    def _post(self, tx: Writer, kind: TransactionKind, postings: list[Posting], now: int,
              intent_id: str | None = None, txn_id: str | None = None) -> str:
        """Apply one ledger transaction through the rules in ``bank.ledger``."""
        accounts = {p.account_id: tx.account(p.account_id) for p in postings}
        txn_id = txn_id or self._new_id("txn_")
        entries, updated = ledger.post(
            transaction_id=txn_id, kind=kind, postings=postings, accounts=accounts,  # type: ignore[arg-type]
            last=tx.last_entry(), created_at=now, intent_id=intent_id,
        )
        tx.append(entries, updated)
        return txn_id

    def _setup(self) -> None:
        """Create the bank's own accounts per currency and give each FX account its float (once)."""
        with self.storage.writing() as tx:
            now = self.clock.now_ms()
            for currency in fx.CURRENCIES:
                for kind in (AccountKind.FUNDING, AccountKind.FX, AccountKind.FEES):
                    id_ = internal_account_id(kind, currency)
                    if tx.account(id_) is None:
                        tx.insert_account(Account(id_, kind, currency, f"bank {kind} {currency}", 0, now))
                        if kind is AccountKind.FX and self.config.fx_float_usd:
                            self._grant(tx, id_, currency, fx.usd_equivalent(self.config.fx_float_usd, currency), now)

    def _grant(self, tx: Writer, account_id: str, currency: str, amount: int, now: int) -> str:
        funding = internal_account_id(AccountKind.FUNDING, currency)
        return self._post(tx, TransactionKind.GRANT, [Posting(funding, -amount), Posting(account_id, amount)], now)

    def _emit(self, tx: Writer, intent: Intent, now: int) -> None:
        """Queue a webhook event for the intent's new state, in the same transaction as the change."""
        if not self.config.webhook_urls:
            return
        event_id = self._new_id("evt_")
        event = {
            "id": event_id,
            "type": f"payment_intent.{intent.status}",
            "created": now // 1000,
            "data": {"object": _json(intent_out(intent, now))},
        }
        body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        tx.enqueue(event_id, self.config.webhook_urls, body, now)

    def _idempotent(self, idem: Idem | None, op: Callable[[Writer, int], Reply]) -> Reply:
        """Run ``op`` in one write transaction, or replay the stored reply for a repeated key.

        Only successful replies are kept: a request that fails changes nothing, not even the key.
        """
        with self.storage.writing() as tx:
            now = self.clock.now_ms()
            if idem is not None:
                key_hash = idempotency.key_hash(idem.key)
                record = tx.idempotency(idem.scope, key_hash)
                if record is not None:
                    if record.fingerprint != idem.fingerprint:
                        raise BankError(422, "idempotency_key_reused",
                                        "this Idempotency-Key was used for a different request; use a new key")
                    body = json.loads(idempotency.unseal(idem.key, record.body))
                    return Reply(record.status, body, replayed=True)
            reply = op(tx, now)
            if idem is not None:
                sealed = idempotency.seal(idem.key, json.dumps(reply.body, separators=(",", ":")).encode())
                tx.put_idempotency(IdempotencyRecord(idem.scope, key_hash, idem.fingerprint, reply.status, sealed, now))
            return reply

    @staticmethod
    def _currency(code: str) -> str:
        try:
            return fx.check_currency(code)
        except fx.UnknownCurrency as exc:
            raise BankError(400, "unknown_currency", str(exc)) from None

    @staticmethod
    def _require(principal: Principal, role: Role) -> None:
        if principal.role is not role:
            raise BankError(403, "forbidden", f"this needs the {role} credential, not a {principal.role} one")

    # -- authentication
    def authenticate(self, token: str) -> Principal | None:
        """A visitor principal for a valid account token, else None (the platform key is checked by the API)."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.storage.reading() as tx:
            account = tx.account_by_token(token_hash(token))
        return Principal(Role.VISITOR, account.id) if account else None

    # -- accounts
    def admit_anonymous(self, client_address: str) -> None:
        """Charge one anonymous account opening to ``client_address``; 429 with the wait if over a limit.

        Called before any database work, so a flood costs the bank a dictionary lookup each.
        """
        refused = self._open_limiter.take(client_address, self.clock.now_ms())
        if refused is not None:
            which, wait = refused
            limit = self.config.open_per_address if which == "address" else self.config.open_overall
            raise BankError(429, "rate_limited",
                            f"too many accounts opened ({which} limit: {limit.burst} at once, "
                            f"{limit.per_second:g}/s); retry in {wait:.1f} s", retry_after=max(1, round(wait + 0.5)))

    def open_account(self, display_name: str, currency: str, idem: Idem | None) -> Reply:
        """A visitor account, its token (shown once), and a welcome balance while the expo's budget lasts."""
        currency = self._currency(currency)

        def op(tx: Writer, now: int) -> Reply:
            token = TOKEN_PREFIX + base64.urlsafe_b64encode(self._random_bytes(32)).decode().rstrip("=")
            account = Account(self._new_id("acct_"), AccountKind.VISITOR, currency, display_name, 0, now)
            tx.insert_account(account, token_hash(token))
            usd = self.config.welcome_usd
            if usd and tx.welcome_granted_usd() + usd <= self.config.welcome_budget_usd:
                self._grant(tx, account.id, currency, fx.usd_equivalent(usd, currency), now)
                tx.record_welcome(account.id, usd, now)
            else:
                usd = 0
            opened = OpenedAccountOut(account=account_out(tx.account(account.id)), token=token,  # type: ignore[arg-type]
                                      welcome_usd=usd)
            return Reply(201, _json(opened))

        return self._idempotent(idem, op)

    def welcome_granted_usd(self) -> int:
        with self.storage.reading() as tx:
            return tx.welcome_granted_usd()

    def create_merchant(self, principal: Principal, display_name: str, currency: str, reference: str | None,
                        idem: Idem | None) -> Reply:
        self._require(principal, Role.PLATFORM)
        currency = self._currency(currency)

        def op(tx: Writer, now: int) -> Reply:
            if reference is not None and (existing := tx.account_by_reference(reference)) is not None:
                if existing.currency != currency or existing.kind is not AccountKind.MERCHANT:
                    raise BankError(409, "reference_conflict",
                                    f"reference {reference!r} is merchant {existing.id} in {existing.currency}")
                return Reply(200, _json(account_out(existing)))
            account = Account(self._new_id("acct_"), AccountKind.MERCHANT, currency, display_name, 0, now, reference)
            tx.insert_account(account)
            return Reply(201, _json(account_out(account)))

        return self._idempotent(idem, op)

    def grant(self, account_id: str, amount: int) -> str:
        """Admin top-up from the funding account (the CLI's ``fund``); returns the transaction id."""
        if not 0 < amount <= ledger.MAX_AMOUNT:
            raise BankError(400, "invalid_amount", f"amount must be 1..{ledger.MAX_AMOUNT}")
        with self.storage.writing() as tx:
            account = tx.account(account_id)
            if account is None or account.kind is AccountKind.FUNDING:
                raise _not_found("account", account_id)
            return self._grant(tx, account_id, account.currency, amount, self.clock.now_ms())

    def get_account(self, principal: Principal, account_id: str | None = None) -> dict:
        """Visitors read only their own account; the platform reads merchant accounts."""
        account_id = account_id or principal.account_id
        if account_id is None:
            raise BankError(403, "forbidden", "the platform has no account of its own")
        with self.storage.reading() as tx:
            account = tx.account(account_id)
        if principal.role is Role.VISITOR and account_id != principal.account_id:
            raise BankError(403, "not_your_account", "a visitor can read only their own account")
        if account is None or account.kind.internal:
            raise _not_found("account", account_id)
        if principal.role is Role.PLATFORM and account.kind is not AccountKind.MERCHANT:
            raise BankError(403, "not_a_merchant_account", "the platform reads merchant accounts only")
        return _json(account_out(account))

    def account_entries(self, principal: Principal, account_id: str | None, limit: int,
                        before: int | None) -> dict:
        self.get_account(principal, account_id)  # the same access rules
        with self.storage.reading() as tx:
            entries = tx.account_entries(account_id or principal.account_id, limit, before)  # type: ignore[arg-type]
        next_before = entries[-1].seq if len(entries) == limit else None
        return _json(EntryListOut(data=[entry_out(e) for e in entries], next_before=next_before))

    # -- FX
    def quote(self, source: str, target: str, target_amount: int) -> dict:
        q = fx.quote(self._currency(source), self._currency(target), target_amount, self.config.spread)
        return _json(QuoteOut(
            source=q.source, target=q.target, target_amount=q.target_amount, debit_amount=q.debit,
            fx_amount=q.fx_amount, fee=q.fee, mid_rate=str(Decimal(q.mid_rate.numerator) / q.mid_rate.denominator),
            spread=str(Decimal(self.config.spread.numerator) / self.config.spread.denominator),
        ))

    # -- payment intents
    def create_intent(self, principal: Principal, *, merchant_account_id: str, amount: int, currency: str,
                      metadata: Mapping[str, str], expires_in_seconds: int | None, payer_account_id: str | None,
                      idem: Idem | None) -> Reply:
        self._require(principal, Role.PLATFORM)
        currency = self._currency(currency)
        if not 0 < amount <= ledger.MAX_AMOUNT:
            raise BankError(400, "invalid_amount", f"amount must be 1..{ledger.MAX_AMOUNT} minor units")
        ttl = expires_in_seconds or self.config.intent_ttl_seconds

        def op(tx: Writer, now: int) -> Reply:
            merchant = tx.account(merchant_account_id)
            if merchant is None or merchant.kind is not AccountKind.MERCHANT:
                raise _not_found("merchant_account", merchant_account_id)
            if merchant.currency != currency:
                raise BankError(400, "currency_mismatch",
                                f"merchant {merchant.id} takes {merchant.currency}, not {currency}")
            if payer_account_id is not None:
                payer = tx.account(payer_account_id)
                if payer is None or payer.kind is not AccountKind.VISITOR:
                    raise _not_found("payer_account", payer_account_id)
            intent = Intent(self._new_id("pi_"), merchant.id, amount, currency, IntentStatus.CREATED,
                            metadata, now, now, now + ttl * 1000, payer_account_id)
            tx.insert_intent(intent)
            return Reply(201, _json(intent_out(intent, now)))

        return self._idempotent(idem, op)

    def _readable_intent(self, tx: Reader, principal: Principal, intent_id: str) -> Intent:
        intent = tx.intent(intent_id)
        if intent is None:
            raise _not_found("payment_intent", intent_id)
        if principal.role is Role.VISITOR and intent.payer_account_id not in (None, principal.account_id):
            raise BankError(403, "not_your_intent", f"payment intent {intent_id} is for another payer")
        return intent

    def get_intent(self, principal: Principal, intent_id: str) -> dict:
        with self.storage.reading() as tx:
            intent = self._readable_intent(tx, principal, intent_id)
        return _json(intent_out(intent, self.clock.now_ms()))

    def list_intents(self, principal: Principal, query: IntentQuery) -> dict:
        """For reconciliation: expiries are written down first, so ``status=expired`` is complete."""
        self._require(principal, Role.PLATFORM)
        while self.expire_due():
            pass
        with self.storage.reading() as tx:
            found = tx.intents(replace(query, limit=query.limit + 1))
        page, more = found[: query.limit], len(found) > query.limit
        now = self.clock.now_ms()
        return _json(IntentListOut(data=[intent_out(i, now) for i in page], has_more=more,
                                   next_cursor=page[-1].seq if more else None))

    def cancel_intent(self, principal: Principal, intent_id: str, idem: Idem | None) -> Reply:
        self._require(principal, Role.PLATFORM)

        def op(tx: Writer, now: int) -> Reply:
            try:
                canceled = intents.cancel(self._readable_intent(tx, principal, intent_id), now)
            except IntentStateError as exc:
                raise BankError(409, exc.code, str(exc)) from None
            tx.update_intent(canceled)
            self._emit(tx, canceled, now)
            return Reply(200, _json(intent_out(canceled, now)))

        return self._idempotent(idem, op)

    def confirm_intent(self, principal: Principal, intent_id: str, idem: Idem | None) -> Reply:
        """Pay an intent from the visitor's account, converting currency through the bank's FX accounts."""
        self._require(principal, Role.VISITOR)

        def op(tx: Writer, now: int) -> Reply:
            intent = self._readable_intent(tx, principal, intent_id)
            payer = tx.account(principal.account_id)  # type: ignore[arg-type]
            assert payer is not None and payer.kind is AccountKind.VISITOR
            q = fx.quote(payer.currency, intent.currency, intent.amount, self.config.spread)
            txn_id = self._new_id("txn_")
            try:
                paid = intents.succeed(intent, Payment(payer.id, txn_id, q.debit, q.source, q.fee), now)
            except IntentStateError as exc:
                raise BankError(403 if exc.code == "not_your_intent" else 409, exc.code, str(exc)) from None
            postings = [Posting(payer.id, -q.debit), Posting(intent.merchant_account_id, intent.amount)]
            if q.is_conversion:
                postings += [
                    Posting(internal_account_id(AccountKind.FX, q.source), q.fx_amount),
                    Posting(internal_account_id(AccountKind.FX, q.target), -q.target_amount),
                ]
                if q.fee:
                    postings.append(Posting(internal_account_id(AccountKind.FEES, q.source), q.fee))
            try:
                self._post(tx, TransactionKind.PAYMENT, postings, now, intent_id=intent.id, txn_id=txn_id)
            except ledger.InsufficientFunds as exc:
                if exc.account.id == payer.id:
                    raise BankError(409, "insufficient_funds",
                                    f"balance {_display(payer.balance, payer.currency)} is less than "
                                    f"{_display(q.debit, payer.currency)}") from None
                raise BankError(409, "fx_unavailable",
                                f"the bank cannot supply {q.target_amount} {q.target} now") from None
            tx.update_intent(paid)
            self._emit(tx, paid, now)
            return Reply(200, _json(intent_out(paid, now)))

        return self._idempotent(idem, op)

    def expire_due(self, limit: int = 500) -> int:
        """Write down intents whose time ran out (and queue their events); returns how many."""
        with self.storage.writing() as tx:
            now = self.clock.now_ms()
            due = tx.expirable_intents(now, limit)
            for intent in due:
                expired = intents.expire(intent, now)
                tx.update_intent(expired)
                self._emit(tx, expired, now)
        return len(due)

    # -- webhook outbox
    def finish_delivery(self, delivery_id: int, attempts_before: int, error: str | None) -> None:
        """Record one delivery attempt: done, retried later with backoff, or given up."""
        with self.storage.writing() as tx:
            now = self.clock.now_ms()
            attempts = attempts_before + 1
            if error is None:
                tx.delivered(delivery_id, attempts, now)
            elif attempts >= self.config.max_delivery_attempts:
                tx.give_up(delivery_id, attempts, error)
            else:
                delay = retry_delay(attempts, self._jitter())
                tx.reschedule(delivery_id, attempts, now + int(delay * 1000), error)

    def due_deliveries(self, limit: int) -> list[Delivery]:
        with self.storage.reading() as tx:
            return tx.due_deliveries(self.clock.now_ms(), limit)

    def pending_deliveries(self) -> int:
        with self.storage.reading() as tx:
            return tx.pending_deliveries()
