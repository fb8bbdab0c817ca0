"""Digital collectibles in the world, server side: an exhibitor's edition of certificates of
authenticity and origin for one catalogue product, a certificate issued to the buyer (at
the bank, as the platform) when the server fulfils a retail order for it, card exchanges
recorded at the bank as contacts (the only accounts a holder may give an item to), and the
visitor's collectibles as the bank's ledger has them.

The bank enforces the rules against speculation (fiat only, never split, no resale, gifts
between verified contacts after the holding period); the server only issues and records.
Each bank call carries an idempotency key derived from what it is for (the order, the pair
of visitors), so a retry issues nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

import protocol as p
from bank.client import BankAPIError, PlatformClient
from bank.schemas import EditionOut
from server.dbthread import DatabaseThread
from server.sqlite import connect, transaction

if TYPE_CHECKING:
    from server.simulation import Session, Simulation

log = logging.getLogger("expo.collectibles")


def verify_page(console_url: Callable[[], str | None], bank_url: str) -> Callable[[str], str]:
    """Where a certificate's link sends a person: the console's public page when we know an
    address people reach the console at, else the bank's API (JSON, but open to anyone)."""

    def link(serial: str) -> str:
        serial, console = quote(serial, safe=""), console_url()
        if console is not None:
            return f"{console.rstrip('/')}/certificates?serial={serial}"
        return f"{bank_url.rstrip('/')}/v1/items/{serial}"

    return link


SCHEMA = """
CREATE TABLE IF NOT EXISTS editions (
    booth TEXT NOT NULL, sku TEXT NOT NULL, edition_id TEXT NOT NULL UNIQUE, PRIMARY KEY (booth, sku));
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY, visitor TEXT NOT NULL, order_id TEXT NOT NULL UNIQUE, booth TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS certificates_visitor ON certificates (visitor);
"""


class CollectibleError(Exception):
    """An exhibitor's request the bank or the world refused; ``code`` says which rule."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Certificate:
    serial: str
    visitor: str
    order_id: str
    booth: str


class CollectiblesStore(Protocol):
    """Which edition certifies which product, and which certificate the server issued to whom."""

    def edition(self, booth: str, sku: str) -> str | None: ...

    def save_edition(self, booth: str, sku: str, edition_id: str) -> None: ...

    def editions(self) -> list[tuple[str, str, str]]:
        """(booth, sku, edition id) of every edition opened at this expo."""
        ...

    def certified_orders(self) -> set[str]: ...

    def save_certificate(self, cert: Certificate) -> None: ...

    def close(self) -> None: ...


class SqliteCollectiblesStore:
    """The store of one process: ``collectibles.sqlite3`` in its data directory."""

    def __init__(self, path: Path | str) -> None:
        self.db = connect(path, SCHEMA)

    def edition(self, booth: str, sku: str) -> str | None:
        row = self.db.execute("SELECT edition_id FROM editions WHERE booth = ? AND sku = ?", (booth, sku)).fetchone()
        return row[0] if row else None

    def save_edition(self, booth: str, sku: str, edition_id: str) -> None:
        with transaction(self.db) as db:
            db.execute("INSERT OR REPLACE INTO editions VALUES (?, ?, ?)", (booth, sku, edition_id))

    def editions(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self.db.execute("SELECT booth, sku, edition_id FROM editions ORDER BY booth, sku")]

    def certified_orders(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT order_id FROM certificates")}

    def save_certificate(self, cert: Certificate) -> None:
        with transaction(self.db) as db:
            db.execute("INSERT OR IGNORE INTO certificates VALUES (?, ?, ?, ?)", (cert.serial, cert.visitor, cert.order_id, cert.booth))

    def close(self) -> None:
        self.db.close()


def open_collectibles_store(db_url: str | None, data_dir: Path) -> CollectiblesStore:
    """PostgreSQL at ``db_url`` (the cluster: an edition opened at one hall process's console
    certifies the purchases made at every other), else ``collectibles.sqlite3`` in ``data_dir``."""
    if db_url:
        from .collectibles_pg import PgCollectiblesStore

        return PgCollectiblesStore(db_url)
    return SqliteCollectiblesStore(data_dir / "collectibles.sqlite3")


AccountOf = Callable[[str], Awaitable[str | None]]  # a visitor's linked bank account, or None
MerchantOf = Callable[[str, str], Awaitable[str | None]]  # a booth's merchant account in a currency
FulfilledOf = Callable[[str, str], Awaitable[list[tuple[str, str, float]]]]  # (order, visitor, when) of a product
VisitorsOf = Callable[[str], Awaitable[list[str]]]  # the visitors who linked a bank account


class Collectibles:
    def __init__(self, sim: Simulation, store: CollectiblesStore, bank: PlatformClient, verify_url: Callable[[str], str],
                 account_of: AccountOf, merchant_of: MerchantOf, fulfilled_of: FulfilledOf | None = None,
                 visitors_of: VisitorsOf | None = None) -> None:
        """``verify_url``: where a person checks a serial (the console's page, or the bank's API)."""
        self.sim = sim
        self.store = store
        self.bank = bank
        self.verify_url = verify_url
        self.db = DatabaseThread("collectibles-store")
        self.account_of = account_of
        self.merchant_of = merchant_of
        self.fulfilled_of = fulfilled_of
        self.visitors_of = visitors_of
        self._tasks: set[asyncio.Task] = set()

    async def close(self) -> None:
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)
        await self.bank.aclose()
        self.db.close()

    def _spawn(self, work: Awaitable[object], what: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("collectibles: %s failed", what)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ exhibitors

    async def open_edition(self, booth_id: str, sku: str, size: int, batch: str, origin: str,
                           currency: str | None = None) -> EditionOut:
        """An exhibitor's edition of ``size`` certificates for one catalogue product (from code
        or the console). Free to the buyer: the purchase is the payment. ``currency`` is the
        product's unless given; anything but fiat is the bank's ``not_fiat_currency``."""
        booth = self.sim.expo.booth(booth_id)
        product = booth.product(sku) if booth else None
        if booth is None or product is None:
            raise CollectibleError("unknown_product", f"no product {sku!r} at booth {booth_id!r}")
        issuer = await self.merchant_of(booth.id, product.currency)
        if issuer is None:
            raise CollectibleError("unknown_booth", f"{booth.id} has no bank account yet")
        try:
            edition = await self.bank.create_edition(
                issuer, issuer_kind="exhibitor", kind="certificate", title=f"{product.name[:80]}: certificate of origin",
                size=size, currency=currency or product.currency, product=sku, batch=batch, origin=origin,
                idempotency_key=f"edition-{booth.id}-{sku}-{batch}")
        except BankAPIError as error:
            raise CollectibleError(error.code, error.message) from None
        await self.db.run(self.store.save_edition, booth.id, sku, edition.id)
        return edition

    # ------------------------------------------------------------------ hooks

    def order_fulfilled(self, visitor: str, order_id: str, booth: str, sku: str) -> None:
        """Commerce fulfilled an order: a certificate if the product has an edition."""
        self._spawn(self._certify(visitor, order_id, booth, sku), "certificate")

    async def _certify(self, visitor: str, order_id: str, booth: str, sku: str) -> None:
        edition = await self.db.run(self.store.edition, booth, sku)
        holder = await self.account_of(visitor)
        if edition is None or holder is None:
            return
        item = await self.bank.issue_item(edition, holder, order_id=order_id, idempotency_key=f"cert-{order_id}")
        await self.db.run(self.store.save_certificate, Certificate(item.serial, visitor, order_id, booth))
        log.info("certificate issued", extra={"serial": item.serial, "order": order_id})
        await self.send(visitor)

    def catch_up_soon(self) -> None:
        """At start, in the background: the certificates owed for orders fulfilled while no
        hook could issue them (the server killed between fulfilment and issue, or orders the
        start's reconciliation settled before the hook was in place)."""
        self._spawn(self.catch_up(), "catch-up")

    async def catch_up(self) -> int:
        """Issue every certificate owed: a fulfilled order of a product with an edition, paid
        since the edition opened, without a certificate here. The bank's idempotency key
        (``cert-<order>``) makes one issued before a crash come back, never a second one.
        Returns how many were issued (or found issued at the bank)."""
        if self.fulfilled_of is None:
            return 0
        done = await self.db.run(self.store.certified_orders)
        issued = 0
        for booth, sku, edition_id in await self.db.run(self.store.editions):
            since = (await self.bank.get_edition(edition_id)).created_at.timestamp()
            for order_id, visitor, fulfilled_at in await self.fulfilled_of(booth, sku):
                if order_id not in done and fulfilled_at >= since:
                    await self._certify(visitor, order_id, booth, sku)
                    issued += 1
        if issued:
            log.info("certificates caught up", extra={"issued": issued})
        return issued

    def item_gifted(self, from_account: str, to_account: str) -> None:
        """The bank says an item changed hands: both holders' lists, pushed to them here."""
        self._spawn(self._gifted(from_account, to_account), "gift")

    async def _gifted(self, *accounts: str) -> None:
        if self.visitors_of is None:
            return
        for account in accounts:
            for visitor in await self.visitors_of(account):
                if self.sim.serves(visitor):  # joined here: elsewhere, the process serving them tells them
                    await self.send(visitor)

    def cards_exchanged(self, one: str, other: str) -> None:
        """Two visitors exchanged cards: the bank records their accounts as contacts."""
        self._spawn(self._contact(one, other), "contact")

    async def _contact(self, one: str, other: str) -> None:
        a, b = await self.account_of(one), await self.account_of(other)
        if a is None or b is None:
            log.info("cards exchanged without two linked accounts: no bank contact", extra={"a": one, "b": other})
            return
        first, second = sorted((a, b))
        await self.bank.add_contact(first, second, idempotency_key=f"contact-{first}-{second}")

    # ------------------------------------------------------------------ visitors

    def handle(self, session: Session, message: p.Message) -> None:
        """``QueryCollectibles`` (a PeopleDesk, like the others beside the simulation)."""
        self._spawn(self._answer(session.visitor_id), "query")

    async def _answer(self, visitor: str) -> None:
        """The list, or ``Error(bank_error)`` when the bank cannot say (the asker would wait for nothing)."""
        try:
            await self.send(visitor)
        except BankAPIError as error:
            log.warning("collectibles: the bank did not list a visitor's items", extra={"code": error.code})
            self.sim.deliver(visitor, p.Error(p.ErrorCode.BANK_ERROR.value, f"the bank said {error.code}: "
                                              f"{error.message}"[:200], p.QueryCollectibles.TYPE))

    async def send(self, visitor: str) -> None:
        """What the bank says the visitor's account holds: the certificates of their purchases
        still theirs, and any a contact gave them."""
        holder = await self.account_of(visitor)
        held = (await self.bank.items_of(holder)).data if holder is not None else []
        booths = {edition: booth for booth, _sku, edition in await self.db.run(self.store.editions)}
        items = []
        for item in held:
            e = item.edition
            items.append((item.serial, e.title[:128], e.product or "", (e.batch or "")[:128], (e.origin or "")[:128],
                          booths.get(e.id, ""), item.order_id or "", self.verify_url(item.serial)))
        self.sim.deliver(visitor, p.Collectibles(tuple(items)))
