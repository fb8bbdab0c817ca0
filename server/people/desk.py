"""What the simulation asks of the people service (cards, exchange, meetings): it hands
over a joined session's message and never waits; answers go to the session's peer later."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import protocol as p

if TYPE_CHECKING:
    from server.simulation import Session


class PeopleDesk(Protocol):
    def handle(self, session: Session, message: p.Message) -> None:
        """Take one of ``p.PEOPLE_CLIENT_MESSAGES``; a ProtocolError for what is refused at once."""
        ...
