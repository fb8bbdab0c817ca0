"""The purchase flow of the architecture, server side: the server owns price and stock, the
bank moves the money, and every order the bank settles is fulfilled exactly once.

1. ``Order``: reserve stock and record the order (one store transaction), then ask the bank
   for a payment intent payable to the booth's merchant account, with the order id as the
   idempotency key (so a retry after a crash gets the same intent).
2. The visitor pays the intent at the bank with its own token; the server learns of it from
   the bank's signed webhook, from the client's ``OrderPaid`` (it then asks the bank), or
   from the sweep; whichever comes first fulfils, the unique fulfilment row stops the rest.
3. Unpaid orders expire: the server cancels the intent at the bank first and releases the
   stock only once the bank says the intent can no longer be paid.
4. At start, reconciliation walks every open order and settles it against the bank.

Commerce sits beside the simulation (see server.commerce_port): it takes requests by visitor
id and answers through the outlet. The store is blocking (SQLite, or a blocking PostgreSQL
driver), so every store call runs on one thread of its own, in the order it was made; the
event loop only ever waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import protocol as p
from bank.account_proofs import ProofError, proof_key, verify_proof
from bank.client import BankAPIError, PlatformClient
from bank.webhooks import WebhookError, WebhookReceiver
from world import iso
from world.model import Product

from .clock import Clock
from .commerce_port import CommerceOutlet, CommerceRequest
from .config import ServerConfig
from .dbthread import DatabaseThread
from .metrics import ServerMetrics
from .store import CommerceStore, OrderConflict, OrderRecord

if TYPE_CHECKING:
    from .pg_store import PgCommerceStore

log = logging.getLogger("expo.commerce")

BANK_GRACE = 120  # the bank's intent outlives the order by this much, so the server cancels first
SWEEP_INTERVAL = 1.0
RESERVING_RETRY = 2.0  # seconds after which the sweep asks the bank again for a missing intent
BANK_DOWN_PATIENCE = 30.0  # seconds an order waits for an unreachable bank before it fails

def new_order_id() -> str:
    return f"ord_{secrets.token_urlsafe(12)}"


class BankGate:
    """Every bank call goes through here: at most ``concurrency`` at once, at most ``depth``
    in hand (running or waiting). A visitor's request beyond that is refused ``busy`` at
    once instead of joining an unbounded backlog (a burst of orders once froze the server
    for 100 s, its HTTP pool queueing thousands of requests); the sweep waits its turn."""

    def __init__(self, concurrency: int, depth: int) -> None:
        assert 1 <= concurrency <= depth, (concurrency, depth)
        self._running = asyncio.Semaphore(concurrency)
        self.depth = depth
        self.in_hand = 0

    @property
    def full(self) -> bool:
        return self.in_hand >= self.depth

    @contextlib.contextmanager
    def admit(self, refuse_when_full: bool = True) -> Iterator[None]:
        """Count a piece of bank work as in hand from now until it is done; ``busy`` if full."""
        if refuse_when_full and self.full:
            raise p.ProtocolError(p.ErrorCode.BUSY, "the bank is busy with other orders: try again in a few seconds")
        self.in_hand += 1
        try:
            yield
        finally:
            self.in_hand -= 1

    @contextlib.asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        """One bank request, when one of the ``concurrency`` places is free."""
        async with self._running:
            yield


class Commerce:
    """Orders, payment and fulfilment for one world server (a CommerceDesk)."""

    def __init__(
        self,
        outlet: CommerceOutlet,
        store: CommerceStore | PgCommerceStore,
        bank: PlatformClient,
        config: ServerConfig,
        server_clock: Clock,
        metrics: ServerMetrics | None = None,
        *,
        wall_clock: Callable[[], float] | None = None,  # None: the server clock's wall reading
        order_id: Callable[[], str] = new_order_id,
    ) -> None:
        self.outlet = outlet
        self.store = store
        self.db = DatabaseThread("commerce-store")
        self.bank = bank
        self.config = config
        self.receiver = WebhookReceiver(config.webhook_secret) if config.webhook_secret else None
        self._verifier = ThreadPoolExecutor(1, thread_name_prefix="webhook-verify")
        self.metrics = metrics or ServerMetrics()
        self.server_clock = server_clock
        self.wall = wall_clock or server_clock.wall
        self._order_id = order_id
        self._tasks: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None
        self._in_flight: set[str] = set()  # order ids being settled right now
        self.fulfilment_hooks: list[Callable[[str, str, str, str], None]] = []  # (visitor, order, booth, sku), once each
        self.gift_hooks: list[Callable[[str, str], None]] = []  # (from account, to account) of a bank item.gifted
        self.gate = BankGate(config.bank_concurrency, config.bank_queue)
        self.proof_key = proof_key(config.bank_platform_key or "")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Seed stock, make sure every booth has a merchant account, settle what is open."""
        await self.prepare_booths()
        settled = await self.reconcile()
        log.info("commerce ready", extra={"booths": len(self.outlet.expo.booths), "reconciled": settled})
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="order-sweeper")

    async def prepare_booths(self) -> None:
        """Stock for new products and a merchant account per booth and currency (at start and
        after a world reload; both idempotent)."""
        expo = self.outlet.expo
        await self.db.run(self.store.seed_stock, expo)
        for booth in expo.booths:
            for currency in sorted({pr.currency for pr in booth.catalogue}):
                if await self.db.run(self.store.merchant, booth.id, currency) is None:
                    account = await self.bank.create_merchant(
                        f"{booth.exhibitor} ({currency})", currency, reference=f"{booth.id}/{currency}",
                        idempotency_key=f"merchant-{booth.id}-{currency}",
                    )
                    await self.db.run(self.store.save_merchant, booth.id, currency, account.id)

    async def close(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        for task in list(self._tasks) + ([self._sweeper] if self._sweeper else []):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.bank.aclose()
        self._verifier.shutdown(wait=True)
        self.store.stop_waiting()  # PostgreSQL away: what is queued fails now, the restart reconciles it
        self.db.close()
        self.store.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ requests from visitors

    def submit(self, visitor: str, request: CommerceRequest) -> None:
        self._spawn(self._answer(visitor, request))

    def link_account(self, visitor: str, proof: str) -> None:
        self._spawn(self._link(visitor, proof))

    async def _link(self, visitor: str, proof: str) -> None:
        """The bank signed, for this visitor id, that the account is theirs: checked here
        with the key the bank and the platform share, no bank call needed."""
        try:
            account = verify_proof(self.proof_key, proof, visitor, self.wall())
        except ProofError as error:
            self.metrics.rejected.labels("not_allowed").inc()
            self.outlet.deliver(visitor, p.Error(p.ErrorCode.NOT_ALLOWED.value, f"{error.code}: {error}",
                                                 p.LinkAccount.TYPE))
            return
        await self.db.run(self.store.save_payer, visitor, account, self.wall())
        log.info("account linked", extra={"visitor": visitor, "account": account})
        self.outlet.deliver(visitor, p.AccountLinked(account))

    async def _answer(self, visitor: str, request: CommerceRequest) -> None:
        """Handle one request; a refusal goes back to the visitor as an Error about it."""
        try:
            match request:
                case p.Order():
                    await self._order(visitor, request)
                case p.OrderPaid():
                    order = await self._own_order(visitor, request.order_id)
                    await self._settle(order.id, asked=True)
                case p.CancelOrder():
                    order = await self._own_order(visitor, request.order_id)
                    await self._cancel(order.id, "canceled", "canceled at your request", asked=True)
                case p.QueryInventory():
                    await self._send_inventory(visitor)
                case p.QueryStock():
                    stock = await self.db.run(self.store.stock_of, request.booth)
                    self.outlet.deliver(visitor, p.Stock(request.booth, tuple(stock.items())))
        except p.ProtocolError as exc:
            self.metrics.rejected.labels(exc.code.value).inc()
            self.outlet.deliver(visitor, p.Error(exc.code.value, exc.message[:512], request.TYPE))
        except Exception:  # a bug in one request must not take the others down
            log.exception("commerce request failed", extra={"visitor": visitor, "type": request.TYPE})

    async def _own_order(self, visitor: str, order_id: str) -> OrderRecord:
        order = await self.db.run(self.store.order, order_id)
        if order is None or order.visitor != visitor:
            raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED, f"no order {order_id!r} of yours")
        return order

    async def _order(self, visitor: str, message: p.Order) -> None:
        booth = self.outlet.expo.booth(message.booth)
        product = booth.product(message.sku) if booth is not None else None
        if booth is None or product is None:  # the world changed since the simulation looked
            raise p.ProtocolError(p.ErrorCode.UNKNOWN_PRODUCT, f"no {message.sku!r} at {message.booth!r}")
        with self.gate.admit():  # busy before anything is reserved: nothing to undo
            await self._place_and_ask(visitor, message, product)

    async def _place_and_ask(self, visitor: str, message: p.Order, product: Product) -> None:
        now = self.wall()
        record = OrderRecord(
            id=self._order_id(), visitor=visitor, key=message.key, booth=message.booth, sku=product.sku,
            qty=message.qty, amount_minor=iso.to_minor_units(product.price, product.currency) * message.qty,
            currency=product.currency, status="reserving", intent_id=None, message="", created_at=now,
            expires_at=now + self.config.order_ttl, updated_at=now,
        )
        outcome, order = await self.db.run(self._place, record, product.limit_per_visitor)
        if outcome == "retry":
            if (order.booth, order.sku, order.qty) != (message.booth, message.sku, message.qty):
                raise p.ProtocolError(p.ErrorCode.BAD_FIELD, "this order key was used for a different order")
            self._send_status(order)  # a retry: the same order, as it stands
            if order.status == "fulfilled":
                self._send_receipt(order)
        elif outcome == "refused":
            self.metrics.orders.labels("refused").inc()
            self._send_status(order)
        elif outcome == "unlinked":
            raise p.ProtocolError(p.ErrorCode.NOT_ALLOWED,
                                  "link your bank account first (LinkAccount with the bank's proof)")
        else:
            self.outlet.order_recorded(order, paid=False)
            await self._request_intent(order.id, admitted=True)

    def _place(self, record: OrderRecord, limit_per_visitor: int) -> tuple[str, OrderRecord]:
        """On the store thread: the order under this key, or the new one, or why not.
        One call, so two copies of an order in flight cannot both pass the lookup."""
        existing = self.store.find_order(record.visitor, record.key)
        if existing is not None:
            return "retry", existing
        if self.store.payer(record.visitor) is None:
            return "unlinked", record
        held = self.store.open_orders_of(record.visitor)
        if held >= self.config.max_open_orders:
            return "refused", replace(record, status="failed", message=(
                f"you have {held} orders awaiting payment (at most {self.config.max_open_orders}): "
                "pay or cancel one first"))
        try:
            return "placed", self.store.place_order(record, limit_per_visitor)
        except OrderConflict as conflict:
            return "refused", replace(record, status="failed", message=str(conflict))

    # ------------------------------------------------------------------ talking to the bank

    async def _fail(self, order_id: str, reason: str) -> None:
        """Give the order's stock back and tell the visitor why."""
        released = await self.db.run(self.store.release, order_id, "failed", reason, self.wall())
        if released:
            self.metrics.orders.labels("failed").inc()
            self._send_status(released)

    async def _request_intent(self, order_id: str, admitted: bool = False) -> None:
        """Ask the bank for the order's intent, payable by the visitor's linked account only.
        ``admitted``: counted in the bank gate by the caller already (a visitor's Order)."""
        if not admitted:
            with self.gate.admit(refuse_when_full=False):
                await self._request_intent(order_id, admitted=True)
            return
        order = await self.db.run(self.store.order, order_id)
        if order is None or order.status != "reserving":
            return
        merchant = await self.db.run(self.store.merchant, order.booth, order.currency)
        payer = await self.db.run(self.store.payer, order.visitor)
        if payer is None:  # only an order from before accounts were linked (server.store's legacy rows):
            await self._fail(order_id, "no bank account is linked to this order's visitor")  # no intent anyone may pay
            return
        if merchant is None:  # a booth added by a world reload while the bank was down
            await self._fail(order_id, f"{order.booth} cannot take {order.currency} payments yet: try again later")
            return
        try:
            async with self.gate.call():
                intent = await self.bank.create_intent(
                    merchant, order.amount_minor, order.currency,
                    metadata={"order_id": order.id, "booth": order.booth, "sku": order.sku, "qty": str(order.qty)},
                    expires_in_seconds=int(self.config.order_ttl) + BANK_GRACE, payer_account_id=payer,
                    idempotency_key=order.id,
                )
        except BankAPIError as error:
            log.warning("intent failed", extra={"order": order_id, "code": error.code})
            if error.code == "bank_unavailable" and self.wall() < order.created_at + BANK_DOWN_PATIENCE:
                return  # the sweep retries while the order is young
            await self._fail(order_id, f"the bank could not take the payment: {error.message}")
            return
        updated = await self.db.run(self.store.set_pending, order.id, intent.id, order.expires_at, self.wall())
        self._send_status(updated)

    async def _settle(self, order_id: str, asked: bool = False) -> None:
        """Ask the bank how the order's intent stands and act on it (``asked``: by the
        visitor, who is told ``busy`` when the bank queue is full; the sweep waits)."""
        order = await self.db.run(self.store.order, order_id)
        if order is None or not order.is_open or order.intent_id is None or order_id in self._in_flight:
            if order is not None:
                self._send_status(order)
                if asked and order.status == "fulfilled":  # asked again: the receipt again too
                    self._send_receipt(order)
            return
        self._in_flight.add(order_id)
        try:
            with self.gate.admit(refuse_when_full=asked):
                async with self.gate.call():
                    intent = await self.bank.get_intent(order.intent_id)
        except BankAPIError as error:
            log.warning("settle failed", extra={"order": order_id, "code": error.code})
            if asked:  # the visitor hears why nothing happened, and may ask again
                self.outlet.deliver(order.visitor, p.Error(p.ErrorCode.BUSY.value,
                                                           "the bank did not answer; send OrderPaid again shortly",
                                                           p.OrderPaid.TYPE))
            return
        finally:
            self._in_flight.discard(order_id)
        fulfilled_here = await self.apply_intent_state(order_id, intent.id, intent.status)
        if asked and intent.status == "succeeded" and not fulfilled_here:
            # Fulfilled meanwhile by another process of a cluster (its sweep, or its webhook
            # while the buyer moved): the asker still gets its receipt, as for an order asked again.
            done = await self.db.run(self.store.order, order_id)
            if done is not None and done.status == "fulfilled":
                self._send_receipt(done)
                self._send_status(done)
        if asked and intent.status not in ("succeeded", "canceled", "expired"):
            # The bank has not settled it: say so, rather than nothing (the order stands as it was)
            self._send_status(replace(order, message=f"the bank has not settled the payment ({intent.status}): "
                                                     "pay the intent, then send OrderPaid again"))

    async def _cancel(self, order_id: str, status: str, message: str, asked: bool = False) -> None:
        order = await self.db.run(self.store.order, order_id)
        if order is None or not order.is_open:
            return
        if order.intent_id is None:
            released = await self.db.run(self.store.release, order.id, status, message, self.wall())
            if released:
                self._send_status(released)
            return
        try:
            with self.gate.admit(refuse_when_full=asked):
                async with self.gate.call():
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
        await self.apply_intent_state(order_id, order.intent_id, state, status, message)

    async def apply_intent_state(self, order_id: str, intent_id: str, state: str,
                                 release_as: str | None = None, message: str = "") -> bool:
        """The single place where the bank's word turns into fulfilment or release; True when
        this call fulfilled the order (False: nothing to do, or done already, maybe elsewhere)."""
        if state == "succeeded":
            fulfilled = await self.db.run(self.store.fulfil, order_id, intent_id, self.wall())
            if fulfilled is not None:
                self.outlet.order_recorded(fulfilled, paid=True)
                self._on_fulfilled(fulfilled)
                return True
        elif state in ("canceled", "expired"):
            status = release_as or state
            reason = message or f"the payment was {state}"
            released = await self.db.run(self.store.release, order_id, status, reason, self.wall())
            if released is not None:
                self.metrics.orders.labels(status).inc()
                self._send_status(released)
        return False

    async def on_webhook(self, header: str | None, body: bytes) -> tuple[int, str]:
        """A delivery from the bank: (HTTP status, reason). 4xx for anything untrusted. The
        signature (an HMAC over the whole body) is checked on a thread of its own."""
        if self.receiver is None:
            return 404, "webhooks are not configured"
        loop = asyncio.get_running_loop()
        try:
            event = await loop.run_in_executor(self._verifier, self.receiver.receive, header, body, self.wall())
        except WebhookError as error:
            log.warning("webhook refused", extra={"code": error.code})
            return 400, error.code
        if event.type == "item.gifted":
            gift = event.data.get("object") or {}
            giver, recipient = gift.get("from_account_id"), gift.get("to_account_id")
            if isinstance(giver, str) and isinstance(recipient, str):
                for hook in self.gift_hooks:  # e.g. server.collectibles: both holders' lists, pushed
                    hook(giver, recipient)
            return 200, "ok"
        intent = event.data.get("object", {})
        order_id = (intent.get("metadata") or {}).get("order_id")
        order = await self.db.run(self.store.order, order_id) if isinstance(order_id, str) else None
        if order is None or order.intent_id not in (None, intent.get("id")):
            return 200, "not ours"  # acknowledged, so the bank stops retrying
        if self.config.cluster_url and not self.outlet.serves(order.visitor):
            # The bank posts each event to every hall process: the buyer's own settles it, so
            # the receipt and the sale's show happen where the buyer is (the sweep if nowhere).
            return 200, "served at another process"
        if event.type == "payment_intent.succeeded":
            await self.apply_intent_state(order.id, intent["id"], "succeeded")
        elif event.type in ("payment_intent.canceled", "payment_intent.expired"):
            await self.apply_intent_state(order.id, intent["id"], event.type.rsplit(".", 1)[1])
        return 200, "ok"

    # ------------------------------------------------------------------ sweep and reconciliation

    async def reconcile(self) -> int:
        """Settle every open order against the bank (at start)."""
        now = self.wall()
        open_orders = await self.db.run(self.store.open_orders)
        for order in open_orders:
            if order.status == "reserving":
                await self._request_intent(order.id)
            elif order.expires_at <= now:
                await self._cancel(order.id, "expired", "not paid in time")
            else:
                await self._settle(order.id)
        return len(open_orders)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = self.wall()
            try:
                open_orders = await self.db.run(self.store.open_orders)
            except Exception:
                log.exception("sweep could not read the open orders")
                continue
            for order in open_orders:
                try:
                    if order.status == "reserving" and now - order.updated_at > RESERVING_RETRY:
                        await self._request_intent(order.id)
                    elif order.status == "pending_payment" and order.expires_at <= now:
                        await self._cancel(order.id, "expired", "not paid in time")
                except Exception:  # one bad order must not stop the sweep
                    log.exception("sweep failed", extra={"order": order.id})

    # ------------------------------------------------------------------ telling visitors

    def _server_time(self, wall: float) -> float:
        return max(0.0, self.server_clock.monotonic() + (wall - self.wall()))

    def _send_status(self, order: OrderRecord) -> None:
        amount = str(iso.from_minor_units(order.amount_minor, order.currency))
        expires = self._server_time(order.expires_at) if order.status == "pending_payment" else None
        self.outlet.deliver(order.visitor, p.OrderStatus(
            order.id, order.key, order.status, order.booth, order.sku, order.qty, amount, order.currency,
            order.intent_id, expires, order.message[:512]))

    def _send_receipt(self, order: OrderRecord) -> None:
        product = self._product(order)
        if product is None or order.intent_id is None:
            return
        self.outlet.deliver(order.visitor, p.Receipt(
            order.id, order.booth, order.sku, product.name[:128], order.qty,
            str(iso.from_minor_units(order.amount_minor, order.currency)), order.currency,
            order.intent_id, self._server_time(order.updated_at)))

    async def _send_inventory(self, visitor: str) -> None:
        items = []
        for booth_id, sku, qty in await self.db.run(self.store.inventory, visitor):
            booth = self.outlet.expo.booth(booth_id)
            product = booth.product(sku) if booth else None
            items.append((booth_id, sku, product.name if product else sku, qty))
        self.outlet.deliver(visitor, p.Inventory(tuple(items)))

    def _on_fulfilled(self, order: OrderRecord) -> None:
        self.metrics.orders.labels("fulfilled").inc()
        for hook in self.fulfilment_hooks:  # e.g. server.collectibles: a certificate for the buyer
            hook(order.visitor, order.id, order.booth, order.sku)
        log.info("order fulfilled", extra={"order": order.id, "booth": order.booth, "sku": order.sku, "qty": order.qty})
        self._send_receipt(order)
        self._send_status(order)
        self.outlet.announce_sale(order.booth, order.visitor)

    def _product(self, order: OrderRecord) -> Product | None:
        booth = self.outlet.expo.booth(order.booth)
        return booth.product(order.sku) if booth else None
