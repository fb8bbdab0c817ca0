"""The interface in the visitor's language: gettext catalogues (``locale/<lang>.po``, read
and compiled with babel when first used), chosen on the connect screen and remembered in
the preferences file beside the wallet. Plural forms come from each catalogue's header, so
"1 посетитель / 2 посетителя / 5 посетителей" follows Russian rules, not English ones."""

from __future__ import annotations

import gettext
import io
import json
import os
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from world import iso

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"en": "English", "zh_Hans": "中文", "ms": "Bahasa Melayu", "ru": "Русский"}
DEFAULT = "en"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalogue of ``language`` (English, the source strings, needs none)."""
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    path = LOCALE_DIR / f"{language}.po"
    if language == DEFAULT or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as f:
        catalog = read_po(f, locale=language.replace("_Hans", ""))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Speaker:
    """``_`` and ``n_`` for the language in use; the app swaps ``language``."""

    def __init__(self, language: str = DEFAULT) -> None:
        self.language = language
        self._t = translations(language)

    def use(self, language: str) -> None:
        self._t = translations(language)
        self.language = language

    def _(self, text: str) -> str:
        return self._t.gettext(text)

    def n_(self, singular: str, plural: str, count: int) -> str:
        return self._t.ngettext(singular, plural, count)


class Preferences:
    """What the visitor chose last time (language, text size), a small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, **values: object) -> None:
        data = {**self.load(), **values}
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)


SPEAKER = Speaker()  # the interface's one language at a time, as gettext.install would have it


def _(text: str) -> str:
    return SPEAKER._(text)


def n_(singular: str, plural: str, count: int) -> str:
    return SPEAKER.n_(singular, plural, count)


@cache
def _territories(language: str) -> dict[str, str]:
    return dict(Locale.parse(language).territories)


def country_name(code: str) -> str:
    """A country's name in the language in use (CLDR's, through babel), else the English one."""
    if SPEAKER.language != DEFAULT:
        name = _territories(SPEAKER.language).get(code)
        if name:
            return name
    return iso.countries().get(code, code)
