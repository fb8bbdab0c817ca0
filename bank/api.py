"""The HTTP JSON API (FastAPI): a thin shell that authenticates, validates and calls ``bank.service``.

Auth: ``Authorization: Bearer <credential>``, where the credential is either the platform key
(the world server) or a visitor's account token. Every POST needs an ``Idempotency-Key``.
Errors are always ``{"error": {"code": ..., "message": ...}}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
import httpx
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from . import account_proofs, idempotency
from .bodylimit import DEFAULT_MAX_BODY, ASGIApp, BodyLimit, Message, Receive, Scope, Send
from .clock import from_datetime
from .delivery import Deliverer
from .errors import BankError
from .escrow import PendingStatus
from .group_commit import BatchFailed
from .hotpath import HotPath, HotRoute, hot_route
from .intents import IntentStatus
from .kyc import Submission
from .ledger import INT64_MAX, MAX_AMOUNT
from .schemas import (
    CURRENCY_SCHEMA,
    AccountOut,
    AccountProofOut,
    AccountProofRequest,
    ContactListOut,
    ContactOut,
    ContactRequest,
    CreateIntentRequest,
    CreateMerchantRequest,
    EditionOut,
    EditionRequest,
    EntryListOut,
    ErrorOut,
    EscrowListOut,
    EscrowOut,
    EscrowRequest,
    FxLockOut,
    FxLockRequest,
    GiftRequest,
    IntentListOut,
    IntentOut,
    IssueRequest,
    ItemListOut,
    ItemOut,
    KycRequest,
    OpenAccountRequest,
    OpenedAccountOut,
    QuoteOut,
)
from .service import ANONYMOUS_SCOPE, Bank, Idem, Principal, Reply, Role
from .storage import IntentQuery, StorageUnavailable

log = logging.getLogger("bank.api")
T = TypeVar("T")

#: Every status the bank answers with besides success, documented on every operation: schemathesis
#: (tests/bank/test_bank_openapi.py) checks that no other status comes back.
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "invalid request (code says which rule)"},
    401: {"model": ErrorOut, "description": "no or an unknown credential"},
    403: {"model": ErrorOut, "description": "the credential may not do this"},
    404: {"model": ErrorOut, "description": "no such object"},
    405: {"model": ErrorOut, "description": "method not allowed on this path",
          "headers": {"Allow": {"description": "the methods this path takes", "schema": {"type": "string"}}}},
    409: {"model": ErrorOut, "description": "the object's state forbids it (e.g. insufficient_funds)"},
    413: {"model": ErrorOut, "description": "request body over the limit (body_too_large)"},
    422: {"model": ErrorOut, "description": "Idempotency-Key reused for a different request; same_account"},
    429: {"model": ErrorOut, "description": "rate limited; retry after Retry-After seconds",
          "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}},
}
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key", "in": "header", "required": True,
    "description": "required on every POST: a retry with the same key gets the first answer back (e.g. a UUID)",
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH, "pattern": "^[!-~]+$"},
}
RULE_ERRORS = frozenset({"secondary_sale_forbidden", "fractional_forbidden"})
METADATA_FILTER = r"^[A-Za-z0-9_.-]{1,40}:.{0,500}$"


_bearer = HTTPBearer(auto_error=False, description="the platform key, or a visitor's account token")


def _since(text: str | None) -> int | None:
    """An RFC 3339 date-time (what the schema's ``format: date-time`` means), as ms; 400 otherwise."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        value = None
    if value is None or "T" not in text.upper() or value.tzinfo is None:
        raise BankError(400, "invalid_request", f"since: {text!r} is not an ISO 8601 date-time with a zone, "
                                                "e.g. 2025-06-01T00:00:00Z")
    return from_datetime(value)


async def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise BankError(401, "unauthenticated", "send Authorization: Bearer <platform key or account token>")
    secret = credentials.credentials
    if hmac.compare_digest(hashlib.sha256(secret.encode()).digest(), request.app.state.platform_digest):
        return Principal(Role.PLATFORM)
    bank = request.app.state.bank
    found = bank.known_visitor(secret) or await anyio.to_thread.run_sync(bank.authenticate, secret)
    if found is None:
        raise BankError(401, "invalid_token", "the credential is not a valid platform key or account token")
    return found


async def _idempotency_key(key: Annotated[str | None, Header(alias="Idempotency-Key", include_in_schema=False)] = None
                           ) -> str:
    """Checked here, not by FastAPI, to answer ``idempotency_key_missing``; declared required in the
    OpenAPI document by :func:`_document_idempotency` (the bank enforces it)."""
    if key is None:
        raise BankError(400, "idempotency_key_missing", "every POST needs an Idempotency-Key header (e.g. a UUID)")
    if not idempotency.valid_key(key):
        raise BankError(400, "idempotency_key_invalid", "Idempotency-Key must be 1-255 printable ASCII characters")
    return key


Who = Annotated[Principal, Depends(_principal)]
Key = Annotated[str, Depends(_idempotency_key)]


class _Encoded(JSONResponse):
    """A JSON response whose content may be the body already encoded (a reply's, made once for
    its idempotency record and the response both)."""

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else super().render(content)


class _BankApp(FastAPI):
    """FastAPI behind the bank's own front for HTTP: request metrics, the body limit and the hot
    path come first, so the hot path's requests skip FastAPI's and Starlette's own layers (about a
    tenth of a confirmation's CPU); every other request goes on through all of them."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None and scope["type"] == "http":
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request through FastAPI's whole stack (its middleware, exception handlers, routes)."""
        await super().__call__(scope, receive, send)


class _Metrics:
    def __init__(self, bank: Bank, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter("bank_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
        self.latency = Histogram("bank_http_request_seconds", "HTTP request latency", ["route"], registry=registry)
        self.errors = Counter("bank_errors", "API errors by code", ["code"], registry=registry)
        self.payments = Counter("bank_payments", "confirmed payment intents", ["currency"], registry=registry)
        self.volume = Counter("bank_payment_volume_minor", "paid to merchants, minor units", ["currency"],
                              registry=registry)
        self.replays = Counter("bank_idempotent_replays", "requests answered from an idempotency record",
                               registry=registry)
        pending = Gauge("bank_webhook_outbox_pending", "webhook deliveries not yet done", registry=registry)
        pending.set_function(bank.pending_deliveries)


class _Counted:
    """Requests by route and status, and their latency: plain ASGI (a BaseHTTPMiddleware costs a
    task and two memory streams per request, a measurable share of a confirmation)."""

    def __init__(self, app: ASGIApp, metrics: _Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def create_app(
    bank: Bank,
    platform_key: str,
    *,
    webhook_secret: str | None = None,
    http_client: httpx.AsyncClient | None = None,
    background: bool = True,
    sweep_interval: float = 1.0,
    registry: CollectorRegistry | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """Build the app. With ``background``, the lifespan runs the expiry sweeper and the webhook worker.

    Every request body is limited to ``max_body_bytes`` (413 ``body_too_large``) before it is read.
    """
    if not platform_key:
        raise ValueError("a platform key is required")
    if bank.config.webhook_urls and not webhook_secret:
        raise ValueError("webhook URLs need a webhook secret to sign with")
    platform_digest = hashlib.sha256(platform_key.encode()).digest()
    proof_key = account_proofs.proof_key(platform_key)
    metrics = _Metrics(bank, registry or CollectorRegistry())
    own_client = http_client is None
    client = http_client or httpx.AsyncClient()
    deliverer = Deliverer(bank, webhook_secret, client) if webhook_secret else None

    async def sweeper() -> None:
        while True:
            try:
                if await anyio.to_thread.run_sync(bank.expire_due) and deliverer:
                    deliverer.wake()
            except Exception:
                log.exception("expiry sweep failed")
            await asyncio.sleep(sweep_interval)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if background:
            tasks.append(asyncio.create_task(sweeper(), name="bank-expiry-sweeper"))
            if deliverer:
                tasks.append(asyncio.create_task(deliverer.run(), name="bank-webhook-deliverer"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if own_client:
                await client.aclose()

    app = _BankApp(
        title="Silk Road Expo bank",
        version="1",
        description="A mock digital bank: accounts in partner currencies, FX, payment intents, a hash-chained "
                    "double-entry ledger. Money amounts are integers in the currency's minor units.",
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.bank = bank
    app.state.platform_digest = platform_digest
    app.state.deliverer = deliverer
    app.state.metrics = metrics

    # -- errors: one JSON shape, never a 500 for bad input
    def error_response(exc: BankError, headers: dict[str, str] | None = None) -> JSONResponse:
        metrics.errors.labels(exc.code).inc()
        headers = dict(headers or {})
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers or None)

    def unavailable(method: str, path: str, exc: Exception) -> JSONResponse:
        """The database dropped out (a PostgreSQL restart): nothing of the request happened."""
        log.warning("database unavailable for %s %s: %s", method, path, exc)
        return error_response(BankError(503, "storage_unavailable", "the bank's database is unavailable right now; "
                                                                    "retry with the same Idempotency-Key", retry_after=1))

    @app.exception_handler(BankError)
    async def bank_error(request: Request, exc: BankError, headers: dict[str, str] | None = None) -> JSONResponse:
        return error_response(exc, headers)

    @app.exception_handler(StorageUnavailable)
    @app.exception_handler(BatchFailed)
    async def storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
        return unavailable(request.method, request.url.path, exc)

    def hot_error(exc: Exception, path: str) -> JSONResponse | None:
        """What the handlers above answer, for a request of the hot path (None: not theirs)."""
        if isinstance(exc, BankError):
            return error_response(exc)
        if isinstance(exc, StorageUnavailable | BatchFailed):
            return unavailable("POST", path, exc)
        return None

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        for e in errors:  # a rule of the collectibles, refused with its own code
            if e["type"] in RULE_ERRORS:
                return await bank_error(request, BankError(403, e["type"], e["msg"]))
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        at = tuple(errors[0]["loc"]) if errors else ()
        field = at[1] if len(at) == 2 and at[0] == "body" and isinstance(at[1], str) else None  # a top-level field
        return await bank_error(request, BankError(400, "invalid_request", problems or "invalid request", field=field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only those of the route that matched
            headers["Allow"] = ", ".join(sorted(_allowed_methods(app, request)))
        return await bank_error(request, BankError(exc.status_code, code, str(exc.detail)), headers)

    hot_routes: list[HotRoute] = []  # filled below, once the routes exist (the stack is built at the first request)
    app.front = _Counted(BodyLimit(HotPath(app.framework, routes=hot_routes, platform_digest=platform_digest,
                                           known_visitor=bank.known_visitor, submit=bank.storage.group.submit,
                                           replayed=metrics.replays.inc, error=hot_error),
                                   max_bytes=max_body_bytes), metrics)

    def idem(scope: str, key: str, request: Request, params: Any = None) -> Idem:
        return Idem(scope, key, idempotency.fingerprint(request.method, request.url.path, params))

    async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    def respond(reply: Reply) -> JSONResponse:
        if reply.replayed:
            metrics.replays.inc()
        headers = {"Idempotent-Replayed": "true"} if reply.replayed else None
        return _Encoded(reply.encoded if reply.encoded is not None else reply.body, status_code=reply.status,
                        headers=headers)

    def escrow_hold(who: Principal, _: str, key: Idem, body: EscrowRequest) -> Reply:
        """The escrow route's call of the service (the hot path makes the same)."""
        return bank.create_escrow(
            who, payee_account_id=body.payee_account_id, amount=body.amount, currency=body.currency,
            end_to_end_id=body.end_to_end_id, expires_in_seconds=body.expires_in_seconds, fx_lock_id=body.fx_lock_id,
            metadata=body.metadata, idem=key)

    # -- routes
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, Any]:
        pending = bank.pending_deliveries()  # touches the database
        return {"status": "ok", "webhook_outbox_pending": pending}

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/accounts", status_code=201, response_model=OpenedAccountOut, tags=["accounts"])
    async def open_account(body: OpenAccountRequest, request: Request, key: Key) -> JSONResponse:
        """Open a visitor account (no credential needed). The token in the response is shown only once.

        Rate-limited per client address and overall (429 ``rate_limited`` with ``Retry-After``); the
        welcome grant stops when the expo's welcome budget is spent (``welcome_usd`` is then 0).
        """
        bank.admit_anonymous(request.client.host if request.client else "unknown")
        return respond(await call(bank.open_account, body.display_name, body.currency,
                                  idem(ANONYMOUS_SCOPE, key, request, body.model_dump(mode="json"))))

    @app.get("/v1/accounts/me", response_model=AccountOut, tags=["accounts"])
    async def me(who: Who) -> JSONResponse:
        return JSONResponse(await call(bank.get_account, who))

    @app.get("/v1/accounts/me/transactions", response_model=EntryListOut, tags=["accounts"])
    async def my_entries(who: Who, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                         before: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None) -> JSONResponse:
        """Your ledger entries, newest first; page with ``before``."""
        return JSONResponse(await call(bank.account_entries, who, None, limit, before))

    @app.post("/v1/accounts/me/proofs", response_model=AccountProofOut, tags=["accounts"])
    async def account_proof(body: AccountProofRequest, who: Who) -> JSONResponse:
        """A proof, for ``audience`` (your visitor id at the expo), that this account is yours:
        the expo then takes payment for your orders from this account only. Valid 5 minutes;
        nothing changes at the bank, so no Idempotency-Key is needed."""
        return JSONResponse(bank.account_proof(who, body.audience, proof_key))

    @app.get("/v1/accounts/{account_id}", response_model=AccountOut, tags=["accounts"])
    async def account(account_id: str, who: Who) -> JSONResponse:
        """The platform reads merchant accounts; a visitor only their own."""
        return JSONResponse(await call(bank.get_account, who, account_id))

    @app.get("/v1/accounts/{account_id}/transactions", response_model=EntryListOut, tags=["accounts"])
    async def account_entries(account_id: str, who: Who, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                              before: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None) -> JSONResponse:
        return JSONResponse(await call(bank.account_entries, who, account_id, limit, before))

    @app.post("/v1/merchant_accounts", status_code=201, response_model=AccountOut, tags=["accounts"],
              responses={200: {"model": AccountOut, "description": "a merchant with this reference exists: it"}})
    async def create_merchant(body: CreateMerchantRequest, request: Request, who: Who, key: Key) -> JSONResponse:
        """Platform only. With ``reference``, creating the same merchant again returns it (200)."""
        return respond(await call(bank.create_merchant, who, body.display_name, body.currency, body.reference,
                                  idem(who.scope, key, request, body.model_dump(mode="json"))))

    @app.get("/v1/fx/quote", response_model=QuoteOut, tags=["fx"])
    async def quote(source: Annotated[str, Query(alias="from", min_length=3, max_length=3,
                                                 json_schema_extra=CURRENCY_SCHEMA)],
                    target: Annotated[str, Query(alias="to", min_length=3, max_length=3,
                                                 json_schema_extra=CURRENCY_SCHEMA)],
                    amount: Annotated[int, Query(gt=0, le=MAX_AMOUNT, description="minor units of `to`")]
                    ) -> JSONResponse:
        """What a payer in ``from`` pays for ``amount`` of ``to`` (the spread is the fee, rounding favours the bank)."""
        return JSONResponse(bank.quote(source, target, amount))

    @app.post("/v1/payment_intents", status_code=201, response_model=IntentOut, tags=["payment intents"])
    async def create_intent(body: CreateIntentRequest, request: Request, who: Who, key: Key) -> JSONResponse:
        """Platform only: ask a visitor to pay a merchant ``amount`` in the merchant's currency."""
        return respond(await call(
            bank.create_intent, who, merchant_account_id=body.merchant_account_id, amount=body.amount,
            currency=body.currency, metadata=body.metadata, expires_in_seconds=body.expires_in_seconds,
            payer_account_id=body.payer_account_id, idem=idem(who.scope, key, request, body.model_dump(mode="json")),
        ))

    @app.get("/v1/payment_intents", response_model=IntentListOut, tags=["payment intents"])
    async def list_intents(
        who: Who,
        status: IntentStatus | None = None,
        since: Annotated[str | None, Query(description="state changed at or after (ISO 8601 date-time)",
                                           json_schema_extra={"format": "date-time"})] = None,
        merchant_account_id: str | None = None,
        metadata: Annotated[list[Annotated[str, StringConstraints(pattern=METADATA_FILTER)]],
                            Query(description="key:value, repeatable; all must match")] = [],  # noqa: B006
        cursor: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        """Platform only, for reconciliation, e.g. ``?status=succeeded&since=2025-06-01T00:00:00Z``."""
        pairs = []
        for item in metadata:
            k, sep, v = item.partition(":")
            if not sep or not k:
                raise BankError(400, "invalid_request", f"metadata filter {item!r} must look like key:value")
            pairs.append((k, v))
        query = IntentQuery(status, _since(since), merchant_account_id, tuple(pairs),
                            cursor, limit)
        return JSONResponse(await call(bank.list_intents, who, query))

    @app.get("/v1/payment_intents/{intent_id}", response_model=IntentOut, tags=["payment intents"])
    async def get_intent(intent_id: str, who: Who) -> JSONResponse:
        return JSONResponse(await call(bank.get_intent, who, intent_id))

    @app.post("/v1/payment_intents/{intent_id}/cancel", response_model=IntentOut, tags=["payment intents"])
    async def cancel_intent(intent_id: str, request: Request, who: Who, key: Key) -> JSONResponse:
        """Platform only; only a ``created`` intent can be canceled."""
        reply = await call(bank.cancel_intent, who, intent_id, idem(who.scope, key, request))
        if deliverer and not reply.replayed:
            deliverer.wake()
        return respond(reply)

    @app.post("/v1/payment_intents/{intent_id}/confirm", response_model=IntentOut, tags=["payment intents"])
    async def confirm_intent(intent_id: str, request: Request, who: Who, key: Key) -> JSONResponse:
        """Visitor only: pay the intent from your account, converting currency if needed, atomically."""
        reply = await call(bank.confirm_intent, who, intent_id, idem(who.scope, key, request))
        paid(reply)
        return respond(reply)

    def paid(reply: Reply) -> None:
        if not reply.replayed:
            metrics.payments.labels(reply.body["currency"]).inc()
            metrics.volume.labels(reply.body["currency"]).inc(reply.body["amount"])
            if deliverer:
                deliverer.wake()

    # -- KYC, contacts
    @app.post("/v1/accounts/me/kyc", response_model=AccountOut, tags=["accounts"])
    async def submit_kyc(body: KycRequest, request: Request, who: Who, key: Key) -> JSONResponse:
        """Visitor only: the mock real-name check (rules in bank/README.md); passing makes the account
        ``verified``. 400 ``kyc_invalid`` for a rule of form, 409 ``kyc_refused`` by the mock registry."""
        submission = Submission(body.legal_name, body.date_of_birth, body.country, body.document_number)
        return respond(await call(bank.submit_kyc, who, submission, idem(who.scope, key, request,
                                                                         body.model_dump(mode="json"))))

    @app.get("/v1/accounts/me/items", response_model=ItemListOut, tags=["collectibles"])
    async def my_items(who: Who) -> JSONResponse:
        """Visitor only: the collectibles you hold, each with its certificate and provenance."""
        return JSONResponse(await call(bank.items_of, who))

    @app.get("/v1/accounts/{account_id}/items", response_model=ItemListOut, tags=["collectibles"])
    async def account_items(account_id: str, who: Who) -> JSONResponse:
        """What an account holds: the platform (any visitor or merchant), a visitor (its own)."""
        return JSONResponse(await call(bank.items_of, who, account_id))

    @app.get("/v1/accounts/me/contacts", response_model=ContactListOut, tags=["accounts"])
    async def my_contacts(who: Who) -> JSONResponse:
        """Visitor only: the accounts you exchanged cards with (a gift goes only to one of them),
        each with its name and real-name level."""
        return JSONResponse(await call(bank.my_contacts, who))

    @app.post("/v1/contacts", status_code=201, response_model=ContactOut, tags=["accounts"],
              responses={200: {"model": ContactOut, "description": "the two were contacts already"}})
    async def add_contact(body: ContactRequest, request: Request, who: Who, key: Key) -> JSONResponse:
        """Platform only: record that two accounts exchanged cards (gifts go only to contacts)."""
        return respond(await call(bank.add_contact, who, body.account_id, body.other_account_id,
                                  idem(who.scope, key, request, body.model_dump(mode="json"))))

    # -- FX locks, escrow
    @app.post("/v1/fx/locks", status_code=201, response_model=FxLockOut, tags=["fx"])
    async def create_fx_lock(body: FxLockRequest, request: Request, who: Who, key: Key) -> JSONResponse:
        """Visitor only: hold today's quote from your currency into ``to`` (default 15 min) for an escrow."""
        return respond(await call(bank.create_fx_lock, who, body.to, body.amount, body.expires_in_seconds,
                                  idem(who.scope, key, request, body.model_dump(mode="json"))))

    @app.get("/v1/fx/locks/{lock_id}", response_model=FxLockOut, tags=["fx"])
    async def get_fx_lock(lock_id: str, who: Who) -> JSONResponse:
        return JSONResponse(await call(bank.get_fx_lock, who, lock_id))

    @app.post("/v1/escrows", status_code=201, response_model=EscrowOut, tags=["escrow"])
    async def create_escrow(body: EscrowRequest, request: Request, who: Who, key: Key) -> JSONResponse:
        """Visitor (the buyer) only: move a deposit into escrow for an exhibitor. Neither side can spend it
        until the platform posts it (shipment confirmed) or voids it (deal canceled); unposted by
        ``expires_at`` it is voided back. FX is locked now, or by ``fx_lock_id``."""
        return respond(await call(escrow_hold, who, "", idem(who.scope, key, request, body.model_dump(mode="json")),
                                  body))

    @app.get("/v1/escrows", response_model=EscrowListOut, tags=["escrow"])
    async def list_escrows(who: Who, status: PendingStatus | None = None, payee_account_id: str | None = None,
                           cursor: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
        """Platform only, for reconciliation: escrows in creation order, e.g. ``?status=pending``."""
        return JSONResponse(await call(bank.list_escrows, who, status, payee_account_id, cursor, limit))

    @app.get("/v1/escrows/{escrow_id}", response_model=EscrowOut, tags=["escrow"])
    async def get_escrow(escrow_id: str, who: Who) -> JSONResponse:
        """The platform, or the payer."""
        return JSONResponse(await call(bank.get_escrow, who, escrow_id))

    @app.post("/v1/escrows/{escrow_id}/post", response_model=EscrowOut, tags=["escrow"])
    async def post_escrow(escrow_id: str, request: Request, who: Who, key: Key) -> JSONResponse:
        """Platform only, on shipment confirmation: pay the exhibitor at the locked figures (once)."""
        return respond(await call(bank.post_escrow, who, escrow_id, idem(who.scope, key, request)))

    @app.post("/v1/escrows/{escrow_id}/void", response_model=EscrowOut, tags=["escrow"])
    async def void_escrow(escrow_id: str, request: Request, who: Who, key: Key) -> JSONResponse:
        """Platform only, when the deal is canceled: the whole debit goes back to the buyer (once)."""
        return respond(await call(bank.void_escrow, who, escrow_id, idem(who.scope, key, request)))

    # -- collectibles
    @app.post("/v1/editions", status_code=201, response_model=EditionOut, tags=["collectibles"])
    async def create_edition(body: EditionRequest, request: Request, who: Who, key: Key) -> JSONResponse:
        """Platform only: a fixed-size edition for an exhibitor or the organiser, priced only in a fiat
        currency the bank serves (else 400 ``not_fiat_currency``)."""
        return respond(await call(
            bank.create_edition, who, issuer_account_id=body.issuer_account_id, issuer_kind=body.issuer_kind,
            kind=body.kind, title=body.title, size=body.size, price=body.price, currency=body.currency,
            product=body.product, batch=body.batch, origin=body.origin, event=body.event,
            idem=idem(who.scope, key, request, body.model_dump(mode="json"))))

    @app.get("/v1/editions/{edition_id}", response_model=EditionOut, tags=["collectibles"])
    async def get_edition(edition_id: str) -> JSONResponse:
        """Public."""
        return JSONResponse(await call(bank.get_edition, edition_id))

    @app.post("/v1/editions/{edition_id}/items", status_code=201, response_model=ItemOut, tags=["collectibles"])
    async def issue_item(edition_id: str, body: IssueRequest, request: Request, who: Who, key: Key) -> JSONResponse:
        """Platform only: issue the edition's next serial to a holder (a priced one against the holder's
        paid intent to the issuer), as a ledger entry in the bank's chain."""
        return respond(await call(bank.issue_item, who, edition_id, body.holder_account_id, body.order_id,
                                  body.payment_intent_id, idem(who.scope, key, request, body.model_dump(mode="json"))))

    @app.get("/v1/items/{serial}", response_model=ItemOut, tags=["collectibles"])
    async def get_item(serial: str) -> JSONResponse:
        """Public, no credential: verify an item by serial: its edition, holder and provenance in the chain."""
        return JSONResponse(await call(bank.get_item, serial))

    @app.post("/v1/items/{serial}/gift", response_model=ItemOut, tags=["collectibles"])
    async def gift_item(serial: str, body: GiftRequest, request: Request, who: Who, key: Key) -> JSONResponse:
        """The holder gives the item away: only after the holding period (409 ``holding_period``), only to
        a contact (403 ``not_a_contact``), only between verified accounts (403 ``kyc_required``). A gift
        naming a price is refused (403 ``secondary_sale_forbidden``), a part of one too (403
        ``fractional_forbidden``)."""
        return respond(await call(bank.gift_item, who, serial, body.to_account_id,
                                  idem(who.scope, key, request, body.model_dump(mode="json"))))

    @app.post("/v1/items/{serial}/sell", tags=["collectibles"], status_code=403)
    async def sell_item(serial: str) -> JSONResponse:
        """Always refused (403 ``secondary_sale_forbidden``): there is no secondary sale of collectibles."""
        raise BankError(403, "secondary_sale_forbidden",
                        f"collectibles are never sold on, {serial} included: give it to a contact instead")

    def route(path: str) -> Any:
        return next(r for r in app.routes if getattr(r, "path", None) == path and "POST" in getattr(r, "methods", ()))

    hot_routes += [
        hot_route(route("/v1/payment_intents/{intent_id}/confirm"), None,
                  lambda who, intent_id, key, _: bank.confirm_intent(who, intent_id, key), paid),
        hot_route(route("/v1/escrows"), EscrowRequest, escrow_hold),
        hot_route(route("/v1/escrows/{escrow_id}/post"), None,
                  lambda who, escrow_id, key, _: bank.post_escrow(who, escrow_id, key)),
    ]
    _document_idempotency(app)
    return app


def _allowed_methods(app: FastAPI, request: Request) -> set[str]:
    methods: set[str] = set()
    for route in app.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return methods


def _document_idempotency(app: FastAPI) -> None:
    """Declare the required ``Idempotency-Key`` header on every POST of the OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path in schema["paths"].values():
                if "post" in path:
                    params = path["post"].setdefault("parameters", [])
                    params.append(dict(IDEMPOTENCY_HEADER))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
