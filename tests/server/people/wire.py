"""A visitor on a real socket speaking the project's protocol, for the people tests."""

from __future__ import annotations

import math
import time
from contextlib import ExitStack

from websockets.sync.client import ClientConnection, connect

import protocol as p


class WireVisitor:
    """Joins as ``name`` on a connection that ``stack`` closes."""

    def __init__(self, stack: ExitStack, url: str, name: str, staff_pass: str | None = None,
                 visitor_token: str | None = None) -> None:
        # max_queue=None: reads on while the test looks away (a full queue stops reading; close() then waits 10 s)
        self.ws: ClientConnection = stack.enter_context(connect(url, max_size=2**22, max_queue=None))
        self.name = name
        self.inbox: list[p.Message] = []
        self.in_view: set[int] = set()  # entities the snapshots say are in view
        self.seq = 0
        self.send(p.Hello(p.PROTOCOL_VERSION, name, 0x336699, 1, None, staff_pass, visitor_token))
        self.welcome = self.expect(p.Welcome)
        self.entity = self.welcome.entity

    def send(self, message: p.Message) -> None:
        self.ws.send(p.encode(message))

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._take(self.ws.recv(timeout=left))
            except TimeoutError:
                return

    def expect(self, kind: type, timeout: float = 5.0, where=lambda m: True):
        """The first message of ``kind`` (satisfying ``where``) received so far or within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.inbox):
                if isinstance(m, kind) and where(m):
                    return self.inbox.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {kind.__name__} in {timeout} s; got {[type(m).__name__ for m in self.inbox]}")
            try:
                self._take(self.ws.recv(timeout=left))
            except TimeoutError:
                pass

    def walk_until_in_view(self, entity: int, toward: tuple[float, float], timeout: float = 20.0) -> None:
        """Walk in the direction ``toward`` (hall axes) until ``entity`` is in view, as a visitor
        crosses the hall to a booth's staff; then stand still."""
        yaw = math.atan2(toward[1], toward[0])
        deadline = time.monotonic() + timeout
        while entity not in self.in_view:
            assert time.monotonic() < deadline, f"{self.name}: {entity} not in view after {timeout} s of walking"
            self.seq += 20  # one second of walking, sent once a second: seq counts the server's ticks
            self.send(p.Input(self.seq, toward[0], toward[1], yaw, False, 20))
            self.pump(1.0)
        self.seq += 20
        self.send(p.Input(self.seq, 0.0, 0.0, yaw, False, 1))

    def seen(self, *kinds: type) -> list[p.Message]:
        return [m for m in self.inbox if isinstance(m, kinds)]

    def _take(self, frame: bytes) -> None:
        m = p.decode_server(frame)
        if not isinstance(m, p.Snapshot):
            self.inbox.append(m)
            return
        self.in_view.difference_update(m.leaves)
        self.in_view.update(e.entity for e in m.enters)
