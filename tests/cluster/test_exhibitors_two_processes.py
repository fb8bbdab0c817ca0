"""Two expo-server processes sharing one PostgreSQL (``--db``): what one process decided
about cards and meetings holds in the other. A decline's cooldown, an exchange done, a card
set, and a slot booked are all the store's, not one process's memory."""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from processes import BIN, free_port, start_many, stop

import protocol as p
from server.staff import issue_pass

sys.path.insert(0, str(Path(__file__).parent.parent / "server" / "people"))
from wire import WireVisitor  # noqa: E402

pytestmark = pytest.mark.e2e
SECRET = secrets.token_urlsafe(16)
VISITOR_SECRET = secrets.token_urlsafe(32)  # the processes of one expo share it: a visitor is the same in both
BOOTH = "cn-yunnan-tea"


@pytest.fixture
def two_servers(fresh_database, tmp_path) -> Iterator[tuple[str, str]]:
    ports = [free_port(), free_port()]
    procs = start_many(*({"args": [str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(tmp_path / name),
                                   "--no-watch", "--db", fresh_database], "health_url": f"http://127.0.0.1:{port}/healthz",
                          "env": {"EXPO_STAFF_SECRET": SECRET, "EXPO_VISITOR_SECRET": VISITOR_SECRET},
                          "log": tmp_path / f"{name}.log"} for name, port in zip("ab", ports, strict=True)))
    yield f"ws://127.0.0.1:{ports[0]}/", f"ws://127.0.0.1:{ports[1]}/"
    stop(*procs)


TOKENS: dict[str, str] = {}  # each visitor's token from its first Welcome, presented again in the other process


def joined(stack: ExitStack, url: str, name: str, card: bool = True, staff: str | None = None) -> WireVisitor:
    v = WireVisitor(stack, url, name, issue_pass(SECRET, staff) if staff else None, TOKENS.get(name))
    TOKENS.setdefault(name, v.welcome.visitor_token)
    if card:
        v.send(p.SetCard(name, "Co", "CN", "Buyer", "en", "UTC", None, None))
        v.expect(p.CardSaved)
    return v


def test_what_one_process_decided_holds_in_the_other(two_servers):
    a, b = two_servers
    with ExitStack() as first:
        ana, bo = joined(first, a, "Ana"), joined(first, a, "Bo")
        cy, dee = joined(first, a, "Cy"), joined(first, a, "Dee")
        eve = joined(first, a, "Eve")
        ana.send(p.OfferCard(bo.entity))
        bo.send(p.AnswerCard(bo.expect(p.CardOffered).exchange_id, False))
        ana.expect(p.CardAnswer, where=lambda m: m.state == "declined")
        cy.send(p.OfferCard(dee.entity))
        dee.send(p.AnswerCard(dee.expect(p.CardOffered).exchange_id, True))
        cy.expect(p.CardShown)
        for v in (ana, bo, cy, dee, eve):
            v.send(p.Bye())
        staff = joined(first, a, "Aigerim", card=False, staff=BOOTH)
        staff.send(p.PublishSlot(time.time() + 3600, 15))
        slot_id = staff.expect(p.Slots).items[0][0]
        time.sleep(0.3)  # the Byes are through
        with ExitStack() as second:
            ana, bo = joined(second, b, "Ana", card=False), joined(second, b, "Bo", card=False)
            cy, dee = joined(second, b, "Cy", card=False), joined(second, b, "Dee", card=False)
            eve = joined(second, b, "Eve", card=False)
            ana.send(p.OfferCard(bo.entity))
            assert ana.expect(p.Error).code == "cooldown"  # Bo declined in the other process
            cy.send(p.OfferCard(dee.entity))
            assert "exchanged cards already" in cy.expect(p.Error).message
            eve.send(p.OfferCard(bo.entity))  # Eve's card was set in the other process
            assert eve.expect(p.CardAnswer).state == "offered"
            assert bo.expect(p.CardOffered).name == "Eve"
            ana.send(p.BookSlot(slot_id))  # a slot published in the first, booked in the second
            assert ana.expect(p.Booking).status == "booked"
            other = joined(first, a, "Fay", card=False)
            other.send(p.BookSlot(slot_id))
            assert other.expect(p.Error).code == "taken"
