"""Account proofs, sans-I/O: the bank's word that an account's holder asked to be known to
someone (the audience) as that account's owner.

A visitor asks the bank (``POST /v1/accounts/me/proofs``, with its own token) for a proof
addressed to its visitor id at the world server, and hands the proof to the world server.
The world server never sees the visitor's bank token, and a proof for one visitor is
useless to another (the audience is signed). Format::

    ap1.<account id>.<expires, unix seconds>.<hex HMAC-SHA256(key, "ap1|account|audience|expires")>

The key is derived from the platform key, which the bank and the platform (the world
server) share already; nobody else can make or check a proof.
"""

from __future__ import annotations

import hashlib
import hmac

VERSION = "ap1"
PROOF_TTL_SECONDS = 300


class ProofError(ValueError):
    """A proof the receiver must refuse; ``code`` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def proof_key(platform_key: str) -> bytes:
    return hmac.new(platform_key.encode(), b"expo account proof", hashlib.sha256).digest()


def _mac(key: bytes, account_id: str, audience: str, expires_at: int) -> str:
    message = f"{VERSION}|{account_id}|{audience}|{expires_at}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_proof(key: bytes, account_id: str, audience: str, expires_at: int) -> str:
    assert "." not in account_id and "|" not in account_id, account_id
    return f"{VERSION}.{account_id}.{expires_at}.{_mac(key, account_id, audience, expires_at)}"


def verify_proof(key: bytes, proof: str, audience: str, now: float) -> str:
    """The account id the proof vouches for to ``audience``, or ProofError."""
    parts = proof.split(".")
    if len(parts) != 4 or parts[0] != VERSION or not parts[2].isdigit():
        raise ProofError("proof_malformed", "not an account proof")
    _, account_id, expires, mac = parts
    if not hmac.compare_digest(mac, _mac(key, account_id, audience, int(expires))):
        raise ProofError("proof_invalid", "the proof is not the bank's, or is for someone else")
    if int(expires) <= now:
        raise ProofError("proof_expired", "the proof has expired: ask the bank for a new one")
    return account_id
