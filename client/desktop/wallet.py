"""The visitor's bank credential on disk: the account id and bearer token the bank showed
once, when the account was opened. Whoever holds the token can spend the money, so the
file is created owner-only (0600, in a 0700 directory) and replaced atomically.

One credential per bank URL: a visitor who goes to another expo's bank gets another account.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

APP_NAME = "silk-road-expo"


@dataclass(frozen=True, slots=True)
class BankCredential:
    bank_url: str
    account_id: str
    token: str
    currency: str


def default_path() -> Path:
    return platformdirs.user_config_path(APP_NAME) / "wallet.json"


class Wallet:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable: behave as a first run; the next save rewrites it
        return data.get("accounts", {}) if isinstance(data, dict) else {}

    def load(self, bank_url: str) -> BankCredential | None:
        entry = self._read().get(bank_url.rstrip("/"))
        try:
            return BankCredential(**entry) if entry else None
        except TypeError:
            return None

    def save(self, credential: BankCredential) -> None:
        credential = BankCredential(credential.bank_url.rstrip("/"), credential.account_id, credential.token,
                                    credential.currency)
        accounts = self._read()
        accounts[credential.bank_url] = asdict(credential)
        self._write({"accounts": accounts})

    def forget(self, bank_url: str) -> None:
        accounts = self._read()
        if accounts.pop(bank_url.rstrip("/"), None) is not None:
            self._write({"accounts": accounts})

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)  # an older file of the same name may have had looser bits
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
