"""Editions and certificates on PostgreSQL, for the cluster: SQLite's rows and rules
(``server.collectibles``) shared by every hall process. An exhibitor opens an edition at the
console of one process, and a buyer served by another process gets the certificate: with a
store per process, that process never heard of the edition and issued nothing."""

from __future__ import annotations

from server.pg import PgDatabase

from .collectibles import SCHEMA, Certificate

SCHEMA_LOCK = 0x65787043  # 'expC'


class PgCollectiblesStore:
    def __init__(self, dsn: str) -> None:
        self.pg = PgDatabase(dsn, SCHEMA, SCHEMA_LOCK)

    def edition(self, booth: str, sku: str) -> str | None:
        with self.pg.transaction() as db:
            row = db.execute("SELECT edition_id FROM editions WHERE booth = %s AND sku = %s", (booth, sku)).fetchone()
        return row["edition_id"] if row else None

    def save_edition(self, booth: str, sku: str, edition_id: str) -> None:
        """A new edition for a product replaces the old one (as SQLite's INSERT OR REPLACE)."""
        with self.pg.transaction() as db:
            db.execute("INSERT INTO editions VALUES (%s, %s, %s) "
                       "ON CONFLICT (booth, sku) DO UPDATE SET edition_id = EXCLUDED.edition_id", (booth, sku, edition_id))

    def editions(self) -> list[tuple[str, str, str]]:
        with self.pg.transaction() as db:
            rows = db.execute("SELECT booth, sku, edition_id FROM editions ORDER BY booth, sku").fetchall()
        return [(r["booth"], r["sku"], r["edition_id"]) for r in rows]

    def certified_orders(self) -> set[str]:
        with self.pg.transaction() as db:
            return {r["order_id"] for r in db.execute("SELECT order_id FROM certificates").fetchall()}

    def save_certificate(self, cert: Certificate) -> None:
        """Two processes recording the same order's certificate keep one row (the bank's
        idempotency key ``cert-<order>`` gave both the same serial)."""
        with self.pg.transaction() as db:
            db.execute("INSERT INTO certificates VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                       (cert.serial, cert.visitor, cert.order_id, cert.booth))

    def close(self) -> None:
        self.pg.close()
