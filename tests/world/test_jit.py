"""The compile helper of the numba kernels (motion, interest, snapshots)."""

import pytest

from world import jit


def test_compiles_in_memory_without_a_writable_cache(monkeypatch):
    """numba refuses cache=True when no cache directory is writable (RuntimeError at
    decoration, i.e. at import): the kernels must then compile without the disk cache."""
    plain = []

    def njit(**options):
        if options.pop("cache", False):
            raise RuntimeError("cannot cache function 'f': no locator available")
        plain.append(options)
        return lambda func: func

    monkeypatch.setattr(jit, "njit", njit)
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        assert jit.compiled(inline="always")(abs) is abs
    assert plain == [{"inline": "always"}]
