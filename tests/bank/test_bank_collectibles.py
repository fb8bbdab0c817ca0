"""Collectibles on the bank's chain, and each rule against speculation tried and refused:
fiat only, never split, no secondary sale, gifts only after the holding period, only to a
contact, only between verified accounts. A refusal changes nothing."""

from __future__ import annotations

import uuid

import pytest
from bankutil import PLATFORM_KEY, assert_sound, bearer, key, snapshot

from bank.client import BankAPIError, PlatformClient, VisitorClient

DAY = 86_400
GOOD_KYC = ("Aigerim Nurlanovna", "1990-04-12", "KZ", "N12345678")


async def verified(v: VisitorClient, document: str = "N12345678") -> str:
    account = await v.submit_kyc(GOOD_KYC[0], GOOD_KYC[1], GOOD_KYC[2], document)
    assert account.kyc == "verified"
    return account.id


@pytest.fixture
async def expo(platform: PlatformClient, new_visitor):
    """An exhibitor with a 100-certificate edition, and a buyer who holds certificate 1."""
    exhibitor = await platform.create_merchant("Almaty Honey", "KZT", reference="booth-honey")
    edition = await platform.create_edition(
        exhibitor.id, issuer_kind="exhibitor", kind="certificate", title="Mountain honey, certified origin",
        size=100, currency="KZT", product="HONEY-1", batch="2025-07-A", origin="Almaty region, KZ")
    buyer = await new_visitor("KZT", "Buyer")
    item = await platform.issue_item(edition.id, (await buyer.me()).id, order_id="order-1")
    return exhibitor, edition, buyer, item


async def refused(call, status: int, code: str) -> BankAPIError:
    with pytest.raises(BankAPIError) as err:
        await call
    assert (err.value.status, err.value.code) == (status, code), err.value
    return err.value


async def test_an_exhibitor_issues_and_anyone_verifies(expo, http, storage) -> None:
    exhibitor, edition, buyer, item = expo
    assert item.serial == f"{edition.id}-001" and item.holder_account_id == (await buyer.me()).id
    assert (item.edition.product, item.edition.batch, item.edition.origin) == ("HONEY-1", "2025-07-A", "Almaty region, KZ")
    public = await http.get(f"/v1/items/{item.serial}")  # no credential at all
    assert public.status_code == 200
    body = public.json()
    assert body["holder_account_id"] == item.holder_account_id and body["order_id"] == "order-1"
    [issue] = body["provenance"]
    assert issue["kind"] == "issue" and issue["from_account_id"] == f"bank:mint:{edition.id}"
    assert len(issue["hash"]) == 64
    assert (await buyer.items()).data[0].serial == item.serial
    assert (await http.get(f"/v1/items/{edition.id}-101")).json()["error"]["code"] == "item_not_found"
    for typed in ("1", "01", "0001"):  # "number 1 of 100", however it is typed
        assert (await http.get(f"/v1/items/{edition.id}-{typed}")).json()["serial"] == item.serial
    for beyond in ("0", "000", "2"):  # none is number 0; number 2 was not issued
        assert (await http.get(f"/v1/items/{edition.id}-{beyond}")).json()["error"]["code"] == "item_not_found"
    assert_sound(storage)


async def test_a_fixed_edition_size_is_never_exceeded(platform, new_visitor, storage) -> None:
    exhibitor = await platform.create_merchant("Tashkent Silk", "UZS")
    edition = await platform.create_edition(exhibitor.id, issuer_kind="exhibitor", kind="attendance",
                                            title="Visited the silk booth", size=3, currency="UZS", event="booth-9")
    v = await new_visitor("UZS")
    me = (await v.me()).id
    serials = [(await platform.issue_item(edition.id, me)).serial for _ in range(3)]
    assert serials == [f"{edition.id}-{n}" for n in (1, 2, 3)]
    await refused(platform.issue_item(edition.id, me), 409, "edition_complete")
    assert (await platform.get_edition(edition.id)).issued == 3
    assert_sound(storage)


@pytest.mark.parametrize("currency", ["BTC", "USDT", "XAU", "ETH", "points"])
async def test_an_edition_is_priced_only_in_fiat(platform, currency, db_path) -> None:
    exhibitor = await platform.create_merchant("Penang Batik", "MYR")
    before = snapshot(db_path)
    err = await refused(platform.create_edition(exhibitor.id, issuer_kind="exhibitor", kind="certificate",
                                                title="Batik", size=10, price=500, currency=currency, product="B",
                                                batch="1", origin="Penang"), 400, "not_fiat_currency")
    assert "fiat" in err.message
    assert snapshot(db_path) == before


async def test_there_is_no_secondary_sale(expo, http, db_path) -> None:
    _, _, buyer, item = expo
    before = snapshot(db_path)
    sell = await http.post(f"/v1/items/{item.serial}/sell", json={"price": 100, "currency": "KZT"},
                           headers={**bearer(buyer.token), **key()})
    assert sell.status_code == 403 and sell.json()["error"]["code"] == "secondary_sale_forbidden"
    for body in ({"to_account_id": "acct_x", "price": 5000}, {"to_account_id": "acct_x", "amount": 1},
                 {"to_account_id": "acct_x", "payment_intent_id": "pi_1"}):
        gift = await http.post(f"/v1/items/{item.serial}/gift", json=body, headers={**bearer(buyer.token), **key()})
        assert gift.status_code == 403 and gift.json()["error"]["code"] == "secondary_sale_forbidden", gift.text
    assert not any("sell" in path or "sale" in path or "offer" in path
                   for path in (await http.get("/openapi.json")).json()["paths"] if "sell" not in path)
    assert snapshot(db_path) == before


async def test_an_item_is_never_split(expo, http, db_path) -> None:
    _, _, buyer, item = expo
    before = snapshot(db_path)
    for body in ({"to_account_id": "acct_x", "quantity": 0.5}, {"to_account_id": "acct_x", "fraction": "1/2"},
                 {"to_account_id": "acct_x", "share": 50}):
        gift = await http.post(f"/v1/items/{item.serial}/gift", json=body, headers={**bearer(buyer.token), **key()})
        assert gift.status_code == 403 and gift.json()["error"]["code"] == "fractional_forbidden", gift.text
    assert snapshot(db_path) == before


async def test_gift_rules_each_refuse(expo, platform, new_visitor, clock, db_path, storage) -> None:
    _, _, buyer, item = expo
    friend = await new_visitor("MYR", "Friend")
    stranger = await new_visitor("MYR", "Stranger")
    buyer_id, friend_id, stranger_id = (await buyer.me()).id, (await friend.me()).id, (await stranger.me()).id
    before = snapshot(db_path)
    # not verified: neither side
    await refused(buyer.gift_item(item.serial, friend_id), 403, "kyc_required")
    await verified(buyer)
    await refused(buyer.gift_item(item.serial, friend_id), 403, "kyc_required")  # the friend is not verified yet
    await verified(friend, "P99887766")
    await verified(stranger, "S55554444")
    # not a contact
    await refused(buyer.gift_item(item.serial, stranger_id), 403, "not_a_contact")
    await platform.add_contact(buyer_id, friend_id)
    # the holding period: 180 days from acquisition, by the bank's clock
    err = await refused(buyer.gift_item(item.serial, friend_id), 409, "holding_period")
    assert "180 day(s) from now" in err.message
    clock.advance(179 * DAY)
    await refused(buyer.gift_item(item.serial, friend_id), 409, "holding_period")
    # someone who does not hold it cannot give it
    await refused(friend.gift_item(item.serial, buyer_id), 403, "not_holder")
    after_refusals = snapshot(db_path)
    assert after_refusals.tables["entries"] == before.tables["entries"]
    assert after_refusals.balances == before.balances
    clock.advance(DAY)
    given = await buyer.gift_item(item.serial, friend_id)
    assert given.holder_account_id == friend_id
    assert [m.kind for m in given.provenance] == ["issue", "gift"]
    assert [m.to_account_id for m in given.provenance] == [buyer_id, friend_id]
    # the new holder's own holding period starts now
    await platform.add_contact(friend_id, stranger_id)
    await refused(friend.gift_item(item.serial, stranger_id), 409, "holding_period")
    await refused(buyer.gift_item(item.serial, friend_id), 403, "not_holder")
    assert [i.serial for i in (await friend.items()).data] == [item.serial] and not (await buyer.items()).data
    assert_sound(storage)


async def test_a_priced_edition_is_bought_from_its_issuer_once(platform, new_visitor, storage) -> None:
    issuer = await platform.create_merchant("Expo organiser", "USD", reference="organiser")
    edition = await platform.create_edition(issuer.id, issuer_kind="organiser", kind="attendance",
                                            title="Keynote 2025", size=5, price=1500, currency="USD",
                                            event="keynote")
    v = await new_visitor("EUR")
    me = (await v.me()).id
    await refused(platform.issue_item(edition.id, me), 400, "payment_required")
    cheap = await platform.create_intent(issuer.id, 1499, "USD", payer_account_id=me)
    await v.confirm_intent(cheap.id)
    await refused(platform.issue_item(edition.id, me, payment_intent_id=cheap.id), 409, "payment_mismatch")
    unpaid = await platform.create_intent(issuer.id, 1500, "USD", payer_account_id=me)
    await refused(platform.issue_item(edition.id, me, payment_intent_id=unpaid.id), 409, "payment_mismatch")
    await v.confirm_intent(unpaid.id)
    item = await platform.issue_item(edition.id, me, payment_intent_id=unpaid.id)
    assert item.holder_account_id == me
    await refused(platform.issue_item(edition.id, me, payment_intent_id=unpaid.id), 409, "payment_already_used")
    assert_sound(storage)


async def test_edition_and_issue_need_the_platform_and_a_real_issuer(platform, new_visitor, http) -> None:
    v = await new_visitor("MYR")
    denied = await http.post("/v1/editions", headers={**bearer(v.token), **key()}, json={
        "issuer_account_id": (await v.me()).id, "issuer_kind": "exhibitor", "kind": "attendance", "title": "x",
        "size": 1, "currency": "MYR", "event": "e"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    await refused(platform.create_edition((await v.me()).id, issuer_kind="exhibitor", kind="attendance", title="x",
                                          size=1, currency="MYR", event="e"), 404, "issuer_not_found")
    merchant = await platform.create_merchant("m", "MYR")
    await refused(platform.create_edition(merchant.id, issuer_kind="exhibitor", kind="certificate", title="x",
                                          size=1, currency="MYR"), 400, "invalid_edition")
    edition = await platform.create_edition(merchant.id, issuer_kind="exhibitor", kind="certificate", title="x",
                                            size=1, currency="MYR", product="p", batch="b", origin="o")
    await refused(platform.issue_item(edition.id, (await v.me()).id), 400, "order_required")


@pytest.mark.parametrize(("submission", "status", "code", "field"), [
    (("Aigerim", "1990-04-12", "KZ", "N12345678"), 400, "kyc_invalid", "legal_name"),  # one word
    (("Aigerim Nurlanovna", "12/04/1990", "KZ", "N12345678"), 400, "kyc_invalid", "date_of_birth"),
    (("Aigerim Nurlanovna", "2015-01-01", "KZ", "N12345678"), 400, "kyc_invalid", "date_of_birth"),  # under 18
    (("Aigerim Nurlanovna", "1990-04-12", "XX", "N12345678"), 400, "kyc_invalid", "country"),
    (("Aigerim Nurlanovna", "1990-04-12", "K", "N12345678"), 400, "invalid_request", "country"),  # the schema's 2 letters
    (("Aigerim Nurlanovna", "1990-04-12", "KZ", "n-123"), 400, "kyc_invalid", "document_number"),
    (("Aigerim Nurlanovna", "1990-04-12", "KZ", "N12340000"), 409, "kyc_refused", None),  # mock registry: lost
])
async def test_the_mock_kyc_rules(new_visitor, submission, status, code, field) -> None:
    """Each refusal names the field at fault (``error.field``), so a client can say it in its
    own language next to that field."""
    v = await new_visitor("KZT")
    assert (await refused(v.submit_kyc(*submission), status, code)).field == field
    assert (await v.me()).kyc == "basic"


async def test_kyc_is_for_the_visitor_itself(http, new_visitor) -> None:
    from bankutil import platform_headers
    body = dict(zip(("legal_name", "date_of_birth", "country", "document_number"), GOOD_KYC, strict=True))
    answer = await http.post("/v1/accounts/me/kyc", json=body, headers=platform_headers())
    assert answer.status_code == 403
    v = await new_visitor("KZT")
    first = await v.submit_kyc(*GOOD_KYC, idempotency_key=str(uuid.uuid4()))
    again = await v.submit_kyc(*GOOD_KYC)  # already verified: stays verified
    assert first.kyc == again.kyc == "verified"


async def test_a_holder_lists_whom_a_gift_can_go_to(expo, platform, new_visitor, http, clock) -> None:
    """``GET /v1/accounts/me/contacts``: the accounts the platform recorded as exchanging cards
    with you, each named and with its real-name level; nobody else's contacts."""
    _, _, buyer, _ = expo
    assert (await buyer.contacts()).data == []
    friend, other = await new_visitor("MYR", "Li Wei"), await new_visitor("USD", "Omar")
    buyer_id, friend_id, other_id = (await buyer.me()).id, (await friend.me()).id, (await other.me()).id
    await platform.add_contact(friend_id, buyer_id)  # either order
    clock.advance(1)
    await platform.add_contact(other_id, friend_id)
    await verified(friend, "P99887766")
    [contact] = (await buyer.contacts()).data
    assert (contact.account_id, contact.display_name, contact.kyc) == (friend_id, "Li Wei", "verified")
    assert [c.display_name for c in (await friend.contacts()).data] == ["Buyer", "Omar"]  # oldest first
    assert [(c.account_id, c.kyc) for c in (await other.contacts()).data] == [(friend_id, "verified")]
    as_platform = await http.get("/v1/accounts/me/contacts", headers=bearer(PLATFORM_KEY))
    assert as_platform.status_code == 403, as_platform.text


async def test_the_platform_lists_what_an_account_holds_a_visitor_only_its_own(expo, platform, new_visitor, clock) -> None:
    """``GET /v1/accounts/{id}/items``: the server shows a visitor their collection from here,
    so a gift received is in it and a gift made is not."""
    exhibitor, _, buyer, item = expo
    friend = await new_visitor("MYR", "Friend")
    buyer_id, friend_id = (await buyer.me()).id, (await friend.me()).id
    assert [i.serial for i in (await platform.items_of(buyer_id)).data] == [item.serial]
    assert (await buyer.items_of(buyer_id)).data[0].serial == item.serial
    await refused(friend.items_of(buyer_id), 403, "not_your_account")
    await refused(platform.items_of("acct_nobody"), 404, "account_not_found")
    assert (await platform.items_of(exhibitor.id)).data == []
    await verified(buyer)
    await verified(friend, "P99887766")
    await platform.add_contact(buyer_id, friend_id)
    clock.advance(180 * DAY)
    await buyer.gift_item(item.serial, friend_id)
    assert (await platform.items_of(buyer_id)).data == []
    assert [i.serial for i in (await platform.items_of(friend_id)).data] == [item.serial]
