"""The visitor's order history: every receipt the expo sent, kept on disk.

The server sends a purchase's Receipt once, when the payment settles, and keeps no list a
client can ask for (Inventory says what you hold, not what you paid and when). So the
client keeps them: ``orders.json`` beside the wallet, one entry per order id (a resent
receipt is the same order), per server, newest first, at most ``KEEP``. A receipt's
``settled_at`` is the server's monotonic clock, no date; the record keeps the visitor's wall
clock when it arrived instead (the server sends it as the payment settles). The I panel lists
them under what you hold. A damaged file reads as empty and is replaced on the next receipt;
nothing else is lost (the bank and the expo keep the real records).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import protocol as p
from client.private_file import read_json, write_private_json

from .i18n import _
from .pricing import money

KEEP = 200  # receipts kept per server


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    order_id: str
    booth: str
    sku: str
    product_name: str
    qty: int
    amount: str  # decimal string, as the receipt said
    currency: str
    intent_id: str
    received_at: float  # Unix seconds, the client's clock


def record_of(receipt: p.Receipt, received_at: float) -> ReceiptRecord:
    return ReceiptRecord(receipt.order_id, receipt.booth, receipt.sku, receipt.product_name, receipt.qty,
                         str(receipt.amount), receipt.currency, receipt.intent_id, received_at)


class OrderHistory:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, list[dict]]:
        servers = read_json(self.path).get("servers", {})
        return servers if isinstance(servers, dict) else {}

    def receipts(self, server: str) -> list[ReceiptRecord]:
        """This server's receipts, newest first; entries that do not read are skipped."""
        out = []
        for entry in self._read().get(server.rstrip("/"), []):
            try:
                out.append(ReceiptRecord(**entry))
            except TypeError:
                continue
        return sorted(out, key=lambda r: r.received_at, reverse=True)

    def add(self, server: str, receipt: p.Receipt, received_at: float) -> bool:
        """Keep a receipt (``received_at``: now, Unix seconds); False when that order is
        already kept (a resent receipt)."""
        record = record_of(receipt, received_at)
        kept = self.receipts(server)
        if any(r.order_id == record.order_id for r in kept):
            return False
        servers = self._read()
        servers[server.rstrip("/")] = [asdict(r) for r in [record, *kept][:KEEP]]
        write_private_json(self.path, {"servers": servers})
        return True


def receipt_lines(records: list[ReceiptRecord], exhibitors: dict[str, str], zone: str | None = None,
                  limit: int = 8) -> list[str]:
    """Two lines per receipt, for the panel: what and how much; when, where and the order
    id (what a visitor quotes to the exhibitor; the payment id stays in the file). Times in
    the visitor's time zone (their card's), else UTC."""
    try:
        tz = ZoneInfo(zone) if zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    out = []
    for r in records[:limit]:
        when = datetime.fromtimestamp(r.received_at, tz).strftime("%d %b %H:%M")
        out.append(f"{r.qty} × {r.product_name}  ·  {money(Decimal(r.amount), r.currency)}")
        out.append("    " + _("{when} at {booth}, order {order}").format(when=when, booth=exhibitors.get(r.booth, r.booth),
                                                                        order=r.order_id))
    if len(records) > limit:
        out.append(_("… and {count} older").format(count=len(records) - limit))
    return out
