"""Bots that do B2B deals against a real expo-server and a real bank: RFQ -> quotation from
the booth's price list (the default expo's Altai honey has one) -> deposit in escrow ->
shipment by the booth's staff (a scripted staff member on a real socket) -> balance paid ->
delivered; the report has each step's latency, and the bank's ledger verifies after."""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import threading

import pytest
from processes import BIN, free_port, start, stop
from websockets.sync.client import connect

import protocol as p
from client.bots.cli import main
from server.staff import issue_pass

SECRET = secrets.token_urlsafe(16)
PLATFORM_KEY = secrets.token_urlsafe(16)
BOOTH = "kz-altai-honey"


def ship_what_is_ordered(url: str, stop_event: threading.Event, shipped: list[str]) -> None:
    """The booth's staff: confirm the shipment of every purchase order of the booth."""
    with connect(url) as ws:
        ws.send(p.encode(p.Hello(p.PROTOCOL_VERSION, "Aigerim staff", 0, 0, None, issue_pass(SECRET, BOOTH))))
        while not stop_event.is_set():
            try:
                message = p.decode_server(ws.recv(timeout=0.2))
            except TimeoutError:
                continue
            if isinstance(message, p.DealStatus) and message.state == "ordered" and message.deal_id not in shipped:
                shipped.append(message.deal_id)
                ws.send(p.encode(p.ConfirmShipment(message.deal_id)))


@pytest.mark.slow  # 29 s; deals end to end stay in make test (tests/server/deals, the desktop deal tests)
def test_bots_run_deals_to_delivery_and_report_the_latencies(tmp_path):
    bank_port, port = free_port(), free_port()
    bank = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", str(tmp_path / "bank.sqlite3"),
                  "--platform-key", PLATFORM_KEY], f"http://127.0.0.1:{bank_port}/healthz", log=tmp_path / "bank.log")
    server = start([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(tmp_path / "server"), "--no-watch",
                    "--bank-url", f"http://127.0.0.1:{bank_port}"], f"http://127.0.0.1:{port}/healthz",
                   env={"EXPO_STAFF_SECRET": SECRET, "EXPO_BANK_PLATFORM_KEY": PLATFORM_KEY}, log=tmp_path / "server.log")
    url = f"ws://127.0.0.1:{port}/"
    done, shipped = threading.Event(), []
    staff = threading.Thread(target=ship_what_is_ordered, args=(url, done, shipped), daemon=True)
    staff.start()
    try:
        out = io.StringIO()
        code = main(["--server", url, "--count", "6", "--spawn-rate", "6", "--duration", "25", "--seed", "7",
                     "--mix", "deals", "--quiet", "--json", str(tmp_path / "r.json")], out=out)
        report = json.loads((tmp_path / "r.json").read_text())
    finally:
        done.set()
        staff.join(5)
        stop(server)
        stop(bank)
    assert code == 0, out.getvalue()
    assert report["deals"].get("delivered", 0) > 0, (report["deals"], report["errors"], out.getvalue())
    for name in ("rfq_quote", "deal_deposit", "deal_shipped", "deal_delivery", "deal"):
        m = report["metrics"][name]
        assert m["count"] > 0 and 0 < m["p50"] <= m["max"] < 10000, (name, m)
    assert report["errors"] == {}, report["errors"]
    assert len(shipped) >= report["deals"]["delivered"]
    verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", str(tmp_path / "bank.sqlite3")],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(json.dumps({"deals": report["deals"], **{k: report["metrics"][k] for k in (
        "rfq_quote", "deal_deposit", "deal_shipped", "deal_delivery", "deal")}}))
