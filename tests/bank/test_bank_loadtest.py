"""The load generator's connection (bank.loadtest.Connection) against a loopback server that
answers as uvicorn does (head and body in separate writes): each answer parsed, a refusal raised."""

from __future__ import annotations

import asyncio
import json

import pytest

from bank.loadtest import Connection, LoadTestError, run_loop


async def _serve(answers: list[tuple[int, bytes]], seen: list[bytes]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for status, body in answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            seen.append(head + await reader.readexactly(length))
            writer.write(b"HTTP/1.1 %d X\r\ncontent-length: %d\r\ncontent-type: application/json\r\n\r\n"
                         % (status, len(body)))
            await writer.drain()
            await asyncio.sleep(0.01)  # the body arrives on its own
            writer.write(body)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_answers_are_parsed_and_a_refusal_raises() -> None:
    seen: list[bytes] = []
    refusal = json.dumps({"error": {"code": "insufficient_funds", "message": "no"}}).encode()

    async def main() -> tuple[dict, dict, str]:
        server = await _serve([(200, b'{"status":"succeeded"}'), (201, json.dumps({"id": "esc_1"}).encode()),
                               (409, refusal)], seen)
        port = server.sockets[0].getsockname()[1]
        conn = Connection(f"http://127.0.0.1:{port}", "ebt_token")
        try:
            paid = await conn.post("/v1/payment_intents/pi_1/confirm")
            held = await conn.post("/v1/escrows", {"amount": 100, "currency": "MYR"})
            with pytest.raises(LoadTestError) as refused:
                await conn.post("/v1/escrows/esc_1/post")
        finally:
            await conn.close()
            server.close()
            await server.wait_closed()
        return paid, held, str(refused.value)

    paid, held, refused = run_loop(main())
    assert paid == {"status": "succeeded"} and held == {"id": "esc_1"}
    assert "409" in refused and "insufficient_funds" in refused
    heads = [request.split(b"\r\n\r\n")[0].split(b"\r\n") for request in seen]
    assert [h[0] for h in heads] == [b"POST /v1/payment_intents/pi_1/confirm HTTP/1.1", b"POST /v1/escrows HTTP/1.1",
                                     b"POST /v1/escrows/esc_1/post HTTP/1.1"]
    assert all(b"Authorization: Bearer ebt_token" in h for h in heads)
    keys = {line for h in heads for line in h if line.startswith(b"Idempotency-Key: ")}
    assert len(keys) == 3  # a new key for every request
    assert seen[1].endswith(b'{"amount": 100, "currency": "MYR"}')
