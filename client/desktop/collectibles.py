"""The visitor's certificates of authenticity and origin, as the inventory shows them: each
one's serial, what it certifies (product, batch, origin, exhibitor, order) and where anyone
can check it at the bank. The bank's ledger is the record; the panel only reads it out, so a
certificate given away leaves the list with the next ``Collectibles``."""

from __future__ import annotations

from .i18n import _

Collectible = tuple[str, str, str, str, str, str, str, str]  # protocol.collectibles.COLLECTIBLE


def certificate_lines(items: list[Collectible] | tuple[Collectible, ...], exhibitors: dict[str, str],
                      products: dict[tuple[str, str], str]) -> list[str]:
    """A heading and six lines a certificate; nothing when there are none."""
    if not items:
        return []
    out = ["", _("Certificates ({count})").format(count=len(items))]
    for serial, title, sku, batch, origin, booth, order_id, url in items:
        out.append(f"◆ {title or products.get((booth, sku), sku)}")
        out.append("    " + _("No. {serial}").format(serial=serial))
        out.append("    " + _("batch {batch} · origin {origin}").format(batch=batch or "—", origin=origin or "—"))
        out.append("    " + _("from {exhibitor}").format(exhibitor=exhibitors.get(booth, booth) or "—"))
        out.append("    " + _("order {order}").format(order=order_id or "—"))
        out.append("    " + _("verify: {url}").format(url=url))
    out.append(_("L opens a certificate's check in your browser (again: the next one)"))
    out.append(_("H gives a certificate to someone you exchanged cards with"))
    return out


def next_to_check(items: list[Collectible] | tuple[Collectible, ...], last: str | None) -> Collectible | None:
    """The certificate L opens: the first, then the one after the last opened, round again."""
    if not items:
        return None
    serials = [item[0] for item in items]
    return items[(serials.index(last) + 1) % len(items)] if last in serials else items[0]


def giver(provenance: list[tuple[str, str]], names: dict[str, str]) -> str | None:
    """Who gave the item, from its provenance at the bank (kind, from account), the oldest
    first: the last move's giver, named as the bank's contact list names them, when the last
    move was a gift; None for an item issued to you (a purchase's certificate)."""
    if not provenance or provenance[-1][0] != "gift":
        return None
    return names.get(provenance[-1][1], _("a contact"))


def arrival(title: str, serial: str, given_by: str | None) -> str:
    """The toast for a certificate new to the visit."""
    if given_by is None:
        return _("A new certificate: {title}, No. {serial}. I shows it.").format(title=title, serial=serial)
    return _("{name} gave you a certificate: {title}, No. {serial}. I shows it.").format(
        name=given_by, title=title, serial=serial)
