"""Optional numba compilation of the RCF kernels.

The kernels in :mod:`clickstream_anomaly.rcf._kernels` are plain Python over numpy arrays. When numba is
importable they are compiled with ``numba.njit(cache=True)``; otherwise (the deployed detector Lambda,
which ships without numba) they run as ordinary Python and give the same results, only slower.
Set ``CLICKSTREAM_ANOMALY_NO_NUMBA=1`` before import to force the pure-Python path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

NO_NUMBA_ENV = "CLICKSTREAM_ANOMALY_NO_NUMBA"


def _numba_module() -> Any:
    if os.environ.get(NO_NUMBA_ENV, "").strip() not in ("", "0"):
        return None
    try:
        import numba
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return numba


_NUMBA = _numba_module()
#: True when the kernels are compiled with numba.
COMPILED: bool = _NUMBA is not None


def jit(parallel: bool = False, inline: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``numba.njit(cache=True, ...)`` when numba is available, identity otherwise.
    ``inline`` inlines the function into its jitted callers (small hot helpers)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if _NUMBA is None:
            return fn
        return _NUMBA.njit(cache=True, nogil=True, parallel=parallel, inline="always" if inline else "never")(fn)

    return wrap


prange: Any = _NUMBA.prange if _NUMBA is not None else range
