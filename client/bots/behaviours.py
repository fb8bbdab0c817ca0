"""What bots do, as weighted tasks in the manner of Locust: each bot picks one by weight,
runs it to the end, and picks again. Each task is an async function of the bot; what it
measures goes to the bot's recorder, and what it could not do is counted, not raised."""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable, Callable

import protocol as p
from world.model import Booth, BoothKind

from .. import events as ev
from ..pathfind import entrance
from .bot import Bot

Behaviour = Callable[[Bot], Awaitable[None]]

CHAT_LINES = (
    "Hello from the Silk Road!", "Has anyone tried the honey?", "Where is the keynote?",
    "Great booth design here.", "Any deals on textiles today?", "Which hall has the tea?",
    "See you at the keynote.", "The exchange rates look good.", "First time at this expo.",
)


async def wander(bot: Bot) -> None:
    """Stroll to a few random points of the hall."""
    for _ in range(bot.rng.randint(1, 3)):
        x, y = bot.random_point()
        await bot.walk_to(x, y, run=bot.rng.random() < 0.2)


def _booths_here(bot: Bot, with_catalogue: bool = False) -> list[Booth]:
    booths = [b for b in bot.expo.booths_in(bot.hall.id) if b.kind is BoothKind.EXHIBITOR]
    return [b for b in booths if b.catalogue] if with_catalogue else booths


async def visit_booth(bot: Bot, booth: Booth) -> bool:
    """Walk to the booth's open side, then in."""
    if not await bot.walk_to(*entrance(booth, 1.5)):
        return False
    return await bot.walk_to(*entrance(booth, -min(booth.footprint.width, booth.footprint.depth) / 4))


async def booth(bot: Bot) -> None:
    """Walk into a booth of this hall and linger."""
    booths = _booths_here(bot)
    if not booths:
        bot.recorder.count("skipped.booth")
        return
    if await visit_booth(bot, bot.rng.choice(booths)):
        await bot.linger(bot.rng.uniform(3, 8))


async def keynote(bot: Bot) -> None:
    """Join the crowd at the hall's keynote stage."""
    spot = bot.hall.keynote
    if spot is None:
        bot.recorder.count("skipped.keynote")
        return await wander(bot)
    r, a = 4 * math.sqrt(bot.rng.random()), bot.rng.uniform(0, 2 * math.pi)
    x, y = bot.clamp_to_hall(spot.x + r * math.cos(a), spot.y + r * math.sin(a))
    if await bot.walk_to(x, y):
        bot.facing = math.atan2(spot.y - y, spot.x - x)
        await bot.linger(bot.rng.uniform(5, 10))


async def crowd(bot: Bot) -> None:
    """Mill about close to the keynote stage, never standing still: a dense moving crowd
    (everyone in everyone's view), the worst case for snapshot sizes."""
    spot = bot.hall.keynote or bot.hall.spawn
    for _ in range(3):
        r, a = 6 * math.sqrt(bot.rng.random()), bot.rng.uniform(0, 2 * math.pi)
        await bot.walk_to(*bot.clamp_to_hall(spot.x + r * math.cos(a), spot.y + r * math.sin(a)), timeout=10.0)


async def chat(bot: Bot) -> None:
    """Say something nearby and time the echo (the speaker hears its own line)."""
    text = bot.rng.choice(CHAT_LINES)
    started = bot.clock()
    waiting = asyncio.ensure_future(bot.expect(
        lambda e: isinstance(e, ev.ChatReceived) and e.line.entity == bot.core.entity and e.line.text == text, 5.0))
    await bot.transport.command(lambda core: core.chat(0, text))
    if await waiting is not None:
        bot.recorder.sample("chat_echo", bot.clock() - started)
    else:
        bot.recorder.error("chat_lost")
    await bot.linger(bot.rng.uniform(1, 3))


async def catalogue(bot: Bot) -> None:
    """Open a booth's catalogue (QueryStock) and read it a while."""
    booths = _booths_here(bot, with_catalogue=True)
    if not booths:
        bot.recorder.count("skipped.catalogue")
        return
    stock = await open_catalogue(bot, bot.rng.choice(booths))
    if stock is not None:
        await bot.linger(bot.rng.uniform(2, 5))


async def open_catalogue(bot: Bot, booth: Booth) -> ev.StockReceived | None:
    started = bot.clock()
    waiting = asyncio.ensure_future(bot.expect(lambda e: isinstance(e, ev.StockReceived) and e.stock.booth == booth.id, 5.0))
    await bot.transport.command(lambda core: core.query_stock(booth.id))
    stock = await waiting
    assert stock is None or isinstance(stock, ev.StockReceived), "expect takes only what matches"
    if stock is None:
        bot.recorder.error("stock_lost")
    else:
        bot.recorder.sample("catalogue", bot.clock() - started)
    return stock


FINAL = frozenset({"fulfilled", "failed", "expired", "canceled"})


async def buy(bot: Bot) -> None:
    """Walk to a booth, pick something in stock, order it, pay at the bank, get the receipt."""
    bank_url = bot.core.welcome.bank_url if bot.core.welcome else None
    if not bank_url:
        bot.recorder.count("skipped.buy")
        return
    booths = _booths_here(bot, with_catalogue=True)
    if not booths:
        bot.recorder.count("skipped.buy")
        return
    target = bot.rng.choice(booths)
    await visit_booth(bot, target)
    stock = await open_catalogue(bot, target)
    in_stock = [sku for sku, left in (stock.stock.items if stock else ()) if left > 0]
    if not in_stock:
        bot.recorder.count("purchases.sold_out")
        return
    product = min((pr for sku in in_stock if (pr := target.product(sku)) is not None), key=lambda pr: pr.price)
    await purchase(bot, bank_url, target, product.sku)


async def purchase(bot: Bot, bank_url: str, target: Booth, sku: str) -> bool:
    """Order one of ``sku``, pay at the bank, wait for the receipt; True when fulfilled."""
    key = bot.purchase_key()
    rec = bot.recorder
    try:
        if await bot.bank_account(bank_url, key) is None:
            rec.error("account_not_linked")
            return False
    except Exception as exc:  # noqa: BLE001 - the bank refusing is an outcome to count
        rec.count(f"purchases.failed.bank_{getattr(exc, 'code', type(exc).__name__)}")
        return False
    started = bot.clock()
    pending = asyncio.ensure_future(bot.expect(lambda e: isinstance(e, ev.OrderUpdated) and e.status.key == key, 10.0))
    await bot.transport.command(lambda core: core.order(target.id, sku, 1, key))
    status = await pending
    assert status is None or isinstance(status, ev.OrderUpdated), "expect takes only what matches"
    if status is None:
        rec.error("order_lost")
        return False
    rec.sample("order", bot.clock() - started)
    order = status.status
    if order.status != "pending_payment" or order.intent_id is None:
        rec.count(f"purchases.failed.{order.status}")
        return False
    done = asyncio.ensure_future(bot.expect(
        lambda e: (isinstance(e, ev.OrderUpdated) and e.status.order_id == order.order_id and e.status.status in FINAL), 20.0))
    try:
        paid_at = bot.clock()
        await bot.pay(bank_url, order.intent_id, key)
        rec.sample("bank_confirm", bot.clock() - paid_at)
    except Exception as exc:  # noqa: BLE001 - the bank refusing is an outcome to count
        rec.count(f"purchases.failed.bank_{getattr(exc, 'code', type(exc).__name__)}")
        await bot.transport.command(lambda core: core.cancel_order(order.order_id))
        done.cancel()
        return False
    await bot.transport.command(lambda core: core.order_paid(order.order_id))
    final = await done
    assert final is None or isinstance(final, ev.OrderUpdated), "expect takes only what matches"
    if final is None:
        rec.error("order_unsettled")
    elif final.status.status == "fulfilled":
        rec.count("purchases.settled")
        rec.sample("purchase", bot.clock() - started)
        return True
    else:
        rec.count(f"purchases.failed.{final.status.status}")
    return False


# --------------------------------------------------------------------------- cards and meetings

ACCEPT_SHARE = 0.8  # how often a bot accepts a card offered to it
OFFER_PACE = (4, 100.0)  # at most 4 offers in 100 s: within the server's 5 then 1 per 20 s
OFFER_WAIT = 10.0  # seconds an offer of ours waits for its outcome before it counts as lost


class CardDesk:
    """One bot's side of the card exchanges, fed every event (``Bot.watchers``): the offers
    made to it, queued as they come (an offer arriving in the same read as another is not
    lost, so no offerer waits for an answer that never comes), the exchanges it knows have
    ended (never answered again), and its own offer in flight with its outcome.

    An offer from the avatar we are offering our card to crosses ours: the spec makes the
    second of two crossing offers accept the first, so ours accepts theirs and answering it
    as well would be refused (``Error(not_allowed)``, "that offer is accepted already"). It
    is held until our offer ends, and answered then only if our offer did not exchange the
    cards (the server refused ours)."""

    def __init__(self) -> None:
        self.offers: asyncio.Queue[p.CardOffered] = asyncio.Queue()
        self.ended: set[str] = set()  # exchanges answered by us, accepted, declined or expired
        self.met: set[int] = set()  # entities we offered to or were offered by: a person offers once
        self.recent: list[float] = []  # when our last offers went out (OFFER_PACE)
        self._target: int | None = None  # the entity our offer in flight goes to
        self._own_id: str | None = None  # its exchange, once the server says "offered"
        self._outcome: asyncio.Future[ev.Event] | None = None
        self._held: list[p.CardOffered] = []  # offers that crossed ours
        self.answerer: asyncio.Task | None = None  # answers ``offers`` once the card is saved

    def offering(self, entity: int) -> asyncio.Future[ev.Event]:
        """Our offer to ``entity`` is about to go out: the future of how it ends (CardShown,
        a CardAnswer that is not "offered" or "accepted", or the Error refusing it)."""
        assert self._target is None, "one offer of ours at a time"
        self._target, self._own_id = entity, None
        self._outcome = asyncio.get_running_loop().create_future()
        self.met.add(entity)
        return self._outcome

    def offered(self) -> None:
        """Our offer has ended (or we stopped waiting): offers held behind it are answered
        now, unless it exchanged the cards with them."""
        self._target = self._own_id = self._outcome = None
        for held in self._held:
            if held.exchange_id not in self.ended:
                self.offers.put_nowait(held)
        self._held.clear()

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.CardOffered):
            offer = event.message
            if offer.exchange_id in self.ended:
                return
            self.met.add(offer.entity)  # answered: no offer back to them
            if offer.entity == self._target:
                self._held.append(offer)
            else:
                self.offers.put_nowait(offer)
        elif isinstance(event, ev.CardAnswered):
            answer = event.message
            if answer.state == "offered":
                if self._target is not None and self._own_id is None:
                    self._own_id = answer.exchange_id  # only an offerer hears "offered", and ours is the one out
                return
            self.ended.add(answer.exchange_id)
            if answer.exchange_id == self._own_id and answer.state != "accepted":  # accepted: CardShown follows
                self._end(event)
        elif isinstance(event, ev.CardShown):
            self.ended.add(event.message.exchange_id)
            if event.message.entity and event.message.entity == self._target:
                self._end(event)
        elif isinstance(event, ev.ErrorReceived) and event.ref == p.OfferCard.TYPE:
            self._end(event)

    def _end(self, event: ev.Event) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(event)


_DESKS: weakref.WeakKeyDictionary[Bot, CardDesk] = weakref.WeakKeyDictionary()
_IN_PROCESS: weakref.WeakSet[Bot] = weakref.WeakSet()  # bots that have a card, to offer ours to


async def ensure_card(bot: Bot) -> CardDesk | None:
    """Set this bot's card once, and start answering offers made to it (accepting most);
    its desk, or None when the card was not saved."""
    desk = _DESKS.get(bot)
    if desk is not None and desk.answerer is not None:
        return desk
    if desk is None:
        desk = _DESKS[bot] = CardDesk()
        bot.watchers.append(desk.on_event)  # from before the card: an offer may come as it is saved
    started = bot.clock()
    saved = asyncio.ensure_future(bot.expect(lambda e: isinstance(e, ev.CardSaved), 5.0))
    n = bot.index
    await bot.transport.command(lambda core: core.set_card(
        bot.core.name, f"Trading House {n % 97}", ("CN", "KZ", "MY", "TR", "EG", "PK")[n % 6], "Buyer", "en", "UTC"))
    if await saved is None:
        bot.recorder.error("card_lost")
        return None
    bot.recorder.sample("card_save", bot.clock() - started)
    desk.answerer = asyncio.ensure_future(_answer_offers(bot, desk))
    _IN_PROCESS.add(bot)
    return desk


async def _answer_offers(bot: Bot, desk: CardDesk) -> None:
    while not bot.stopping:
        try:
            async with asyncio.timeout(5.0):  # not wait_for: on 3.11 it can swallow a cancel
                offer = await desk.offers.get()
        except TimeoutError:
            continue
        exchange_id = offer.exchange_id
        if exchange_id in desk.ended:  # ended while queued (accepted by an offer of ours)
            continue
        desk.ended.add(exchange_id)
        await _answer(bot, exchange_id, bot.rng.random() < ACCEPT_SHARE)


async def _answer(bot: Bot, exchange_id: str, accept: bool) -> None:
    bot.recorder.count("cards.accepted" if accept else "cards.declined")
    await bot.transport.command(lambda core: core.answer_card(exchange_id, accept))


async def cards(bot: Bot) -> None:
    """Offer our card to another bot within sight; time it until we see their card."""
    desk = await ensure_card(bot)
    if desk is None:
        return
    x, y = bot.position
    now = bot.clock()
    desk.recent[:] = [t for t in desk.recent if now - t < OFFER_PACE[1]]
    if len(desk.recent) >= OFFER_PACE[0]:  # people do not hand out cards by the dozen (the server limits it too)
        bot.recorder.count("skipped.cards_pace")
        await bot.linger(1.0)
        return
    near = [other for other in _IN_PROCESS if other is not bot and not other.stopping and other.core.own is not None
            and other.core.entity is not None and other.core.entity not in desk.met
            and other.own.hall == bot.own.hall and math.dist(other.position, (x, y)) < 12.0]
    if not near:
        bot.recorder.count("skipped.cards")
        await bot.linger(1.0)
        return
    await offer_card(bot, desk, bot.rng.choice(near))
    await bot.linger(bot.rng.uniform(1, 3))


async def offer_card(bot: Bot, desk: CardDesk, other: Bot) -> None:
    """Offer our card to ``other`` and count how it ends; the time to their card is sampled."""
    entity = other.core.entity
    assert entity is not None
    desk.recent.append(bot.clock())
    started = bot.clock()
    outcome = desk.offering(entity)
    try:
        await bot.transport.command(lambda core: core.offer_card(entity))
        async with asyncio.timeout(OFFER_WAIT):
            result: ev.Event | None = await outcome
    except TimeoutError:
        result = None
    finally:
        desk.offered()
    if isinstance(result, ev.CardShown):
        bot.recorder.sample("card_exchange", bot.clock() - started)
        bot.recorder.count("cards.exchanged")
    elif isinstance(result, ev.CardAnswered):
        bot.recorder.count(f"cards.{result.message.state}")
    elif isinstance(result, ev.ErrorReceived):
        bot.recorder.count(f"cards.refused_{result.code}")  # already exchanged, cooldown: the rules at work
    else:
        bot.recorder.error("card_offer_lost")


async def meetings(bot: Bot) -> None:
    """Look at a booth's meeting slots; book a free one (and often cancel it again)."""
    booths = _booths_here(bot)
    if not booths:
        bot.recorder.count("skipped.meetings")
        return
    target = bot.rng.choice(booths)
    started = bot.clock()
    listed = asyncio.ensure_future(bot.expect(lambda e: isinstance(e, ev.SlotsReceived) and e.message.booth == target.id, 5.0))
    await bot.transport.command(lambda core: core.list_slots(target.id))
    slots = await listed
    if not isinstance(slots, ev.SlotsReceived):
        bot.recorder.error("slots_lost")
        return
    bot.recorder.sample("slots", bot.clock() - started)
    # a person books no two meetings at once: slots that clash with one it kept are not free to it
    free = [item[0] for item in slots.message.items if not item[4]
            and not any(start < item[2] + item[3] * 60 and item[2] < end for start, end in bot.meetings)]
    if not free:
        bot.recorder.count("meetings.none_free")
        return
    slot_id = bot.rng.choice(free)
    started = bot.clock()
    booked = asyncio.ensure_future(bot.expect(
        lambda e: (isinstance(e, ev.BookingUpdated) and e.message.slot_id == slot_id)
        or (isinstance(e, ev.ErrorReceived) and e.ref == p.BookSlot.TYPE), 5.0))
    await bot.transport.command(lambda core: core.book_slot(slot_id))
    result = await booked
    if isinstance(result, ev.BookingUpdated):
        bot.recorder.sample("booking", bot.clock() - started)
        bot.recorder.count("meetings.booked")
        await bot.linger(bot.rng.uniform(1, 4))
        if bot.rng.random() < 0.7:  # most give the slot back, so the run keeps slots to book
            await bot.transport.command(lambda core: core.cancel_booking(result.message.booking_id))
            bot.recorder.count("meetings.cancelled")
        else:
            kept = next(item for item in slots.message.items if item[0] == slot_id)
            bot.meetings.append((kept[2], kept[2] + kept[3] * 60))
    elif isinstance(result, ev.ErrorReceived):
        bot.recorder.count(f"meetings.refused_{result.code}")  # taken by another bot first, a clash
    else:
        bot.recorder.error("booking_lost")


# --------------------------------------------------------------------------- B2B deals

QUOTE_WAIT = 1.5  # seconds for a price list's quotation (it follows the RFQ at once)
SHIP_WAIT = 8.0  # seconds for the booth's staff to confirm shipment before the bot cancels


def _deal_is(deal_id: str | None, key: str | None, *states: str) -> Callable[[ev.Event], bool]:
    def test(e: ev.Event) -> bool:
        return (isinstance(e, ev.DealUpdated) and (e.message.deal_id == deal_id or e.message.key == key)
                and e.message.state in states)
    return test


async def deals(bot: Bot) -> None:
    """A B2B deal: RFQ to a booth's product, a quotation from its price list, the deposit held
    in escrow at the bank (FX locked), the purchase order, then delivery once the booth's
    staff ship (the balance paid at the bank), or a cancel (the deposit voided) if they do not."""
    bank_url = bot.core.welcome.bank_url if bot.core.welcome else None
    expo = bot.core.expo
    if not bank_url or expo is None:
        bot.recorder.count("skipped.deals")
        return
    listed = [(b.id, pr.sku) for b in expo.booths for pr in b.catalogue if pr.wholesale is not None]
    if not listed:  # the manifest says which products have a standing price list
        bot.recorder.count("deals.no_price_list")
        return
    booth_id, sku = bot.rng.choice(listed)
    rec, key = bot.recorder, bot.purchase_key()
    try:
        bank = await bot.bank_account(bank_url, key)
    except Exception as exc:  # noqa: BLE001 - the bank refusing is an outcome to count
        rec.count(f"deals.failed.bank_{getattr(exc, 'code', type(exc).__name__)}")
        return
    if bank is None:
        rec.error("account_not_linked")
        return
    started = bot.clock()
    quoted_f = asyncio.ensure_future(bot.expect(_deal_is(None, key, "quoted"), QUOTE_WAIT))
    asked_f = asyncio.ensure_future(bot.expect(_deal_is(None, key, "requested", "quoted"), 5.0))
    await bot.transport.command(lambda core: core.request_quote(booth_id, sku, bot.rng.randint(1, 3), "FOB", "CN", key))
    asked = await asked_f
    if not isinstance(asked, ev.DealUpdated):
        quoted_f.cancel()
        rec.error("rfq_lost")
        return
    quoted = await quoted_f
    if not isinstance(quoted, ev.DealUpdated):
        rec.count("deals.unquoted")
        await bot.transport.command(lambda core: core.cancel_deal(asked.message.deal_id))
        await bot.linger(bot.rng.uniform(1.0, 2.0))  # within the server's 2 deal messages a second
        return
    deal = quoted.message
    rec.sample("rfq_quote", bot.clock() - started)
    thinking = bot.rng.uniform(1.0, 2.0)  # a buyer reads the quotation (and stays within 2 deal messages a second)
    await bot.linger(thinking)
    assert deal.payee_account and deal.currency and deal.deposit_minor is not None, "a quotation names its deposit"
    deposited_at = bot.clock()
    try:
        lock = await bank.lock_fx(deal.currency, deal.deposit_minor, idempotency_key=f"fx-{key}")
        escrow = await bank.create_escrow(deal.payee_account, deal.deposit_minor, deal.currency, deal.deal_id,
                                          fx_lock_id=lock.id, idempotency_key=f"escrow-{key}")
    except Exception as exc:  # noqa: BLE001
        rec.count(f"deals.failed.bank_{getattr(exc, 'code', type(exc).__name__)}")
        await bot.transport.command(lambda core: core.cancel_deal(deal.deal_id))
        return
    ordered_f = asyncio.ensure_future(bot.expect(_deal_is(deal.deal_id, None, "ordered"), 5.0))
    shipped_f = asyncio.ensure_future(bot.expect(_deal_is(deal.deal_id, None, "shipped"), SHIP_WAIT))
    await bot.transport.command(lambda core: core.place_purchase_order(deal.deal_id, escrow.id))
    if not isinstance(await ordered_f, ev.DealUpdated):
        shipped_f.cancel()
        rec.error("purchase_order_lost")
        return
    rec.sample("deal_deposit", bot.clock() - deposited_at)
    ordered_at = bot.clock()
    shipped = await shipped_f
    if not isinstance(shipped, ev.DealUpdated):
        rec.count("deals.canceled_unshipped")
        await bot.transport.command(lambda core: core.cancel_deal(deal.deal_id))
        return
    rec.sample("deal_shipped", bot.clock() - ordered_at)
    paid_at = bot.clock()
    delivered_f = asyncio.ensure_future(bot.expect(_deal_is(deal.deal_id, None, "delivered"), 10.0))
    if shipped.message.balance_intent_id is not None:
        await bank.confirm_intent(shipped.message.balance_intent_id, idempotency_key=f"balance-{key}")
    await bot.transport.command(lambda core: core.confirm_delivery(deal.deal_id))
    if isinstance(await delivered_f, ev.DealUpdated):
        rec.sample("deal_delivery", bot.clock() - paid_at)
        rec.sample("deal", bot.clock() - started - thinking)
        rec.count("deals.delivered")
        await bot.linger(bot.rng.uniform(1.0, 2.0))
    else:
        rec.error("delivery_lost")


STAFF_SHIP_AFTER = (0.5, 2.0)  # seconds a staff bot takes to "ship" an order: within the buyer's SHIP_WAIT


async def staff(bot: Bot, booth_id: str) -> None:
    """A booth's staff member (joined with the booth's staff pass, ``expo-bots --staff``): stands
    at the booth and confirms the shipment of each of its purchase orders, so the buyers'
    ``deals`` (quoted by the booth's price list) run RFQ -> quote -> deposit -> delivery.
    Runs until the swarm's deadline."""
    rec = bot.recorder
    target = bot.expo.booth(booth_id)
    assert target is not None, "the server admits a staff pass only for a booth of its expo"
    shipping: set[str] = set()
    work: set[asyncio.Task] = set()

    async def ship(deal_id: str) -> None:
        await asyncio.sleep(bot.rng.uniform(*STAFF_SHIP_AFTER))
        await bot.transport.command(lambda core: core.confirm_shipment(deal_id))
        rec.count("staff.shipped")

    def on_deal(deal: p.DealStatus) -> None:
        if deal.booth != booth_id or deal.state != "ordered" or deal.deal_id in shipping:
            return
        shipping.add(deal.deal_id)  # a status may come more than once
        task = asyncio.create_task(ship(deal.deal_id))
        work.add(task)
        task.add_done_callback(work.discard)

    bot.on_deal = on_deal
    try:
        if target.hall == bot.hall.id:
            await visit_booth(bot, target)
        while True:
            await bot.linger(5.0)
    finally:
        bot.on_deal = None
        for task in work:
            task.cancel()


# --------------------------------------------------------------------------- portals


async def portal(bot: Bot) -> None:
    """Walk through a portal of this hall (from the manifest) into the next hall, stroll
    there a little, and walk back through the portal that leads home. In a cluster whose
    processes serve one hall each, both crossings are hand-offs to another process (a
    Transfer the transport follows); the ``handoff`` metric times them."""
    doors = bot.hall.portals
    if not doors:
        bot.recorder.count("skipped.portal")
        return await wander(bot)
    home = bot.hall.id
    if not await bot.cross(bot.rng.choice(doors)):
        return
    await bot.linger(bot.rng.uniform(2.0, 4.0))  # longer than the portals' rest after an arrival
    back = [d for d in bot.hall.portals if d.target_hall == home] or list(bot.hall.portals)
    if not back:
        bot.recorder.count("skipped.portal_back")
        return
    await bot.cross(bot.rng.choice(back))


BEHAVIOURS: dict[str, Behaviour] = {
    "wander": wander, "booth": booth, "keynote": keynote, "crowd": crowd, "chat": chat, "catalogue": catalogue, "buy": buy,
    "cards": cards, "meetings": meetings, "deals": deals, "portal": portal,
}
DEFAULT_MIX = "wander=3,booth=4,keynote=2,chat=1,catalogue=1,buy=1"


def parse_mix(text: str) -> dict[str, float]:
    """'wander=3,booth=4' -> weights; unknown names and negative weights are errors."""
    mix: dict[str, float] = {}
    for part in filter(None, (s.strip() for s in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {name!r}; choose from {', '.join(BEHAVIOURS)}")
        value = float(weight or 1)
        if value < 0:
            raise ValueError(f"negative weight for {name}")
        mix[name] = value
    if not mix or sum(mix.values()) <= 0:
        raise ValueError("the mix needs at least one behaviour with a positive weight")
    return mix
