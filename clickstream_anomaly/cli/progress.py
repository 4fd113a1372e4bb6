"""Progress bars for long steps (tqdm when installed and stderr is a terminal, silent otherwise)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from ..progress import Progress


class Bar(Progress, Protocol):
    """A progress bar: :class:`~clickstream_anomaly.progress.Progress` plus a text after the counts."""

    def set_postfix_str(self, s: str) -> object: ...


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass


@contextmanager
def progress_bar(
    total: int | None = None, *, unit: str = "it", desc: str = "", disable: bool = False, **kwargs: Any
) -> Iterator[Bar]:
    """A tqdm bar on stderr, or a no-op object when disabled, not a terminal, or tqdm is missing."""
    if disable or not sys.stderr.isatty():
        yield _Silent()
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield _Silent()
        return
    kwargs.setdefault("unit_scale", True)
    with tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, **kwargs) as bar:
        yield bar
