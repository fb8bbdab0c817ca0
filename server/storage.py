"""Which commerce store a server uses: SQLite in its data directory (one process, the
embedded default) or PostgreSQL shared by every process of a cluster (``--db``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import ServerConfig
    from .pg_store import PgCommerceStore
    from .store import CommerceStore


log = logging.getLogger("expo.commerce")


def open_commerce_store(config: ServerConfig) -> CommerceStore | PgCommerceStore:
    store: CommerceStore | PgCommerceStore
    if config.db_url:
        from .pg_store import PgCommerceStore

        store = PgCommerceStore(config.db_url)
    else:
        from .store import CommerceStore

        store = CommerceStore(config.data_dir / "commerce.sqlite3")
    if store.legacy_rows:
        log.warning("name-keyed rows of an older server kept under legacy ids, owned by no visitor",
                    extra={"rows": store.legacy_rows})
    return store
