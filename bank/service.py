"""The bank's operations: who may do what, and which records change together.

Every money movement is one ``storage.writing()`` transaction that asks ``bank.ledger`` for
the entries, updates the intent, queues the webhook event in the outbox and keeps the
idempotency record, so a crash leaves either all of it or none. Methods return :class:`Reply`
(status + JSON body) because the body is what an idempotent retry must get back verbatim.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

import msgspec
from babel.numbers import format_currency

from . import account_proofs, collectibles, escrow, fx, idempotency, intents, kyc, ledger
from .clock import Clock, SystemClock, to_datetime
from .collectibles import Edition, EditionKind, IssuerKind, Item, RuleBroken
from .errors import BankError
from .escrow import PendingStateError, PendingStatus, PendingTransfer, VoidReason
from .intents import Intent, IntentStateError, IntentStatus, Payment
from .ledger import Account, AccountKind, Entry, KycLevel, Posting, Remittance, TransactionKind
from .ratelimit import KeyedLimiter, Limit
from .schemas import (
    AccountOut,
    AccountProofOut,
    ContactAccountOut,
    ContactListOut,
    ContactOut,
    EditionOut,
    EntryListOut,
    EntryOut,
    EscrowListOut,
    EscrowOut,
    FxLockOut,
    IntentListOut,
    IntentOut,
    ItemListOut,
    ItemOut,
    OpenedAccountOut,
    PaymentOut,
    ProvenanceOut,
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
    #: ``body`` as the response sends it (:func:`encode`), when the idempotency record already made it.
    encoded: bytes | None = field(default=None, compare=False, repr=False)


_encode = msgspec.json.Encoder().encode


def encode(body: dict) -> bytes:
    """A reply's JSON as Starlette's ``JSONResponse`` writes it (compact, UTF-8 unescaped; msgspec
    makes the same bytes as its ``json.dumps`` in a fifth of the time): encoded once for the
    idempotency record and the response both."""
    return _encode(body)


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
    #: A collectible is held this long before its holder may give it away.
    holding_period_days: int = 180
    fx_lock_ttl_seconds: int = 15 * 60
    escrow_ttl_seconds: int = 30 * 24 * 3600


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
        kyc=str(a.kyc),
    )


def _rate(r: Fraction) -> str:
    return str(Decimal(r.numerator) / r.denominator)


def lock_out(lock: fx.FxLock) -> FxLockOut:
    return FxLockOut(
        id=lock.id, account_id=lock.account_id, source=lock.source, target=lock.target,
        target_amount=lock.target_amount, debit_amount=lock.debit, fx_amount=lock.fx_amount, fee=lock.fee,
        mid_rate=_rate(lock.mid_rate), expires_at=to_datetime(lock.expires_at), used_by=lock.used_by,
    )


def escrow_out(p: PendingTransfer, now: int) -> EscrowOut:
    expired = escrow.expired(p, now)  # shown as what time has decided, like an intent's expiry
    return EscrowOut(
        id=p.id, status="voided" if expired else str(p.status),
        void_reason="expired" if expired else (p.void_reason and str(p.void_reason)),
        payer_account_id=p.payer_account_id, payee_account_id=p.payee_account_id, amount=p.amount,
        currency=p.currency, debit_amount=p.debit_amount, debit_currency=p.debit_currency, fx_amount=p.fx_amount,
        fee=p.fee, fx_lock_id=p.fx_lock_id, uetr=p.uetr, end_to_end_id=p.end_to_end_id,
        hold_transaction_id=p.hold_transaction_id, final_transaction_id=p.final_transaction_id,
        created_at=to_datetime(p.created_at), updated_at=to_datetime(p.updated_at),
        expires_at=to_datetime(p.expires_at), metadata=dict(p.metadata),
    )


def _iso_exact(ms: int) -> str:
    """A time as pydantic's JSON mode writes a UTC datetime (``isoformat`` with ``Z``)."""
    return to_datetime(ms).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    return to_datetime(second * 1000).isoformat().removesuffix("+00:00")


#: Within this many seconds of 1970 ``ms / 1000`` is a double within 0.25 us of the true time, so
#: ``to_datetime`` gives exactly the millisecond; farther out it may not, and ``_iso`` is exact there.
_EXACT_SECONDS = 2**32
#: What follows the second: ``isoformat`` writes microseconds only when there are any.
_FRACTIONS = ["Z"] + [f".{milli:03d}000Z" for milli in range(1, 1000)]


def _iso(ms: int) -> str:
    """``_iso_exact(ms)`` from the second's text, made once per second: a reply has three times,
    and a datetime and its ``isoformat`` each cost about ten times this."""
    second, milli = divmod(ms, 1000)
    if not -_EXACT_SECONDS < second < _EXACT_SECONDS:
        return _iso_exact(ms)
    return _iso_second(second) + _FRACTIONS[milli]


def intent_json(i: Intent, now: int) -> dict:
    """``intent_out(i, now)`` dumped in JSON mode, built directly: the model and its dump were about
    7 % of the bank's CPU on a confirmation (tests compare the two on every state)."""
    p = i.payment
    return {
        "id": i.id, "status": str(intents.effective_status(i, now)), "merchant_account_id": i.merchant_account_id,
        "amount": i.amount, "currency": i.currency, "metadata": dict(i.metadata),
        "payer_account_id": i.payer_account_id, "created_at": _iso(i.created_at),
        "updated_at": _iso(i.updated_at), "expires_at": _iso(i.expires_at),
        "payment": {
            "payer_account_id": p.payer_account_id, "transaction_id": p.transaction_id,
            "debit_amount": p.debit_amount, "debit_currency": p.debit_currency, "fee": p.fee,
        } if p else None,
    }


def escrow_json(p: PendingTransfer, now: int) -> dict:
    """``escrow_out(p, now)`` dumped in JSON mode, built directly (as ``intent_json``)."""
    expired = escrow.expired(p, now)
    return {
        "id": p.id, "status": "voided" if expired else str(p.status),
        "void_reason": "expired" if expired else (str(p.void_reason) if p.void_reason else None),
        "payer_account_id": p.payer_account_id, "payee_account_id": p.payee_account_id, "amount": p.amount,
        "currency": p.currency, "debit_amount": p.debit_amount, "debit_currency": p.debit_currency,
        "fx_amount": p.fx_amount, "fee": p.fee, "fx_lock_id": p.fx_lock_id, "uetr": p.uetr,
        "end_to_end_id": p.end_to_end_id, "hold_transaction_id": p.hold_transaction_id,
        "final_transaction_id": p.final_transaction_id, "created_at": _iso(p.created_at),
        "updated_at": _iso(p.updated_at), "expires_at": _iso(p.expires_at), "metadata": dict(p.metadata),
    }


def edition_out(e: Edition) -> EditionOut:
    return EditionOut(
        id=e.id, issuer_account_id=e.issuer_account_id, issuer_kind=str(e.issuer_kind), kind=str(e.kind),
        title=e.title, size=e.size, issued=e.issued, price=e.price, currency=e.currency, product=e.product,
        batch=e.batch, origin=e.origin, event=e.event, created_at=to_datetime(e.created_at),
    )


def provenance(entries: list[Entry]) -> list[ProvenanceOut]:
    """Each issue or gift of an item, from its entries in the chain (two per move: -1 and +1)."""
    moves = []
    by_txn: dict[str, list[Entry]] = {}
    for e in entries:
        by_txn.setdefault(e.transaction_id, []).append(e)
    for legs in by_txn.values():
        out = next(e for e in legs if e.amount < 0)
        into = next(e for e in legs if e.amount > 0)
        moves.append(ProvenanceOut(seq=into.seq, kind=str(into.kind), from_account_id=out.account_id,
                                   to_account_id=into.account_id, transaction_id=into.transaction_id,
                                   hash=into.hash, created_at=to_datetime(into.created_at)))
    return moves


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
        #: Visitors already authenticated, by token hash: a token never changes owner and is never
        #: revoked, so a known one needs no database read (and no thread hop in the API).
        self._visitors: dict[str, Principal] = {}
        self._setup()

    # -- helpers
    def _new_id(self, prefix: str) -> str:
        return prefix + self._random_bytes(12).hex()

    def _new_uetr(self) -> str:
        return str(uuid.UUID(bytes=self._random_bytes(16), version=4))

    def _post(self, tx: Writer, kind: TransactionKind, postings: list[Posting], now: int,
              intent_id: str | None = None, txn_id: str | None = None, *,
              holdings: Mapping[tuple[str, str], int] | None = None, ref: str | None = None,
              remittance: Remittance | None = None, read: Account | None = None) -> str:
        """Apply one ledger transaction through the rules in ``bank.ledger``; ``read`` is an account
        the caller has just read in this transaction (not read again)."""
        accounts = {p.account_id: read if read is not None and read.id == p.account_id else tx.account(p.account_id)
                    for p in postings}
        txn_id = txn_id or self._new_id("txn_")
        entries, updated = ledger.post(
            transaction_id=txn_id, kind=kind, postings=postings, accounts=accounts,  # type: ignore[arg-type]
            last=tx.last_entry(), created_at=now, intent_id=intent_id, holdings=holdings, ref=ref,
            remittance=remittance,
        )
        tx.append(entries, updated)
        return txn_id

    def _setup(self) -> None:
        """Create the bank's own accounts per currency and give each FX account its float (once)."""
        with self.storage.writing() as tx:
            now = self.clock.now_ms()
            for currency in fx.CURRENCIES:
                for kind in (AccountKind.FUNDING, AccountKind.FX, AccountKind.FEES, AccountKind.ESCROW):
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
        if self.config.webhook_urls:
            self._emit_event(tx, f"payment_intent.{intent.status}", intent_json(intent, now), now)

    def _emit_event(self, tx: Writer, kind: str, obj: dict, now: int) -> None:
        event_id = self._new_id("evt_")
        event = {"id": event_id, "type": kind, "created": now // 1000, "data": {"object": obj}}
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
                    raw = idempotency.unseal(idem.key, record.body)
                    return Reply(record.status, json.loads(raw), True, raw)
            reply = op(tx, now)
            if idem is not None:
                encoded = encode(reply.body)
                sealed = idempotency.seal(idem.key, encoded)
                tx.put_idempotency(IdempotencyRecord(idem.scope, key_hash, idem.fingerprint, reply.status, sealed, now))
                return Reply(reply.status, reply.body, reply.replayed, encoded)
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
    MAX_KNOWN_VISITORS = 100_000

    def known_visitor(self, token: str) -> Principal | None:
        """The visitor of a token this bank has already authenticated, without touching the database."""
        return self._visitors.get(token_hash(token)) if token.startswith(TOKEN_PREFIX) else None

    def authenticate(self, token: str) -> Principal | None:
        """A visitor principal for a valid account token, else None (the platform key is checked by the API).

        Only valid tokens are remembered, so guessing costs a read each and fills no memory."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        digest = token_hash(token)
        if (known := self._visitors.get(digest)) is not None:
            return known
        with self.storage.reading() as tx:
            account = tx.account_by_token(digest)
        if account is None:
            return None
        if len(self._visitors) >= self.MAX_KNOWN_VISITORS:
            self._visitors.clear()
        principal = self._visitors[digest] = Principal(Role.VISITOR, account.id)
        return principal

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

    def account_proof(self, principal: Principal, audience: str, key: bytes) -> dict:
        """A signed statement, for ``audience``, that the caller holds their account (see
        bank.account_proofs); nothing is stored."""
        self._require(principal, Role.VISITOR)
        assert principal.account_id is not None
        expires = self.clock.now_ms() // 1000 + account_proofs.PROOF_TTL_SECONDS
        proof = account_proofs.sign_proof(key, principal.account_id, audience, expires)
        return _json(AccountProofOut(account_id=principal.account_id, audience=audience,
                                     expires_at=to_datetime(expires * 1000), proof=proof))

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
                remittance = Remittance(self._new_uetr(), intent.metadata.get("order_id", intent.id)[:35])
                self._post(tx, TransactionKind.PAYMENT, postings, now, intent_id=intent.id, txn_id=txn_id,
                           remittance=remittance, read=payer)
            except ledger.InsufficientFunds as exc:
                if exc.account.id == payer.id:
                    raise BankError(409, "insufficient_funds",
                                    f"balance {_display(payer.balance, payer.currency)} is less than "
                                    f"{_display(q.debit, payer.currency)}") from None
                raise BankError(409, "fx_unavailable",
                                f"the bank cannot supply {q.target_amount} {q.target} now") from None
            tx.update_intent(paid)
            self._emit(tx, paid, now)
            return Reply(200, intent_json(paid, now))

        return self._idempotent(idem, op)

    def expire_due(self, limit: int = 500) -> int:
        """Write down intents whose time ran out (and queue their events), and void expired escrows
        back to their payers; returns how many."""
        with self.storage.writing() as tx:
            now = self.clock.now_ms()
            due = tx.expirable_intents(now, limit)
            for intent in due:
                expired = intents.expire(intent, now)
                tx.update_intent(expired)
                self._emit(tx, expired, now)
            overdue = tx.expirable_pending(now, limit)
            for pending in overdue:
                self._void(tx, pending, VoidReason.EXPIRED, now)
        return len(due) + len(overdue)

    # -- KYC and contacts
    def submit_kyc(self, principal: Principal, submission: kyc.Submission, idem: Idem | None) -> Reply:
        """The mock real-name check (rules in ``bank.kyc``): ``basic`` becomes ``verified``."""
        self._require(principal, Role.VISITOR)

        def op(tx: Writer, now: int) -> Reply:
            account = tx.account(principal.account_id)  # type: ignore[arg-type]
            assert account is not None
            if account.kyc is not KycLevel.VERIFIED:
                try:
                    kyc.check(submission, to_datetime(now).date())
                except kyc.KycInvalid as exc:
                    raise BankError(400, "kyc_invalid", str(exc), field=exc.field) from None
                except kyc.KycRefused as exc:
                    raise BankError(409, "kyc_refused", str(exc)) from None
                tx.set_kyc(account.id, KycLevel.VERIFIED, now)
            return Reply(200, _json(account_out(tx.account(account.id))))  # type: ignore[arg-type]

        return self._idempotent(idem, op)

    def add_contact(self, principal: Principal, a: str, b: str, idem: Idem | None) -> Reply:
        """The platform records that two accounts exchanged cards (a gift needs it)."""
        self._require(principal, Role.PLATFORM)
        if a == b:
            raise BankError(422, "same_account", "an account is not its own contact")

        def op(tx: Writer, now: int) -> Reply:
            for id_ in (a, b):
                found = tx.account(id_)
                if found is None or found.kind not in (AccountKind.VISITOR, AccountKind.MERCHANT):
                    raise _not_found("account", id_)
            created = tx.add_contact(a, b, now)
            return Reply(201 if created else 200,
                         _json(ContactOut(account_id=a, other_account_id=b, created=created)))

        return self._idempotent(idem, op)

    # -- FX locks and escrow (two-phase pending transfers)
    def create_fx_lock(self, principal: Principal, target: str, amount: int, ttl_seconds: int | None,
                       idem: Idem | None) -> Reply:
        """Hold a quote for the visitor's currency into ``target`` until it expires."""
        self._require(principal, Role.VISITOR)
        target = self._currency(target)
        if not 0 < amount <= ledger.MAX_AMOUNT:
            raise BankError(400, "invalid_amount", f"amount must be 1..{ledger.MAX_AMOUNT} minor units")

        def op(tx: Writer, now: int) -> Reply:
            payer = tx.account(principal.account_id)  # type: ignore[arg-type]
            assert payer is not None
            q = fx.quote(payer.currency, target, amount, self.config.spread)
            ttl = (ttl_seconds or self.config.fx_lock_ttl_seconds) * 1000
            lock = fx.FxLock.from_quote(self._new_id("fxl_"), payer.id, q, now, ttl)
            tx.insert_fx_lock(lock)
            return Reply(201, _json(lock_out(lock)))

        return self._idempotent(idem, op)

    def get_fx_lock(self, principal: Principal, lock_id: str) -> dict:
        with self.storage.reading() as tx:
            lock = tx.fx_lock(lock_id)
        if lock is None or (principal.role is Role.VISITOR and lock.account_id != principal.account_id):
            raise _not_found("fx_lock", lock_id)
        return _json(lock_out(lock))

    def create_escrow(self, principal: Principal, *, payee_account_id: str, amount: int, currency: str,
                      end_to_end_id: str, expires_in_seconds: int | None, fx_lock_id: str | None,
                      metadata: Mapping[str, str], idem: Idem | None) -> Reply:
        """Phase one: the buyer's money moves into escrow, where neither side can spend it."""
        self._require(principal, Role.VISITOR)
        currency = self._currency(currency)
        if not 0 < amount <= ledger.MAX_AMOUNT:
            raise BankError(400, "invalid_amount", f"amount must be 1..{ledger.MAX_AMOUNT} minor units")

        def op(tx: Writer, now: int) -> Reply:
            payer = tx.account(principal.account_id)  # type: ignore[arg-type]
            payee = tx.account(payee_account_id)
            assert payer is not None
            if payee is None or payee.kind is not AccountKind.MERCHANT:
                raise _not_found("merchant_account", payee_account_id)
            if payee.currency != currency:
                raise BankError(400, "currency_mismatch", f"merchant {payee.id} takes {payee.currency}, not {currency}")
            pending_id = self._new_id("esc_")
            if fx_lock_id is not None:
                lock = tx.fx_lock(fx_lock_id)
                if lock is None or lock.account_id != payer.id:
                    raise _not_found("fx_lock", fx_lock_id)
                if lock.used_by is not None:
                    raise BankError(409, "fx_lock_used", f"FX lock {lock.id} was used by {lock.used_by}")
                if now >= lock.expires_at:
                    raise BankError(409, "fx_lock_expired", f"FX lock {lock.id} expired; ask for a new one")
                if (lock.target, lock.target_amount) != (currency, amount):
                    raise BankError(400, "fx_lock_mismatch", f"FX lock {lock.id} is for {lock.target_amount} "
                                                             f"{lock.target}, not {amount} {currency}")
                q = lock.as_quote()
                tx.use_fx_lock(lock.id, pending_id)
            else:  # locked now, at the hold
                q = fx.quote(payer.currency, currency, amount, self.config.spread)
            uetr = self._new_uetr()
            remittance = Remittance(uetr, end_to_end_id)
            escrow_account = internal_account_id(AccountKind.ESCROW, payer.currency)
            try:
                hold = self._post(tx, TransactionKind.ESCROW_HOLD, [Posting(payer.id, -q.debit),
                                  Posting(escrow_account, q.debit)], now, ref=pending_id, remittance=remittance,
                                  read=payer)
            except ledger.InsufficientFunds:
                raise BankError(409, "insufficient_funds", f"balance {_display(payer.balance, payer.currency)} "
                                                           f"is less than {_display(q.debit, payer.currency)}") from None
            ttl = (expires_in_seconds or self.config.escrow_ttl_seconds) * 1000
            pending = PendingTransfer(
                pending_id, payer.id, payee.id, amount, currency, q.debit, payer.currency, q.fx_amount, q.fee,
                fx_lock_id, uetr, end_to_end_id, PendingStatus.PENDING, now, now, now + ttl, hold,
                metadata=metadata,
            )
            tx.insert_pending(pending)
            return Reply(201, escrow_json(pending, now))

        return self._idempotent(idem, op)

    def _readable_escrow(self, tx: Reader, principal: Principal, pending_id: str) -> PendingTransfer:
        pending = tx.pending(pending_id)
        if pending is None or (principal.role is Role.VISITOR and principal.account_id != pending.payer_account_id):
            raise _not_found("escrow", pending_id)
        return pending

    def get_escrow(self, principal: Principal, pending_id: str) -> dict:
        with self.storage.reading() as tx:
            pending = self._readable_escrow(tx, principal, pending_id)
        return _json(escrow_out(pending, self.clock.now_ms()))

    def list_escrows(self, principal: Principal, status: PendingStatus | None, payee_account_id: str | None,
                     cursor: int, limit: int) -> dict:
        """Platform only, for reconciliation after a restart: expiries are voided first, so the list is final."""
        self._require(principal, Role.PLATFORM)
        while self.expire_due():
            pass
        with self.storage.reading() as tx:
            found = tx.pending_page(status and str(status), payee_account_id, cursor, limit + 1)
        page, more = found[:limit], len(found) > limit
        now = self.clock.now_ms()
        return _json(EscrowListOut(data=[escrow_out(p, now) for _, p in page], has_more=more,
                                   next_cursor=page[-1][0] if more else None))

    def _finish(self, tx: Writer, pending: PendingTransfer, change: Callable[[str], PendingTransfer],
                postings: list[Posting], kind: TransactionKind, now: int) -> PendingTransfer:
        """Phase two, once: the state machine first (it refuses a second finish), then the ledger."""
        txn_id = self._new_id("txn_")
        try:
            finished = change(txn_id)
        except PendingStateError as exc:
            raise BankError(409, exc.code, str(exc)) from None
        self._post(tx, kind, postings, now, txn_id=txn_id, ref=pending.id,
                   remittance=Remittance(pending.uetr, pending.end_to_end_id))
        tx.finish_pending(finished)
        return finished

    def _void(self, tx: Writer, pending: PendingTransfer, reason: VoidReason, now: int) -> PendingTransfer:
        held = internal_account_id(AccountKind.ESCROW, pending.debit_currency)
        return self._finish(tx, pending, lambda txn: escrow.void(pending, txn, reason, now),
                            [Posting(held, -pending.debit_amount), Posting(pending.payer_account_id,
                                                                            pending.debit_amount)],
                            TransactionKind.ESCROW_VOID, now)

    def post_escrow(self, principal: Principal, pending_id: str, idem: Idem | None) -> Reply:
        """Platform only, on shipment confirmation: pay the payee at the figures locked at the hold."""
        self._require(principal, Role.PLATFORM)

        def op(tx: Writer, now: int) -> Reply:
            p = self._readable_escrow(tx, principal, pending_id)
            held = internal_account_id(AccountKind.ESCROW, p.debit_currency)
            postings = [Posting(held, -p.debit_amount), Posting(p.payee_account_id, p.amount)]
            if p.debit_currency != p.currency:
                postings += [Posting(internal_account_id(AccountKind.FX, p.debit_currency), p.fx_amount),
                             Posting(internal_account_id(AccountKind.FX, p.currency), -p.amount)]
                if p.fee:
                    postings.append(Posting(internal_account_id(AccountKind.FEES, p.debit_currency), p.fee))
            try:
                posted = self._finish(tx, p, lambda txn: escrow.post(p, txn, now), postings,
                                      TransactionKind.ESCROW_POST, now)
            except ledger.InsufficientFunds:
                raise BankError(409, "fx_unavailable", f"the bank cannot supply {p.amount} {p.currency} now") from None
            return Reply(200, escrow_json(posted, now))

        return self._idempotent(idem, op)

    def void_escrow(self, principal: Principal, pending_id: str, idem: Idem | None) -> Reply:
        """Platform only, when the deal is canceled: the whole debit goes back to the payer."""
        self._require(principal, Role.PLATFORM)

        def op(tx: Writer, now: int) -> Reply:
            p = self._readable_escrow(tx, principal, pending_id)
            return Reply(200, _json(escrow_out(self._void(tx, p, VoidReason.CANCELED, now), now)))

        return self._idempotent(idem, op)

    # -- collectibles
    def create_edition(self, principal: Principal, *, issuer_account_id: str, issuer_kind: str, kind: str,
                       title: str, size: int, price: int, currency: str, product: str | None, batch: str | None,
                       origin: str | None, event: str | None, idem: Idem | None) -> Reply:
        """Platform only, for an exhibitor or the organiser: a fixed-size edition priced in fiat."""
        self._require(principal, Role.PLATFORM)

        def op(tx: Writer, now: int) -> Reply:
            try:
                collectibles.check_edition(
                    issuer=tx.account(issuer_account_id), issuer_kind=IssuerKind(issuer_kind),
                    kind=EditionKind(kind), size=size, price=price, currency=currency, product=product,
                    batch=batch, origin=origin, event=event)
            except RuleBroken as exc:
                raise BankError(exc.status, exc.code, str(exc)) from None
            edition = Edition(self._new_id("ed_"), issuer_account_id, IssuerKind(issuer_kind), EditionKind(kind),
                              title, size, price, currency, product, batch, origin, event, now)
            tx.insert_edition(edition)
            tx.insert_account(Account(edition.mint_account_id, AccountKind.MINT, ledger.NO_CURRENCY,
                                      f"mint of {title}"[:80], 0, now))
            return Reply(201, _json(edition_out(edition)))

        return self._idempotent(idem, op)

    def get_edition(self, edition_id: str) -> dict:
        with self.storage.reading() as tx:
            edition = tx.edition(edition_id)
        if edition is None:
            raise _not_found("edition", edition_id)
        return _json(edition_out(edition))

    def _item_out(self, tx: Reader, item: Item) -> ItemOut:
        edition = tx.edition(item.edition_id)
        assert edition is not None
        return ItemOut(
            serial=item.serial, number=item.number, holder_account_id=item.holder_account_id,
            order_id=item.order_id, issued_at=to_datetime(item.issued_at), acquired_at=to_datetime(item.acquired_at),
            giftable_from=to_datetime(item.acquired_at + self.config.holding_period_days * collectibles.DAY_MS),
            edition=edition_out(edition), provenance=provenance(tx.unit_entries(item.serial)),
        )

    def issue_item(self, principal: Principal, edition_id: str, holder_account_id: str, order_id: str | None,
                   payment_intent_id: str | None, idem: Idem | None) -> Reply:
        """Platform only: the next serial of the edition, from its mint to the holder, in the chain."""
        self._require(principal, Role.PLATFORM)

        def op(tx: Writer, now: int) -> Reply:
            edition = tx.edition(edition_id)
            if edition is None:
                raise _not_found("edition", edition_id)
            holder = tx.account(holder_account_id)
            try:
                number = collectibles.check_issue(edition, holder, order_id)
            except RuleBroken as exc:
                raise BankError(exc.status, exc.code, str(exc)) from None
            if edition.price:
                self._check_paid(tx, edition, holder_account_id, payment_intent_id)
            elif payment_intent_id is not None:
                raise BankError(400, "invalid_request", "a free edition takes no payment intent")
            serial = edition.serial(number)
            item = Item(serial, edition.id, number, holder_account_id, order_id, payment_intent_id, now, now)
            tx.set_issued(edition.id, number)
            tx.insert_item(item)
            self._post(tx, TransactionKind.ISSUE, [Posting(edition.mint_account_id, -1, serial),
                                                   Posting(holder_account_id, 1, serial)],
                       now, ref=edition.id, holdings={})
            return Reply(201, _json(self._item_out(tx, item)))

        return self._idempotent(idem, op)

    @staticmethod
    def _check_paid(tx: Reader, edition: Edition, holder: str, intent_id: str | None) -> None:
        """A priced item is bought from its issuer, in fiat, through a paid intent used once."""
        if intent_id is None:
            raise BankError(400, "payment_required", f"edition {edition.id} costs {_display(edition.price, edition.currency)}:"
                                                     " pass the holder's paid payment_intent_id")
        intent = tx.intent(intent_id)
        if intent is None:
            raise _not_found("payment_intent", intent_id)
        if (intent.status is not IntentStatus.SUCCEEDED or intent.payment is None
                or intent.payment.payer_account_id != holder or intent.merchant_account_id != edition.issuer_account_id
                or (intent.amount, intent.currency) != (edition.price, edition.currency)):
            raise BankError(409, "payment_mismatch", f"intent {intent_id} is not the holder's paid purchase of "
                                                     f"{_display(edition.price, edition.currency)} from the issuer")
        if (used := tx.item_paid_by(intent_id)) is not None:
            raise BankError(409, "payment_already_used", f"intent {intent_id} already bought {used.serial}")

    def get_item(self, serial: str) -> dict:
        """Public: anyone may check an item, its holder and its provenance in the chain."""
        with self.storage.reading() as tx:
            item = tx.item(serial)
            if item is None and (numbered := collectibles.numbered(serial)) is not None:
                # "-1" or "-001" for the "-01" of an edition of 50: a person reads "number 1 of 50"
                edition = tx.edition(numbered[0])
                if edition is not None and 1 <= numbered[1] <= edition.size:
                    item = tx.item(edition.serial(numbered[1]))
            if item is None:
                raise _not_found("item", serial)
            return _json(self._item_out(tx, item))

    def items_of(self, principal: Principal, account_id: str | None = None) -> dict:
        """What an account holds: a visitor its own; the platform any visitor's or merchant's (it
        shows visitors their collection in the expo; an item's holder is public by serial anyway,
        and a visitor's balance stays unreadable to it)."""
        account_id = account_id or principal.account_id
        if account_id is None:
            raise BankError(403, "forbidden", "the platform holds no items of its own")
        if principal.role is Role.VISITOR and account_id != principal.account_id:
            raise BankError(403, "not_your_account", "a visitor can list only their own items")
        with self.storage.reading() as tx:
            account = tx.account(account_id)
            if account is None or account.kind.internal:
                raise _not_found("account", account_id)
            return _json(ItemListOut(data=[self._item_out(tx, i) for i in tx.items_held_by(account_id)]))

    def my_contacts(self, principal: Principal) -> dict:
        """The accounts the visitor exchanged cards with: the only ones a gift may go to."""
        self._require(principal, Role.VISITOR)
        with self.storage.reading() as tx:
            others = [tx.account(id_) for id_ in tx.contacts_of(principal.account_id)]  # type: ignore[arg-type]
        return _json(ContactListOut(data=[ContactAccountOut(account_id=a.id, display_name=a.display_name, kyc=str(a.kyc))
                                          for a in others if a is not None]))

    def gift_item(self, principal: Principal, serial: str, to_account_id: str, idem: Idem | None) -> Reply:
        """The holder gives the item away: after the holding period, to a contact, both verified."""
        self._require(principal, Role.VISITOR)

        def op(tx: Writer, now: int) -> Reply:
            item = tx.item(serial)
            if item is None:
                raise _not_found("item", serial)
            giver = tx.account(principal.account_id)  # type: ignore[arg-type]
            assert giver is not None
            recipient = tx.account(to_account_id)
            try:
                collectibles.check_gift(item, giver, recipient, are_contacts=tx.are_contacts(giver.id, to_account_id),
                                        now=now, holding_period_ms=self.config.holding_period_days * collectibles.DAY_MS)
            except RuleBroken as exc:
                raise BankError(exc.status, exc.code, str(exc)) from None
            tx.move_item(serial, giver.id, to_account_id, now)
            self._post(tx, TransactionKind.GIFT, [Posting(giver.id, -1, serial), Posting(to_account_id, 1, serial)],
                       now, ref=item.edition_id, holdings={(giver.id, serial): 1})
            if self.config.webhook_urls:  # the platform shows both holders their lists at once
                self._emit_event(tx, "item.gifted", {"serial": serial, "edition_id": item.edition_id,
                                                     "from_account_id": giver.id, "to_account_id": to_account_id}, now)
            moved = tx.item(serial)
            assert moved is not None
            return Reply(200, _json(self._item_out(tx, moved)))

        return self._idempotent(idem, op)

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
