"""The storage interface: what the bank needs from a database, as Protocols.

The bank's logic (``bank.service``) speaks only to these; ``bank.sqlite_store`` implements them
on SQLite and a PostgreSQL implementation can follow. A :meth:`Storage.writing` block is one
serializable database transaction: everything written in it commits together or not at all,
which is how a money movement, the intent's new state, the webhook outbox row and the
idempotency record stay consistent across crashes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from .intents import Intent, IntentStatus
from .ledger import Account, Entry


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The first successful response to a request, kept so a retry gets it back verbatim.

    ``key_hash`` and ``body`` are derived from the client's key (see ``bank.idempotency``), so
    the database alone can neither find a record by key nor read a stored response.
    """

    scope: str  # who asked, and for what (principal + method + path)
    key_hash: str
    fingerprint: str  # hash of the request parameters
    status: int
    body: bytes
    created_at: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook event waiting in the outbox for one endpoint."""

    id: int
    event_id: str
    url: str
    body: bytes
    attempts: int
    next_attempt_at: int
    created_at: int


@dataclass(frozen=True, slots=True)
class IntentQuery:
    status: IntentStatus | None = None
    updated_since: int | None = None  # ms; intents whose state last changed at or after this
    merchant_account_id: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()  # every pair must match
    after_seq: int = 0  # pagination cursor
    limit: int = 100


class Reader(Protocol):
    def account(self, account_id: str) -> Account | None: ...
    def account_by_token(self, token_hash: str) -> Account | None: ...
    def account_by_reference(self, reference: str) -> Account | None: ...
    def accounts(self) -> Iterator[Account]: ...
    def last_entry(self) -> Entry | None: ...
    def entries(self) -> Iterator[Entry]:
        """Every entry in ``seq`` order."""
        ...
    def account_entries(self, account_id: str, limit: int, before_seq: int | None) -> list[Entry]:
        """An account's entries, newest first."""
        ...
    def entry_count(self) -> int: ...
    def intent(self, intent_id: str) -> Intent | None: ...
    def intents(self, query: IntentQuery) -> list[Intent]: ...
    def all_intents(self) -> Iterator[Intent]: ...
    def expirable_intents(self, now: int, limit: int) -> list[Intent]:
        """Intents still marked ``created`` whose expiry time has passed."""
        ...
    def idempotency(self, scope: str, key_hash: str) -> IdempotencyRecord | None: ...
    def welcome_granted_usd(self) -> int:
        """The expo's welcome grants so far, in USD."""
        ...
    def due_deliveries(self, now: int, limit: int) -> list[Delivery]: ...
    def next_delivery_at(self) -> int | None: ...
    def pending_deliveries(self) -> int: ...


class Writer(Reader, Protocol):
    def insert_account(self, account: Account, token_hash: str | None = None) -> None: ...
    def append(self, entries: Sequence[Entry], accounts: Sequence[Account]) -> None:
        """Write new ledger entries and the balances they produce."""
        ...
    def insert_intent(self, intent: Intent) -> None: ...
    def update_intent(self, intent: Intent) -> None: ...
    def put_idempotency(self, record: IdempotencyRecord) -> None: ...
    def record_welcome(self, account_id: str, usd: int, now: int) -> None: ...
    def enqueue(self, event_id: str, urls: Sequence[str], body: bytes, now: int) -> None: ...
    def delivered(self, delivery_id: int, attempts: int, now: int) -> None: ...
    def reschedule(self, delivery_id: int, attempts: int, next_attempt_at: int, error: str) -> None: ...
    def give_up(self, delivery_id: int, attempts: int, error: str) -> None: ...


class Storage(Protocol):
    def reading(self) -> AbstractContextManager[Reader]:
        """A consistent snapshot for reads."""
        ...

    def writing(self) -> AbstractContextManager[Writer]:
        """One serialized transaction; commits on normal exit, rolls back on an exception."""
        ...

    def close(self) -> None: ...
