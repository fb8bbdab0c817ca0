"""``expo-server --tickets FILE`` as an organiser types it: a missing or empty file is a
clear error before anything starts; a good one admits only its holders."""

from __future__ import annotations

import subprocess

from processes import BIN, free_port, start, stop
from websockets.sync.client import connect

import protocol as p


def test_a_missing_or_empty_ticket_file_is_refused_before_starting(tmp_path):
    for path, why in ((tmp_path / "none.txt", "No such file"), (tmp_path / "empty.txt", "no ticket codes")):
        if path.name == "empty.txt":
            path.write_text("# none sold yet\n\n")
        done = subprocess.run([str(BIN / "expo-server"), "--port", "0", "--tickets", str(path),
                               "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "--tickets" in done.stderr and why in done.stderr, done.stderr


def test_only_ticket_holders_are_admitted(tmp_path):
    tickets = tmp_path / "tickets.txt"
    tickets.write_text("EXPO-0001\nEXPO-0002  # the press\n")
    port = free_port()
    server = start([str(BIN / "expo-server"), "--port", str(port), "--tickets", str(tickets), "--no-watch",
                    "--data-dir", str(tmp_path / "data")], f"http://127.0.0.1:{port}/healthz", log=tmp_path / "server.log")
    try:
        def hello(**fields) -> p.Message:
            with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
                ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Aru", 0, 0, **fields)))
                return p.decode_server(ws.recv(timeout=10))

        assert hello().code == "ticket_invalid"
        assert hello(ticket="EXPO-9999").code == "ticket_invalid"
        welcome = hello(ticket="EXPO-0002")
        assert isinstance(welcome, p.Welcome)
        again = hello(visitor_token=welcome.visitor_token)  # the token alone, next time
        assert isinstance(again, p.Welcome) and again.visitor_id == welcome.visitor_id
    finally:
        stop(server)
