"""Webhook signatures, sans-I/O: what the bank signs and what a receiver (the world server) checks.

Header format (Stripe's scheme)::

    Expo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

The timestamp is signed with the body, so a captured delivery cannot be re-dated; receivers
reject signatures older than ``tolerance`` seconds and, within that window, refuse a signed
message they have already seen (:class:`ReplayGuard`): that is a replay, never the bank. The
bank retries failed deliveries at-least-once, re-signed with a fresh timestamp but with the
same event id, so receivers must still act once per event id (or per intent), and answer 2xx
to a duplicate they already handled so the bank stops retrying.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "Expo-Signature"
EVENT_ID_HEADER = "Expo-Event-Id"
DEFAULT_TOLERANCE = 300  # seconds


class WebhookError(ValueError):
    """A delivery the receiver must refuse; ``code`` names why (for its 4xx response)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _mac(secret: str | bytes, timestamp: int, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``Expo-Signature`` header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: str | bytes, header: str | None, body: bytes, now: float, tolerance: int = DEFAULT_TOLERANCE
) -> int:
    """Check a signature header against ``body``; return its timestamp or raise :class:`WebhookError`.

    Several ``v1`` values are accepted (one may match), so a secret can be rotated.
    """
    if not header:
        raise WebhookError("signature_missing", f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookError("signature_malformed", "timestamp is not an integer") from None
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise WebhookError("signature_malformed", f"{SIGNATURE_HEADER} needs t= and v1=")
    if abs(now - timestamp) > tolerance:
        raise WebhookError("signature_stale", f"timestamp {timestamp} is outside the {tolerance}s tolerance")
    expected = _mac(secret, timestamp, body)
    # compare_digest on every candidate (no early exit) keeps the time independent of which matched
    if not any([hmac.compare_digest(expected, c) for c in candidates]):
        raise WebhookError("signature_invalid", "signature does not match the body")
    return timestamp


class ReplayGuard:
    """Remembers signatures seen within the tolerance window, so a replayed delivery is refused.

    Bounded: entries older than twice the tolerance are forgotten, as their signatures are stale
    anyway. In-memory, so a receiver that restarts relies on the tolerance alone for that window.
    """

    def __init__(self, tolerance: int = DEFAULT_TOLERANCE, max_size: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._tolerance = tolerance
        self._max_size = max_size

    def check(self, signature: str, now: float) -> None:
        while self._seen and (
            next(iter(self._seen.values())) < now - 2 * self._tolerance or len(self._seen) >= self._max_size
        ):
            self._seen.popitem(last=False)
        if signature in self._seen:
            raise WebhookError("webhook_replayed", "this exact signed delivery was already received")
        self._seen[signature] = now


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str  # e.g. "payment_intent.succeeded"
    created: int  # unix seconds
    data: dict[str, Any]  # {"object": <the payment intent, as the API shows it>}


class WebhookReceiver:
    """Everything a receiver does before trusting a delivery: signature, freshness, replay, parse."""

    def __init__(self, secret: str | bytes, tolerance: int = DEFAULT_TOLERANCE, guard: ReplayGuard | None = None):
        self._secret = secret
        self._tolerance = tolerance
        self._guard = guard or ReplayGuard(tolerance)

    def receive(self, header: str | None, body: bytes, now: float) -> Event:
        """Verify and parse one delivery; raises :class:`WebhookError` (answer it with a 4xx)."""
        verify_signature(self._secret, header, body, now, self._tolerance)
        try:
            payload = json.loads(body)
            event = Event(str(payload["id"]), str(payload["type"]), int(payload["created"]), dict(payload["data"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookError("event_malformed", f"not an event: {exc}") from None
        self._guard.check(header, now)  # type: ignore[arg-type]  # verified, so not None
        return event


def retry_delay(attempts: int, jitter: float, base: float = 1.0, cap: float = 600.0) -> float:
    """Seconds to wait after ``attempts`` failed deliveries: exponential, capped, with ``jitter`` in [0, 1)."""
    delay = min(cap, base * 2 ** min(attempts - 1, 32))
    return delay * (0.5 + jitter / 2)
