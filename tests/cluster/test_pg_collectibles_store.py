"""The collectibles store on PostgreSQL keeps SQLite's rules: a product has one edition (a
new one replaces it), an order one certificate, whichever process records it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.collectibles import Certificate, CollectiblesStore, SqliteCollectiblesStore
from server.collectibles_pg import PgCollectiblesStore


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request, tmp_path: Path) -> Iterator[tuple[CollectiblesStore, CollectiblesStore]]:
    """Two stores as two hall processes open them: on PostgreSQL the same rows, on SQLite one file."""
    if request.param == "postgresql":
        dsn = request.getfixturevalue("fresh_database")
        pair: tuple[CollectiblesStore, CollectiblesStore] = (PgCollectiblesStore(dsn), PgCollectiblesStore(dsn))
    else:
        pair = (SqliteCollectiblesStore(tmp_path / "c.sqlite3"), SqliteCollectiblesStore(tmp_path / "c.sqlite3"))
    yield pair
    for store in pair:
        store.close()


def test_an_edition_opened_by_one_process_is_the_others_and_a_new_one_replaces_it(stores) -> None:
    one, other = stores
    assert other.edition("kz-honey", "HONEY-1") is None and other.editions() == []
    one.save_edition("kz-honey", "HONEY-1", "ed_a")
    one.save_edition("cn-tea", "PUER-1", "ed_b")
    assert other.edition("kz-honey", "HONEY-1") == "ed_a"
    other.save_edition("kz-honey", "HONEY-1", "ed_c")  # the exhibitor opened a new batch's edition
    assert one.editions() == [("cn-tea", "PUER-1", "ed_b"), ("kz-honey", "HONEY-1", "ed_c")]


def test_an_orders_certificate_is_recorded_once_by_either_process(stores) -> None:
    one, other = stores
    cert = Certificate("ed_a-001", "vis_1", "ord_1", "kz-honey")
    one.save_certificate(cert)
    other.save_certificate(cert)  # both processes fulfilled it: the bank gave both the same serial
    assert one.certified_orders() == other.certified_orders() == {"ord_1"}
