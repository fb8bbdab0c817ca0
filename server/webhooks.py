"""The world server's receiver for the bank's signed webhooks: a small HTTP listener of its
own (the WebSocket port serves GET only).

The body is read up to ``MAX_WEBHOOK_BODY`` and no further (a bigger one is refused with 413
before it is held in memory), and its signature is checked off the event loop (see
Commerce.on_webhook), so a hostile sender can neither fill the memory nor stall the tick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bank.webhooks import SIGNATURE_HEADER

MAX_WEBHOOK_BODY = 64 * 1024  # bytes; the bank's events are well under 2 KiB
PATH = "/bank/webhook"


class WebhookHandler(Protocol):
    def __call__(self, header: str | None, body: bytes) -> Awaitable[tuple[int, str]]: ...


class BodyTooLarge(Exception):
    pass


async def read_limited(request: Request, limit: int) -> bytes:
    """The request's body, or BodyTooLarge as soon as it (declared or streamed) passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge(declared)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(len(body))
    return bytes(body)


def webhook_app(handle: WebhookHandler, after: Callable[[], None], limit: int = MAX_WEBHOOK_BODY) -> Starlette:
    """``handle`` judges a delivery; ``after`` runs once it has (the server flushes the
    receipts and effects it queued, instead of waiting for the next tick)."""

    async def webhook(request: Request) -> JSONResponse:
        try:
            body = await read_limited(request, limit)
        except BodyTooLarge:
            return JSONResponse({"result": "body_too_large", "limit": limit}, status_code=413)
        except ClientDisconnect:
            return JSONResponse({"result": "client_disconnected"}, status_code=400)
        status, reason = await handle(request.headers.get(SIGNATURE_HEADER), body)
        after()
        return JSONResponse({"result": reason}, status_code=status)

    return Starlette(routes=[Route(PATH, webhook, methods=["POST"])])


async def serve_webhooks(handle: WebhookHandler, host: str, port: int,
                         after: Callable[[], None]) -> tuple[uvicorn.Server, asyncio.Task]:
    """Listen on ``host:port`` until ``server.should_exit`` is set; returns once listening."""
    server = uvicorn.Server(uvicorn.Config(webhook_app(handle, after), host=host, port=port,
                                           log_level="warning", lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(), name="webhooks")
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
        await asyncio.sleep(0.02)
    return server, task
