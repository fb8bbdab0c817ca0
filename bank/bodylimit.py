"""An ASGI wrapper that refuses request bodies over a limit before they are read into memory.

A declared ``Content-Length`` over the limit is answered 413 at once, without reading a byte
of the body (uvicorn's flow control then stops reading the socket, so RSS does not grow); a
body without one (chunked) is counted as it streams in and cut off at the limit. Every
endpoint sits behind it, so no route can forget. Peers that vanish mid-request are logged
as one JSON line (``bank.access``), not as a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 64 * 1024
log = logging.getLogger("bank.access")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit; FastAPI re-raises HTTP
    exceptions met while reading a body, so the app's handler answers it in the bank's shape."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request bodies are limited to {limit} bytes")


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def log_event(event: str, **fields: Any) -> None:
    """One machine-readable line per event (``expo-bank serve`` prints this logger's messages bare)."""
    log.warning(json.dumps({"event": event, "level": "warning", "logger": log.name, **fields},
                           sort_keys=True, default=str))


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send, status: int, code: str, message: str) -> None:
        body = error_body(code, message)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(send, 400, "invalid_request", "Content-Length must be a decimal number")
                return
            if int(declared) > self.max_bytes:
                await self._refuse(send, 413, "body_too_large",
                                   f"request bodies are limited to {self.max_bytes} bytes; this one declares {int(declared)}")
                return
        received = 0
        started = False

        complete = False
        client = scope.get("client")

        async def limited_receive() -> Message:
            nonlocal received, complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            elif message["type"] == "http.disconnect" and not complete:
                complete = True  # log it once, whoever reads next
                log_event("client_disconnect", method=scope.get("method"), path=scope.get("path"),
                          client=f"{client[0]}:{client[1]}" if client else None, body_bytes_received=received,
                          detail="the peer closed the connection before sending the whole request body")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await self._refuse(send, 413, "body_too_large", str(exc.detail))
        except ClientDisconnect:  # a read after the disconnect; logged above
            if not complete:
                log_event("client_disconnect", method=scope.get("method"), path=scope.get("path"),
                          client=f"{client[0]}:{client[1]}" if client else None, body_bytes_received=received)
