"""Which commerce store a server uses: SQLite in its data directory (one process, the
embedded default) or PostgreSQL shared by every process of a cluster (``--db``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import ServerConfig
    from .pg_store import PgCommerceStore
    from .store import CommerceStore


def open_commerce_store(config: ServerConfig) -> CommerceStore | PgCommerceStore:
    if config.db_url:
        from .pg_store import PgCommerceStore

        return PgCommerceStore(config.db_url)
    from .store import CommerceStore

    return CommerceStore(config.data_dir / "commerce.sqlite3")
