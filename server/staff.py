"""Staff passes: a booth's staff prove who they are with a pass the operator hands out.

A pass is ``"<booth id>:<hmac>"`` signed with the server's staff secret, so the server
keeps no list of passes and any pass can be checked offline.
"""

from __future__ import annotations

import hashlib
import hmac


def issue_pass(secret: str, booth_id: str) -> str:
    mac = hmac.new(secret.encode(), booth_id.encode(), hashlib.sha256).hexdigest()[:24]
    return f"{booth_id}:{mac}"


def booth_of_pass(secret: str, staff_pass: str) -> str | None:
    """The booth a valid pass belongs to, or None."""
    booth_id, sep, _ = staff_pass.rpartition(":")
    if not sep or not booth_id:
        return None
    return booth_id if hmac.compare_digest(issue_pass(secret, booth_id), staff_pass) else None
