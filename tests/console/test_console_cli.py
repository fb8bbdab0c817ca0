"""`expo-console` as an organiser types it, and the running console taking its logins."""

from __future__ import annotations

import subprocess

from console_support import Browser, console_url, running_server
from processes import BIN


def expo_console(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "expo-console"), *args], capture_output=True, text=True, timeout=60)


async def test_a_login_issued_in_the_terminal_opens_its_booth_until_revoked(tmp_path):
    async with running_server(tmp_path) as server:
        data = str(server.config.data_dir)
        issued = expo_console("--data-dir", data, "issue", "kz-altai-honey", "--label", "Aigerim", "--world", str(server.sim.expo.root))
        assert issued.returncode == 0, issued.stderr
        token = issued.stdout.strip()
        browser = Browser(console_url(server))
        try:
            assert (await browser.login(token)).headers["location"] == "/booth/kz-altai-honey"
            [line] = expo_console("--data-dir", data, "list").stdout.splitlines()
            digest, booth, label, _, state = line.split("\t")
            assert (booth, label, state) == ("kz-altai-honey", "Aigerim", "active") and token not in line
            assert expo_console("--data-dir", data, "revoke", digest).returncode == 0
            assert (await browser.login(token)).status_code == 401
            again = expo_console("--data-dir", data, "revoke", digest)
            assert again.returncode == 1 and "no active login" in again.stderr
        finally:
            await browser.close()


def test_an_unknown_booth_is_refused_with_the_booths_there_are(tmp_path):
    out = expo_console("--data-dir", str(tmp_path), "issue", "no-such-booth")
    assert out.returncode == 2 and "no booth 'no-such-booth'" in out.stderr and "kz-altai-honey" in out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
