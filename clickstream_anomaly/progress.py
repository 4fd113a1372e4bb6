"""The progress interface that long core loops report to: tqdm's bar fits it, and so does
:func:`clickstream_anomaly.cli.progress.progress_bar`'s silent stand-in."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Told ``update(n)`` after each ``n`` more units of work (clicks read, records sent)."""

    def update(self, n: int = 1) -> object: ...
