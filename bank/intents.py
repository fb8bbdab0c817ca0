"""Payment intents: the record and its state machine, sans-I/O.

``created -> succeeded | canceled | expired``; the three outcomes are final. Expiry is a
matter of time, not of anyone acting: an intent still ``created`` at or after ``expires_at``
*is* expired (:func:`effective_status`), whether or not the sweeper has written that down yet,
so a confirmation can never race the sweeper into paying an expired intent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType


class IntentStatus(StrEnum):
    CREATED = "created"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self is not IntentStatus.CREATED


@dataclass(frozen=True, slots=True)
class Payment:
    """How an intent was paid: who paid, in what, through which ledger transaction."""

    payer_account_id: str
    transaction_id: str
    debit_amount: int
    debit_currency: str
    fee: int


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    merchant_account_id: str
    amount: int  # minor units of ``currency``, the merchant's currency
    currency: str
    status: IntentStatus
    metadata: Mapping[str, str]
    created_at: int
    updated_at: int
    expires_at: int
    payer_account_id: str | None = None  # if set, only this visitor may pay
    payment: Payment | None = None
    seq: int = field(default=0, compare=False)  # storage order, for listing

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


class IntentStateError(Exception):
    """A transition the state machine does not allow; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def effective_status(intent: Intent, now: int) -> IntentStatus:
    if intent.status is IntentStatus.CREATED and now >= intent.expires_at:
        return IntentStatus.EXPIRED
    return intent.status


def _require_open(intent: Intent, now: int, action: str) -> None:
    status = effective_status(intent, now)
    if status is IntentStatus.CREATED:
        return
    code = {
        IntentStatus.SUCCEEDED: "intent_already_succeeded",
        IntentStatus.CANCELED: "intent_canceled",
        IntentStatus.EXPIRED: "intent_expired",
    }[status]
    raise IntentStateError(code, f"cannot {action} payment intent {intent.id}: it is {status}")


def succeed(intent: Intent, payment: Payment, now: int) -> Intent:
    _require_open(intent, now, "confirm")
    if intent.payer_account_id is not None and intent.payer_account_id != payment.payer_account_id:
        raise IntentStateError("not_your_intent", f"payment intent {intent.id} is for another payer")
    return replace(intent, status=IntentStatus.SUCCEEDED, payment=payment, updated_at=now)


def cancel(intent: Intent, now: int) -> Intent:
    _require_open(intent, now, "cancel")
    return replace(intent, status=IntentStatus.CANCELED, updated_at=now)


def expire(intent: Intent, now: int) -> Intent:
    """Write down an expiry that time has already decided."""
    if effective_status(intent, now) is not IntentStatus.EXPIRED or intent.status is IntentStatus.EXPIRED:
        raise IntentStateError("intent_not_expired", f"payment intent {intent.id} is {intent.status}")
    return replace(intent, status=IntentStatus.EXPIRED, updated_at=now)
