"""The desk's decisions about deals and certificates, by plain calls: what the form accepts,
what each state allows, that nothing moves money before a yes, and what a refusal leaves."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

import protocol as p
from client.desktop import deals as dl
from client.desktop.collectibles import certificate_lines, next_to_check

REQUESTED = p.DealStatus("po_1", "k1", "requested", "kz-honey", "HONEY-1", 120, "FOB", "CN", (), None, None, None, None,
                         None, None, None, None, None, None, None, "")
QUOTED = replace(REQUESTED, state="quoted", tiers=((1, "4200"), (100, "3900")), currency="KZT", unit_price="3900",
                 total="468000", deposit="140400", deposit_minor=14040000, valid_until=1_800_000_000.0, lead_days=14,
                 payee_account="acct_booth")


def desk_with(*deals: p.DealStatus) -> dl.DealDesk:
    desk = dl.DealDesk("Asia/Almaty", new_key=lambda: "key-1")
    desk.names = {("kz-honey", "HONEY-1"): "Altai honey"}
    for deal in deals:
        desk.on_status(deal)
    return desk


@pytest.mark.parametrize(("qty", "incoterm", "destination", "says"), [
    ("a pallet", "FOB", "CN", "Quantity: a whole number"),
    ("0", "FOB", "CN", "Quantity: from 1"),
    ("10000001", "FOB", "CN", "Quantity: from 1"),
    ("5", "FOO", "CN", "Incoterm: one of EXW"),
    ("5", "FOB", "", "Destination: a two-letter"),
    ("5", "FOB", "XX", "Destination: a two-letter"),
])
def test_the_form_refuses_a_wrong_field_and_names_it(qty, incoterm, destination, says):
    with pytest.raises(dl.FormError, match=says):
        dl.rfq("kz-honey", "HONEY-1", qty, incoterm, destination, "k")


def test_the_form_sends_what_was_typed_tidied():
    assert dl.rfq("kz-honey", "HONEY-1", " 120 ", "CIF", " my ", "k") == dl.SendRfq(
        "kz-honey", "HONEY-1", 120, "CIF", "MY", "k")


def test_a_quotation_shows_its_terms_and_the_keys_its_state_allows():
    desk = desk_with(REQUESTED)
    assert desk.allowed(REQUESTED) == ["cancel"]
    news = desk.on_status(QUOTED)
    assert news is not None and "KZT 3,900.00 a unit" in news
    text = "\n".join(desk.lines())
    for part in ("120 × Altai honey", "FOB → CN", "Quoted", "KZT 3,900.00 a unit, KZT 468,000.00 in all",
                 "tiers 1+ 4,200 · 100+ 3,900", "deposit KZT 140,400.00 · lead time 14 days",
                 "valid until 15 Jan 13:00 Asia/Almaty", "Enter accept and pay the deposit · X cancel"):
        assert part in text, (part, text)
    assert desk.on_status(QUOTED) is None  # the same deal again says nothing new


def test_nothing_moves_money_before_the_yes_and_no_forgets_the_question():
    desk = desk_with(QUOTED)
    proposal = desk.propose("accept", "USD", "USD 290.10")
    assert proposal is not None and "Deposit now: KZT 140,400.00" in proposal.text and "≈ USD 290.10" in proposal.text
    assert "Balance on delivery: KZT 327,600.00" in proposal.text and not desk.busy
    desk.withdraw()
    assert desk.confirm() == [] and not desk.busy
    desk.propose("accept")
    assert desk.confirm() == [dl.HoldDeposit("po_1", "acct_booth", 14040000, "KZT", "deposit-po_1")]
    assert desk.allowed(QUOTED) == []  # one step at a time
    assert desk.propose("accept") is None
    assert desk.deposit_held("po_1", "esc_1") == [dl.SendPurchaseOrder("po_1", "esc_1")]
    desk.on_status(replace(QUOTED, state="ordered", escrow_id="esc_1"))
    assert not desk.busy and desk.allowed(desk.current()) == ["cancel"]


def test_a_refusal_leaves_the_deal_as_it_was_and_says_why():
    desk = desk_with(QUOTED)
    desk.propose("accept")
    desk.confirm()
    desk.refused("po_1", "Not enough money in your bank account for this.")
    assert desk.allowed(QUOTED) == ["accept", "cancel"]
    assert "✗ Not enough money" in "\n".join(desk.lines())
    desk.propose("cancel")
    desk.confirm()
    assert desk.on_error("deal po_1 is expired, not quoted", p.CancelDeal.TYPE) == "po_1"
    assert desk.on_error("unrelated", p.Order.TYPE) is None
    assert desk.allowed(QUOTED) == ["accept", "cancel"]


def test_the_balance_is_paid_then_delivery_confirmed_or_only_confirmed_when_nothing_is_due():
    shipped = replace(QUOTED, state="shipped", escrow_id="esc_1", balance_intent_id="pi_9")
    desk = desk_with(shipped)
    assert desk.money_due("pay") == (32760000, "KZT")
    assert "KZT 327,600.00" in desk.propose("pay").text
    assert desk.confirm() == [dl.PayBalance("po_1", "pi_9", "balance-po_1")]
    assert desk.balance_paid("po_1") == [dl.SendDelivered("po_1")]
    whole = replace(shipped, deal_id="po_2", deposit=shipped.total, balance_intent_id=None)
    desk.on_status(whole)
    desk.propose("pay")
    assert desk.confirm() == [dl.SendDelivered("po_2")]


def test_final_deals_allow_nothing_and_a_new_deal_of_ours_is_selected():
    desk = desk_with(replace(QUOTED, state="delivered"))
    assert desk.allowed(desk.current()) == [] and desk.propose("cancel") is None
    desk.request(dl.SendRfq("kz-honey", "HONEY-1", 5, "EXW", "KZ", "k2"))
    desk.on_status(replace(REQUESTED, deal_id="po_3", key="k2"))
    desk.select(1)
    desk.on_status(replace(REQUESTED, deal_id="po_4", key="someone-elses"))
    assert desk.current().deal_id == "po_1"  # the selection stays on the deal chosen
    assert [desk.deals[d].deal_id for d in desk.order] == ["po_4", "po_3", "po_1"]


def test_a_certificate_reads_serial_product_batch_origin_exhibitor_order_and_link():
    item = ("ed_1-001", "Altai honey: certificate of origin", "HONEY-1", "2026-05", "Altai, KZ", "kz-honey", "ord_7",
            "http://bank/v1/items/ed_1-001")
    lines = certificate_lines([item], {"kz-honey": "Altai Bee Farms"}, {})
    assert lines[1] == "Certificates (1)"
    text = "\n".join(lines)
    for part in ("Altai honey: certificate of origin", "No. ed_1-001", "batch 2026-05 · origin Altai, KZ",
                 "from Altai Bee Farms", "order ord_7", "verify: http://bank/v1/items/ed_1-001"):
        assert part in text
    assert certificate_lines([], {}, {}) == []


def test_a_step_that_needs_more_than_the_balance_says_so_before_the_yes():
    desk = desk_with(QUOTED)
    short = desk.propose("accept", "USD", "USD 290.10", short_of="USD 100.00").text
    assert "≈ USD 290.10 from your account\nYour balance is USD 100.00: not enough, the bank will refuse it." in short
    assert "not enough" not in desk.propose("accept", "USD", "USD 290.10").text
    assert "not enough" not in desk.propose("cancel", short_of="USD 100.00").text  # a cancel takes nothing


@pytest.mark.parametrize("language", ["zh_Hans", "ms", "ru"])
def test_the_deals_panel_and_the_certificates_speak_the_language_chosen(language):
    from client.desktop.i18n import SPEAKER

    SPEAKER.use(language)
    try:
        desk = desk_with(QUOTED)
        english = dl.DealDesk()
        SPEAKER.use("en")
        english.names, english.zone = desk.names, desk.zone
        english.on_status(QUOTED)
        said_in_english, asked_in_english = english.lines(), english.propose("accept").text
        short_in_english = english.propose("accept", short_of="USD 1.00").text.split("\n")[-3]
        assert short_in_english.startswith("Your balance is USD 1.00")
        SPEAKER.use(language)
        lines = desk.lines()
        assert len(lines) == len(said_in_english)
        # every line but the product's and the deal's numbers reads differently from the English one
        assert [a for a, b in zip(lines[2:], said_in_english[2:], strict=True) if a == b] == []
        assert desk.propose("accept").text != asked_in_english
        assert short_in_english not in desk.propose("accept", short_of="USD 1.00").text
        item = ("ed_1-001", "Honey: certificate", "HONEY-1", "2026-05", "Altai", "kz-honey", "ord_7", "http://bank/v1/items/ed_1-001")
        assert certificate_lines([item], {}, {})[1] != "Certificates (1)"
    finally:
        SPEAKER.use("en")


def test_a_step_cut_off_by_a_reconnect_can_be_taken_again_with_the_same_keys():
    desk = desk_with(QUOTED)
    desk.propose("accept")
    first = desk.confirm()
    assert desk.allowed(QUOTED) == []  # under way: no answer came before the connection dropped
    desk.rejoined()
    desk.on_status(QUOTED)  # QueryDeals after the join: still quoted
    desk.propose("accept")
    assert desk.confirm() == first  # the same deposit key: the bank holds one deposit


def test_accepting_says_when_the_deposit_leaves_too_little_for_the_balance_on_delivery():
    """Accepting commits to the balance too: a buyer should know before the deposit is held."""
    desk = desk_with(QUOTED)
    text = desk.propose("accept", "USD", "USD 290.10", rest_own="USD 676.90", left_short="USD 100.00").text
    assert "Balance on delivery: KZT 327,600.00 (≈ USD 676.90 at today's rate)" in text
    assert text.endswith("The deposit leaves you USD 100.00: not enough for the balance unless you add money.")
    assert "deposit leaves" not in desk.propose("accept", "USD", "USD 290.10", rest_own="USD 676.90").text
    assert dl.left_short(39010, 29010, 67690, "USD") == "USD 100.00"
    assert dl.left_short(100000, 29010, 67690, "USD") is None  # enough for both
    assert dl.left_short(20000, 29010, 67690, "USD") is None  # the deposit alone is short: said already
    assert dl.left_short(None, 29010, 67690, "USD") is None and dl.left_short(39010, 29010, None, "USD") is None
    assert desk.money_due("rest") == (32760000, "KZT")


def test_l_opens_the_certificates_checks_in_turn():
    items = tuple((f"ed-{n}", "t", "s", "b", "o", "booth", f"ord-{n}", f"https://x/certificates?serial=ed-{n}") for n in (1, 2))
    assert next_to_check((), None) is None
    assert next_to_check(items, None)[0] == "ed-1"
    assert next_to_check(items, "ed-1")[0] == "ed-2"
    assert next_to_check(items, "ed-2")[0] == "ed-1"  # round again
    assert next_to_check(items, "given-away")[0] == "ed-1"  # the one opened last is gone: from the first
