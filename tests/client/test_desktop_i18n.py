"""Every string the desktop client shows through ``_`` is translated in every catalogue,
with the same placeholders, so a visitor reading Chinese, Russian or Malay meets no English
line and no ``str.format`` fails on a translator's typo."""

from __future__ import annotations

import string

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from client.desktop import shop
from client.desktop.i18n import LANGUAGES, LOCALE_DIR, SPEAKER, country_name

SOURCE = LOCALE_DIR.parent


def shown_strings() -> set[str]:
    found = {msg if isinstance(msg, str) else msg[0]
             for _file, _line, msg, _comments, _context in extract_from_dir(
                 str(SOURCE), method_map=[("**.py", "python")], keywords={"_": None, "n_": (1, 2)})}
    return found | set(shop.BANK_REFUSALS.values()) | set(shop.ORDER_REFUSALS.values())  # looked up, then translated


def fields(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conversion in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_shown_string_is_translated_with_the_same_placeholders(language):
    with (LOCALE_DIR / f"{language}.po").open("rb") as f:
        catalog = read_po(f)
    wanted = shown_strings()
    assert len(wanted) > 150  # the extraction found the client's strings
    missing = sorted(text for text in wanted if not (catalog.get(text) and catalog.get(text).string))
    assert missing == [], missing
    for text in wanted:
        translated = catalog.get(text).string
        for form in (translated if isinstance(translated, tuple) else (translated,)):
            assert fields(form) == fields(text if isinstance(text, str) else text[0]), (text, form)


def test_the_shop_and_country_names_speak_the_language_chosen():
    SPEAKER.use("zh_Hans")
    try:
        assert shop.buy_blocker(purchases_on=True, has_account=True, busy=False, left=5, owned=0, limit=2,
                                cost_minor=500, balance_minor=100) == "超出您的余额"
        assert country_name("KZ") == "哈萨克斯坦"
    finally:
        SPEAKER.use("en")
    assert country_name("KZ") == "Kazakhstan"
