"""Pending transfers (escrow), sans-I/O: the record and its state machine.

``pending -> posted | voided``, each final, and each pending transfer reaches exactly one of
them. The hold (phase one) has already moved the payer's money into the bank's escrow account
when the record is made, so neither side can spend it; posting pays the payee at the figures
fixed at the hold (the FX lock), voiding returns the whole debit (fee included) to the payer.
As with intents, expiry is a matter of time: a transfer still ``pending`` at ``expires_at`` can
no longer post, and the sweeper voids it (reason ``expired``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType


class PendingStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


class VoidReason(StrEnum):
    CANCELED = "canceled"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PendingTransfer:
    id: str
    payer_account_id: str
    payee_account_id: str
    amount: int  # what the payee gets on posting, minor units of ``currency`` (the payee's)
    currency: str
    debit_amount: int  # what the hold took from the payer, minor units of ``debit_currency``
    debit_currency: str
    fx_amount: int  # of the debit, what converts at the locked rate; the rest is the fee
    fee: int
    fx_lock_id: str | None
    uetr: str
    end_to_end_id: str
    status: PendingStatus
    created_at: int
    updated_at: int
    expires_at: int
    hold_transaction_id: str
    final_transaction_id: str | None = None
    void_reason: VoidReason | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        assert self.debit_amount == self.fx_amount + self.fee, "the debit is the converted amount plus the fee"
        assert (self.status is PendingStatus.PENDING) == (self.final_transaction_id is None), self
        assert (self.void_reason is not None) == (self.status is PendingStatus.VOIDED), self


class PendingStateError(Exception):
    """A transition the state machine does not allow; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def expired(p: PendingTransfer, now: int) -> bool:
    return p.status is PendingStatus.PENDING and now >= p.expires_at


def _require_pending(p: PendingTransfer, now: int, action: str) -> None:
    if p.status is PendingStatus.POSTED:
        raise PendingStateError("escrow_already_posted", f"cannot {action} escrow {p.id}: it was posted")
    if p.status is PendingStatus.VOIDED:
        raise PendingStateError("escrow_voided", f"cannot {action} escrow {p.id}: it was voided ({p.void_reason})")
    if expired(p, now):
        raise PendingStateError("escrow_expired", f"cannot {action} escrow {p.id}: it expired")


def post(p: PendingTransfer, transaction_id: str, now: int) -> PendingTransfer:
    _require_pending(p, now, "post")
    return replace(p, status=PendingStatus.POSTED, final_transaction_id=transaction_id, updated_at=now)


def void(p: PendingTransfer, transaction_id: str, reason: VoidReason, now: int) -> PendingTransfer:
    if reason is VoidReason.EXPIRED:
        if not expired(p, now):
            raise PendingStateError("escrow_not_expired", f"escrow {p.id} is {p.status}, not expired")
    else:
        _require_pending(p, now, "void")
    return replace(p, status=PendingStatus.VOIDED, final_transaction_id=transaction_id, void_reason=reason,
                   updated_at=now)
