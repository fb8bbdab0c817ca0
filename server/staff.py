"""Staff passes: a booth's staff prove who they are with a pass the operator hands out.

A pass is ``"<booth id>:<hmac>"`` signed with the server's staff secret, so the server
keeps no list of passes and any pass can be checked offline. There is no built-in secret:
anyone who read the source could sign passes with it. The operator gives one
(``EXPO_STAFF_SECRET``), or the first start makes a random one in a file only its owner can
read, beside the data; passes then stay valid across restarts because the secret does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

SECRET_FILE = "staff.key"  # in the data directory unless told otherwise

log = logging.getLogger("expo.server")


class StaffSecretError(Exception):
    """The staff secret's file cannot be used; the message says what to do."""


def issue_pass(secret: str, booth_id: str) -> str:
    mac = hmac.new(secret.encode(), booth_id.encode(), hashlib.sha256).hexdigest()[:24]
    return f"{booth_id}:{mac}"


def booth_of_pass(secret: str | None, staff_pass: str) -> str | None:
    """The booth a valid pass belongs to, or None (always None for a server without a
    secret). Compared as UTF-8 bytes: a pass is any text a client sends."""
    booth_id, sep, _ = staff_pass.rpartition(":")
    if secret is None or not sep or not booth_id:
        return None
    return booth_id if hmac.compare_digest(issue_pass(secret, booth_id).encode(), staff_pass.encode()) else None


def load_or_create_secret(path: Path) -> str:
    """The secret in ``path``, written there first (random, mode 0600) when there is none.
    Creating is exclusive, so two processes starting at once agree on one secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        log.warning("created a new staff secret in %s: passes are signed with it", path)
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StaffSecretError(f"cannot read the staff secret in {path}: {exc}") from None
    if not secret:
        raise StaffSecretError(f"{path} is empty; put a secret in it, or delete it to have a new one made "
                               "(passes signed with the old one stop working)")
    return secret
