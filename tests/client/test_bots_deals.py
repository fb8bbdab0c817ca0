"""Bots that do B2B deals against a real expo-server and a real bank: RFQ -> quotation from
the booth's price list (the default expo's Altai honey has one) -> deposit in escrow ->
shipment by the booth's staff bot (`expo-bots --staff BOOTH=PASS`, the pass printed by
`expo-server --staff-pass`) -> balance paid -> delivered; the report has each step's latency,
and the bank's ledger verifies after."""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest
from processes import BIN, free_port, start, stop

SECRET = secrets.token_urlsafe(16)
PLATFORM_KEY = secrets.token_urlsafe(16)
BOOTH = "kz-altai-honey"


@pytest.mark.slow  # 29 s; deals end to end stay in make test (tests/server/deals, the desktop deal tests)
def test_bots_run_deals_to_delivery_and_report_the_latencies(tmp_path):
    bank_port, port = free_port(), free_port()
    bank = start([str(BIN / "expo-bank"), "serve", "--port", str(bank_port), "--db", str(tmp_path / "bank.sqlite3"),
                  "--platform-key", PLATFORM_KEY], f"http://127.0.0.1:{bank_port}/healthz", log=tmp_path / "bank.log")
    server = start([str(BIN / "expo-server"), "--port", str(port), "--data-dir", str(tmp_path / "server"), "--no-watch",
                    "--bank-url", f"http://127.0.0.1:{bank_port}"], f"http://127.0.0.1:{port}/healthz",
                   env={"EXPO_STAFF_SECRET": SECRET, "EXPO_BANK_PLATFORM_KEY": PLATFORM_KEY}, log=tmp_path / "server.log")
    url = f"ws://127.0.0.1:{port}/"
    staff_pass = subprocess.run([str(BIN / "expo-server"), "--staff-pass", BOOTH, "--data-dir", str(tmp_path / "server")],
                                capture_output=True, text=True, env={**os.environ, "EXPO_STAFF_SECRET": SECRET}).stdout.strip()
    try:
        run = subprocess.run([str(BIN / "expo-bots"), "--server", url, "--count", "6", "--spawn-rate", "6", "--duration", "25",
                              "--seed", "7", "--mix", "deals", "--quiet", "--json", str(tmp_path / "r.json"),
                              "--staff", f"{BOOTH}={staff_pass}"], capture_output=True, text=True, timeout=120)
        report = json.loads((tmp_path / "r.json").read_text())
    finally:
        stop(server)
        stop(bank)
    code = run.returncode
    assert code == 0, run.stdout + run.stderr
    assert report["deals"].get("delivered", 0) > 0, (report["deals"], report["errors"], run.stdout)
    for name in ("rfq_quote", "deal_deposit", "deal_shipped", "deal_delivery", "deal"):
        m = report["metrics"][name]
        assert m["count"] > 0 and 0 < m["p50"] <= m["max"] < 10000, (name, m)
    assert report["errors"] == {}, report["errors"]
    assert report["staff"]["shipped"] >= report["deals"]["delivered"]
    assert "deals:        delivered" in run.stdout and "staff shipped" in run.stdout
    verify = subprocess.run([str(BIN / "expo-bank"), "verify", "--db", str(tmp_path / "bank.sqlite3")],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(json.dumps({"deals": report["deals"], **{k: report["metrics"][k] for k in (
        "rfq_quote", "deal_deposit", "deal_shipped", "deal_delivery", "deal")}}))
