"""Cards, exchanges, leads and meetings on PostgreSQL, for the cluster: the queries of
``SQLPeopleStore`` (the same schema and rules as SQLite), shared by every hall process.

One booking per slot holds across processes by the same partial unique index; while a
rule about one person's rows is checked (a host's slots for overlaps, a visitor's meetings
for clashes) the transaction holds an advisory lock on that person, which SQLite gets for
free from its one writer at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import DictRow

from server.pg import PgDatabase

from .store import SCHEMA, Db, SQLPeopleStore

SCHEMA_LOCK = 0x65787050  # 'expP'


class _Placeholders:
    """The connection with the queries' ``?`` placeholders passed on as psycopg's ``%s``
    (no query of the store has a literal ``?`` or ``%``)."""

    def __init__(self, conn: psycopg.Connection[DictRow]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        assert "%" not in sql, sql
        return self.conn.execute(sql.replace("?", "%s"), tuple(params))


class PgPeopleStore(SQLPeopleStore):
    def __init__(self, dsn: str) -> None:
        self.pg = PgDatabase(dsn, SCHEMA, SCHEMA_LOCK)

    def close(self) -> None:
        self.pg.close()

    @contextmanager
    def _transaction(self) -> Iterator[_Placeholders]:
        with self.pg.transaction() as conn:
            yield _Placeholders(conn)

    def _hold(self, db: Db, key: str) -> None:
        db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))
