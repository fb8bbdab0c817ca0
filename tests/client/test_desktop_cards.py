"""Your card on disk and from the command line, and the desk of offers and shown cards."""

from __future__ import annotations

import json
import subprocess

from processes import BIN

import protocol as p
from client.desktop.cards import CardDesk, CardFile, MyCard, merged

CARD = MyCard("Aigerim", "Altai Honey", "KZ", "buyer", "ru", "Asia/Almaty", None, "+7 700 000 00 00")


def test_the_card_survives_a_restart_and_flags_change_only_what_they_name(tmp_path):
    cards = CardFile(tmp_path / "card.json")
    assert cards.load() is None
    cards.save(CARD)
    again = merged(cards.load(), "Aigerim", role="importer", company=None)
    assert again == MyCard("Aigerim", "Altai Honey", "KZ", "importer", "ru", "Asia/Almaty", None, "+7 700 000 00 00")
    assert merged(None, "Aigerim") is None  # nothing saved, nothing given: no card to send
    assert merged(None, "Aigerim", company="Altai Honey").missing() == ["country", "role"]


def test_a_damaged_card_file_is_asked_for_again_not_a_crash(tmp_path):
    path = tmp_path / "card.json"
    path.write_text("{not json", encoding="utf-8")
    assert CardFile(path).load() is None
    path.write_text(json.dumps({"name": "x"}), encoding="utf-8")  # fields missing
    assert CardFile(path).load() is None


def test_the_desk_answers_the_oldest_offer_first_and_lists_a_card_once():
    desk = CardDesk.empty()
    desk.offered(p.CardOffered("ex1", 7, "Bobur", None, 60.0))
    desk.offered(p.CardOffered("ex2", 8, "Chen", "cn-silk", 60.0))
    assert desk.current().exchange_id == "ex1"
    desk.answered("ex1")
    assert desk.current().exchange_id == "ex2"
    card = ("Chen", "Silk Co", "CN", "seller", "zh", "Asia/Shanghai", "chen@silk.example", None)
    desk.shown(p.CardShown("ex2", 8, card))
    desk.shown(p.CardShown("ex2", 8, card))
    assert desk.lines() == ["Chen  ·  seller, Silk Co", "    CN  ·  zh  ·  Asia/Shanghai", "    chen@silk.example"]


def test_an_offer_whose_card_is_shown_is_no_longer_asked_about():
    """Two offers that crossed: the other's came to us, then ours accepted it and we were
    shown the card; answering it was refused (Error(not_allowed), 'accepted already')."""
    desk = CardDesk.empty()
    desk.offered(p.CardOffered("ex1", 7, "Bobur", None, 60.0))
    desk.offered(p.CardOffered("ex2", 8, "Chen", None, 60.0))
    desk.shown(p.CardShown("ex1", 7, ("Bobur", "Tashkent Textiles", "UZ", "buyer", "uz", "Asia/Tashkent", None, None)))
    assert desk.current().exchange_id == "ex2"
    desk.answered("ex2")
    assert desk.current() is None


def test_an_incomplete_card_on_the_command_line_says_which_flags_it_needs(tmp_path):
    done = subprocess.run([str(BIN / "expo-client"), "--config-dir", str(tmp_path), "--card-company", "Altai Honey"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "your card needs --card-country, --card-role" in done.stderr
    assert not (tmp_path / "card.json").exists()  # nothing half-saved


def test_the_editor_names_every_wrong_field_at_once_and_keeps_the_server_s_form(tmp_path):
    from client.desktop.card_editor import check_card, initial

    typed = {"name": "  Aigerim  ", "company": "", "country": "xx", "role": "buyer", "email": "not-an-address",
             "phone": "", "language": "ru", "timezone": "Asia/Atlantis"}
    card, problems = check_card(typed, True)
    assert card is None
    assert set(problems) == {"company", "country", "email", "timezone"}, problems
    assert "ISO 3166-1" in problems["country"] and "IANA" in problems["timezone"]
    fixed = typed | {"company": "Altai Honey", "country": "kz", "email": "", "timezone": "Asia/Almaty"}
    card, problems = check_card(fixed, False)
    assert problems == {}
    assert card == MyCard("Aigerim", "Altai Honey", "KZ", "buyer", "ru", "Asia/Almaty", None, None, share=False)
    CardFile(tmp_path / "card.json").save(card)
    assert CardFile(tmp_path / "card.json").load() == card  # the consent is kept with the card
    assert initial(card, "Other", "en") == ({**fixed, "name": "Aigerim", "country": "KZ"}, False)
    assert initial(None, "Bo", "zh_Hans")[0]["language"] == "zh-Hans"  # the interface's language, as BCP 47


def test_a_field_takes_characters_and_backspace_but_no_control_keys_and_stops_at_80():
    from client.desktop.card_editor import MAX_FIELD
    from client.desktop.late_keys import typed

    assert typed("Ali", "y") == "Aliy" and typed("Aliy", "backspace") == "Ali" and typed("", "backspace") == ""
    assert typed("Ali", "\t") == "Ali" and typed("Ali", "\r") == "Ali" and typed("Ali", "\x1b") == "Ali"
    assert typed("Ali", "\u200b") == "Ali"  # a zero-width format character: the server would refuse it
    assert typed("李", "伟") == "李伟"
    assert typed("x" * MAX_FIELD, "y", MAX_FIELD) == "x" * MAX_FIELD
