"""The window spec: how long a window is and where windows start. One home for ``"10min"``.

Windows are aligned to the Unix epoch (a 10-minute window starts at :00, :10, ...; a 1-hour window on
the hour, UTC). The spec travels with a windows frame in ``frame.attrs["window_spec"]`` (set by
:func:`clickstream_anomaly.features.compute_windows` and :func:`~clickstream_anomaly.features.read_windows`);
:meth:`WindowSpec.of` reads it back, or infers it from the spacing of ``window_start`` when a frame was
built by hand, so every detector, the report and the incident grouping agree on the window length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ATTR = "window_spec"
_DAY_NS = 86_400 * 1_000_000_000
_WEEK_NS = 7 * _DAY_NS


@dataclass(frozen=True)
class WindowSpec:
    """Window length (a positive ``pandas.Timedelta``) and alignment (``"epoch"``, the only one today)."""

    length: pd.Timedelta
    origin: str = "epoch"

    @classmethod
    def parse(cls, value: str | pd.Timedelta | WindowSpec | None) -> WindowSpec:
        """From ``"10min"``, ``"1h"``, a ``Timedelta`` or a spec; ``None`` is the default 10 minutes.

        Raises ``ValueError`` for a non-positive or unparsable length.
        """
        if isinstance(value, WindowSpec):
            return value
        if value is None:
            return DEFAULT_WINDOW
        try:
            td = pd.Timedelta(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"bad window frequency {value!r}: use e.g. '10min', '5min', '1h'") from exc
        if td <= pd.Timedelta(0):
            raise ValueError(f"window frequency must be positive, got {value!r}")
        return cls(td)

    @property
    def ns(self) -> int:
        """Length in nanoseconds."""
        return int(self.length.value)

    @property
    def seconds(self) -> float:
        return self.ns / 1e9

    @property
    def freq(self) -> str:
        """The length as a pandas frequency string (``"10min"``, ``"1h"``, ``"30s"``)."""
        s = self.ns // 1_000_000_000
        if self.ns % 1_000_000_000:
            return f"{self.ns}ns"
        if s % 3600 == 0:
            return f"{s // 3600}h"
        if s % 60 == 0:
            return f"{s // 60}min"
        return f"{s}s"

    @property
    def per_day(self) -> int:
        """Windows per day (144 for 10 minutes), at least 1."""
        return max(1, _DAY_NS // self.ns)

    @property
    def per_week(self) -> int:
        return max(1, _WEEK_NS // self.ns)

    def floor(self, ts_ns: np.ndarray | int) -> Any:
        """Window start(s) in ns of the given time(s) in ns since the epoch."""
        return (ts_ns // self.ns) * self.ns

    def attach(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Record this spec on ``frame`` (in place) and return it."""
        frame.attrs[ATTR] = self.freq
        return frame

    @classmethod
    def of(cls, frame: pd.DataFrame, default: str | None = None) -> WindowSpec:
        """The spec carried by ``frame``, else the median spacing of its ``window_start``, else ``default``."""
        carried = frame.attrs.get(ATTR) if hasattr(frame, "attrs") else None
        if carried:
            return cls.parse(carried)
        if "window_start" in frame and len(frame) >= 2:
            starts = pd.to_datetime(frame["window_start"], utc=True).to_numpy(dtype="datetime64[ns]").astype("int64")
            steps = np.diff(np.sort(starts))
            steps = steps[steps > 0]
            if steps.size:
                return cls(pd.Timedelta(int(np.median(steps)), unit="ns"))
        return cls.parse(default)

    def __str__(self) -> str:
        return self.freq


DEFAULT_WINDOW = WindowSpec(pd.Timedelta("10min"))
DEFAULT_FREQ = DEFAULT_WINDOW.freq
