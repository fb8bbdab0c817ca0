import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.packing import array_header, pack_ints

EDGES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2**31)]


def test_edges_match_msgpack_byte_for_byte():
    body, offsets = pack_ints(np.array(EDGES))
    assert body == b"".join(msgpack.packb(v) for v in EDGES)
    assert [body[offsets[i]:offsets[i + 1]] for i in range(len(EDGES))] == [msgpack.packb(v) for v in EDGES]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**31), 2**32 - 1), max_size=200))
def test_arrays_round_trip_through_msgpack(values):
    body, offsets = pack_ints(np.array(values, dtype=np.int64))
    assert array_header(len(values)) + body == msgpack.packb(values)
    assert offsets[-1] == len(body)


@pytest.mark.parametrize("count", [0, 15, 16, 65535, 65536])
def test_array_headers(count):
    assert array_header(count) == msgpack.packb([0] * count)[: len(array_header(count))]


def test_out_of_range_is_refused():
    with pytest.raises(ValueError):
        pack_ints(np.array([2**33]))
