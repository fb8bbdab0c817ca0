"""Certificates of authenticity and origin through a real world server and a real bank:
an exhibitor issues an edition of 100, a visitor who buys the product gets one bound to the
order, and every attempt to speculate with it is refused by the bank with a clear error:
selling it, giving it before the holding period, giving it to a stranger (cards exchanged
in the world are the only contacts), pricing an edition in anything but fiat."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
import pytest
from processes import BIN, free_port, start, stop
from support import small_expo
from test_commerce import PLATFORM_KEY, WEBHOOK_SECRET, Shopper, bank_process, server_config  # noqa: F401  (bank_process is a fixture)

import protocol as p
from bank.client import BankAPIError, PlatformClient
from server.app import ExpoServer
from server.collectibles import CollectibleError, verify_page

pytestmark = pytest.mark.e2e


@pytest.fixture
async def expo(bank_process, tmp_path):  # noqa: F811
    srv = ExpoServer(small_expo(), server_config(bank_process, tmp_path))
    await srv.start()
    yield srv
    await srv.stop()


def test_a_certificates_link_is_the_consoles_page_when_people_can_reach_the_console():
    behind_a_proxy = verify_page(lambda: "https://expo.example.org/console/", "http://10.0.0.5:8766")
    assert behind_a_proxy("kz-1 a/b") == "https://expo.example.org/console/certificates?serial=kz-1%20a%2Fb"
    no_console_address = verify_page(lambda: None, "http://10.0.0.5:8766/")
    assert no_console_address("kz-01") == "http://10.0.0.5:8766/v1/items/kz-01"  # the bank's API: JSON, open to anyone


async def verified(srv: ExpoServer, name: str, document: str) -> Shopper:
    shopper = await Shopper.join(srv, name, "KZT")
    await shopper.bank.submit_kyc(f"{name} Testova", "1990-04-01", "KZ", document)
    await shopper.send(p.SetCard(name, f"{name} LLP", "KZ", "Buyer", "ru", "Asia/Almaty", None, None))
    await shopper.expect(p.CardSaved)
    return shopper


async def exchange_cards(one: Shopper, other: Shopper) -> None:
    await one.send(p.OfferCard(other.welcome.entity))
    offer = await other.expect(p.CardOffered)
    await other.send(p.AnswerCard(offer.exchange_id, True))
    await other.expect(p.CardShown)


async def test_a_buyer_gets_a_certificate_that_cannot_be_sold_or_given_early_or_to_a_stranger(expo, bank_process):  # noqa: F811
    url, _, db = bank_process
    assert expo.collectibles is not None
    edition = await expo.collectibles.open_edition("kz-honey", "HONEY-1", 100, "2026-05", "Altai, KZ")
    assert (edition.size, edition.issued, edition.kind, edition.currency) == (100, 0, "certificate", "KZT")

    ana, bea, cy = await verified(expo, "Ana", "KZ123456"), await verified(expo, "Bea", "KZ654321"), await verified(expo, "Cy", "KZ777777")
    receipt = await ana.buy("HONEY-1")
    held = await ana.expect(p.Collectibles, lambda m: len(m.items) == 1)
    serial, title, sku, batch, origin, booth, order_id, verify_url = held.items[0]
    assert (sku, batch, origin, booth, order_id) == ("HONEY-1", "2026-05", "Altai, KZ", "kz-honey", receipt.order_id)
    assert serial.startswith(edition.id) and "certificate" in title
    public = httpx.get(verify_url).json()  # anyone verifies by serial, no credential
    me = await ana.bank.me()
    assert (public["holder_account_id"], public["order_id"], public["edition"]["issuer_account_id"]) == (
        me.id, receipt.order_id, edition.issuer_account_id)
    await ana.send(p.QueryCollectibles())
    assert (await ana.expect(p.Collectibles)).items == held.items

    sold = httpx.post(f"{url}/v1/items/{serial}/sell", headers={"Authorization": f"Bearer {ana.bank.token}",
                      "Idempotency-Key": "sell-1"}, json={"price": 100})
    assert (sold.status_code, sold.json()["error"]["code"]) == (403, "secondary_sale_forbidden")

    bea_account = (await bea.bank.me()).id
    with pytest.raises(BankAPIError) as stranger:  # no cards exchanged yet: not a contact
        await ana.bank.gift_item(serial, bea_account)
    assert (stranger.value.status, stranger.value.code) == (403, "not_a_contact")

    await exchange_cards(ana, bea)  # cards exchanged in the world: the server records contacts
    platform = PlatformClient(url, "commerce-test-platform-key")
    for _ in range(50):  # the contact is recorded just after the exchange is acknowledged
        try:
            await ana.bank.gift_item(serial, bea_account)
        except BankAPIError as error:
            if error.code == "holding_period":
                break
            assert error.code == "not_a_contact", error
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the exchange never became a bank contact")
    with pytest.raises(BankAPIError) as too_early:
        await ana.bank.gift_item(serial, bea_account)
    assert (too_early.value.status, too_early.value.code) == (409, "holding_period")
    with pytest.raises(BankAPIError) as still_stranger:
        await ana.bank.gift_item(serial, (await cy.bank.me()).id)
    assert still_stranger.value.code == "not_a_contact"
    assert (await platform.get_item(serial)).holder_account_id == me.id  # nothing moved

    with pytest.raises(CollectibleError) as not_fiat:
        await expo.collectibles.open_edition("kz-honey", "CARPET-1", 10, "2026-05", "Almaty, KZ", currency="BTC")
    assert not_fiat.value.code == "not_fiat_currency" and "BTC" in not_fiat.value.message
    await platform.aclose()
    for shopper in (ana, bea, cy):
        await shopper.close()
    verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", str(db)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.fixture
def bank_without_holding(tmp_path):
    """expo-bank with no holding period (``--holding-days 0``): a certificate can be given at once."""
    port, webhook_port = free_port(), free_port()
    proc = start([str(BIN / "expo-bank"), "serve", "--port", str(port), "--db", str(tmp_path / "bank.sqlite3"),
                  "--platform-key", PLATFORM_KEY, "--webhook-secret", WEBHOOK_SECRET, "--holding-days", "0",
                  "--webhook-url", f"http://127.0.0.1:{webhook_port}/bank/webhook"],
                 f"http://127.0.0.1:{port}/healthz", log=tmp_path / "bank.log")
    yield f"http://127.0.0.1:{port}", webhook_port, proc
    stop(proc)


async def test_a_certificate_given_to_a_contact_leaves_the_givers_list_and_joins_the_recipients(bank_without_holding,
                                                                                                 tmp_path):
    """The server lists what the bank says an account holds, so a gift received shows in the
    recipient's Collectibles (before, only the certificates issued to them did), pushed to both
    when the bank's webhook says the item changed hands."""
    url, webhook_port, _bank = bank_without_holding
    srv = ExpoServer(small_expo(), server_config((url, webhook_port, None), tmp_path))
    await srv.start()
    try:
        assert srv.collectibles is not None
        await srv.collectibles.open_edition("kz-honey", "HONEY-1", 100, "2026-05", "Altai, KZ")
        ana, bea = await verified(srv, "Ana", "KZ123456"), await verified(srv, "Bea", "KZ654321")
        receipt = await ana.buy("HONEY-1")
        [(serial, *_rest)] = (await ana.expect(p.Collectibles, lambda m: len(m.items) == 1)).items
        await exchange_cards(ana, bea)
        bea_account = (await bea.bank.me()).id
        for _ in range(50):  # the contact is recorded just after the exchange is acknowledged
            if [c.account_id for c in (await ana.bank.contacts()).data] == [bea_account]:
                break
            await asyncio.sleep(0.1)
        await ana.bank.gift_item(serial, bea_account)
        # the bank's item.gifted webhook: both lists pushed, unasked
        [given] = (await bea.expect(p.Collectibles)).items
        assert (given[0], given[5], given[6]) == (serial, "kz-honey", receipt.order_id)  # the buyer's order, for the record
        assert (await ana.expect(p.Collectibles)).items == ()
        await bea.send(p.QueryCollectibles())  # and asked, the same
        assert (await bea.expect(p.Collectibles)).items == (given,)
        for shopper in (ana, bea):
            await shopper.close()
    finally:
        await srv.stop()


async def test_asking_for_the_list_while_the_bank_is_down_gets_a_clear_error(bank_without_holding, tmp_path):
    """Before, the question went unanswered: the asker waited for a list that never came."""
    url, webhook_port, bank = bank_without_holding
    srv = ExpoServer(small_expo(), server_config((url, webhook_port, None), tmp_path))
    await srv.start()
    try:
        ana = await Shopper.join(srv, "Ana", "KZT")
        bank.terminate()
        bank.wait(10)
        await ana.send(p.QueryCollectibles())
        error = await ana.expect(p.Error, timeout=30)
        assert (error.code, error.ref) == ("bank_error", p.QueryCollectibles.TYPE) and "unavailable" in error.message
        await ana.ws.close()
    finally:
        await srv.stop()


async def test_an_order_fulfilled_without_its_certificate_gets_it_at_restart_once(bank_process, tmp_path):  # noqa: F811
    """The server dies between fulfilling an order and issuing its certificate (the hook never
    ran): the next start issues it, bound to that order, and a further restart issues no second."""
    url, _, db = bank_process
    config = server_config(bank_process, tmp_path)
    srv = ExpoServer(small_expo(), config)
    await srv.start()
    assert srv.collectibles is not None
    edition = await srv.collectibles.open_edition("kz-honey", "HONEY-1", 100, "2026-05", "Altai, KZ")
    srv.commerce.fulfilment_hooks.clear()  # what the dead server never got to do: issue the certificate
    ana = await Shopper.join(srv, "Ana", "KZT")
    receipt = await ana.buy("HONEY-1")
    token, bank_token = ana.welcome.visitor_token, ana.bank.token
    await ana.close()
    platform = PlatformClient(url, "commerce-test-platform-key")
    assert (await platform.get_edition(edition.id)).issued == 0
    await srv.stop()

    for _restart in range(2):
        srv = ExpoServer(small_expo(), config)
        await srv.start()
        ana = await Shopper.join(srv, "Ana", "KZT", visitor_token=token, bank_token=bank_token, link=False)
        for _ in range(100):  # the catch-up runs beside the start
            await ana.send(p.QueryCollectibles())
            held = await ana.expect(p.Collectibles)
            if held.items:
                break
            await asyncio.sleep(0.1)
        (serial, _title, sku, _batch, _origin, booth, order_id, _url), = held.items
        assert (sku, booth, order_id) == ("HONEY-1", "kz-honey", receipt.order_id)
        assert (await platform.get_edition(edition.id)).issued == 1
        await ana.close()
        await srv.stop()
    await platform.aclose()
    verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", str(db)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
