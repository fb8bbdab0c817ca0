"""Messages for a visitor's digital collectibles: certificates of authenticity and origin the
server issued them at the bank with their purchases (see server/collectibles.py).

Registered in the same tables as the core catalogue (client 57, server 121).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from .fields import CLEAN, ID, TOKEN
from .messages import Message, _register

LABEL = Annotated[str, Meta(max_length=128), CLEAN]
URL = Annotated[str, Meta(max_length=512), CLEAN]
# (serial, title, product sku, batch, origin, exhibitor booth, order id, verification URL)
COLLECTIBLE = tuple[TOKEN, LABEL, ID, LABEL, LABEL, ID, TOKEN, URL]


@_register
class QueryCollectibles(Message, tag=57, frozen=True):
    """The collectibles you hold: answered with Collectibles."""


@_register
class Collectibles(Message, tag=121, frozen=True):
    """The certificates you hold, as the bank's ledger has them now (a gift moves one away)."""

    items: Annotated[tuple[COLLECTIBLE, ...], Meta(max_length=1024)]


COLLECTIBLES_CLIENT_MESSAGES = (QueryCollectibles,)

__all__ = ["QueryCollectibles", "Collectibles", "COLLECTIBLES_CLIENT_MESSAGES"]
