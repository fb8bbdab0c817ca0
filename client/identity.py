"""The visitor's identity on disk: the visitor token each expo server gave on the first
visit, so a relaunch (after a crash, or another day) is the same visitor with the same
purchases. Whoever holds the token is that visitor at that server, so the file is private
(0600, see client.private_file). One token per server URL.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

from .private_file import read_json, write_private_json

APP_NAME = "silk-road-expo"


def default_path() -> Path:
    return platformdirs.user_config_path(APP_NAME) / "identity.json"


def _server_key(url: str) -> str:
    return url.strip().rstrip("/")


class IdentityFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _visitors(self) -> dict[str, str]:
        visitors = read_json(self.path).get("visitors", {})
        return {k: v for k, v in visitors.items() if isinstance(v, str)} if isinstance(visitors, dict) else {}

    def token(self, server_url: str) -> str | None:
        """The visitor token for this server, None on a first visit."""
        return self._visitors().get(_server_key(server_url))

    def remember(self, server_url: str, token: str) -> None:
        visitors = self._visitors()
        if visitors.get(_server_key(server_url)) == token:
            return
        visitors[_server_key(server_url)] = token
        write_private_json(self.path, {"visitors": visitors})
