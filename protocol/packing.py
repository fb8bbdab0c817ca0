"""msgpack array headers, for frames assembled from pre-encoded parts (the server's
snapshot path writes the items itself and needs only the header in front of them)."""

from __future__ import annotations


def array_header(count: int) -> bytes:
    """The msgpack header of an array of ``count`` items."""
    if count < 16:
        return bytes((0x90 | count,))
    if count <= 0xFFFF:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")
