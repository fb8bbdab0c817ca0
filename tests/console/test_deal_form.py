"""The console's quotation form: what an exhibitor types, to the figures a quotation takes,
or an error under the box that holds the mistake."""

from __future__ import annotations

from console.deal_form import Figures, parse


def test_a_filled_form_gives_the_tiers_in_order_and_the_terms():
    figures, errors = parse({"t0.qty": "1", "t0.price": "18", "t1.qty": "50", "t1.price": "15.05", "t2.qty": "", "t2.price": "",
                             "valid_days": "7", "lead_days": "14", "deposit_percent": "30"}, "CNY")
    assert errors == {}
    assert figures == Figures(((1, "18"), (50, "15.05")), "CNY", 7, 14, 30)


def test_grouped_thousands_and_an_empty_first_quantity_are_read_as_a_person_means_them():
    figures, _ = parse({"t0.qty": "", "t0.price": "3,900", "valid_days": "7", "lead_days": "0", "deposit_percent": "0"}, "KZT")
    assert figures is not None and figures.tiers == ((1, "3900"),) and (figures.lead_days, figures.deposit_percent) == (0, 0)


def test_each_mistake_is_named_by_its_box_and_nothing_is_taken():
    figures, errors = parse({"t0.qty": "0", "t0.price": "free", "t1.qty": "10", "t1.price": "",
                             "t2.qty": "5", "t2.price": "-1", "valid_days": "365", "lead_days": "x", "deposit_percent": "101"},
                            "KZT")
    assert figures is None
    assert set(errors) == {"t0.qty", "t0.price", "t1.price", "t2.price", "valid_days", "lead_days", "deposit_percent"}
    assert errors["t1.price"] == "a unit price for this tier, or clear its quantity"
    assert "1 to 90" in errors["valid_days"]


def test_a_first_tier_is_needed_and_tiers_go_up():
    assert parse({"valid_days": "7", "lead_days": "1", "deposit_percent": "1"}, "KZT")[1] == {
        "t0.price": "a unit price for the first tier"}
    _, errors = parse({"t0.qty": "100", "t0.price": "5", "t1.qty": "10", "t1.price": "4",
                       "valid_days": "7", "lead_days": "1", "deposit_percent": "1"}, "KZT")
    assert errors == {"t1.qty": "each tier starts at more units than the one before"}
