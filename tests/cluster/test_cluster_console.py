"""The console and certificates across a cluster, as `make cluster` wires it: two hall
processes on a real nats-server and PostgreSQL, the bank on the same PostgreSQL posting
each webhook to both, the console at the first.

The organiser at the first process's console sees a visitor of the second on the live map
and in the counts (before, only the first process's own visitors, so a full hall read 0). A
ban decided there holds at the second process too; a visitor of the second can be banned from
the form by the name the map shows, and is removed there; a report filed at the second
reaches the console. Before, the second process had no moderation: the banned visitor joined
there, and the report was refused.

The exhibitor opens an edition at the first process's console; a visitor served by the
second buys the product and gets a certificate (before, the second process kept its own
SQLite list of editions and issued nothing). Her payment is settled by the webhook at her own
process, so the receipt reaches her without an ``OrderPaid`` (before, whichever process heard
first settled it, and the first one could not tell her). She gives the certificate to a
contact served by the first: both lists arrive at once, each from the process serving its
holder."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from processes import BIN, free_port, start, start_many, stop
from reading import next_of
from websockets.asyncio.client import ClientConnection, connect

import protocol as p
from bank.client import PlatformClient, VisitorClient
from server.cluster.local import NatsServer

pytestmark = pytest.mark.e2e
PLATFORM_KEY = "cluster-collectibles-platform-key"
WEBHOOK_SECRET = secrets.token_urlsafe(24)
BOOTH, SKU = "kz-altai-honey", "KZ-HONEY-500"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def cluster(nats_server: NatsServer, fresh_database: str, tmp_path: Path) -> Iterator[dict]:
    bank_port, console_port = free_port(), free_port()
    halls = [(free_port(), free_port()) for _ in "ab"]  # (its port, its webhooks' port)
    bank_url = f"http://127.0.0.1:{bank_port}"
    hooks = [arg for _, hook in halls for arg in ("--webhook-url", f"http://127.0.0.1:{hook}/bank/webhook")]
    bank = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", fresh_database,
                  "--secrets-dir", str(tmp_path / "bank"), "--platform-key", PLATFORM_KEY, "--holding-days", "0",
                  "--webhook-secret", WEBHOOK_SECRET, *hooks], f"{bank_url}/healthz", log=tmp_path / "bank.log")
    env = {"EXPO_BANK_PLATFORM_KEY": PLATFORM_KEY, "EXPO_BANK_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "EXPO_VISITOR_SECRET": secrets.token_urlsafe(24)}
    procs = [bank]
    try:
        procs += start_many(*({
            "args": [str(BIN / "expo-server"), "--port", str(port), "--cluster", nats_server.url, "--db", fresh_database,
                     "--bank-url", bank_url, "--webhook-port", str(hook), "--data-dir", str(tmp_path / name), "--no-watch",
                     *(["--console-port", str(console_port)] if name == "a" else [])],
            "health_url": f"http://127.0.0.1:{port}/healthz", "env": env, "log": tmp_path / f"{name}.log", "timeout": 240,
        } for name, (port, hook) in zip("ab", halls, strict=True)))
        yield {"bank": bank_url, "dsn": fresh_database, "halls": [f"ws://127.0.0.1:{port}/" for port, _ in halls],
               "console": f"http://127.0.0.1:{console_port}", "organiser": tmp_path / "a" / "console" / "organiser.token",
               "processes": procs[1:]}
    finally:
        stop(*procs)


async def login(http: httpx.AsyncClient, token: str) -> str:
    """The console's login as a browser does it; returns the landing page's CSRF field."""
    form = await http.get("/login")
    done = await http.post("/login", data={"token": token, "csrf": CSRF.search(form.text)[1]})
    assert done.status_code == 303, done.text
    return CSRF.search((await http.get(done.headers["location"])).text)[1]


async def open_edition_at_the_console(console: str, organiser_token: str) -> None:
    async with httpx.AsyncClient(base_url=console, timeout=10) as organiser, \
            httpx.AsyncClient(base_url=console, timeout=10) as exhibitor:
        csrf = await login(organiser, organiser_token)
        issued = await organiser.post("/organiser/exhibitors", data={"booth": BOOTH, "label": "honey", "csrf": csrf})
        token = re.search(r'<code id="issued-token">([^<]+)</code>', issued.text)[1]
        csrf = await login(exhibitor, token)
        opened = await exhibitor.post(f"/booth/{BOOTH}/editions", data={
            "sku": SKU, "size": "100", "batch": "2027-05", "origin": "Katon-Karagay, East Kazakhstan", "csrf": csrf})
        assert opened.status_code == 200 and "Opened: 100 certificates" in opened.text, opened.text[-2000:]


async def verified_visitor(url: str, name: str, document: str) -> tuple[ClientConnection, VisitorClient]:
    """Joined at ``url`` with a real-name-checked bank account linked."""
    ws = await connect(url, compression=None)
    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0)))
    welcome = await next_of(ws, p.Welcome)
    bank = VisitorClient(welcome.bank_url)
    await bank.open_account(name, "KZT")
    await bank.submit_kyc(f"{name} Testova", "1990-04-01", "KZ", document)
    await ws.send(p.encode(p.LinkAccount((await bank.account_proof(welcome.visitor_id)).proof)))
    await next_of(ws, p.AccountLinked)
    return ws, bank


async def test_an_edition_opened_at_one_process_certifies_a_purchase_at_the_other_and_a_gift_reaches_both(cluster):
    await open_edition_at_the_console(cluster["console"], cluster["organiser"].read_text().strip())
    first, second = cluster["halls"]
    ana, ana_bank = await verified_visitor(second, "Ana", "KZ123456")
    bea, bea_bank = await verified_visitor(first, "Bea", "KZ654321")
    try:
        await ana.send(p.encode(p.Order(BOOTH, SKU, 1, "honey-1")))
        status = await next_of(ana, p.OrderStatus, lambda m: m.key == "honey-1")
        await ana_bank.confirm_intent(status.intent_id)  # no OrderPaid: the bank's webhook settles it
        receipt = await next_of(ana, p.Receipt)  # from her own process (the other answers "served at another")
        [(serial, _title, sku, batch, origin, booth, order_id, _url)] = (
            await next_of(ana, p.Collectibles, lambda m: len(m.items) == 1, 15)).items
        assert (sku, batch, origin, booth, order_id) == (SKU, "2027-05", "Katon-Karagay, East Kazakhstan", BOOTH,
                                                         receipt.order_id)

        ana_account, bea_account = (await ana_bank.me()).id, (await bea_bank.me()).id
        async with PlatformClient(cluster["bank"], PLATFORM_KEY) as platform:  # as a card exchange records it
            await platform.add_contact(*sorted((ana_account, bea_account)), idempotency_key="contact-ana-bea")
        await ana_bank.gift_item(serial, bea_account)
        # the bank's item.gifted reaches both processes: each pushes its own holder's list, unasked
        [given] = (await next_of(bea, p.Collectibles)).items
        assert (given[0], given[5], given[6]) == (serial, BOOTH, receipt.order_id)
        assert (await next_of(ana, p.Collectibles)).items == ()
    finally:
        for ws in (ana, bea):
            await ws.close()
        for bank in (ana_bank, bea_bank):
            await bank.aclose()
    with psycopg.connect(cluster["dsn"]) as db:  # one certificate for the order, whichever process recorded it
        assert db.execute("SELECT serial, order_id FROM certificates").fetchall() == [(serial, receipt.order_id)]
    verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", cluster["dsn"]], capture_output=True, text=True,
                            env={**os.environ})
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_the_console_shows_the_visitors_of_every_hall_process(cluster):
    first, second = cluster["halls"]
    async with httpx.AsyncClient(base_url=cluster["console"], timeout=10) as organiser:
        await login(organiser, cluster["organiser"].read_text().strip())
        ws = await connect(second, compression=None)
        await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Cy Faraway", 0, 0)))
        await next_of(ws, p.Welcome)

        async def connected() -> int:
            page = (await organiser.get("/organiser")).text
            return int(re.search(r'<span id="connected">(\d+)</span>', page)[1])

        for _ in range(50):  # the other process publishes its frame once a second
            if await connected() == 1:
                break
            await asyncio.sleep(0.2)
        assert await connected() == 1
        async with organiser.stream("GET", "/organiser/live") as live:  # the map's frames
            async for line in live.aiter_lines():
                if line.startswith("data: ") and "Cy Faraway" in line:
                    frame = json.loads(line[6:])
                    break
        [(entity, name)] = frame["names"].items()
        assert name == "Cy Faraway" and ":" in entity  # another process's avatar, named apart from ours
        assert [row[0] for rows in frame["halls"].values() for row in rows] == [entity]
        await ws.close()  # her avatar waits for her to come back (a resume), so the process goes instead
        stop(cluster["processes"][1])
        for _ in range(50):  # its last frame too old: its visitors leave the map
            if await connected() == 0:
                break
            await asyncio.sleep(0.2)
        assert await connected() == 0


async def joined(url: str, name: str, token: str | None = None) -> tuple[ClientConnection, p.Message]:
    ws = await connect(url, compression=None)
    await ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, name, 0, 0, visitor_token=token)))
    return ws, await next_of(ws, (p.Welcome, p.Refused))


async def test_a_ban_holds_at_every_hall_process_and_every_report_reaches_the_console(cluster):
    first, second = cluster["halls"]
    async with httpx.AsyncClient(base_url=cluster["console"], timeout=10) as organiser:
        csrf = await login(organiser, cluster["organiser"].read_text().strip())
        dana, welcome = await joined(first, "Dana Spammer")
        banned = await organiser.post("/organiser/moderate", data={
            "action": "ban", "name": "Dana Spammer", "reason": "spam in the booth channel", "minutes": "", "csrf": csrf})
        assert banned.status_code == 200, banned.text[-1500:]
        await dana.close()
        for _ in range(40):  # the other process reloads the sanctions every 2 s
            ws, answer = await joined(second, "Dana Again", welcome.visitor_token)
            await ws.close()
            if isinstance(answer, p.Refused):
                break
            await asyncio.sleep(0.25)
        assert isinstance(answer, p.Refused) and answer.code == "banned" and "spam" in answer.message, answer

        # a visitor at the other process, banned from the form by the name the map shows: removed there
        gus, gus_welcome = await joined(second, "Gus Remote")
        for _ in range(40):  # her presence reaches the bucket a moment after her Welcome
            kicked = await organiser.post("/organiser/moderate", data={
                "action": "kick", "name": "Gus Remote", "reason": "", "minutes": "", "csrf": csrf})
            if "Gus Remote is at another hall process" in kicked.text:
                break
            await asyncio.sleep(0.25)
        assert "Gus Remote is at another hall process" in kicked.text  # not "no visitor is here"
        banned = await organiser.post("/organiser/moderate", data={
            "action": "ban", "name": "Gus Remote", "reason": "flooding", "minutes": "10", "csrf": csrf})
        assert "Gus Remote is banned for 10 min." in banned.text, banned.text[-1500:]
        closing = await next_of(gus, p.Closing, timeout=10)  # at that process's next reload
        assert closing.code == "kicked" and "flooding" in closing.message
        ws, again = await joined(second, "Gus Remote", gus_welcome.visitor_token)
        await ws.close()
        assert isinstance(again, p.Refused) and again.code == "banned"

        eli, _ = await joined(second, "Eli Reporter")
        fay, fay_welcome = await joined(second, "Fay Rude")
        await eli.send(p.encode(p.Report(fay_welcome.entity, "insults in the chat")))
        for _ in range(40):
            page = (await organiser.get("/organiser")).text
            if "insults in the chat" in page:
                break
            await asyncio.sleep(0.25)
        assert "insults in the chat" in page and "Eli Reporter" in page and "Fay Rude" in page
        for ws in (eli, fay):
            await ws.close()
