"""Deals on PostgreSQL, for the cluster: the SQLite store's rows and rules (one row a deal,
written whole, guarded by the state it moved from) shared by every hall process, so a deal
asked for in one hall is the same deal in the next. ``seq`` keeps SQLite's rowid order."""

from __future__ import annotations

from server.pg import PgDatabase

from .machine import Deal, DealState
from .store import SCHEMA as SQLITE_SCHEMA
from .store import StaleDeal, _decode, _encode

SCHEMA = SQLITE_SCHEMA.replace("id TEXT PRIMARY KEY,", "seq BIGSERIAL,\n    id TEXT PRIMARY KEY,", 1)  # + rowid's order
assert "seq BIGSERIAL" in SCHEMA
SCHEMA_LOCK = 0x65787044  # 'expD'


class PgDealStore:
    def __init__(self, dsn: str) -> None:
        self.pg = PgDatabase(dsn, SCHEMA, SCHEMA_LOCK)

    def add(self, deal: Deal) -> Deal:
        """Two processes adding the same buyer's key at once keep one deal: the unique key decides."""
        with self.pg.transaction() as db:
            db.execute("INSERT INTO deals (id, buyer, key, booth, state, record) VALUES (%s, %s, %s, %s, %s, %s) "
                       "ON CONFLICT (buyer, key) DO NOTHING",
                       (deal.id, deal.buyer, deal.key, deal.booth, deal.state.value, _encode(deal)))
            row = db.execute("SELECT record FROM deals WHERE buyer = %s AND key = %s", (deal.buyer, deal.key)).fetchone()
        assert row is not None
        return _decode(row["record"])

    def get(self, deal_id: str) -> Deal | None:
        with self.pg.transaction() as db:
            row = db.execute("SELECT record FROM deals WHERE id = %s", (deal_id,)).fetchone()
        return _decode(row["record"]) if row else None

    def save(self, deal: Deal, from_state: DealState) -> None:
        with self.pg.transaction() as db:
            changed = db.execute("UPDATE deals SET state = %s, record = %s WHERE id = %s AND state = %s",
                                 (deal.state.value, _encode(deal), deal.id, from_state.value)).rowcount
        if changed != 1:
            raise StaleDeal(f"deal {deal.id} is no longer {from_state.value}")

    def _many(self, where: str, args: tuple) -> list[Deal]:
        with self.pg.transaction() as db:
            rows = db.execute(f"SELECT record FROM deals WHERE {where} ORDER BY seq", args).fetchall()
        return [_decode(r["record"]) for r in rows]

    def of_buyer(self, buyer: str) -> list[Deal]:
        return self._many("buyer = %s", (buyer,))

    def of_booth(self, booth: str) -> list[Deal]:
        return self._many("booth = %s", (booth,))

    def in_states(self, states: tuple[DealState, ...]) -> list[Deal]:
        return self._many("state = ANY(%s)", ([s.value for s in states],))

    def close(self) -> None:
        self.pg.close()
