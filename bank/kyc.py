"""The mock real-name check (KYC), sans-I/O: documented rules instead of a registry.

Accounts open at ``basic``; a holder who submits a check that passes every rule below becomes
``verified``, the level the collectible rules ask of both sides of a gift. The rules, so a
tester can pass or fail on purpose:

* ``legal_name``: 3..100 characters, at least two words (given and family name), letters,
  spaces, hyphens, apostrophes and dots only;
* ``date_of_birth``: an ISO 8601 date, the holder 18 or older on the bank's clock;
* ``country``: an ISO 3166-1 alpha-2 code (CLDR's list, e.g. ``KZ``);
* ``document_number``: 6..20 capital letters and digits;
* the mock registry: a document number ending in ``0000`` is "reported lost or stolen" and
  the check is refused (``kyc_refused``) however good the rest is.

Only the outcome is stored (the level and when): the bank keeps no copy of the document.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache

from babel import Locale

MIN_AGE = 18
_NAME = re.compile(r"^[^\W\d_]+(?:[ '.-]+[^\W\d_]+)+\.?$")
_DOCUMENT = re.compile(r"^[A-Z0-9]{6,20}$")
LOST_OR_STOLEN_SUFFIX = "0000"


@dataclass(frozen=True, slots=True)
class Submission:
    legal_name: str
    date_of_birth: str
    country: str
    document_number: str


class KycInvalid(ValueError):
    """The submission breaks a rule of form (400); ``field`` names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class KycRefused(Exception):
    """The submission is well formed but the (mock) registry refuses it (409)."""


@cache
def countries() -> frozenset[str]:
    return frozenset(code for code in Locale("en").territories
                     if isinstance(code, str) and len(code) == 2 and code.isalpha())


def _age_on(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def check(s: Submission, today: dt.date) -> None:
    """Raise :class:`KycInvalid` or :class:`KycRefused`, or return: the holder is verified."""
    if not 3 <= len(s.legal_name) <= 100 or not _NAME.match(s.legal_name):
        raise KycInvalid("legal_name", "legal_name must be a given and a family name (letters, 3-100 characters)")
    try:
        born = dt.date.fromisoformat(s.date_of_birth)
    except ValueError:
        raise KycInvalid("date_of_birth", f"date_of_birth {s.date_of_birth!r} is not an ISO 8601 date (YYYY-MM-DD)") from None
    if born > today:
        raise KycInvalid("date_of_birth", "date_of_birth is in the future")
    if _age_on(born, today) < MIN_AGE:
        raise KycInvalid("date_of_birth", f"the holder must be {MIN_AGE} or older")
    if s.country not in countries():
        raise KycInvalid("country", f"country {s.country!r} is not an ISO 3166-1 alpha-2 code")
    if not _DOCUMENT.match(s.document_number):
        raise KycInvalid("document_number", "document_number must be 6-20 capital letters and digits")
    if s.document_number.endswith(LOST_OR_STOLEN_SUFFIX):
        raise KycRefused(f"document {s.document_number} is reported lost or stolen (mock registry)")
