"""The purchase flow of DESIGN.md, server side: the server owns price and stock, the bank
moves the money, and every order the bank settles is fulfilled exactly once.

1. ``Order``: reserve stock and record the order (one SQLite transaction), then ask the bank
   for a payment intent payable to the booth's merchant account, with the order id as the
   idempotency key (so a retry after a crash gets the same intent).
2. The visitor pays the intent at the bank with its own token; the server learns of it from
   the bank's signed webhook, from the client's ``OrderPaid`` (it then asks the bank), or
   from the sweep; whichever comes first fulfils, the unique fulfilment row stops the rest.
3. Unpaid orders expire: the server cancels the intent at the bank first and releases the
   stock only once the bank says the intent can no longer be paid.
4. At start, reconciliation walks every open order and settles it against the bank.

Visitors are identified by their display name (case-folded): limits and inventories
follow the name across sessions and restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import protocol as p
from bank.client import BankAPIError, PlatformClient
from bank.webhooks import WebhookError, WebhookReceiver
from world import iso
from world.model import Booth, Product

from .store import CommerceStore, OrderConflict, OrderRecord

if TYPE_CHECKING:
    from .simulation import Session, Simulation

log = logging.getLogger("expo.commerce")

BANK_GRACE = 120  # the bank's intent outlives the order by this much, so the server cancels first
SWEEP_INTERVAL = 1.0
EFFECT_RADIUS = 25.0  # metres around a booth where others see a sale's effect


def visitor_key(name: str) -> str:
    return name.casefold()


class Commerce:
    def __init__(
        self,
        sim: "Simulation",
        store: CommerceStore,
        bank: PlatformClient,
        webhook_secret: str | None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.sim = sim
        self.store = store
        self.bank = bank
        self.receiver = WebhookReceiver(webhook_secret) if webhook_secret else None
        self.wall = wall_clock
        self._tasks: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None
        self._in_flight: set[str] = set()  # order ids being settled right now

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Seed stock, make sure every booth has a merchant account, settle what is open."""
        await self.prepare_booths()
        settled = await self.reconcile()
        log.info("commerce ready", extra={"booths": len(self.sim.expo.booths), "reconciled": settled})
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="order-sweeper")

    async def prepare_booths(self) -> None:
        """Stock for new products and a merchant account per booth and currency (at start and
        after a world reload; both idempotent)."""
        self.store.seed_stock(self.sim.expo)
        for booth in self.sim.expo.booths:
            for currency in sorted({pr.currency for pr in booth.catalogue}):
                if self.store.merchant(booth.id, currency) is None:
                    account = await self.bank.create_merchant(
                        f"{booth.exhibitor} ({currency})", currency, reference=f"{booth.id}/{currency}",
                        idempotency_key=f"merchant-{booth.id}-{currency}",
                    )
                    self.store.save_merchant(booth.id, currency, account.id)

    async def close(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        for task in list(self._tasks) + ([self._sweeper] if self._sweeper else []):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.bank.aclose()
        self.store.close()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ messages from visitors

    def stock_of(self, booth: Booth) -> dict[str, int]:
        return self.store.stock_of(booth.id)

    def handle(self, session: "Session", message: p.Message) -> None:
        match message:
            case p.Order():
                self._order(session, message)
            case p.OrderPaid():
                order = self._own_order(session, message.order_id)
                self._spawn(self._settle(order.id))
            case p.CancelOrder():
                order = self._own_order(session, message.order_id)
                self._spawn(self._cancel(order.id, "canceled", "canceled at your request"))
            case p.QueryInventory():
                self._send_inventory(session)

    def _own_order(self, session: "Session", order_id: str) -> OrderRecord:
        order = self.store.order(order_id)
        if order is None or order.visitor != visitor_key(session.name):
            raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, f"no order {order_id!r} of yours")
        return order

    def _order(self, session: "Session", message: p.Order) -> None:
        booth = self.sim.expo.booth(message.booth)
        if booth is None:
            raise p.ProtocolError(p.ErrorCode.UNKNOWN_BOOTH, f"no booth {message.booth!r}")
        product = booth.product(message.sku)
        if product is None:
            raise p.ProtocolError(p.ErrorCode.UNKNOWN_PRODUCT, f"{booth.exhibitor} sells no {message.sku!r}")
        visitor = visitor_key(session.name)
        existing = self.store.find_order(visitor, message.key)
        if existing is not None:
            if (existing.booth, existing.sku, existing.qty) != (message.booth, message.sku, message.qty):
                raise p.ProtocolError(p.ErrorCode.BAD_FIELD, "this order key was used for a different order")
            self._send_status(existing)  # a retry: the same order, as it stands
            if existing.status == "fulfilled":
                self._send_receipt(existing)
            return
        now = self.wall()
        amount = iso.to_minor_units(product.price, product.currency) * message.qty
        record = OrderRecord(
            id=f"ord_{secrets.token_urlsafe(12)}", visitor=visitor, key=message.key, booth=booth.id,
            sku=product.sku, qty=message.qty, amount_minor=amount, currency=product.currency,
            status="reserving", intent_id=None, message="", created_at=now,
            expires_at=now + self.sim.config.order_ttl, updated_at=now,
        )
        try:
            self.store.place_order(record, product.limit_per_visitor)
        except OrderConflict as conflict:
            self.sim.metrics.orders.labels("refused").inc()
            failed = replace(record, status="failed", message=str(conflict))
            self._send_status(failed)
            return
        self._spawn(self._request_intent(record.id))

    # ------------------------------------------------------------------ talking to the bank

    async def _request_intent(self, order_id: str) -> None:
        order = self.store.order(order_id)
        if order is None or order.status != "reserving":
            return
        merchant = self.store.merchant(order.booth, order.currency)
        try:
            intent = await self.bank.create_intent(
                merchant, order.amount_minor, order.currency,
                metadata={"order_id": order.id, "booth": order.booth, "sku": order.sku, "qty": str(order.qty)},
                expires_in_seconds=int(self.sim.config.order_ttl) + BANK_GRACE, idempotency_key=order.id,
            )
        except BankAPIError as error:
            log.warning("intent failed", extra={"order": order_id, "code": error.code})
            if error.code == "bank_unavailable" and self.wall() < order.created_at + 30:
                return  # the sweep retries while the order is young
            released = self.store.release(order.id, "failed", f"the bank could not take the payment: {error.message}", self.wall())
            if released:
                self.sim.metrics.orders.labels("failed").inc()
                self._send_status(released)
            return
        updated = self.store.set_pending(order.id, intent.id, order.expires_at, self.wall())
        self._send_status(updated)

    async def _settle(self, order_id: str) -> None:
        """Ask the bank how the order's intent stands and act on it."""
        order = self.store.order(order_id)
        if order is None or not order.is_open or order.intent_id is None or order_id in self._in_flight:
            if order is not None:
                self._send_status(order)
            return
        self._in_flight.add(order_id)
        try:
            intent = await self.bank.get_intent(order.intent_id)
        except BankAPIError as error:
            log.warning("settle failed", extra={"order": order_id, "code": error.code})
            return
        finally:
            self._in_flight.discard(order_id)
        self.apply_intent_state(order_id, intent.id, intent.status)

    async def _cancel(self, order_id: str, status: str, message: str) -> None:
        order = self.store.order(order_id)
        if order is None or not order.is_open:
            return
        if order.intent_id is None:
            released = self.store.release(order.id, status, message, self.wall())
            if released:
                self._send_status(released)
            return
        try:
            intent = await self.bank.cancel_intent(order.intent_id, idempotency_key=f"cancel-{order.id}")
            state = intent.status
        except BankAPIError as error:
            if error.code == "intent_already_succeeded":
                state = "succeeded"
            elif error.code in ("intent_expired", "intent_canceled"):
                state = "expired" if error.code == "intent_expired" else "canceled"
            else:
                log.warning("cancel failed", extra={"order": order_id, "code": error.code})
                return  # try again next sweep
        self.apply_intent_state(order_id, order.intent_id, state, status, message)

    def apply_intent_state(self, order_id: str, intent_id: str, state: str,
                           release_as: str | None = None, message: str = "") -> None:
        """The single place where the bank's word turns into fulfilment or release."""
        if state == "succeeded":
            fulfilled = self.store.fulfil(order_id, intent_id, self.wall())
            if fulfilled is not None:
                self._on_fulfilled(fulfilled)
        elif state in ("canceled", "expired"):
            status = release_as or state
            released = self.store.release(order_id, status, message or f"the payment was {state}", self.wall())
            if released is not None:
                self.sim.metrics.orders.labels(status).inc()
                self._send_status(released)

    def on_webhook(self, header: str | None, body: bytes) -> tuple[int, str]:
        """A delivery from the bank: (HTTP status, reason). 4xx for anything untrusted."""
        if self.receiver is None:
            return 404, "webhooks are not configured"
        try:
            event = self.receiver.receive(header, body, self.wall())
        except WebhookError as error:
            log.warning("webhook refused", extra={"code": error.code})
            return 400, error.code
        intent = event.data.get("object", {})
        order_id = (intent.get("metadata") or {}).get("order_id")
        order = self.store.order(order_id) if isinstance(order_id, str) else None
        if order is None or order.intent_id not in (None, intent.get("id")):
            return 200, "not ours"  # acknowledged, so the bank stops retrying
        if event.type == "payment_intent.succeeded":
            self.apply_intent_state(order.id, intent["id"], "succeeded")
        elif event.type in ("payment_intent.canceled", "payment_intent.expired"):
            self.apply_intent_state(order.id, intent["id"], event.type.rsplit(".", 1)[1])
        return 200, "ok"

    # ------------------------------------------------------------------ sweep and reconciliation

    async def reconcile(self) -> int:
        """Settle every open order against the bank (at start, and as the sweep)."""
        now = self.wall()
        touched = 0
        for order in self.store.open_orders():
            if order.status == "reserving":
                await self._request_intent(order.id)
            elif order.expires_at <= now:
                await self._cancel(order.id, "expired", "not paid in time")
            else:
                await self._settle(order.id)
            touched += 1
        return touched

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = self.wall()
            for order in self.store.open_orders():
                try:
                    if order.status == "reserving" and now - order.updated_at > 2.0:
                        await self._request_intent(order.id)
                    elif order.status == "pending_payment" and order.expires_at <= now:
                        await self._cancel(order.id, "expired", "not paid in time")
                except Exception:  # one bad order must not stop the sweep
                    log.exception("sweep failed", extra={"order": order.id})

    # ------------------------------------------------------------------ telling visitors

    def _session_of(self, visitor: str) -> "Session | None":
        return next((s for s in self.sim.sessions.values() if visitor_key(s.name) == visitor and s.peer), None)

    def _server_time(self, wall: float) -> float:
        return max(0.0, self.sim.clock.now() + (wall - self.wall()))

    def _send_status(self, order: OrderRecord) -> None:
        session = self._session_of(order.visitor)
        if session is None:
            return
        amount = str(iso.from_minor_units(order.amount_minor, order.currency))
        expires = self._server_time(order.expires_at) if order.status == "pending_payment" else None
        session.peer.send(p.OrderStatus(order.id, order.key, order.status, order.booth, order.sku, order.qty,
                                        amount, order.currency, order.intent_id, expires, order.message[:512]))

    def _send_receipt(self, order: OrderRecord) -> None:
        session = self._session_of(order.visitor)
        product = self._product(order)
        if session is None or product is None:
            return
        session.peer.send(p.Receipt(order.id, order.booth, order.sku, product.name[:128], order.qty,
                                    str(iso.from_minor_units(order.amount_minor, order.currency)), order.currency,
                                    order.intent_id, self._server_time(order.updated_at)))

    def _send_inventory(self, session: "Session") -> None:
        items = []
        for booth_id, sku, qty in self.store.inventory(visitor_key(session.name)):
            booth = self.sim.expo.booth(booth_id)
            product = booth.product(sku) if booth else None
            items.append((booth_id, sku, product.name if product else sku, qty))
        session.peer.send(p.Inventory(tuple(items)))

    def _on_fulfilled(self, order: OrderRecord) -> None:
        self.sim.metrics.orders.labels("fulfilled").inc()
        log.info("order fulfilled", extra={"order": order.id, "booth": order.booth, "sku": order.sku, "qty": order.qty})
        self._send_receipt(order)
        self._send_status(order)
        buyer = self._session_of(order.visitor)
        self.sim.announce_sale(order.booth, buyer.entity if buyer else 0, EFFECT_RADIUS)

    def _product(self, order: OrderRecord) -> Product | None:
        booth = self.sim.expo.booth(order.booth)
        return booth.product(order.sku) if booth else None

