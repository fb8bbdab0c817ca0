"""server.kernelsample's compiled loop reads what SocketPeer.sample_kernel reads."""

from __future__ import annotations

import socket
import time

import numpy as np

from server.connection import SocketPeer
from server.kernelsample import KernelSampler


def _stuck_pair() -> tuple[socket.socket, socket.socket, socket.socket]:
    """A loopback TCP connection whose client reads nothing, with the server's send queue full."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    server.setblocking(False)
    try:
        while True:
            server.send(b"x" * 65536)
    except BlockingIOError:
        pass
    return server, client, listener


def test_compiled_sample_reads_what_the_python_one_does() -> None:
    server, client, _ = _stuck_pair()
    try:
        peer = SocketPeer(None, time.monotonic)  # type: ignore[arg-type]  # the host is not called
        peer.fd, peer._sock = server.fileno(), server
        sampler = KernelSampler()
        unsent, acked, acked_at = np.zeros(1, np.int64), np.full(1, -1, np.int64), np.zeros(1)
        for _ in range(200):  # until the acknowledgements settle (the client's window shut)
            peer.sample_kernel()
            sampler(np.array([server.fileno()], np.int32), np.zeros(1, np.int64), unsent, acked, acked_at,
                    time.monotonic())
            before = (peer.kernel_unsent, peer.kernel_acked)
            peer.sample_kernel()
            if (peer.kernel_unsent, peer.kernel_acked) == before == (int(unsent[0]), int(acked[0])):
                break
            time.sleep(0.01)
        assert peer.kernel_unsent > 0 and peer.kernel_acked > 0
        assert (int(unsent[0]), int(acked[0])) == (peer.kernel_unsent, peer.kernel_acked)
        assert acked_at[0] > 0
    finally:
        server.close()
        client.close()


def test_a_closed_descriptor_reads_as_nothing_unsent() -> None:
    server, client, _ = _stuck_pair()
    fd = server.fileno()
    server.close()
    client.close()
    unsent, acked, acked_at = np.full(1, 7, np.int64), np.full(1, 3, np.int64), np.ones(1)
    KernelSampler()(np.array([fd], np.int32), np.zeros(1, np.int64), unsent, acked, acked_at, 5.0)
    assert (unsent[0], acked[0], acked_at[0]) == (0, 3, 1.0)
