"""The library's one switch for compiled kernels: numba's ``njit`` where numba is installed.

Every compiled kernel of the three families (the lwmecps scaling model, the faas fluid model, the
MARLLB event loop, the PCG64 streams of the vector envs) is plain Python source decorated with
:func:`jit`. With `numba <https://numba.pydata.org>`_ (a dependency of the package, installed from
wheels) it is compiled; where numba is missing (the packaging check installs the wheel without it)
or with ``NUMBA_DISABLE_JIT=1`` the same source runs interpreted and gives the same numbers, slower.

Options fixed here for every kernel: no fastmath (IEEE operations in source order, so compiled and
interpreted runs agree bit for bit), ``nogil``, ``error_model="numpy"`` (division by zero gives
inf/NaN as numpy does instead of raising). ``cache=True`` stores the machine code beside the source
(``__pycache__``) so later processes skip compilation; numba does not track a cached function's calls
into other modules' compiled functions, so keep ``cache=False`` for a function whose callees live in
a module that may change independently (or accept recompiling by clearing the cache).

The compiled loops keep their state in preallocated arrays; :func:`grown` is the one way they make
room (amortised doubling).

Attributes:
    COMPILED: numba is importable (``jit`` compiles unless ``NUMBA_DISABLE_JIT=1``).
    JIT_ENABLED: numba is importable and not disabled: code that only exists compiled (numba
        intrinsics, e.g. 128-bit multiplication) may run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

try:
    from numba import config as _config
    from numba import njit as _njit

    COMPILED = True
    JIT_ENABLED = not _config.DISABLE_JIT
except ImportError:  # pragma: no cover - exercised only where numba is missing
    COMPILED = False
    JIT_ENABLED = False


def jit(fn: F | None = None, *, cache: bool = True, inline: bool = False) -> Any:
    """Compile ``fn`` with numba (see the module docstring for the options); ``fn`` itself without numba.

    ``inline=True`` inlines ``fn`` into its compiled callers (numba's ``inline="always"``): worth it
    for a hot function with many array arguments (each call passes and reference-counts every array),
    at the cost of a longer first compilation. Usable as ``@jit``, ``@jit(cache=False)`` or ``jit(fn)``.
    """
    if fn is None:
        return lambda f: jit(f, cache=cache, inline=inline)
    if not COMPILED:  # pragma: no cover - exercised only where numba is missing
        return fn
    return _njit(cache=cache, nogil=True, error_model="numpy", inline="always" if inline else "never")(fn)


def grown(a: np.ndarray, size: int, axis: int = 0) -> np.ndarray:
    """``a`` with at least ``size`` entries along ``axis``: ``a`` itself if it has them, else a copy of
    the same dtype with ``max(size, 2 * a.shape[axis])`` entries there (doubling, so growing one entry
    at a time costs amortised O(1) copies), ``a`` at the start and zeros after it."""
    n = a.shape[axis]
    if n >= size:
        return a
    shape = list(a.shape)
    shape[axis] = max(size, 2 * n)
    out = np.zeros(shape, dtype=a.dtype)
    out[(slice(None),) * axis + (slice(0, n),)] = a
    return out
