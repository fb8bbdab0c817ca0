"""A real X display for the desktop client: Xvfb, the client as a process, xdotool's keys
and mouse (XTEST events, what a keyboard makes), and the window's F12 screenshots."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from processes import BIN, ROOT

NEEDED = ("Xvfb", "xdotool")

WM_DELETE = """
import ctypes, sys

class ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

class Event(ctypes.Union):
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

x = ctypes.CDLL("libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XInternAtom.restype = ctypes.c_ulong
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(Event)]
x.XFlush.argtypes = x.XCloseDisplay.argtypes = [ctypes.c_void_p]
display, event = x.XOpenDisplay(None), Event()
event.xclient.type, event.xclient.window, event.xclient.format = 33, int(sys.argv[1]), 32  # 33: ClientMessage
event.xclient.message_type = x.XInternAtom(display, b"WM_PROTOCOLS", False)
event.xclient.data[0] = x.XInternAtom(display, b"WM_DELETE_WINDOW", False)
x.XSendEvent(display, int(sys.argv[1]), False, 0, ctypes.byref(event))
x.XFlush(display)
x.XCloseDisplay(display)
"""


def missing_tools() -> list[str]:
    return [tool for tool in NEEDED if shutil.which(tool) is None]


class Display:
    """``Xvfb`` on the first free display number (it picks, ``-displayfd``)."""

    def __init__(self, size: tuple[int, int] = (1280, 720)) -> None:
        read, write = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size[0]}x{size[1]}x24",
                                      "-nolisten", "tcp", "+extension", "GLX"], pass_fds=(write,),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.name = f":{number}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.name}

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class ClientWindow:
    """``expo-client`` in a window on ``display``; keys go to whichever window has focus
    (the client's, focused once it is mapped), as from a keyboard."""

    def __init__(self, display: Display, args: list[str], config_dir: Path, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.display = display
        self.config_dir = config_dir
        self.log = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([str(BIN / "expo-client"), "--config-dir", str(config_dir), "--multisamples", "0",
                                      *args], cwd=ROOT, env={**display.env(), **(env or {})}, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.window = self._find_window()
        self.xdo("windowfocus", "--sync", self.window)

    def xdo(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.display.env(), check=True, capture_output=True,
                              text=True, timeout=20).stdout.strip()

    def _find_window(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.flush()
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"expo-client exited with {self.proc.returncode}:\n{tail}")
            found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "Silk Road Expo"],
                                   env=self.display.env(), capture_output=True, text=True)
            if found.returncode == 0 and found.stdout.strip():
                return found.stdout.split()[0]
            time.sleep(0.3)
        raise TimeoutError("the client's window never appeared")

    def key(self, *keys: str) -> None:
        """Press and release, one after another (``"shift+Tab"`` holds Shift meanwhile)."""
        self.xdo("key", "--delay", "60", *keys)

    def close_button(self) -> None:
        """What a window manager's close button sends: WM_PROTOCOLS / WM_DELETE_WINDOW (Xvfb has
        no window manager, and xdotool's windowclose destroys the window instead of asking)."""
        subprocess.run([sys.executable, "-c", WM_DELETE, self.window], env=self.display.env(), check=True, timeout=20)

    def down(self, key: str) -> None:
        self.xdo("keydown", key)

    def up(self, key: str) -> None:
        self.xdo("keyup", key)

    def type(self, text: str, delay_ms: int = 60) -> None:
        self.xdo("type", "--delay", str(delay_ms), text)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The client stopped (SIGSTOP) for the block, then let go: one frame as long as the
        block, as on a slow or busy machine. What is typed meanwhile waits in the window's
        X queue and reaches Panda3D in one frame, as the fresh-clone CI's 2-second frame did."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.proc.pid, signal.SIGCONT)

    def click(self, x: int, y: int, button: int = 1) -> None:
        self.xdo("mousemove", "--window", self.window, str(x), str(y), "click", str(button))

    def screenshot(self, timeout: float = 15.0) -> Path:
        """F12, then the newest PNG the client wrote."""
        folder = self.config_dir / "screenshots"
        before = set(folder.glob("*.png")) if folder.is_dir() else set()
        self.key("F12")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = set(folder.glob("*.png")) - before if folder.is_dir() else set()
            if new:
                path = max(new)
                size = -1
                while size != path.stat().st_size:  # written whole
                    size = path.stat().st_size
                    time.sleep(0.3)
                return path
            time.sleep(0.1)
        raise TimeoutError("no screenshot")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
