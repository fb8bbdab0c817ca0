"""``expo://HOST:PORT/?booth=ID`` links: how a web page (the console's booth directory) hands
a booth to the desktop client, and the freedesktop entry that lets a browser open them.

Sans-I/O parsing here; `register_handler` is the one thin I/O step (a file and xdg-mime)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

SCHEMES = {"expo": "ws", "expos": "wss"}
DESKTOP_FILE = "silk-road-expo.desktop"


@dataclass(frozen=True, slots=True)
class ExpoLink:
    server: str  # ws://HOST:PORT/ or wss://HOST:PORT/
    booth: str


def parse(url: str) -> ExpoLink:
    """The server and booth an expo:// URL names; ValueError says what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{url!r}: not an expo link (write expo://HOST:PORT/?booth=ID, or expos:// for wss)")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port must be a number from 1 to 65535") from None
    if not host or port is None or port == 0:
        raise ValueError(f"{url!r}: the link needs a host and a port (expo://HOST:PORT/?booth=ID)")
    booths = parse_qs(parts.query).get("booth", [])
    if len(booths) != 1 or not booths[0].strip():
        raise ValueError(f"{url!r}: the link needs one booth (…/?booth=ID)")
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return ExpoLink(f"{SCHEMES[parts.scheme]}://{netloc}/", booths[0])


def link(server: str, booth: str) -> str:
    """The expo:// URL that walks the client served by `server` (a ws:// or wss:// URL) to `booth`."""
    parts = urlsplit(server)
    scheme = {v: k for k, v in SCHEMES.items()}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"{server!r}: not a ws:// or wss:// URL")
    return f"{scheme}://{parts.netloc}/?booth={quote(booth, safe='')}"


def desktop_entry(executable: str) -> str:
    """The .desktop file's text: `Exec` quoted as the Desktop Entry spec asks when needed."""
    exe = executable if all(c not in executable for c in ' \t"\'\\><~|&;$*?#()`') else \
        '"' + executable.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$") + '"'
    return ("[Desktop Entry]\nType=Application\nName=Silk Road Expo\n"
            "Comment=Walk to a booth of the expo from a link\n"
            f"Exec={exe} %u\nTerminal=false\nNoDisplay=true\n"
            "MimeType=x-scheme-handler/expo;x-scheme-handler/expos;\n")


def register_handler(executable: str, env: dict[str, str] | None = None) -> list[str]:
    """Write the .desktop file under $XDG_DATA_HOME (default ~/.local/share) and make it the
    default for expo:// and expos:// with xdg-mime when there is one; returns what was done."""
    env = dict(os.environ if env is None else env)
    data = Path(env.get("XDG_DATA_HOME") or Path(env.get("HOME") or Path.home()) / ".local" / "share")
    apps = data / "applications"
    apps.mkdir(parents=True, exist_ok=True)
    target = apps / DESKTOP_FILE
    target.write_text(desktop_entry(executable), encoding="utf-8")
    done = [f"wrote {target}"]
    xdg_mime = shutil.which("xdg-mime", path=env.get("PATH"))
    if xdg_mime is None:
        done.append("xdg-mime not found: set the handler for x-scheme-handler/expo in your desktop's settings")
        return done
    for mime in ("x-scheme-handler/expo", "x-scheme-handler/expos"):
        run = subprocess.run([xdg_mime, "default", DESKTOP_FILE, mime], env=env, capture_output=True, text=True)
        if run.returncode == 0:
            done.append(f"ran xdg-mime default {DESKTOP_FILE} {mime}")
        else:
            done.append(f"xdg-mime default {DESKTOP_FILE} {mime} failed ({run.returncode}): {run.stderr.strip()}")
    return done
