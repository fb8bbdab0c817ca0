"""The JSON shapes of the HTTP API, as pydantic models: validated on the way in, documented at
``/docs``, built by the service for responses and webhook payloads, and parsed by ``bank.client``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .fx import CURRENCIES
from .ledger import MAX_AMOUNT

MAX_TTL_SECONDS = 24 * 3600


def _json_integer(value: object) -> object:
    """An integer as JSON Schema means it: ``5`` or ``5.0``, never ``"5"``, ``true`` or ``5.5``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


#: Constraints go before the validator so the schema shows them as JSON Schema keywords.
JSON_INTEGER = BeforeValidator(_json_integer)

Amount = Annotated[int, Field(gt=0, le=MAX_AMOUNT, description="minor units, e.g. cents; 1..10^12"), JSON_INTEGER]
#: The schema lists the served codes; any other is answered 400 ``unknown_currency`` by the bank itself.
CURRENCY_SCHEMA: dict[str, JsonValue] = {"enum": list(CURRENCIES)}
CurrencyCode = Annotated[StrictStr, Field(min_length=3, max_length=3, description="ISO 4217 code the bank serves, e.g. MYR",
                                          json_schema_extra=CURRENCY_SCHEMA)]
#: No whitespace at either end (the schema says what is checked: stripping would let a 90-character
#: value the schema forbids through). Spelled so that every regex engine reads the same set: the
#: bank's (Rust's ``regex`` in pydantic-core, whose ``\s`` has U+0085 but not U+FEFF, and whose ``.``
#: takes a CR) and a client's ECMA-262 one (``\s`` with U+FEFF, not U+0085; ``.`` no line
#: terminator; Python's ``re`` adds U+001C-U+001F): schemathesis found a name starting with U+0085
#: that the schema allowed and the bank refused.
TRIMMED = r"^[^\s\x1c-\x1f\u0085\ufeff](?:[^\n\r\u2028\u2029]*[^\s\x1c-\x1f\u0085\ufeff])?$"
DisplayName = Annotated[StrictStr, StringConstraints(min_length=1, max_length=80, pattern=TRIMMED)]
METADATA_KEY = r"^[A-Za-z0-9_.-]{1,40}$"
MetadataKey = Annotated[str, StringConstraints(pattern=METADATA_KEY)]
MetadataValue = Annotated[StrictStr, StringConstraints(max_length=500)]
#: Written out because generators read patternProperties, not propertyNames.
METADATA_SCHEMA = WithJsonSchema({
    "type": "object", "maxProperties": 20, "additionalProperties": False,
    "patternProperties": {METADATA_KEY: {"type": "string", "maxLength": 500}},
})
AccountId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class OpenAccountRequest(_In):
    display_name: DisplayName
    currency: CurrencyCode


class AccountProofRequest(_In):
    audience: Annotated[StrictStr, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")] = Field(
        description="who the proof is for: the visitor id the world server gave you")


class AccountProofOut(_Out):
    account_id: str
    audience: str
    expires_at: dt.datetime
    proof: str = Field(description="hand this to the audience; it shows them this account is yours")


class CreateMerchantRequest(_In):
    display_name: DisplayName
    currency: CurrencyCode
    reference: Annotated[StrictStr, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, description="the platform's own id for this merchant; creating it again returns the same account"
    )


class CreateIntentRequest(_In):
    merchant_account_id: AccountId
    amount: Amount
    currency: CurrencyCode = Field(description="must be the merchant account's currency")
    metadata: Annotated[dict[MetadataKey, MetadataValue], Field(max_length=20), METADATA_SCHEMA] = Field(
        default_factory=dict, description="e.g. order_id, booth, sku; listable with ?metadata=key:value"
    )
    expires_in_seconds: Annotated[int, Field(ge=1, le=MAX_TTL_SECONDS), JSON_INTEGER] | None = None
    payer_account_id: AccountId | None = Field(None, description="if set, only this visitor may confirm")


class AccountOut(_Out):
    id: str
    kind: str
    currency: str
    display_name: str
    balance: int = Field(description="minor units")
    balance_display: str = Field(description="the balance formatted for people, e.g. 'MYR 4,250.00'")
    created_at: dt.datetime
    reference: str | None = None
    kyc: str = Field("basic", description="basic | verified (after POST /v1/accounts/me/kyc)")


class OpenedAccountOut(_Out):
    account: AccountOut
    token: str = Field(description="the account's bearer token; shown only here, keep it")
    welcome_usd: int = Field(0, description="the welcome grant in USD (converted into the account's currency); "
                                            "0 once the expo's welcome budget is spent")


class EntryOut(_Out):
    seq: int
    transaction_id: str
    kind: str
    amount: int = Field(description="signed minor units: negative is money out")
    currency: str
    balance_after: int
    intent_id: str | None
    created_at: dt.datetime


class EntryListOut(_Out):
    data: list[EntryOut]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")


class PaymentOut(_Out):
    payer_account_id: str
    transaction_id: str
    debit_amount: int
    debit_currency: str
    fee: int


class IntentOut(_Out):
    id: str
    status: str = Field(description="created | succeeded | canceled | expired")
    merchant_account_id: str
    amount: int
    currency: str
    metadata: dict[str, str]
    payer_account_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    expires_at: dt.datetime
    payment: PaymentOut | None


class IntentListOut(_Out):
    data: list[IntentOut]
    has_more: bool
    next_cursor: int | None = Field(description="pass as ?cursor= for the next page")


class QuoteOut(_Out):
    source: str
    target: str
    target_amount: int = Field(description="what the merchant receives, minor units of target")
    debit_amount: int = Field(description="what the payer pays, minor units of source: fx_amount + fee")
    fx_amount: int
    fee: int
    mid_rate: str = Field(description="target minor units per source minor unit, as a decimal string")
    spread: str


class ErrorDetail(_Out):
    code: str
    message: str
    field: str | None = Field(None, description="the request field at fault, when the error is about one "
                                                "(e.g. `date_of_birth` of a `kyc_invalid`)")


class ErrorOut(_Out):
    error: ErrorDetail


class EventOut(_Out):
    """A webhook event; ``data.object`` is the payment intent after the change."""

    id: str
    type: str
    created: int = Field(description="unix seconds")
    data: dict[str, IntentOut]


Text = Annotated[StrictStr, StringConstraints(min_length=1, max_length=200, pattern=TRIMMED)]
Ttl = Annotated[int, Field(ge=1, le=MAX_TTL_SECONDS), JSON_INTEGER]
#: pacs.008's EndToEndIdentification: up to 35 characters of the originator's own reference.
EndToEndId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=35, pattern=r"^[!-~]+$")]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=20), METADATA_SCHEMA]


class KycRequest(_In):
    """The mock real-name check; its rules are in bank/README.md (and bank.kyc)."""

    legal_name: Annotated[StrictStr, StringConstraints(min_length=1, max_length=100)]
    date_of_birth: Annotated[StrictStr, StringConstraints(min_length=1, max_length=10)] = Field(
        description="YYYY-MM-DD")
    country: Annotated[StrictStr, StringConstraints(min_length=2, max_length=2)] = Field(
        description="ISO 3166-1 alpha-2")
    document_number: Annotated[StrictStr, StringConstraints(min_length=1, max_length=20)]


class ContactRequest(_In):
    account_id: AccountId
    other_account_id: AccountId


class ContactOut(_Out):
    account_id: str
    other_account_id: str
    created: bool = Field(description="false if the two had already exchanged cards")


class ContactAccountOut(_Out):
    """A contact as its holder sees it: whom a gift can go to, and whether the bank would take it."""

    account_id: str
    display_name: str
    kyc: str = Field(description="basic | verified: a gift needs both sides verified")


class ContactListOut(_Out):
    data: list[ContactAccountOut]


class FxLockRequest(_In):
    to: CurrencyCode = Field(description="the currency the payee is paid in")
    amount: Amount = Field(description="minor units of `to`")
    expires_in_seconds: Ttl | None = None


class FxLockOut(_Out):
    id: str
    account_id: str
    source: str
    target: str
    target_amount: int
    debit_amount: int = Field(description="what a hold made with this lock takes, minor units of source")
    fx_amount: int
    fee: int
    mid_rate: str
    expires_at: dt.datetime
    used_by: str | None = Field(description="the escrow this lock was spent on")


class EscrowRequest(_In):
    payee_account_id: AccountId = Field(description="the exhibitor's merchant account")
    amount: Amount = Field(description="what the payee gets on posting, minor units of its currency")
    currency: CurrencyCode = Field(description="must be the payee's currency")
    end_to_end_id: EndToEndId = Field(description="your reference for the deal, e.g. the purchase order number")
    expires_in_seconds: Annotated[int, Field(ge=1, le=90 * 24 * 3600), JSON_INTEGER] | None = Field(
        None, description="voided back to you if not posted by then (default 30 days)")
    fx_lock_id: AccountId | None = Field(None, description="an unexpired FX lock of yours for this amount and currency")
    metadata: Metadata = Field(default_factory=dict)


class EscrowOut(_Out):
    id: str
    status: str = Field(description="pending | posted | voided")
    void_reason: str | None = Field(description="canceled | expired")
    payer_account_id: str
    payee_account_id: str
    amount: int
    currency: str
    debit_amount: int
    debit_currency: str
    fx_amount: int
    fee: int
    fx_lock_id: str | None
    uetr: str = Field(description="ISO 20022 UETR (a UUIDv4), on every ledger entry of this escrow")
    end_to_end_id: str
    hold_transaction_id: str
    final_transaction_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    expires_at: dt.datetime
    metadata: dict[str, str]


class EscrowListOut(_Out):
    data: list[EscrowOut]
    has_more: bool
    next_cursor: int | None = Field(description="pass as ?cursor= for the next page")


MAX_EDITION_SIZE = 100_000  # items in one edition


class EditionRequest(_In):
    issuer_account_id: AccountId = Field(description="the exhibitor's (or the organiser's) merchant account")
    issuer_kind: Literal["exhibitor", "organiser"]
    kind: Literal["certificate", "attendance"]
    title: Text
    size: Annotated[int, Field(ge=1, le=MAX_EDITION_SIZE), JSON_INTEGER] = Field(description="fixed: no more items, ever")
    price: Annotated[int, Field(ge=0, le=MAX_AMOUNT), JSON_INTEGER] = Field(
        0, description="minor units of currency; 0 when it comes with the purchase or the visit")
    currency: Annotated[StrictStr, StringConstraints(min_length=1, max_length=12)] = Field(
        description="a fiat ISO 4217 code the bank serves, the issuer's currency (anything else: not_fiat_currency)",
        json_schema_extra=CURRENCY_SCHEMA)
    product: Text | None = None
    batch: Text | None = None
    origin: Text | None = Field(None, description="where the product comes from")
    event: Text | None = Field(None, description="attendance tokens: the booth visit or the talk")


class EditionOut(_Out):
    id: str
    issuer_account_id: str
    issuer_kind: str
    kind: str
    title: str
    size: int
    issued: int
    price: int
    currency: str
    product: str | None
    batch: str | None
    origin: str | None
    event: str | None
    created_at: dt.datetime


class IssueRequest(_In):
    holder_account_id: AccountId
    order_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, description="certificates: the order of the product it certifies")
    payment_intent_id: AccountId | None = Field(None, description="priced editions: the holder's paid intent")


#: Fields that would make a gift a sale or a share; refused with the rule's own code.
SALE_FIELDS = frozenset({"price", "amount", "currency", "payment_intent_id", "consideration"})
FRACTION_FIELDS = frozenset({"quantity", "fraction", "share", "shares", "percent"})


class GiftRequest(_In):
    """Only the recipient: a gift has no price and moves the whole item."""

    to_account_id: AccountId

    @model_validator(mode="before")
    @classmethod
    def _no_sale_no_split(cls, data: object) -> object:
        if isinstance(data, dict):
            if SALE_FIELDS & data.keys():
                raise PydanticCustomError("secondary_sale_forbidden",
                                          "collectibles are never sold on: a gift carries no price")
            if FRACTION_FIELDS & data.keys():
                raise PydanticCustomError("fractional_forbidden",
                                          "collectibles are never split: a gift moves the whole item")
        return data


class ProvenanceOut(_Out):
    seq: int
    kind: str = Field(description="issue | gift")
    from_account_id: str
    to_account_id: str
    transaction_id: str
    hash: str = Field(description="the receiving entry's hash in the bank's chain")
    created_at: dt.datetime


class ItemOut(_Out):
    serial: str
    number: int
    holder_account_id: str
    order_id: str | None
    issued_at: dt.datetime
    acquired_at: dt.datetime
    giftable_from: dt.datetime = Field(description="when the holding period ends")
    edition: EditionOut
    provenance: list[ProvenanceOut]


class ItemListOut(_Out):
    data: list[ItemOut]
