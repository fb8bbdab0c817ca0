"""`expo-server --cluster/--db` as typed: bad combinations are clear errors before anything starts."""

from __future__ import annotations

import subprocess

import pytest
from processes import BIN


@pytest.mark.parametrize(("args", "says"), [
    (["--cluster", "nats://127.0.0.1:4222"], "--cluster needs --db postgresql://"),
    (["--db", "sqlite:///x.db"], "--db takes a postgresql:// URL, not 'sqlite'"),
    (["--cluster", "http://127.0.0.1:4222", "--db", "postgresql://u:p@127.0.0.1/x"], "--cluster takes a nats:// URL"),
    (["--halls", "maritime"], "--halls needs --cluster"),
    (["--cluster", "nats://127.0.0.1:4222", "--db", "postgresql://u:p@127.0.0.1/x", "--halls", "maritime,bazaar"],
     "--halls: this expo has no hall 'bazaar'; its halls are silk-road, maritime"),
    (["--cluster", "nats://127.0.0.1:4222", "--db", "postgresql://u:p@127.0.0.1/x", "--halls", ","],
     "--halls: it names no hall; its halls are silk-road, maritime"),
])
def test_bad_cluster_flags_are_refused(args: list[str], says: str) -> None:
    result = subprocess.run([str(BIN / "expo-server"), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert says in result.stderr


def test_help_names_the_cluster_flags() -> None:
    result = subprocess.run([str(BIN / "expo-server"), "--help"], capture_output=True, text=True, timeout=60)
    assert "--cluster nats://HOST:PORT" in result.stdout
    assert "--db postgresql://USER:PASSWORD@HOST:PORT/DB" in result.stdout
