"""Compiling the hot loops (the world's motion, the server's interest and snapshots) with numba, cached on disk.

``njit(cache=True)`` keeps the machine code in ``__pycache__`` (or numba's user cache), so a
restart loads it in a fraction of a second instead of compiling for seconds. Numba refuses
``cache=True`` outright (RuntimeError at decoration) when neither place is writable, e.g. a
read-only install without a home: then compile in memory, once a process, and say so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from numba import njit


def compiled(**options) -> Callable[[Callable], Callable]:
    """``njit(cache=True, **options)``, falling back to an in-memory compile."""

    def wrap(func: Callable) -> Callable:
        try:
            return njit(cache=True, **options)(func)
        except RuntimeError:
            warnings.warn(f"no writable cache directory for {func.__module__}.{func.__name__} (set NUMBA_CACHE_DIR): "
                          "it is compiled anew at every start", RuntimeWarning, stacklevel=2)
            return njit(**options)(func)

    return wrap
