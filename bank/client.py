"""A small typed async client for the bank's HTTP API.

``PlatformClient`` is what the world server uses (merchants and payment intents, with the
platform key); ``VisitorClient`` is what the desktop client and the bots use (their own account,
confirming intents, FX quotes). Every POST carries an ``Idempotency-Key`` (a uuid4 unless you
pass one), and transport errors and 5xx answers are retried with the *same* key, so a retry can
never pay twice. API errors raise :class:`BankAPIError` carrying the bank's error ``code``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from .schemas import (
    AccountOut,
    AccountProofOut,
    ContactListOut,
    ContactOut,
    EditionOut,
    EntryListOut,
    EscrowListOut,
    EscrowOut,
    FxLockOut,
    IntentListOut,
    IntentOut,
    ItemListOut,
    ItemOut,
    OpenedAccountOut,
    QuoteOut,
)

M = TypeVar("M", bound=BaseModel)


class BankAPIError(Exception):
    """The bank said no: ``code`` is the machine-readable reason, e.g. ``insufficient_funds``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.field = field  # the request field at fault, when the bank names one


class BankUnavailable(BankAPIError):
    """The bank could not be reached (or kept failing) after the retries."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "bank_unavailable", message)


class _Client:
    def __init__(
        self,
        base_url: str,
        credential: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)
        self._credential = credential
        self._retries = retries
        self._backoff = backoff

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, model: type[M], *, json: Any = None,
                    params: Any = None, idempotency_key: str | None = None) -> M:
        headers = {}
        if self._credential:
            headers["Authorization"] = f"Bearer {self._credential}"
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = await self._http.request(method, path, json=json, params=params, headers=headers)
            except httpx.TransportError as exc:
                if last:
                    raise BankUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            else:
                if response.status_code < 500 or last:
                    break
            await asyncio.sleep(self._backoff * 2**attempt)
        if response.is_success:
            return model.model_validate(response.json())
        field = None
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
            field = error.get("field") if isinstance(error.get("field"), str) else None
        except (ValueError, KeyError, TypeError, AttributeError):
            code, message = "http_error", response.text[:200]
        if response.status_code >= 500:
            raise BankUnavailable(f"{method} {path}: HTTP {response.status_code}: {message}")
        raise BankAPIError(response.status_code, code, message, field)

    async def quote(self, source: str, target: str, amount: int) -> QuoteOut:
        """What a payer in ``source`` pays for ``amount`` minor units of ``target``."""
        params = {"from": source, "to": target, "amount": amount}
        return await self._call("GET", "/v1/fx/quote", QuoteOut, params=params)

    async def get_item(self, serial: str) -> ItemOut:
        """Public: a collectible by serial, with its edition, holder and provenance in the chain."""
        return await self._call("GET", f"/v1/items/{serial}", ItemOut)

    async def get_edition(self, edition_id: str) -> EditionOut:
        return await self._call("GET", f"/v1/editions/{edition_id}", EditionOut)

    async def items_of(self, account_id: str) -> ItemListOut:
        """The collectibles an account holds, gifts received included (the platform: any
        visitor's or merchant's; a visitor: its own)."""
        return await self._call("GET", f"/v1/accounts/{account_id}/items", ItemListOut)

    async def get_escrow(self, escrow_id: str) -> EscrowOut:
        """The platform, or the payer."""
        return await self._call("GET", f"/v1/escrows/{escrow_id}", EscrowOut)


class PlatformClient(_Client):
    """The world server's side: holds the platform key; cannot move a visitor's money."""

    def __init__(self, base_url: str, platform_key: str, **kwargs: Any) -> None:
        super().__init__(base_url, platform_key, **kwargs)

    async def create_merchant(self, display_name: str, currency: str, reference: str | None = None, *,
                              idempotency_key: str | None = None) -> AccountOut:
        """With ``reference`` (e.g. the exhibitor id) a repeated call returns the same account."""
        body = {"display_name": display_name.strip(), "currency": currency, "reference": reference}
        return await self._call("POST", "/v1/merchant_accounts", AccountOut, json=body, idempotency_key=idempotency_key)

    async def get_account(self, account_id: str) -> AccountOut:
        return await self._call("GET", f"/v1/accounts/{account_id}", AccountOut)

    async def create_intent(self, merchant_account_id: str, amount: int, currency: str, *,
                            metadata: Mapping[str, str] | None = None, expires_in_seconds: int | None = None,
                            payer_account_id: str | None = None, idempotency_key: str | None = None) -> IntentOut:
        body = {
            "merchant_account_id": merchant_account_id, "amount": amount, "currency": currency,
            "metadata": dict(metadata or {}), "expires_in_seconds": expires_in_seconds,
            "payer_account_id": payer_account_id,
        }
        return await self._call("POST", "/v1/payment_intents", IntentOut, json=body, idempotency_key=idempotency_key)

    async def get_intent(self, intent_id: str) -> IntentOut:
        return await self._call("GET", f"/v1/payment_intents/{intent_id}", IntentOut)

    async def cancel_intent(self, intent_id: str, *, idempotency_key: str | None = None) -> IntentOut:
        return await self._call("POST", f"/v1/payment_intents/{intent_id}/cancel", IntentOut,
                                idempotency_key=idempotency_key)

    async def add_contact(self, account_id: str, other_account_id: str, *,
                          idempotency_key: str | None = None) -> ContactOut:
        """Record that two accounts exchanged cards (a collectible may be given only to a contact)."""
        body = {"account_id": account_id, "other_account_id": other_account_id}
        return await self._call("POST", "/v1/contacts", ContactOut, json=body, idempotency_key=idempotency_key)

    async def create_edition(self, issuer_account_id: str, *, issuer_kind: str, kind: str, title: str, size: int,
                             currency: str, price: int = 0, product: str | None = None, batch: str | None = None,
                             origin: str | None = None, event: str | None = None,
                             idempotency_key: str | None = None) -> EditionOut:
        body = {"issuer_account_id": issuer_account_id, "issuer_kind": issuer_kind, "kind": kind, "title": title,
                "size": size, "price": price, "currency": currency, "product": product, "batch": batch,
                "origin": origin, "event": event}
        return await self._call("POST", "/v1/editions", EditionOut, json=body, idempotency_key=idempotency_key)

    async def issue_item(self, edition_id: str, holder_account_id: str, *, order_id: str | None = None,
                         payment_intent_id: str | None = None, idempotency_key: str | None = None) -> ItemOut:
        body = {"holder_account_id": holder_account_id, "order_id": order_id, "payment_intent_id": payment_intent_id}
        return await self._call("POST", f"/v1/editions/{edition_id}/items", ItemOut, json=body,
                                idempotency_key=idempotency_key)

    async def post_escrow(self, escrow_id: str, *, idempotency_key: str | None = None) -> EscrowOut:
        """Shipment confirmed: pay the exhibitor at the locked figures."""
        return await self._call("POST", f"/v1/escrows/{escrow_id}/post", EscrowOut, idempotency_key=idempotency_key)

    async def void_escrow(self, escrow_id: str, *, idempotency_key: str | None = None) -> EscrowOut:
        """Deal canceled: the deposit goes back to the buyer."""
        return await self._call("POST", f"/v1/escrows/{escrow_id}/void", EscrowOut, idempotency_key=idempotency_key)

    async def list_escrows(self, *, status: str | None = None, payee_account_id: str | None = None,
                           page_size: int = 500) -> list[EscrowOut]:
        """Every matching escrow, following the pages (reconciling deals after a restart)."""
        params: dict[str, Any] = {"limit": page_size, "cursor": 0}
        if status:
            params["status"] = status
        if payee_account_id:
            params["payee_account_id"] = payee_account_id
        found: list[EscrowOut] = []
        while True:
            page = await self._call("GET", "/v1/escrows", EscrowListOut, params=params)
            found += page.data
            if not page.has_more:
                return found
            params["cursor"] = page.next_cursor

    async def list_intents(self, *, status: str | None = None, since: dt.datetime | None = None,
                           merchant_account_id: str | None = None, metadata: Mapping[str, str] | None = None,
                           page_size: int = 500) -> list[IntentOut]:
        """Every matching intent, following the pages (for reconciliation after a restart)."""
        params: dict[str, Any] = {"limit": page_size, "cursor": 0}
        if status:
            params["status"] = status
        if since:  # the bank speaks UTC: a naive datetime is taken as UTC
            params["since"] = (since if since.tzinfo else since.replace(tzinfo=dt.UTC)).isoformat()
        if merchant_account_id:
            params["merchant_account_id"] = merchant_account_id
        if metadata:
            params["metadata"] = [f"{k}:{v}" for k, v in metadata.items()]
        found: list[IntentOut] = []
        while True:
            page = await self._call("GET", "/v1/payment_intents", IntentListOut, params=params)
            found += page.data
            if not page.has_more:
                return found
            params["cursor"] = page.next_cursor


class VisitorClient(_Client):
    """A visitor's side: open an account (the token is kept in ``self.token``), read it, pay intents."""

    def __init__(self, base_url: str, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(base_url, token, **kwargs)

    @property
    def token(self) -> str | None:
        return self._credential

    async def open_account(self, display_name: str, currency: str, *,
                           idempotency_key: str | None = None) -> OpenedAccountOut:
        opened = await self._call("POST", "/v1/accounts", OpenedAccountOut,
                                  json={"display_name": display_name.strip(), "currency": currency},
                                  idempotency_key=idempotency_key)
        self._credential = opened.token
        return opened

    async def me(self) -> AccountOut:
        return await self._call("GET", "/v1/accounts/me", AccountOut)

    async def transactions(self, limit: int = 50, before: int | None = None) -> EntryListOut:
        params = {"limit": limit} | ({"before": before} if before else {})
        return await self._call("GET", "/v1/accounts/me/transactions", EntryListOut, params=params)

    async def get_intent(self, intent_id: str) -> IntentOut:
        return await self._call("GET", f"/v1/payment_intents/{intent_id}", IntentOut)

    async def account_proof(self, audience: str) -> AccountProofOut:
        """The bank's proof, for ``audience`` (the visitor id at the expo), that this account is ours."""
        return await self._call("POST", "/v1/accounts/me/proofs", AccountProofOut, json={"audience": audience})

    async def confirm_intent(self, intent_id: str, *, idempotency_key: str | None = None) -> IntentOut:
        """Pay the intent from this account. Safe to retry with the same ``idempotency_key``."""
        return await self._call("POST", f"/v1/payment_intents/{intent_id}/confirm", IntentOut,
                                idempotency_key=idempotency_key)

    async def submit_kyc(self, legal_name: str, date_of_birth: str, country: str, document_number: str, *,
                         idempotency_key: str | None = None) -> AccountOut:
        """The mock real-name check; on success the account is ``verified``."""
        body = {"legal_name": legal_name, "date_of_birth": date_of_birth, "country": country,
                "document_number": document_number}
        return await self._call("POST", "/v1/accounts/me/kyc", AccountOut, json=body, idempotency_key=idempotency_key)

    async def lock_fx(self, to: str, amount: int, *, expires_in_seconds: int | None = None,
                      idempotency_key: str | None = None) -> FxLockOut:
        body = {"to": to, "amount": amount, "expires_in_seconds": expires_in_seconds}
        return await self._call("POST", "/v1/fx/locks", FxLockOut, json=body, idempotency_key=idempotency_key)

    async def create_escrow(self, payee_account_id: str, amount: int, currency: str, end_to_end_id: str, *,
                            expires_in_seconds: int | None = None, fx_lock_id: str | None = None,
                            metadata: Mapping[str, str] | None = None,
                            idempotency_key: str | None = None) -> EscrowOut:
        """A deposit into escrow for a deal: held from this account until the platform posts or voids it."""
        body = {"payee_account_id": payee_account_id, "amount": amount, "currency": currency,
                "end_to_end_id": end_to_end_id, "expires_in_seconds": expires_in_seconds, "fx_lock_id": fx_lock_id,
                "metadata": dict(metadata or {})}
        return await self._call("POST", "/v1/escrows", EscrowOut, json=body, idempotency_key=idempotency_key)

    async def items(self) -> ItemListOut:
        """The collectibles this account holds."""
        return await self._call("GET", "/v1/accounts/me/items", ItemListOut)

    async def contacts(self) -> ContactListOut:
        """The accounts this one exchanged cards with: whom a gift may go to."""
        return await self._call("GET", "/v1/accounts/me/contacts", ContactListOut)

    async def gift_item(self, serial: str, to_account_id: str, *, idempotency_key: str | None = None) -> ItemOut:
        return await self._call("POST", f"/v1/items/{serial}/gift", ItemOut, json={"to_account_id": to_account_id},
                                idempotency_key=idempotency_key)
