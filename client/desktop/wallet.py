"""The visitor's bank credential on disk: the account id and bearer token the bank showed
once, when the account was opened. Whoever holds the token can spend the money, so the
file is created owner-only (0600, in a 0700 directory) and replaced atomically
(client.private_file).

One credential per bank URL: a visitor who goes to another expo's bank gets another account.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from client.identity import APP_NAME
from client.private_file import read_json, write_private_json


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
        accounts = read_json(self.path).get("accounts", {})
        return accounts if isinstance(accounts, dict) else {}

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
        write_private_json(self.path, data)
