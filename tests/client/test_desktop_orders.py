"""The order history: receipts kept beside the wallet, one per order, newest first."""

from __future__ import annotations

import protocol as p
from client.desktop.orders import KEEP, OrderHistory, receipt_lines

SERVER = "ws://127.0.0.1:8765/"


def receipt(n: int) -> p.Receipt:
    return p.Receipt(f"ord_{n}", "kz-altai-honey", "KZ-HONEY-500", "Altai mountain honey, 500 g", 2, "9000.00", "KZT",
                     f"pi_{n}", 120.0 + n)  # settled_at: the server's monotonic clock, not a date


def test_receipts_are_kept_per_server_newest_first_and_a_resent_one_once(tmp_path):
    history = OrderHistory(tmp_path / "orders.json")
    assert history.receipts(SERVER) == []  # a first run
    assert history.add(SERVER, receipt(1), 1_800_000_000.0)
    assert history.add(SERVER, receipt(2), 1_800_000_600.0)
    assert not history.add(SERVER, receipt(1), 1_800_000_000.0)  # the same order's receipt again
    again = OrderHistory(tmp_path / "orders.json")  # the next run reads the file
    assert [r.order_id for r in again.receipts(SERVER.rstrip("/"))] == ["ord_2", "ord_1"]
    assert again.receipts("ws://elsewhere:1/") == []


def test_a_damaged_file_reads_as_empty_and_the_next_receipt_replaces_it(tmp_path):
    path = tmp_path / "orders.json"
    path.write_text("{not json", encoding="utf-8")
    history = OrderHistory(path)
    assert history.receipts(SERVER) == []
    assert history.add(SERVER, receipt(3), 1_800_000_000.0)
    assert [r.order_id for r in history.receipts(SERVER)] == ["ord_3"]
    path.write_text('{"servers": {"ws://127.0.0.1:8765": [{"order_id": "x"}, 7]}}', encoding="utf-8")
    assert history.receipts(SERVER) == []  # entries that do not read are skipped, not fatal


def test_only_the_newest_are_kept(tmp_path):
    history = OrderHistory(tmp_path / "orders.json")
    for n in range(KEEP + 3):
        history.add(SERVER, receipt(n), 1_800_000_000.0 + n)
    kept = history.receipts(SERVER)
    assert len(kept) == KEEP and kept[0].order_id == f"ord_{KEEP + 2}"


def test_a_receipt_reads_when_what_and_how_much_where_and_its_ids_in_the_visitors_zone(tmp_path):
    history = OrderHistory(tmp_path / "orders.json")
    for n in range(3):
        history.add(SERVER, receipt(n), 1_800_000_000.0 + n * 3600)  # received 2027-01-15 08:00 UTC on
    lines = receipt_lines(history.receipts(SERVER), {"kz-altai-honey": "Altai Bee Farms"}, "Asia/Almaty", limit=2)
    assert lines[:2] == ["2 × Altai mountain honey, 500 g  ·  KZT 9,000.00",
                         "    15 Jan 15:00 at Altai Bee Farms, order ord_2"]  # the newest, in UTC+5
    assert lines[-1] == "… and 1 older" and len(lines) == 5
    assert "15 Jan 10:00 at kz-altai-honey" in receipt_lines(history.receipts(SERVER), {}, "Nowhere/Atlantis")[1]  # UTC
