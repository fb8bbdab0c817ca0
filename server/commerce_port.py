"""The seam between the simulation and commerce, both ways, and nothing more.

The simulation hands a visitor's purchase messages to a :class:`CommerceDesk` and never
waits for it; commerce answers through a :class:`CommerceOutlet` (the simulation) when the
store and the bank have spoken. Visitors are addressed by their visitor id, never by a
session or a name, so commerce does not depend on how sessions come and go, and another
implementation (PostgreSQL, another process) fits the same two interfaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import protocol as p
from world.model import Expo

if TYPE_CHECKING:
    from .store import OrderRecord

CommerceRequest = p.Order | p.OrderPaid | p.CancelOrder | p.QueryInventory | p.QueryStock
COMMERCE_REQUESTS = (p.Order, p.OrderPaid, p.CancelOrder, p.QueryInventory, p.QueryStock)


class CommerceDesk(Protocol):
    """What the simulation asks of commerce. ``submit`` returns at once; every answer (an
    ``OrderStatus``, ``Receipt``, ``Stock``, ``Inventory`` or ``Error``) comes back later
    through the outlet. The simulation has checked the request's booth and product exist."""

    def submit(self, visitor: str, request: CommerceRequest) -> None: ...

    def link_account(self, visitor: str, proof: str) -> None:
        """The visitor sent the bank's proof of their account (``LinkAccount``): once it
        checks, their orders are payable from that account alone (``AccountLinked``)."""
        ...


class CommerceOutlet(Protocol):
    """What commerce may do to the simulation: read the expo, tell a visitor, show a sale."""

    @property
    def expo(self) -> Expo: ...

    def deliver(self, visitor: str, message: p.Message) -> None:
        """Send ``message`` to the visitor's connection, if they have one now."""
        ...

    def announce_sale(self, booth: str, visitor: str) -> None:
        """Everyone near the booth sees the visitor's purchase happen."""
        ...

    def serves(self, visitor: str) -> bool:
        """The visitor is joined here now (in a cluster, another process may serve them)."""
        ...

    def order_recorded(self, order: OrderRecord, paid: bool) -> None:
        """An order was placed (``paid`` False) or fulfilled after payment: for the booth's
        analytics and leads."""
        ...
