"""Direct messages and "find a person", by the name others see a visitor by.

In one process both are a look-up among the simulation's sessions. In a cluster, a person
not here may be at another process: ``remote`` (server.cluster.people) asks the cluster's
presence directory and that process. Names are matched casefolded; here a display name
carries its tag when two visitors share a name, so it names one person (across processes
several may share one: server.cluster.people says what then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import protocol as p

if TYPE_CHECKING:
    from .simulation import Session, Simulation


class RemotePeople(Protocol):
    """The cluster's side: called when the person is not in this process."""

    def direct(self, sender: Session, to: str, text: str) -> None: ...

    def find(self, asker: Session, name: str) -> None: ...


class DirectMessages:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.remote: RemotePeople | None = None

    def here(self, name: str) -> Session | None:
        """The session here whose display name is ``name`` (casefolded), if any."""
        key = name.casefold()
        return next((s for s in self.sim.sessions.values() if s.name.casefold() == key), None)

    def send(self, sender: Session, message: p.DirectMessage) -> None:
        to = self.here(message.to)
        if to is None and self.remote is not None:
            self.remote.direct(sender, message.to, message.text)
            return
        if to is None:
            raise p.ProtocolError(p.ErrorCode.UNKNOWN, f"nobody called {message.to!r} is online")
        self.deliver(to, sender.name, message.text)
        sender.send(p.DirectLine(to.name, message.text, False, self.sim.clock.monotonic()))

    def deliver(self, to: Session, sender_name: str, text: str) -> None:
        to.send(p.DirectLine(sender_name, text, True, self.sim.clock.monotonic()))

    def find(self, asker: Session, message: p.FindPerson) -> None:
        found = self.here(message.name)
        if found is None and self.remote is not None:
            self.remote.find(asker, message.name)
            return
        hall = None if found is None else self.sim.expo.halls[int(self.sim.avatars.hall[found.slot])].id
        asker.send(p.PersonFound(found.name if found else message.name, found is not None, hall))
