"""A client written only from protocol/README.md: it imports websockets and msgpack, nothing of
the project. It joins, moves, sees a second client enter and move, chats, and is refused
cleanly on a bad frame while the other client carries on."""

from __future__ import annotations

import math
import time

import msgpack
import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.e2e

HELLO, INPUT, CHAT, PING = 1, 2, 3, 4
WELCOME, REFUSED, SNAPSHOT, CHATLINE, PONG, ERROR = 64, 65, 68, 69, 70, 71


class ThirdPartyClient:
    def __init__(self, ws, name: str) -> None:
        self.ws = ws
        self.name = name
        self.others: dict[int, dict] = {}  # entity -> {"name", "x", "y", "yaw", "motion"}
        self.seq = 0
        self.chat: list[tuple[str, str]] = []
        self.errors: list[tuple[str, str, int]] = []
        self.snapshot = None

    def send(self, *items) -> None:
        self.ws.send(msgpack.packb(list(items)))

    def join(self) -> list:
        self.send(HELLO, 4, self.name, 0xCC3300, 1, None, None, None, None)
        reply = msgpack.unpackb(self.ws.recv(timeout=5))
        assert reply[0] == WELCOME, reply
        self.entity = reply[2]
        self.tick_rate = reply[3]
        self.own = reply[7]  # [hall, x, y, yaw, motion]
        self.manifest = reply[9]
        return reply

    def pump(self, seconds: float) -> None:
        """Read frames for a while, applying the view rules of the specification."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = msgpack.unpackb(self.ws.recv(timeout=left))
            except TimeoutError:
                return
            kind = message[0]
            if kind == SNAPSHOT:  # leaves, then enters, then deltas
                _, tick, server_time, ack, own, leaves, enters, deltas = message
                for entity in leaves:
                    del self.others[entity]
                for entity, name, _colour, _style, _staff_of, (x, y, yaw, motion) in enters:
                    self.others[entity] = {"name": name, "x": x, "y": y, "yaw": yaw, "motion": motion}
                self.own, self.ack, self.snapshot = own, ack, message
                entity = 0
                for i in range(0, len(deltas), 5):
                    gap, dx, dy, dyaw, motion = deltas[i : i + 5]
                    entity += gap  # each names its entity by the gap from the one before
                    state = self.others[entity]
                    state["x"] += dx
                    state["y"] += dy
                    state["yaw"] = (state["yaw"] + dyaw) % 65536
                    state["motion"] = motion
            elif kind == CHATLINE:
                self.chat.append((message[3], message[4]))
            elif kind == ERROR:
                self.errors.append((message[1], message[2], message[3]))

    def walk(self, dx: float, dy: float, steps: int) -> None:
        """One Input that holds for ``steps`` ticks, then one that stops."""
        self.send(INPUT, self.seq + 1, dx, dy, math.atan2(dy, dx), False, steps)
        self.seq += steps
        self.pump(steps / self.tick_rate)
        self.seq += 1
        self.send(INPUT, self.seq, 0.0, 0.0, math.atan2(dy, dx), False, 1)


def test_third_party_client_joins_moves_sees_and_chats(server_url):
    with connect(server_url, compression=None) as ws_a, connect(server_url, compression=None) as ws_b:
        play(ThirdPartyClient(ws_a, "Amir"), ThirdPartyClient(ws_b, "Bola"))


def play(amir: ThirdPartyClient, bola: ThirdPartyClient) -> None:
    welcome = amir.join()
    assert welcome[5] and welcome[9]["halls"], "resume token and manifest"
    start_x = amir.own[1]
    amir.walk(1.0, 0.0, 10)
    amir.pump(0.3)
    assert amir.ack == amir.seq and amir.own[1] == start_x + 125  # ten steps of 12.5 cm east, all acked
    assert amir.own[4] == 0  # and stopped

    bola.join()
    amir.pump(0.3)
    assert bola.entity in amir.others and amir.others[bola.entity]["name"] == "Bola"
    before = amir.others[bola.entity]["y"]
    bola.walk(0.0, 1.0, 10)
    amir.pump(0.3)
    bola.pump(0.1)
    assert amir.others[bola.entity]["y"] == bola.own[2] > before  # deltas reproduce the server's state

    amir.send(CHAT, 0, "Salam! Where is the honey?")
    bola.pump(0.3)
    assert ("Amir", "Salam! Where is the honey?") in bola.chat

    # a bad frame: Bola gets an error and stays connected; Amir is unaffected
    bola.ws.send(b"\xc1\xc1 not msgpack")
    bola.send(INPUT, bola.seq + 1, math.nan, 0.0, 0.0, False, 1)
    bola.pump(0.3)
    codes = [code for code, _, _ in bola.errors]
    assert codes == ["bad_frame", "bad_field"]
    amir.walk(-1.0, 0.0, 5)
    amir.pump(0.3)
    bola.pump(0.1)
    assert amir.ack == amir.seq
    assert bola.others[amir.entity]["x"] == amir.own[1]


def test_third_party_client_refused_on_bad_version(server_url):
    with connect(server_url, compression=None) as ws:
        client = ThirdPartyClient(ws, "Old")
        client.send(HELLO, 99, "Old", 0, 0, None, None)
        reply = msgpack.unpackb(client.ws.recv(timeout=5))
        assert reply[0] == REFUSED and reply[1] == "version_mismatch"
