"""The world server's side of B2B deals: protocol messages in, the state machine's
decisions, the bank's escrow as the platform, the store on the database thread, a
``DealStatus`` to the buyer and the booth's staff out.

The buyer's deposit is held by the buyer itself (``POST /v1/escrows`` with its own bank
token, FX locked), like a retail payment: the server never holds a visitor's credential. It
reads the escrow back as the platform and takes it as the deposit only if it pays the booth
exactly the deposit with the deal as end-to-end id. Shipment posts the escrow, cancel voids
it; each bank call carries an idempotency key derived from the deal, so a retry after a
crash or a lost answer does the same thing once. Transitions of one deal are serialised
here, and the store refuses a write from a state the deal has left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING

import protocol as p
from bank.client import BankAPIError, PlatformClient
from server.dbthread import DatabaseThread
from server.people.service import WallClock
from server.ratelimit import KeyedBuckets
from server.requests import SessionRequests
from world import iso

from . import machine as m
from .machine import Deal, DealRefused, DealState
from .store import DealStore, StaleDeal

if TYPE_CHECKING:
    from server.simulation import Session, Simulation

log = logging.getLogger("expo.deals")

RATE = 2.0  # deal messages per second per visitor, sustained
BURST = 10.0
SWEEP_INTERVAL = 1.0
ESCROW_CHECK_INTERVAL = 30.0  # how often ordered deals ask the bank whether their escrow lapsed
BALANCE_TTL = 86400  # seconds an intent for the balance stays payable (the bank's limit); a new one after


def new_deal_id() -> str:
    """Also the purchase order number and ISO 20022 end-to-end id (at most 35 characters)."""
    return f"po_{secrets.token_urlsafe(12)}"


class DealService:
    def __init__(self, sim: Simulation, store: DealStore, bank: PlatformClient, *,
                 account_of: Callable[[str], Awaitable[str | None]], wall: Callable[[], float] = time.time,
                 deal_id: Callable[[], str] = new_deal_id) -> None:
        self.sim = sim
        self.store = store
        self.bank = bank
        self.db = DatabaseThread("deals-store")
        self.wall = wall
        self.account_of = account_of  # the bank account a visitor linked (LinkAccount), as retail orders use
        self._deal_id = deal_id
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._buckets = KeyedBuckets(RATE, BURST, WallClock(wall))
        self._tasks: set[asyncio.Task] = set()
        self._requests = SessionRequests(self._tasks, self._refusal, log, "deal")
        self._sweeper: asyncio.Task | None = None
        self._merchants: dict[tuple[str, str], str] = {}
        # in a cluster (server.cluster.deals): every status told here goes to the other
        # processes too, whose sessions may be this deal's buyer or its booth's staff
        self.relay: Callable[[Deal, p.DealStatus], None] | None = None

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="deal-sweeper")

    async def close(self) -> None:
        await self._requests.drain(self._sweeper)
        await self.bank.aclose()
        self.db.close()

    # ------------------------------------------------------------------ messages

    def handle(self, session: Session, message: p.Message) -> None:
        """One of ``p.DEALS_CLIENT_MESSAGES``; a ProtocolError for what is refused at once."""
        me = session.visitor_id
        if not self._buckets.take(me):
            raise p.ProtocolError(p.ErrorCode.RATE_LIMITED, "too many deal requests; wait a moment")
        match message:
            case p.RequestQuote():
                booth = self.sim.expo.booth(message.booth)
                if booth is None:
                    raise p.ProtocolError(p.ErrorCode.UNKNOWN_BOOTH, f"no booth {message.booth!r}")
                if booth.product(message.sku) is None:
                    raise p.ProtocolError(p.ErrorCode.UNKNOWN_PRODUCT, f"{booth.id} has no product {message.sku!r}")
                deal = _refusing(m.request, self._deal_id(), message.key, me, booth.id, message.sku, message.qty,
                                 message.incoterm, message.destination, self.wall())
                self._spawn(session, message, self._request(deal, session.name))
            case p.SendQuotation():
                self._spawn(session, message, self.answer_rfq(
                    message.deal_id, session.staff_of, session.visitor_id, message.tiers, message.currency,
                    message.valid_for, message.lead_days, message.deposit_percent))
            case p.PlacePurchaseOrder():
                self._spawn(session, message, self._place_order(me, message.deal_id, message.escrow_id))
            case p.ConfirmShipment():
                self._spawn(session, message, self.confirm_shipment(message.deal_id, session.staff_of))
            case p.ConfirmDelivery():
                self._spawn(session, message, self._deliver(me, message.deal_id))
            case p.CancelDeal():
                self._spawn(session, message, self.cancel(me, session.staff_of, message.deal_id))
            case p.QueryDeals():
                self._spawn(session, message, self._query(session))

    # ------------------------------------------------------------------ transitions

    async def _request(self, deal: Deal, buyer_name: str) -> None:
        stored = await self.db.run(self.store.add, deal)
        if (stored.booth, stored.sku, stored.qty, stored.incoterm, stored.destination) != (
                deal.booth, deal.sku, deal.qty, deal.incoterm, deal.destination):
            raise DealRefused("bad_field", "this request key was used for a different request")
        self._tell(stored)
        if stored.id != deal.id:  # the deal a resent key names (PostgreSQL's copy is decoded anew: ids, not identity)
            return
        self.sim.activity.quote_requested(stored.id, stored.booth, stored.sku, stored.buyer, buyer_name)
        booth = self.sim.expo.booth(stored.booth)
        product = booth.product(stored.sku) if booth else None
        if product is not None and (w := product.wholesale) is not None:
            try:  # the booth's standing price list answers at once, as its staff would
                await self.answer_rfq(stored.id, stored.booth, m.PRICE_LIST, w.tiers, product.currency,
                                      w.valid_days * 86400.0, w.lead_days, w.deposit_percent)
            except DealRefused as refused:  # e.g. below its first tier: the staff answer it
                log.info("price list cannot quote", extra={"deal": stored.id, "why": refused.message})

    async def answer_rfq(self, deal_id: str, staff_of: str | None, by: str, tiers: tuple[tuple[int, str], ...],
                         currency: str, valid_for: float, lead_days: int, deposit_percent: int) -> Deal:
        """Quote an RFQ of booth ``staff_of`` (staff in the world, the price list, or an
        exhibitor's code through this same call)."""
        async with self._locks[deal_id]:
            deal = await self._deal(deal_id)
            if staff_of != deal.booth:
                raise DealRefused("not_allowed", f"only the staff of {deal.booth} quote its requests")
            now = self.wall()
            quotation = m.make_quotation(tiers, currency, valid_for, lead_days, deposit_percent, now)
            if deal.state is DealState.REQUESTED:
                payee = await self._merchant(deal.booth, currency)
            else:
                payee = deal.payee_account or ""
            return await self._move(deal, m.quote(deal, quotation, by, payee, now))

    async def _place_order(self, buyer: str, deal_id: str, escrow_id: str) -> None:
        async with self._locks[deal_id]:
            deal = await self._deal(deal_id)
            try:
                await self._order(deal, buyer, escrow_id)
            except DealRefused:
                await self._give_back_unused(deal, buyer, escrow_id)
                raise

    async def _give_back_unused(self, deal: Deal, buyer: str, escrow_id: str) -> None:
        """A refused purchase order leaves the buyer's deposit for this deal used by nothing
        (the quotation expired meanwhile, a second escrow for a deal already ordered, a wrong
        amount): void it now rather than lock the money until the bank's expiry."""
        if escrow_id == deal.escrow_id or buyer != deal.buyer:
            return
        linked = await self.account_of(buyer)
        try:
            escrow = await self.bank.get_escrow(escrow_id)
            if escrow.status == "pending" and escrow.end_to_end_id == deal.id and escrow.payer_account_id == linked:
                await self.bank.void_escrow(escrow_id, idempotency_key=f"void-unused-{escrow_id}")
                log.info("unused deposit voided", extra={"deal": deal.id, "escrow": escrow_id})
        except BankAPIError as error:  # the bank's own expiry gives it back later
            if error.status == 404:  # no such escrow: nothing is held
                return
            log.warning("could not void an unused deposit", extra={"deal": deal.id, "escrow": escrow_id,
                                                                    "code": error.code})

    async def _order(self, deal: Deal, buyer: str, escrow_id: str) -> None:
        if m.already_ordered(deal, buyer, escrow_id, self.wall()):
            self._tell(deal)
            return
        linked = await self.account_of(buyer)
        if linked is None:
            raise DealRefused("not_allowed", "link your bank account first (LinkAccount with the bank's proof)")
        try:
            escrow = await self.bank.get_escrow(escrow_id)
        except BankAPIError as error:
            if error.status == 404:
                raise DealRefused("bad_deposit", f"the bank has no escrow {escrow_id!r}") from None
            raise
        deposit = m.Deposit(escrow.id, escrow.status, escrow.payee_account_id, escrow.amount, escrow.currency,
                            escrow.debit_currency, escrow.end_to_end_id, escrow.uetr, escrow.fx_lock_id,
                            escrow.payer_account_id)
        if deposit.payer_account != linked:
            raise DealRefused("bad_deposit", "the deposit must come from the bank account you linked")
        await self._move(deal, m.order(deal, buyer, deposit, self.wall()))

    async def confirm_shipment(self, deal_id: str, staff_of: str | None) -> Deal:
        """Post the deposit to the exhibitor and bill the balance (the buyer's intent to pay)."""
        async with self._locks[deal_id]:
            deal = await self._deal(deal_id)
            if staff_of != deal.booth:
                raise DealRefused("not_allowed", f"only the staff of {deal.booth} confirm its shipments")
            if deal.state in (DealState.SHIPPED, DealState.DELIVERED):
                self._tell(deal)
                return deal
            shipped = m.ship(deal, self.wall())  # refuses every state but ordered before the bank is asked
            assert deal.escrow_id is not None and deal.payee_account is not None and deal.quote is not None
            try:
                await self.bank.post_escrow(deal.escrow_id, idempotency_key=f"post-{deal.id}")
            except BankAPIError as error:
                if error.code in ("escrow_voided", "escrow_expired"):
                    escrow = await self.bank.get_escrow(deal.escrow_id)
                    lapsed = m.deposit_lapsed(deal, escrow.status, escrow.void_reason or "expired", self.wall())
                    if lapsed is not None:
                        await self._move(deal, lapsed)
                    raise DealRefused("wrong_state", "the deposit was voided by the bank; nothing can ship") from None
                if error.code != "escrow_already_posted":
                    raise
            return await self._move(deal, m.bill_balance(shipped, await self._bill(deal, "0"), self.wall()))

    async def _deliver(self, buyer: str, deal_id: str) -> None:
        async with self._locks[deal_id]:
            deal = await self._deal(deal_id)
            if deal.buyer != buyer:
                raise DealRefused("not_allowed", "only the buyer confirms delivery")
            status = None
            if deal.state is DealState.SHIPPED and deal.balance_intent_id is not None:
                status = (await self.bank.get_intent(deal.balance_intent_id)).status
                if status in ("expired", "canceled"):  # not paid in time: bill it afresh
                    deal = await self._move(deal, m.bill_balance(deal, await self._bill(deal, f"{int(self.wall())}"), self.wall()))
                    status = "created"
            await self._move(deal, m.deliver(deal, status, self.wall()))

    async def _bill(self, deal: Deal, attempt: str) -> str | None:
        """A payment intent for the balance, payable only by the buyer's account (None: nothing due)."""
        balance = deal.balance_minor
        if not balance:
            return None
        assert deal.payee_account is not None and deal.quote is not None
        intent = await self.bank.create_intent(
            deal.payee_account, balance, deal.quote.currency, payer_account_id=deal.payer_account,
            metadata={"order_id": deal.id, "deal": deal.id, "booth": deal.booth, "part": "balance"},
            expires_in_seconds=BALANCE_TTL, idempotency_key=f"balance-{deal.id}-{attempt}")
        return intent.id

    async def cancel(self, me: str, staff_of: str | None, deal_id: str) -> Deal:
        """The buyer ``me`` or the booth's staff call the deal off; a deposit held is voided back."""
        async with self._locks[deal_id]:
            deal = await self._deal(deal_id)
            canceled = m.cancel(deal, deal.buyer == me, staff_of, self.wall())
            if canceled is not deal and deal.escrow_id is not None:
                try:
                    await self.bank.void_escrow(deal.escrow_id, idempotency_key=f"void-{deal.id}")
                except BankAPIError as error:
                    if error.code == "escrow_already_posted":
                        raise DealRefused("wrong_state", "the deposit was already paid to the exhibitor") from None
                    if error.code not in ("escrow_voided", "escrow_expired"):
                        raise
            return await self._move(deal, canceled)

    async def of_booth(self, booth: str) -> list[Deal]:
        """The booth's deals, oldest first (its staff's list, in the client or the console)."""
        return await self.db.run(self.store.of_booth, booth)

    async def _query(self, session: Session) -> None:
        deals = await self.db.run(self.store.of_buyer, session.visitor_id)
        if session.staff_of is not None:
            deals += await self.of_booth(session.staff_of)
        for deal in deals:
            session.send(status_message(deal))

    # ------------------------------------------------------------------ shared

    async def _deal(self, deal_id: str) -> Deal:
        deal = await self.db.run(self.store.get, deal_id)
        if deal is None:
            raise DealRefused("unknown", f"no deal {deal_id!r}")
        return deal

    async def _move(self, deal: Deal, moved: Deal) -> Deal:
        """Store a transition (none if the machine answered the deal unchanged), then tell."""
        if moved is not deal:
            assert moved.id == deal.id and moved.state is not deal.state or moved.balance_intent_id != deal.balance_intent_id
            await self.db.run(self.store.save, moved, deal.state)
            log.info("deal moved", extra={"deal": deal.id, "from": deal.state.value, "to": moved.state.value})
        self._tell(moved)
        return moved

    async def _merchant(self, booth: str, currency: str) -> str:
        """The booth's merchant account in ``currency`` (the one commerce uses: same reference)."""
        key = (booth, currency)
        if key not in self._merchants:
            exhibitor = self.sim.expo.booth(booth)
            name = exhibitor.exhibitor if exhibitor else booth
            account = await self.bank.create_merchant(f"{name} ({currency})", currency, reference=f"{booth}/{currency}",
                                                      idempotency_key=f"merchant-{booth}-{currency}")
            self._merchants[key] = account.id
        return self._merchants[key]

    async def _sweep_forever(self) -> None:
        last_escrow_check = 0.0
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await self.sweep(check_escrows=self.wall() - last_escrow_check >= ESCROW_CHECK_INTERVAL)
            except Exception:
                log.exception("deal sweep failed")
            else:
                last_escrow_check = self.wall() if self.wall() - last_escrow_check >= ESCROW_CHECK_INTERVAL else last_escrow_check

    async def sweep(self, check_escrows: bool = True) -> None:
        """Expire quotations past their validity; with ``check_escrows``, learn which ordered
        deals' deposits the bank voided (at their expiry, or a cancel the server died in the
        middle of) or posted (a shipment the server died in the middle of)."""
        for deal in await self.db.run(self.store.in_states, (DealState.QUOTED, DealState.ORDERED)):
            async with self._locks[deal.id]:
                current = await self._deal(deal.id)
                moved = m.expire(current, self.wall())
                if moved is None and check_escrows and current.state is DealState.ORDERED and current.escrow_id:
                    escrow = await self.bank.get_escrow(current.escrow_id)
                    moved = m.deposit_lapsed(current, escrow.status, escrow.void_reason, self.wall())
                    if moved is None and escrow.status == "posted":
                        # the deposit went to the exhibitor but the server died before it
                        # recorded the shipment: finish it (the balance billed once, by its key)
                        moved = m.bill_balance(m.ship(current, self.wall()), await self._bill(current, "0"), self.wall())
                if moved is not None:
                    with contextlib.suppress(StaleDeal):
                        await self._move(current, moved)

    def _tell(self, deal: Deal) -> None:
        message = status_message(deal)
        self.tell_here(deal.buyer, deal.booth, message)
        if self.relay is not None:
            self.relay(deal, message)

    def tell_here(self, buyer: str, booth: str, message: p.DealStatus) -> list[Session]:
        """Send ``message`` to this process's sessions of ``buyer`` and of ``booth``'s staff."""
        told = [s for s in self.sim.sessions.values() if s.visitor_id == buyer or s.staff_of == booth]
        for session in told:
            session.send(message)
        return told

    def _spawn(self, session: Session, request: p.Message, work: Coroutine) -> None:
        """Run ``work``; a refusal becomes an Error to the one who asked."""
        self._requests.spawn(session, request, work)

    @staticmethod
    def _refusal(exc: Exception) -> tuple[str, str] | None:
        if isinstance(exc, DealRefused):
            return exc.code, exc.message
        if isinstance(exc, StaleDeal):
            return p.ErrorCode.WRONG_STATE.value, f"{exc}; ask again"
        if isinstance(exc, BankAPIError):
            log.warning("bank refused a deal step: %s %s", exc.code, exc.message, extra={"code": exc.code})
            return p.ErrorCode.BANK_ERROR.value, f"the bank said {exc.code}: {exc.message}"
        return None

def _refusing(move: Callable[..., Deal], *args: object) -> Deal:
    try:
        return move(*args)
    except DealRefused as exc:
        raise p.ProtocolError(p.ErrorCode(exc.code), exc.message) from None


def status_message(deal: Deal) -> p.DealStatus:
    q = deal.quote
    unit = q.unit_price(deal.qty) if q else None

    def money(minor: int | None) -> str | None:
        return None if minor is None or q is None else str(iso.from_minor_units(minor, q.currency))

    return p.DealStatus(
        deal.id, deal.key, deal.state.value, deal.booth, deal.sku, deal.qty, deal.incoterm, deal.destination,
        tuple((t.min_qty, str(t.unit_price)) for t in q.tiers) if q else (), q.currency if q else None,
        str(unit) if unit is not None else None, money(deal.total_minor), money(deal.deposit_minor), deal.deposit_minor,
        q.valid_until if q else None, q.lead_days if q else None, deal.payee_account, deal.escrow_id, deal.uetr,
        deal.balance_intent_id, deal.message[:512])
