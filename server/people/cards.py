"""A visitor's business card and the validation every field gets before it is kept."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from dataclasses import dataclass, fields
from functools import cache

from babel import Locale, UnknownLocaleError

from world import iso

MAX_FIELD = 80
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
PHONE = re.compile(r"^\+?[0-9 ()./-]{5,24}$")


class CardError(ValueError):
    """A card field is not acceptable; the message names the field and says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Card:
    name: str
    company: str
    country: str  # ISO 3166-1 alpha-2
    role: str
    language: str  # BCP 47, e.g. "zh-Hans", "en"
    timezone: str = "UTC"  # IANA, for showing meeting times; never used to store one
    email: str | None = None
    phone: str | None = None

    def as_tuple(self) -> tuple:
        return tuple(getattr(self, fl.name) for fl in fields(self))


CARD_FIELDS = tuple(fl.name for fl in fields(Card))


def make_card(
    name: str, company: str, country: str, role: str, language: str,
    timezone: str = "UTC", email: str | None = None, phone: str | None = None,
) -> Card:
    """A validated, normalised card (NFC text, upper-case country), or CardError."""
    text = {k: _text(k, v) for k, v in (("name", name), ("company", company), ("role", role))}
    if not text["name"]:
        raise CardError("name", "a card needs a name")
    country = _text("country", country).upper()
    if country not in iso.countries():
        raise CardError("country", f"{country!r} is not an ISO 3166-1 alpha-2 country code")
    language = _text("language", language)
    if not _is_language(language):
        raise CardError("language", f"{language!r} is not a language tag such as 'en' or 'zh-Hans'")
    timezone = _text("timezone", timezone)
    if timezone not in _zones():
        raise CardError("timezone", f"{timezone!r} is not an IANA time zone such as 'Asia/Shanghai'")
    email = _optional("email", email)
    if email is not None and not EMAIL.match(email):
        raise CardError("email", f"{email!r} does not look like an e-mail address")
    phone = _optional("phone", phone)
    if phone is not None and not PHONE.match(phone):
        raise CardError("phone", f"{phone!r} does not look like a telephone number")
    return Card(text["name"], text["company"], country, text["role"], language, timezone, email, phone)


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise CardError(field, "must be text")
    value = unicodedata.normalize("NFC", value).strip()
    if len(value) > MAX_FIELD:
        raise CardError(field, f"at most {MAX_FIELD} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise CardError(field, "control characters are not allowed")
    return value


def _optional(field: str, value: object) -> str | None:
    """Optional text: None and blank are both "not given"."""
    return None if value is None else (_text(field, value) or None)


def _is_language(tag: str) -> bool:
    try:
        Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return False
    return True


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}
