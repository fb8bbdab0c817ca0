"""The organisers' narrow window into the running world server: read the live state, act on it.

The web console (console/) runs on the server's own event loop and reaches the simulation
only through this class, so what an organiser may see and do is listed in one place:
halls and where every avatar stands, visitors per hall and per booth, sales and orders from
the commerce store, alerts (crowds, slow ticks), and moderation (mute, kick, ban,
announcements, visitors' reports). Nothing here awaits inside the tick: reads copy the
numpy state, actions queue frames that the next flush sends.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import protocol as p
from bank.schemas import EditionOut, ItemOut
from protocol.limits import MAX_CHAT_LEN
from world import check_expo
from world.model import Expo

from .analytics.aggregate import BoothFigures, booth_figures
from .analytics.heatmap import Heatmap, heatmap
from .cluster.watch import Gone, LiveProcess, ProcessWatch
from .deals.machine import CONSOLE, Deal
from .live import CROWD_CELL, Census, LiveFrame, frame, merged, merged_census
from .live import census as census_of
from .moderation import Kind, Moderation, Report, Sanction
from .people.leads import Lead, check_notes, csv_rows, looked_at, to_csv
from .people.meetings import BookingStatus, Slot
from .simulation import Session

if TYPE_CHECKING:
    from .app import ExpoServer
    from .cluster.node import Presence

ORGANISERS = "Organisers"  # the speaker's name on announcements; entity 0 is never an avatar
CROWD_THRESHOLD = 40  # avatars in one square that make an alert
TICK_P99_BUDGET = 0.025  # seconds: the tick's p99 over this makes an alert
HEATMAP_MINUTES = 15.0  # the console's heatmaps show this much of the recent past


@dataclass(frozen=True, slots=True)
class AvatarView:
    entity: int
    name: str
    hall: str
    x: float
    y: float
    staff_of: str | None
    booth: str | None  # the booth it stands at, if any
    connected: bool
    visitor_id: str | None  # who it is (None: no visitor's session holds the slot)


@dataclass(frozen=True, slots=True)
class Sale:
    booth: str
    currency: str
    orders: int
    units: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class OrderView:
    id: str
    visitor: str
    sku: str
    qty: int
    amount_minor: int
    currency: str
    status: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # "crowd", "tick", "process-down" (alarms) or "process-left" (information)
    message: str
    process: str | None = None  # the cluster process a process alert is about (to dismiss it)


SERIAL = re.compile(r"[A-Za-z0-9_-]{1,120}")  # an item's serial: an edition id, '-', its number


class WhoError(ValueError):
    """The organiser named no connected visitor, or several (two people may share a name)."""


class TickWindow:
    """The tick's p99 over the last window, from the cumulative Prometheus histogram: each
    sample keeps the bucket counts, the p99 is read from the difference to an older sample."""

    def __init__(self, histogram: Any, clock: Callable[[], float], window: float = 10.0) -> None:
        self.histogram = histogram
        self.clock = clock
        self.window = window
        self._samples: list[tuple[float, list[tuple[float, float]]]] = []

    def _buckets(self) -> list[tuple[float, float]]:
        out = []
        for metric in self.histogram.collect():
            for sample in metric.samples:
                if sample.name.endswith("_bucket"):
                    out.append((float(sample.labels["le"]), sample.value))
        return sorted(out)

    def p99(self) -> tuple[float | None, int]:
        """(the upper bound of the bucket holding the 99th percentile, ticks in the window)."""
        now = self.clock()
        current = self._buckets()
        self._samples.append((now, current))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
            self._samples.pop(0)
        old = self._samples[0][1] if len(self._samples) > 1 else [(le, 0.0) for le, _ in current]
        counts = [(le, c - o) for (le, c), (_, o) in zip(current, old)]
        total = counts[-1][1] if counts else 0
        if total <= 0:
            return None, 0
        target = 0.99 * total
        for le, cumulative in counts:
            if cumulative >= target:
                return le, int(total)
        return math.inf, int(total)


class Admin:
    def __init__(self, server: ExpoServer, moderation: Moderation, wall_clock: Callable[[], float]) -> None:
        self.server = server
        self.moderation = moderation
        self.wall = wall_clock
        self.ticks = TickWindow(server.metrics.tick_seconds, wall_clock)
        server.sim.moderation = moderation

    @property
    def expo(self) -> Expo:
        return self.server.sim.expo

    # ------------------------------------------------------------------ the live state

    def avatars(self) -> list[AvatarView]:
        sim = self.server.sim
        av = sim.avatars
        live = np.flatnonzero(av.active)
        at = sim.booths_of(live)
        halls = [hall.id for hall in self.expo.halls]
        booths = self.expo.booths
        out = []
        for slot, booth in zip(live.tolist(), at.tolist()):
            info = av.info[slot]
            assert info is not None  # every active slot has its avatar's info
            session = sim.by_slot.get(slot)
            out.append(AvatarView(info.entity, info.name, halls[int(av.hall[slot])], float(av.pos[slot, 0]),
                                  float(av.pos[slot, 1]), info.staff_of, booths[booth].id if booth >= 0 else None,
                                  session is not None and session.peer is not None,
                                  None if session is None else session.visitor_id))
        return out

    def _others(self) -> list[tuple[str, LiveFrame]]:
        """In a cluster, the other hall processes' latest live frames (none when alone)."""
        gate = self.server.cluster
        return [] if gate is None else gate.live.others()

    def live(self) -> LiveFrame:
        """Every avatar's place, their names and the counts: of the whole cluster when this
        process is one (the others' latest frames added), else of this process."""
        own, others = frame(self.server.sim), self._others()
        return merged(own, others) if others else own

    def visitor_ids(self) -> dict[int, str]:
        """Entity -> visitor id of every avatar a visitor's session holds here: what moderation acts on."""
        return {s.entity: s.visitor_id for s in self.server.sim.sessions.values()}

    def census(self) -> Census:
        """The counts alone (the live map's places and names are not needed for them)."""
        return merged_census(census_of(self.server.sim), [other.census for _, other in self._others()])

    def visitors_per_hall(self) -> dict[str, int]:
        return self.census().per_hall

    def visitors_per_booth(self) -> dict[str, int]:
        return self.census().per_booth

    def alerts(self, crowd_threshold: int = CROWD_THRESHOLD, tick_budget: float = TICK_P99_BUDGET,
               census: Census | None = None) -> list[Alert]:
        out = []
        names = {hall.id: hall.name for hall in self.expo.halls}
        for hall, cx, cy, n in (census or self.census()).cells:
            if n > crowd_threshold:
                out.append(Alert("crowd", f"{n} visitors within {CROWD_CELL:g} m in {names[hall]} around "
                                          f"({(cx + 0.5) * CROWD_CELL:g}, {(cy + 0.5) * CROWD_CELL:g}) m "
                                          f"(threshold {crowd_threshold})"))
        p99, ticks = self.ticks.p99()
        if p99 is not None and p99 > tick_budget:
            out.append(Alert("tick", f"tick p99 up to {p99 * 1000:g} ms over the last {ticks} ticks "
                                     f"(budget {tick_budget * 1000:g} ms)"))
        watch = self.cluster_watch
        for gone in watch.departures() if watch is not None else ():
            seen = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(gone.last_seen))
            if gone.how is Gone.DOWN:
                out.append(Alert("process-down", f"hall process {gone.process} ({gone.url}) is down: last seen {seen} "
                                                 "(no clean stop)", gone.process))
            else:
                out.append(Alert("process-left", f"hall process {gone.process} ({gone.url}) stopped cleanly at {seen}",
                                 gone.process))
        return out

    @property
    def cluster_watch(self) -> ProcessWatch | None:
        """The cluster's processes as this one sees them; None when it runs alone."""
        gate = self.server.cluster
        return None if gate is None else gate.node.watch

    def cluster_processes(self) -> list[LiveProcess] | None:
        watch = self.cluster_watch
        return None if watch is None else watch.processes()

    def dismiss_process_alert(self, process: str) -> bool:
        watch = self.cluster_watch
        return watch is not None and watch.dismiss(process)

    def tick_p99(self) -> float | None:
        return self.ticks.p99()[0]

    # ------------------------------------------------------------------ commerce

    async def _run(self, method: str, *args: Any) -> Any:
        """A commerce store call on its database thread (SQLite or PostgreSQL alike)."""
        commerce = self.server.commerce
        assert commerce is not None
        return await commerce.db.run(getattr(commerce.store, method), *args)

    async def sales(self) -> list[Sale]:
        """Fulfilled orders by booth and currency."""
        if self.server.commerce is None:
            return []
        return [Sale(*row) for row in await self._run("sales")]

    async def orders(self, booth_id: str, limit: int = 200) -> list[OrderView]:
        if self.server.commerce is None:
            return []
        return [OrderView(o.id, o.visitor, o.sku, o.qty, o.amount_minor, o.currency, o.status, o.created_at)
                for o in await self._run("booth_orders", booth_id, limit)]

    async def live_stock(self, booth_id: str) -> dict[str, int]:
        if self.server.commerce is not None:
            return await self._run("stock_of", booth_id)
        booth = self.expo.booth(booth_id)
        return {} if booth is None else {pr.sku: pr.stock for pr in booth.catalogue}

    async def set_stock(self, booth_id: str, sku: str, available: int) -> None:
        """The exhibitor says how many units it has now: the live count the visitors buy from."""
        assert available >= 0
        if self.server.commerce is not None:
            await self._run("set_stock", booth_id, sku, available)

    async def balances(self, booth_id: str) -> list[tuple[str, int]]:
        """(currency, minor units) of each merchant account of the booth at the bank."""
        commerce = self.server.commerce
        if commerce is None:
            return []
        booth = self.expo.booth(booth_id)
        out: list[tuple[str, int]] = []
        for currency in sorted({pr.currency for pr in booth.catalogue} if booth else ()):
            account_id = await self._run("merchant", booth_id, currency)
            if account_id is not None:
                account = await commerce.bank.get_account(account_id)
                out.append((currency, account.balance))
        return out

    # ------------------------------------------------------------------ certificates of origin

    @property
    def has_collectibles(self) -> bool:
        return self.server.collectibles is not None

    async def editions(self, booth_id: str) -> list[EditionOut]:
        """The booth's editions of certificates as the bank has them (issued so far included),
        by product."""
        collectibles = self.server.collectibles
        if collectibles is None:
            return []
        opened = await collectibles.db.run(collectibles.store.editions)
        return [await collectibles.bank.get_edition(edition_id) for booth, _sku, edition_id in opened if booth == booth_id]

    async def certificate(self, serial: str) -> tuple[ItemOut, str | None] | None:
        """A collectible by serial as the bank's ledger has it now (public), with the booth whose
        edition it is (None: the organiser's, or another server's); None if the bank has none.
        ``serial`` must look like one (it goes into the bank's URL)."""
        from bank.client import BankAPIError

        collectibles = self.server.collectibles
        assert collectibles is not None and SERIAL.fullmatch(serial), serial
        try:
            item = await collectibles.bank.get_item(serial)
        except BankAPIError as error:
            if error.status == 404:
                return None
            raise
        opened = await collectibles.db.run(collectibles.store.editions)
        return item, next((booth for booth, _sku, edition_id in opened if edition_id == item.edition.id), None)

    async def open_edition(self, booth_id: str, sku: str, size: int, batch: str, origin: str) -> EditionOut:
        """An edition of ``size`` certificates of origin for one of the booth's products: each
        buyer of it gets the next serial. CollectibleError says why not."""
        assert self.server.collectibles is not None
        return await self.server.collectibles.open_edition(booth_id, sku, size, batch, origin)

    # ------------------------------------------------------------------ B2B deals

    @property
    def has_deals(self) -> bool:
        return self.server.deals is not None

    async def deals(self, booth_id: str) -> list[Deal]:
        """The booth's requests for quotation and the deals they became, newest first."""
        if self.server.deals is None:
            return []
        return list(reversed(await self.server.deals.of_booth(booth_id)))

    async def quote_deal(self, booth_id: str, deal_id: str, tiers: tuple[tuple[int, str], ...], currency: str,
                         valid_days: int, lead_days: int, deposit_percent: int) -> Deal:
        """The exhibitor's quotation, as its staff would send it in the hall (DealRefused says why not);
        the buyer is told at once."""
        assert self.server.deals is not None
        return await self.server.deals.answer_rfq(deal_id, booth_id, CONSOLE, tiers, currency, valid_days * 86400.0,
                                                  lead_days, deposit_percent)

    async def ship_deal(self, booth_id: str, deal_id: str) -> Deal:
        """Shipped: the deposit is paid to the booth and the buyer billed the balance."""
        assert self.server.deals is not None
        return await self.server.deals.confirm_shipment(deal_id, booth_id)

    async def decline_deal(self, booth_id: str, deal_id: str) -> Deal:
        """The booth calls the deal off (a deposit held goes back to the buyer)."""
        assert self.server.deals is not None
        return await self.server.deals.cancel("", booth_id, deal_id)

    # ------------------------------------------------------------------ leads, meetings, analytics

    async def _people(self, method: str, *args: Any) -> Any:
        """A call on the exhibitor stores (server.exhibitors) on their database thread."""
        services = self.server.exhibitors
        assert services is not None
        return await services.db.run(getattr(services.people, method), *args)

    @property
    def has_exhibitor_stores(self) -> bool:
        return self.server.exhibitors is not None

    async def leads(self, booth_id: str) -> list[Lead]:
        return await self._people("leads", booth_id) if self.has_exhibitor_stores else []

    async def annotate_lead(self, booth_id: str, visitor: str, notes: str, rating: int | None) -> Lead:
        """Staff notes and rating of one of the booth's leads; LeadError or KeyError if not."""
        return await self._people("annotate", booth_id, visitor, check_notes(notes), rating)

    async def leads_csv(self, booth_id: str) -> bytes:
        """The booth's leads as the exhibitors' CSV (a card only where it was exchanged)."""
        services = self.server.exhibitors
        if services is None:
            return to_csv([])
        people, log = services.people, services.events

        def export() -> bytes:  # on the stores' thread: the event log may be long
            leads = people.leads(booth_id)
            cards = people.cards([lead.visitor for lead in leads])
            return to_csv(csv_rows(leads, cards, looked_at(log.events(booth_id), booth_id)))

        return await services.db.run(export)

    async def slots(self, booth_id: str) -> list[tuple[Slot, bool]]:
        """The booth's meeting slots from now on, each with whether it is booked."""
        return await self._people("slots", booth_id, self.wall() - 3600) if self.has_exhibitor_stores else []

    async def booked_by(self, booth_id: str, slots: list[tuple[Slot, bool]]) -> dict[str, str]:
        """Slot id -> the name of the visitor who booked it, for the booth's calendar: read
        from each host's bookings (a host's list holds the bookings of the slots they host)."""
        out: dict[str, str] = {}
        for host in sorted({slot.host for slot, taken in slots if taken}):
            for booking in await self._people("bookings_of", host):
                if booking.slot.booth == booth_id and booking.status is BookingStatus.BOOKED:
                    out[booking.slot.id] = booking.visitor_name
        return out

    def staff_here(self, booth_id: str) -> list[tuple[str, str]]:
        """(visitor id, display name) of the booth's staff in the hall now: who may host a slot."""
        return sorted(((s.visitor_id, s.name) for s in self.server.sim.sessions.values() if s.staff_of == booth_id),
                      key=lambda pair: pair[1])

    async def publish_slot(self, booth_id: str, host_id: str, starts_at: float, minutes: int) -> Slot:
        """A meeting slot hosted by the booth's staff member ``host_id`` (a visitor id, as when
        staff publish in the hall, so bookings reach them and their own slots are checked for
        overlaps); MeetingError says why not (not staff here, past, length, overlap)."""
        from .people.meetings import MeetingError

        host = next((name for visitor_id, name in self.staff_here(booth_id) if visitor_id == host_id), None)
        if host is None:
            raise MeetingError("not_allowed", "the host must be one of the booth's staff in the hall (with the booth's pass)")
        slot = Slot(f"slot_{secrets.token_urlsafe(12)}", booth_id, host_id, host, starts_at, minutes)
        return await self._people("publish_slot", slot, self.wall())

    async def figures(self, booth_id: str) -> BoothFigures | None:
        services = self.server.exhibitors
        if services is None:
            return None
        log = services.events
        return await services.db.run(lambda: booth_figures(log.events(booth_id), booth_id))

    async def heatmap(self, hall_id: str, minutes: float = HEATMAP_MINUTES, cell: float = 2.0) -> Heatmap | None:
        """Where visitors stood in the last ``minutes``: read and binned on the stores' thread,
        as a busy hour is millions of samples and the event loop must not bin them."""
        hall = self.expo.hall(hall_id)
        services = self.server.exhibitors
        if hall is None or services is None:
            return None
        events, since = services.events, self.wall() - minutes * 60
        return await services.db.run(lambda: heatmap(events.positions(hall_id, since), hall, cell))

    # ------------------------------------------------------------------ moderation

    def resolve(self, who: str) -> Session:
        """The one connected visitor ``who`` names: a visitor id, a tagged name (``Li Wei #K3F9``)
        or a display name that only one visitor here has. WhoError says why not."""
        who = who.strip()
        if not who:
            raise WhoError("whom? pick a visitor from the list or type a name")
        sessions = list(self.server.sim.sessions.values())
        by_id = [s for s in sessions if s.visitor_id == who]
        if by_id:
            return by_id[0]
        key = who.casefold()
        chosen = [s for s in sessions if s.chosen_name.casefold() == key]
        if len(chosen) > 1:  # the first namesake is shown untagged: its name alone is no answer either
            tagged = ", ".join(sorted(s.name for s in chosen))
            raise WhoError(f"{len(chosen)} visitors here are called {who!r}: {tagged}; pick one from the list")
        shown = chosen or [s for s in sessions if s.name.casefold() == key]
        if not shown:
            raise WhoError(f"no visitor {who!r} is here")
        if len(shown) > 1:  # someone chose a name that reads like another's tagged one
            raise WhoError(f"{len(shown)} visitors here are shown as {who!r}; pick one from the list")
        return shown[0]

    def _sanctioned(self, who: str, kind: Kind) -> Sanction | None:
        """The sanction in force on ``who``: a visitor id, a connected visitor, or the one name
        a sanction in force was recorded under (the person may have left)."""
        who = who.strip()
        in_force = [s for s in self.moderation.sanctions() if s.kind == kind]
        by_id = next((s for s in in_force if s.visitor == who), None)
        if by_id is not None:
            return by_id
        try:
            visitor_id = self.resolve(who).visitor_id
            return next((s for s in in_force if s.visitor == visitor_id), None)
        except WhoError:
            named = [s for s in in_force if s.name.casefold() == who.casefold()]
            if len(named) > 1:
                raise WhoError(f"{len(named)} visitors {kind.value}d as {who!r}: "
                               f"{', '.join(s.visitor for s in named)}; give the visitor id") from None
            if not named:
                raise
            return named[0]

    async def reach(self, who: str) -> Session | Presence:
        """The visitor ``who`` names: here (``resolve``), or, in a cluster, the one online at
        another hall process under that name (the live map shows them all)."""
        try:
            return self.resolve(who)
        except WhoError:
            gate = self.server.cluster
            if gate is None:
                raise
            elsewhere = [p for p in await gate.node.find_named(who.strip()) if p.process != gate.node.id]
            if len(elsewhere) > 1:
                raise WhoError(f"{len(elsewhere)} visitors at other hall processes are called {who!r}: "
                               f"{', '.join(p.visitor for p in elsewhere)}; give the visitor id") from None
            if not elsewhere:
                raise
            return elsewhere[0]

    def mute(self, target: Session | Presence, reason: str, minutes: float | None) -> Sanction:
        """``target`` as ``reach`` found it. At another hall process the mute holds from that
        process's next reload of the sanctions."""
        visitor, name = _id_and_name(target)
        return self.moderation.impose(visitor, name, Kind.MUTE, reason, minutes, "organiser")

    def unmute(self, who: str) -> bool:
        sanction = self._sanctioned(who, Kind.MUTE)
        return sanction is not None and self.moderation.lift(sanction.visitor, Kind.MUTE)

    def ban(self, target: Session | Presence, reason: str, minutes: float | None) -> Sanction:
        """Ban and kick: a ban is enforced at every Hello, on the visitor id its token proves.
        A visitor at another hall process is removed by that process at its next reload."""
        visitor, name = _id_and_name(target)
        sanction = self.moderation.impose(visitor, name, Kind.BAN, reason, minutes, "organiser")
        if isinstance(target, Session):
            self.kick(visitor, f"banned: {sanction.reason}")
        return sanction

    def unban(self, who: str) -> bool:
        sanction = self._sanctioned(who, Kind.BAN)
        return sanction is not None and self.moderation.lift(sanction.visitor, Kind.BAN)

    def remove(self, target: Session | Presence, reason: str) -> bool:
        """The console's Kick: a visitor of this process. One at another hall process is named
        as such (a ban of a few minutes removes them), rather than as no one."""
        if not isinstance(target, Session):
            raise WhoError(f"{target.name} is at another hall process ({target.url}): "
                           "ban them for a few minutes to remove them")
        return self.kick(target.visitor_id, reason)

    def kick(self, who: str, reason: str) -> bool:
        session = self.resolve(who)
        self.server.sim.kick(session, reason.strip() or "removed by the organisers")
        self.server.flush()
        return True

    def sanctions(self) -> list[Sanction]:
        return self.moderation.sanctions()

    def reports(self) -> list[Report]:
        return self.moderation.reports()

    def handle_report(self, report_id: int) -> bool:
        return self.moderation.handle_report(report_id, "organiser")

    def announce(self, text: str, hall_id: str | None) -> int:
        """An announcement to one hall (or every hall with None); returns how many got it."""
        text = text.strip()
        if not text:
            raise ValueError("an announcement needs some text")
        if len(text) > MAX_CHAT_LEN:
            raise ValueError(f"an announcement has at most {MAX_CHAT_LEN} characters")
        sim = self.server.sim
        hall = None
        if hall_id is not None:
            if hall_id not in sim.hall_index:
                raise ValueError(f"no hall {hall_id!r}")
            hall = sim.hall_index[hall_id]
        line = p.encode(p.ChatLine(p.Channel.ANNOUNCEMENT, 0, ORGANISERS, text, None, sim.clock.monotonic()))
        reached = 0
        for session in sim.sessions.values():
            if session.peer is not None and (hall is None or int(sim.avatars.hall[session.slot]) == hall):
                session.peer.queue(line)
                reached += 1
        self.server.flush()
        return reached

    # ------------------------------------------------------------------ the world files

    @property
    def world_root(self) -> Path | None:
        return self.expo.root

    async def reload_world(self) -> list[str]:
        """Apply the world files now (after the console wrote one) instead of at the watcher's
        next poll; the problems if they do not load (the running world stays)."""
        root = self.world_root
        if root is None:
            return ["the running expo has no directory"]
        watcher = self.server.watcher
        if watcher is not None:  # it remembers what it applied, so it will not apply it twice
            await watcher.check_once()
            return []
        expo, problems = check_expo(root)
        if expo is None:
            return [str(problem) for problem in problems]
        await self.server.apply_world(expo)
        return []


def _id_and_name(target: Session | Presence) -> tuple[str, str]:
    return (target.visitor_id, target.name) if isinstance(target, Session) else (target.visitor, target.name)
