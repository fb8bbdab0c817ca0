"""Where deals are kept: the DealStore interface and its SQLite implementation. Blocking;
the service calls it on its database thread. A deal is one row, written whole at each
transition, guarded by the state it moved from so two racing transitions cannot both land."""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from server.sqlite import connect, transaction

from .machine import Deal, DealState, Quotation, Tier

SCHEMA = """
CREATE TABLE IF NOT EXISTS deals (
    id TEXT PRIMARY KEY,
    buyer TEXT NOT NULL,
    key TEXT NOT NULL,
    booth TEXT NOT NULL,
    state TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (buyer, key)
);
CREATE INDEX IF NOT EXISTS deals_booth ON deals (booth);
CREATE INDEX IF NOT EXISTS deals_state ON deals (state);
"""


class StaleDeal(Exception):
    """The deal moved on since it was read (another transition won)."""


class DealStore(Protocol):
    def add(self, deal: Deal) -> Deal:
        """Store a new RFQ; the existing deal when the buyer's key was used already."""
        ...

    def get(self, deal_id: str) -> Deal | None: ...

    def save(self, deal: Deal, from_state: DealState) -> None:
        """Write ``deal`` if it is still in ``from_state``; StaleDeal otherwise."""
        ...

    def of_buyer(self, buyer: str) -> list[Deal]: ...

    def of_booth(self, booth: str) -> list[Deal]: ...

    def in_states(self, states: tuple[DealState, ...]) -> list[Deal]: ...


def _encode(deal: Deal) -> str:
    data = asdict(deal)
    data["state"] = deal.state.value
    if deal.quote is not None:
        data["quote"]["tiers"] = [[t.min_qty, str(t.unit_price)] for t in deal.quote.tiers]
    return json.dumps(data, sort_keys=True)


def _decode(text: str) -> Deal:
    data: dict[str, Any] = json.loads(text)
    data["state"] = DealState(data["state"])
    if data["quote"] is not None:
        q = data["quote"]
        data["quote"] = Quotation(tuple(Tier(n, Decimal(price)) for n, price in q["tiers"]), q["currency"],
                                  q["valid_until"], q["lead_days"], q["deposit_percent"])
    return Deal(**data)


class SqliteDealStore:
    def __init__(self, path: Path | str) -> None:
        self.db = connect(path, SCHEMA)

    def add(self, deal: Deal) -> Deal:
        with transaction(self.db) as db:
            row = db.execute("SELECT record FROM deals WHERE buyer = ? AND key = ?", (deal.buyer, deal.key)).fetchone()
            if row is not None:
                return _decode(row[0])
            db.execute("INSERT INTO deals (id, buyer, key, booth, state, record) VALUES (?, ?, ?, ?, ?, ?)",
                       (deal.id, deal.buyer, deal.key, deal.booth, deal.state.value, _encode(deal)))
        return deal

    def get(self, deal_id: str) -> Deal | None:
        row = self.db.execute("SELECT record FROM deals WHERE id = ?", (deal_id,)).fetchone()
        return _decode(row[0]) if row else None

    def save(self, deal: Deal, from_state: DealState) -> None:
        with transaction(self.db) as db:
            changed = db.execute("UPDATE deals SET state = ?, record = ? WHERE id = ? AND state = ?",
                                 (deal.state.value, _encode(deal), deal.id, from_state.value)).rowcount
            if changed != 1:
                raise StaleDeal(f"deal {deal.id} is no longer {from_state.value}")

    def _many(self, where: str, args: tuple) -> list[Deal]:
        return [_decode(r[0]) for r in self.db.execute(f"SELECT record FROM deals WHERE {where} ORDER BY rowid", args)]

    def of_buyer(self, buyer: str) -> list[Deal]:
        return self._many("buyer = ?", (buyer,))

    def of_booth(self, booth: str) -> list[Deal]:
        return self._many("booth = ?", (booth,))

    def in_states(self, states: tuple[DealState, ...]) -> list[Deal]:
        return self._many(f"state IN ({', '.join('?' * len(states))})", tuple(s.value for s in states))

    def close(self) -> None:
        self.db.close()


def open_deal_store(db_url: str | None, data_dir: Path) -> DealStore:
    """PostgreSQL at ``db_url`` (the cluster: every hall process sees the same deals), else
    ``deals.sqlite3`` in ``data_dir``."""
    if db_url:
        from .pg_store import PgDealStore

        return PgDealStore(db_url)
    return SqliteDealStore(data_dir / "deals.sqlite3")


