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

_ANSWERERS: weakref.WeakKeyDictionary[Bot, asyncio.Task] = weakref.WeakKeyDictionary()
_IN_PROCESS: weakref.WeakSet[Bot] = weakref.WeakSet()  # bots that have a card, to offer ours to
_OFFERED: weakref.WeakKeyDictionary[Bot, set[int]] = weakref.WeakKeyDictionary()  # entities offered once already
ACCEPT_SHARE = 0.8  # how often a bot accepts a card offered to it
OFFER_PACE = (4, 100.0)  # at most 4 offers in 100 s: within the server's 5 then 1 per 20 s
_OFFER_TIMES: weakref.WeakKeyDictionary[Bot, list[float]] = weakref.WeakKeyDictionary()


async def ensure_card(bot: Bot) -> bool:
    """Set this bot's card once, and start answering offers made to it (accepting most)."""
    if bot in _ANSWERERS:
        return True
    started = bot.clock()
    saved = asyncio.ensure_future(bot.expect(lambda e: isinstance(e, ev.CardSaved), 5.0))
    n = bot.index
    await bot.transport.command(lambda core: core.set_card(
        bot.core.name, f"Trading House {n % 97}", ("CN", "KZ", "MY", "TR", "EG", "PK")[n % 6], "Buyer", "en", "UTC"))
    if await saved is None:
        bot.recorder.error("card_lost")
        return False
    bot.recorder.sample("card_save", bot.clock() - started)
    _ANSWERERS[bot] = asyncio.ensure_future(_answer_offers(bot))
    _IN_PROCESS.add(bot)
    return True


async def _answer_offers(bot: Bot) -> None:
    while not bot.stopping:
        offer = await bot.expect(lambda e: isinstance(e, ev.CardOffered), 5.0)
        if isinstance(offer, ev.CardOffered):
            _OFFERED.setdefault(bot, set()).add(offer.message.entity)  # answered: no offer back to them
            accept = bot.rng.random() < ACCEPT_SHARE
            bot.recorder.count("cards.accepted" if accept else "cards.declined")
            await bot.transport.command(lambda core, x=offer.message.exchange_id, a=accept: core.answer_card(x, a))


async def cards(bot: Bot) -> None:
    """Offer our card to another bot within sight; time it until we see their card."""
    if not await ensure_card(bot):
        return
    x, y = bot.position
    offered = _OFFERED.setdefault(bot, set())  # a person offers a card once, not again after an answer
    recent = _OFFER_TIMES.setdefault(bot, [])
    now = bot.clock()
    recent[:] = [t for t in recent if now - t < OFFER_PACE[1]]
    if len(recent) >= OFFER_PACE[0]:  # people do not hand out cards by the dozen (the server limits it too)
        bot.recorder.count("skipped.cards_pace")
        await bot.linger(1.0)
        return
    near = [other for other in _IN_PROCESS if other is not bot and other.core.own is not None
            and other.core.entity is not None and other.core.entity not in offered
            and other.own.hall == bot.own.hall and math.dist(other.position, (x, y)) < 12.0]
    if not near:
        bot.recorder.count("skipped.cards")
        await bot.linger(1.0)
        return
    other = bot.rng.choice(near)
    entity = other.core.entity
    assert entity is not None
    offered.add(entity)
    recent.append(now)
    started = bot.clock()
    answer = asyncio.ensure_future(bot.expect(
        lambda e: isinstance(e, ev.CardShown) and e.message.entity == entity
        or isinstance(e, ev.CardAnswered) and e.message.state not in ("offered", "accepted")
        or isinstance(e, ev.ErrorReceived) and e.ref == p.OfferCard.TYPE, 10.0))
    await bot.transport.command(lambda core: core.offer_card(entity))
    result = await answer
    if isinstance(result, ev.CardShown):
        bot.recorder.sample("card_exchange", bot.clock() - started)
        bot.recorder.count("cards.exchanged")
    elif isinstance(result, ev.CardAnswered):
        bot.recorder.count(f"cards.{result.message.state}")
    elif isinstance(result, ev.ErrorReceived):
        bot.recorder.count(f"cards.refused_{result.code}")  # already exchanged, cooldown: the rules at work
    else:
        bot.recorder.error("card_offer_lost")
    await bot.linger(bot.rng.uniform(1, 3))


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
