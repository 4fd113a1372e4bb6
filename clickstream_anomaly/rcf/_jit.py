"""Optional numba compilation of the RCF kernels.

The kernels of :mod:`clickstream_anomaly.rcf` (:mod:`.nodes`, :mod:`.boxes`, :mod:`.pointstore`,
:mod:`.sampler`, :mod:`.tree`, :mod:`.walks`, :mod:`.executor`) are plain Python over numpy arrays grouped
in named tuples. When numba is importable they are compiled with ``numba.njit(cache=True)``;
otherwise (the deployed detector Lambda, which ships without numba) they run as ordinary Python and give
the same results, only slower. Set ``CLICKSTREAM_ANOMALY_NO_NUMBA=1`` before import to force the
pure-Python path.

numba's on-disk cache checks only the source file of the function it compiled, not the files of the
functions it calls (its documented caching limitation), and the kernels here call across modules. So
the compiled kernels' cache is keyed on a digest of every module of this package: editing any of them
recompiles all of them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

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


def package_digest(folder: Path = Path(__file__).parent) -> bytes:
    """SHA-256 over the names and contents of the ``*.py`` files of ``folder`` (this package by default)."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


def _package_cache() -> Any:
    """numba's ``FunctionCache`` with every cache locator's source stamp replaced by
    :func:`package_digest`, or None when numba's caching internals are not as expected (then numba's
    own cache is used)."""
    try:
        from numba.core import caching

        base = caching.CompileResultCacheImpl
        stamp = package_digest()

        def stamped(locator: type) -> type:
            return type(locator.__name__, (locator,), {"get_source_stamp": lambda self: stamp})

        impl = type("PackageCacheImpl", (base,), {"_locator_classes": [stamped(c) for c in base._locator_classes]})
        return type("PackageFunctionCache", (caching.FunctionCache,), {"_impl_class": impl})
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - other numba versions
        return None


_CACHE = _package_cache() if _NUMBA is not None else None


def _nrt_option_known() -> bool:
    """Whether this numba takes the (private) ``_nrt`` target option; 0.68 does."""
    try:
        from numba.core.options import DefaultOptions

        return hasattr(DefaultOptions, "_nrt")
    except ImportError:  # pragma: no cover - other numba versions
        return False


_NO_NRT = _NUMBA is not None and _nrt_option_known()

_Kernel = TypeVar("_Kernel", bound=Callable[..., Any])


def jit(parallel: bool = False, inline: bool = False, allocates: bool = False) -> Callable[[_Kernel], _Kernel]:
    """Decorator: ``numba.njit(cache=True, nogil=True, ...)`` when numba is available, identity otherwise.

    ``inline`` inlines the function into its jitted callers (small hot helpers). Only kernels that
    allocate arrays (``allocates``) use numba's reference-counted runtime (NRT); the others are compiled
    without it (numba's ``_nrt=False``), because NRT updates a reference count for every array each call
    passes, and in the per-node walks that costs more than the walk itself (about 10 ns per array per
    call; a call with a node store passes eleven). Kernels compiled without NRT receive arrays from their
    caller, which keeps them alive, and never return one.

    The decorated kernel keeps its Python signature for the type checker (numba ignores the annotations),
    so calls between kernels and from the estimators are checked against it."""

    def wrap(fn: _Kernel) -> _Kernel:
        if _NUMBA is None:
            return fn
        options = {"nogil": True, "parallel": parallel, "inline": "always" if inline else "never"}
        if not allocates and _NO_NRT:
            options["_nrt"] = False
        dispatcher = _NUMBA.njit(cache=True, **options)(fn)
        if _CACHE is not None:
            dispatcher._cache = _CACHE(fn)
        return dispatcher

    return wrap


prange: Any = _NUMBA.prange if _NUMBA is not None else range


@jit(inline=True)
def f64(x: Any) -> float:
    """A float32 array value as float64 (numba's ``float()`` keeps float32; NumPy's weak scalars would too),
    so that numba and NumPy promote the same way."""
    return np.float64(x)
