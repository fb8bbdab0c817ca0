import msgpack
import pytest

from protocol.packing import array_header


@pytest.mark.parametrize("count", [0, 15, 16, 65535, 65536])
def test_array_headers(count):
    assert array_header(count) == msgpack.packb([0] * count)[: len(array_header(count))]
