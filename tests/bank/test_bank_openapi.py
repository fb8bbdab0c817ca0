"""The bank's OpenAPI document says what the bank enforces: schemathesis, with every check,
against a real `expo-bank serve` authenticated as the platform, reports nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from bankutil import PLATFORM_KEY
from processes import BIN

CONFIG = Path(__file__).with_name("schemathesis.toml")
OPEN = ("--open-limit", "100000/100000", "--open-limit-overall", "100000/100000")  # let it reach the ledger


def schemathesis(url: str, tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "schemathesis"), "--config-file", str(CONFIG), "run", f"{url}/openapi.json", "--checks", "all",
         "-H", f"Authorization: Bearer {PLATFORM_KEY}", "--no-color", "--generation-database", "none", *options],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )


def test_the_document_declares_what_the_bank_enforces(serve_bank) -> None:
    url, _, _ = serve_bank()
    doc = httpx.get(f"{url}/openapi.json").json()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            headers = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "header"}
            if method == "post":
                assert headers["Idempotency-Key"]["required"] is True, path
            else:
                assert "Idempotency-Key" not in headers, path
            assert {"400", "401", "403", "404", "405", "409", "413", "422", "429"} <= set(op["responses"]), path
        # an unsupported method gets 405 with every method the path does take
        answer = httpx.request("PATCH", url + path.replace("{", "").replace("}", ""))
        assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"
        assert {m.upper() for m in operations} <= set(answer.headers["Allow"].split(", ")), path
    missing = httpx.post(f"{url}/v1/accounts", json={"display_name": "a", "currency": "MYR"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "idempotency_key_missing"


def test_schemathesis_quick(serve_bank, tmp_path: Path) -> None:
    url, _, _ = serve_bank(*OPEN)
    run = schemathesis(url, tmp_path, "--max-examples", "5", "--seed", "7")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout


@pytest.mark.slow
def test_schemathesis_all_checks(serve_bank, tmp_path: Path) -> None:
    url, _, _ = serve_bank(*OPEN)
    run = schemathesis(url, tmp_path, "--max-examples", "100")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
