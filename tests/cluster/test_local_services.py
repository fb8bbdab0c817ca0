"""The fixtures' servers are real and answer: a JetStream round trip and a SQL query."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from server.cluster.local import LocalServiceError, NatsServer, PostgresServer


async def test_nats_answers_with_jetstream(nats_server: NatsServer) -> None:
    import nats

    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        kv = await js.create_key_value(bucket="probe")
        revision = await kv.put("k", b"v")
        entry = await kv.get("k")
        assert (entry.value, entry.revision) == (b"v", revision)
        reply = await nc.request("$JS.API.INFO", b"", timeout=2)
        assert b"memory" in reply.data  # the account info of a JetStream-enabled server
    finally:
        await nc.close()


def test_postgres_answers_and_needs_its_password(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        assert int(version) >= 130000
        assert conn.execute("SELECT inet_server_addr()").fetchone()[0].compressed == "127.0.0.1"
    wrong = postgres.dsn.replace(postgres.password_file.read_text().strip(), "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong)


@pytest.mark.slow
def test_postgres_keeps_its_data_across_a_restart() -> None:
    root = Path(tempfile.mkdtemp(prefix="expo-pg-"))
    server = PostgresServer(root).start()
    try:
        with psycopg.connect(server.dsn) as conn:
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        server.kill()
        server.start()
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone()[0] == 42
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_missing_binary_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalServiceError, match="nats-server is not installed"):
        NatsServer(tmp_path / "n").start()
