"""What the visitor connects as: server address, display name, avatar colour, and the
currency of a first bank account. Checked here, before any socket, so the connect screen
can say what is wrong field by field."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.limits import MAX_NAME_LEN, MIN_NAME_LEN

DEFAULT_SERVER = "ws://127.0.0.1:8765/"
PALETTE = (0xE4572E, 0x29335C, 0xF3A712, 0x2E86AB, 0x3BB273, 0x7768AE, 0xD81E5B, 0x00A6A6)


@dataclass(frozen=True, slots=True)
class ConnectSettings:
    server: str
    name: str
    colour: int
    currency: str = "USD"


def parse_colour(text: str) -> int:
    """``'#e4572e'`` or ``'e4572e'`` -> 0xE4572E."""
    t = text.strip().lstrip("#")
    if len(t) != 6:
        raise ValueError(f"colour {text!r}: write it as #rrggbb")
    try:
        return int(t, 16)
    except ValueError:
        raise ValueError(f"colour {text!r}: write it as #rrggbb") from None


def colour_hex(colour: int) -> str:
    return f"#{colour:06x}"


def check(server: str, name: str, colour: str, currency: str = "USD") -> tuple[ConnectSettings | None, dict[str, str]]:
    """The settings, or None and a message per field that is wrong."""
    problems: dict[str, str] = {}
    server = server.strip()
    if not server.startswith(("ws://", "wss://")):
        problems["server"] = "the address starts with ws:// (e.g. ws://127.0.0.1:8765)"
    name = " ".join(name.split())
    if not MIN_NAME_LEN <= len(name) <= MAX_NAME_LEN or not any(c.isalnum() for c in name):
        problems["name"] = f"{MIN_NAME_LEN} to {MAX_NAME_LEN} characters, with a letter or digit"
    value = 0
    try:
        value = parse_colour(colour)
    except ValueError as exc:
        problems["colour"] = str(exc)
    currency = currency.strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        problems["currency"] = "a currency code such as USD, MYR or KZT"
    if problems:
        return None, problems
    return ConnectSettings(server, name, value, currency), {}
