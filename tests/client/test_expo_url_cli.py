"""``expo-client`` given a booth directory's expo:// link, and registering itself as the
desktop's handler of such links, as a person types them."""

from __future__ import annotations

import os
import subprocess

import pytest
from processes import BIN

from client.expo_url import ExpoLink, link, parse


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "expo-client"), *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(("url", "says"), [
    ("expo://bad", "needs a host and a port"),
    ("expo://127.0.0.1:8765/", "needs one booth"),
    ("expo://127.0.0.1:99999/?booth=x", "port must be a number"),
    ("https://127.0.0.1:8765/?booth=x", "not an expo link"),
    ("kz-altai-honey", "not an expo link"),
])
def test_a_bad_link_exits_2_and_says_why(url, says):
    done = run(url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "expo-client: error:" in done.stderr and says in done.stderr and url in done.stderr, done.stderr


def test_a_link_and_server_or_booth_together_are_refused():
    done = run("expo://127.0.0.1:8765/?booth=x", "--booth", "y")
    assert done.returncode == 2 and "not both" in done.stderr, done.stderr


def test_the_link_means_server_and_booth_and_the_console_writes_what_the_client_reads():
    assert parse("expo://127.0.0.1:8765/?booth=kz-altai-honey") == ExpoLink("ws://127.0.0.1:8765/", "kz-altai-honey")
    assert parse("expos://expo.example:443/?booth=a%20b") == ExpoLink("wss://expo.example:443/", "a b")
    assert parse("expo://[::1]:9/?booth=x").server == "ws://[::1]:9/"
    for server, booth in (("ws://127.0.0.1:8765/", "eg-nile-cotton"), ("wss://h.example:9/", "odd&id=?")):
        assert parse(link(server, booth)) == ExpoLink(server, booth)


def test_register_url_handler_writes_the_desktop_file(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = run("--register-url-handler", env=env)
    assert done.returncode == 0, done.stderr
    entry = tmp_path / "data" / "applications" / "silk-road-expo.desktop"
    assert f"wrote {entry}" in done.stdout
    lines = entry.read_text().splitlines()
    assert f"Exec={BIN / 'expo-client'} %u" in lines
    assert "MimeType=x-scheme-handler/expo;x-scheme-handler/expos;" in lines
    assert "[Desktop Entry]" == lines[0] and "Type=Application" in lines
    if (mime := subprocess.run(["sh", "-c", "command -v xdg-mime"], capture_output=True, text=True).stdout.strip()):
        assert "ran xdg-mime default silk-road-expo.desktop x-scheme-handler/expo" in done.stdout, done.stdout
        asked = subprocess.run([mime, "query", "default", "x-scheme-handler/expo"], env=env,
                               capture_output=True, text=True)
        assert asked.stdout.strip() == "silk-road-expo.desktop", (asked.stdout, asked.stderr)
    else:
        assert "xdg-mime not found" in done.stdout


def test_without_xdg_data_home_the_file_goes_under_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"), PATH="/nonexistent")
    done = subprocess.run([str(BIN / "python"), str(BIN / "expo-client"), "--register-url-handler"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".local" / "share" / "applications" / "silk-road-expo.desktop").is_file()
    assert "xdg-mime not found" in done.stdout
