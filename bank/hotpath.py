"""The bank's three hottest writes answered without FastAPI's routing and dependency machinery.

Under load, confirming an intent, holding a deposit in escrow and posting it are nearly all the
bank does, and FastAPI's per-request work (routing, solving the credential and key dependencies,
the request object) cost about two thirds of the bank's CPU per call. This ASGI layer sits
inside the app's middleware (so body limits, metrics and error shapes are the app's) and takes
only requests it can answer exactly as the routes would: the exact path with a plain id, a
known credential (the platform key, or a visitor token the bank has already authenticated), a
valid ``Idempotency-Key`` and, for the escrow, a JSON body that the route's own model accepts.
Everything else (a missing header, a bad body, an unknown token) goes to the routes unchanged,
the body read so far handed on, so every refusal comes from one place. The service call, its
rules, idempotency and the group commit are the same functions the routes call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from . import idempotency
from .bodylimit import ASGIApp, Message, Receive, Scope, Send
from .service import Idem, Principal, Reply, Role, encode

#: The ids the bank makes (a prefix and hex): for these the path the fingerprint hashes is the
#: request's path as FastAPI's ``request.url.path`` gives it, so a retry by either way matches.
_ID = "[A-Za-z0-9_]{1,64}"


@dataclass(frozen=True, slots=True)
class HotRoute:
    """One POST path and what to do with it: ``handle(principal, path_id, idem, body)`` -> the reply
    (on the writer's round thread: ``submit``), then ``after(reply)`` on the event loop."""

    pattern: re.Pattern[str]
    body_model: type[BaseModel] | None
    handle: Callable[[Principal, str, Idem, Any], Reply]
    route: Any  # the app's route for this path (metrics label requests by it)
    after: Callable[[Reply], None] | None = None


def hot_route(route: Any, body_model: type[BaseModel] | None, handle: Callable[[Principal, str, Idem, Any], Reply],
              after: Callable[[Reply], None] | None = None) -> HotRoute:
    """For the app's ``route`` (its path has at most one parameter)."""
    pattern = re.compile(re.sub(r"\{[a-z_]+\}", f"({_ID})", route.path) + r"\Z")
    return HotRoute(pattern, body_model, handle, route, after)


class HotPath:
    """ASGI: answer the ``routes`` that are fully valid directly; pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, *, routes: list[HotRoute], platform_digest: bytes,
                 known_visitor: Callable[[str], Principal | None],
                 submit: Callable[[Callable[[], Reply]], Awaitable[Reply]],
                 replayed: Callable[[], None],
                 error: Callable[[Exception, str], JSONResponse | None]) -> None:
        self.app = app
        self.routes = routes
        self.platform_digest = platform_digest
        self.known_visitor = known_visitor
        self.submit = submit
        self.replayed = replayed
        self.error = error

    def _principal(self, headers: dict[bytes, bytes]) -> Principal | None:
        value = headers.get(b"authorization")
        if value is None:
            return None
        scheme, _, secret = value.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not secret or " " in secret:
            return None
        if hmac.compare_digest(hashlib.sha256(secret.encode()).digest(), self.platform_digest):
            return Principal(Role.PLATFORM)
        return self.known_visitor(secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        for route in self.routes:
            if (match := route.pattern.match(path)) is not None:
                break
        else:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])  # a repeated header: the last one here, the slow path decides
        key = headers.get(b"idempotency-key")
        principal = self._principal(headers)
        if (principal is None or key is None or len(scope["headers"]) != len(headers)
                or not idempotency.valid_key(key := key.decode("latin-1"))):
            await self.app(scope, receive, send)
            return
        body: BaseModel | None = None
        params: Any = None
        if route.body_model is not None:
            raw, receive = await _read_body(receive)
            content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
            try:
                if content_type != b"application/json":
                    raise ValueError(content_type)
                data = json.loads(raw)
                if not isinstance(data, dict):
                    raise ValueError("not an object")
                body = route.body_model.model_validate(data)
            except (ValueError, ValidationError):  # the route answers it, in its words
                await self.app(scope, receive, send)
                return
            params = body.model_dump(mode="json")
        idem = Idem(principal.scope, key, idempotency.fingerprint("POST", path, params))
        scope["route"] = route.route
        path_id = match.group(1) if match.groups() else ""
        handle = route.handle
        try:
            reply = await self.submit(lambda: handle(principal, path_id, idem, body))
        except Exception as exc:
            if (refused := self.error(exc, path)) is None:
                raise
            await refused(scope, receive, send)
            return
        if route.after is not None:
            route.after(reply)
        # what JSONResponse sends, from the bytes the idempotency record was sealed from
        content = reply.encoded if reply.encoded is not None else encode(reply.body)
        raw_headers = [(b"content-length", str(len(content)).encode()), _JSON]
        if reply.replayed:
            self.replayed()
            raw_headers.append(_REPLAYED)
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": content})


_JSON = (b"content-type", b"application/json")
_REPLAYED = (b"idempotent-replayed", b"true")


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that gives it again first (for the slow path)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    raw = b"".join(chunks)
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return raw, again
