"""Direct messages and find a person in one process, through the client core."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))

from client_link import World  # noqa: E402

import protocol as p  # noqa: E402
from client import events as ev  # noqa: E402


def test_a_direct_message_reaches_only_the_person_named_and_is_echoed_to_the_sender():
    world = World()
    ana, bo, cy = world.join("Ana"), world.join("Bo"), world.join("Cy")
    ana.core.direct_message("bo", "meet me at the carpets")  # names match casefolded
    world.tick()
    [line] = [e.line for e in bo.of(ev.DirectReceived)]
    assert (line.name, line.text, line.incoming) == ("Ana", "meet me at the carpets", True)
    [echo] = [e.line for e in ana.of(ev.DirectReceived)]
    assert (echo.name, echo.incoming) == ("Bo", False)
    assert not cy.of(ev.DirectReceived)


def test_a_direct_message_to_nobody_is_an_error_and_finding_says_where():
    world = World()
    ana, bo = world.join("Ana"), world.join("Bo")
    ana.core.direct_message("Zed", "hello?")
    world.tick()
    [error] = ana.of(ev.ErrorReceived)
    assert error.code == "unknown" and "Zed" in error.message and error.ref == p.DirectMessage.TYPE
    ana.core.find_person("BO")
    ana.core.find_person("Zed")
    world.tick()
    found = [e.found for e in ana.of(ev.PersonLocated)]
    assert found == [p.PersonFound("Bo", True, world.sim.expo.halls[0].id), p.PersonFound("Zed", False, None)]
    assert bo.core.joined
