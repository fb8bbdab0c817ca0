"""Vectorised msgpack encoding of integer arrays, for the snapshot hot path.

A tick sends every client the deltas of the avatars it sees: tens of thousands of small
integers. Encoding them all at once with numpy, then slicing per client, replaces a Python
list and a msgpack call per integer. The bytes are exactly what ``msgpack.packb`` writes
(the smallest format for each value), which the tests check.
"""

from __future__ import annotations

import numpy as np

# markers by payload size, for values >= 0 (uint) and < 0 (int); 1-byte values are fixints
_MARKERS = {1: (0xCC, 0xD0), 2: (0xCD, 0xD1), 4: (0xCE, 0xD2)}


def pack_ints(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """msgpack bytes of each value, concatenated, and the byte offset where each value
    starts (with one extra entry: the total length)."""
    v = np.asarray(values, dtype=np.int64).ravel()
    if len(v) and (v.min() < -(2**31) or v.max() > 0xFFFFFFFF):
        raise ValueError("pack_ints handles int32 and uint32 ranges only")
    fixint = (v >= -32) & (v <= 127)
    negative = v < 0
    payload = np.where(fixint, 0, np.where((v >= -128) & (v <= 255), 1, np.where((v >= -32768) & (v <= 65535), 2, 4)))
    offsets = np.zeros(len(v) + 1, dtype=np.int64)
    np.cumsum(payload + 1, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    starts = offsets[:-1]
    out[starts[fixint]] = (v[fixint] & 0xFF).astype(np.uint8)
    for size, (unsigned, signed) in _MARKERS.items():
        where = payload == size
        if not where.any():
            continue
        at, w = starts[where], v[where]
        out[at] = np.where(negative[where], signed, unsigned)
        for i in range(size):  # big-endian payload
            out[at + 1 + i] = ((w >> (8 * (size - 1 - i))) & 0xFF).astype(np.uint8)
    return out.tobytes(), offsets


def array_header(count: int) -> bytes:
    """The msgpack header of an array of ``count`` items."""
    if count < 16:
        return bytes((0x90 | count,))
    if count <= 0xFFFF:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")
