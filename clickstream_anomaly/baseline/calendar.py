"""Where a window falls in the site's week: its slot of the local day and its local weekday.

"Local" is the ``timezone`` setting (an IANA name such as ``Europe/Paris``; default ``UTC``), DST
included: on a spring-forward day the skipped hour's slots are simply not visited, on a fall-back day
the repeated hour visits its slots twice. Batch and streaming call the same function, so they agree.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from ..windowspec import WindowSpec

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def check_timezone(name: str) -> str:
    """``name`` if it is a known IANA time zone, else ``ValueError`` saying so."""
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as UTC or Europe/Paris") from exc
    return str(name)


def local_slots(starts_ns: np.ndarray, spec: WindowSpec, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Slot of the local day and local weekday (0 = Monday) of each window start.

    Parameters
    ----------
    starts_ns : ndarray of shape (n_windows,)
        Window starts in ns since the Unix epoch (UTC).
    spec : WindowSpec
        The window length; a day has ``spec.per_day`` slots.
    timezone : str
        IANA time zone of the site.

    Returns
    -------
    slots, weekdays : ndarrays of shape (n_windows,), int64
        ``slots`` in ``[0, spec.per_day)``, ``weekdays`` in ``[0, 7)``.
    """
    idx = pd.DatetimeIndex(np.asarray(starts_ns, dtype="int64").astype("datetime64[ns]"), tz="UTC")
    local = idx.tz_convert(timezone)
    seconds = (local.hour.to_numpy() * 3600 + local.minute.to_numpy() * 60 + local.second.to_numpy()).astype("int64")
    slots = np.minimum(seconds * 1_000_000_000 // spec.ns, spec.per_day - 1).astype("int64")
    return slots, local.day_of_week.to_numpy().astype("int64")


def slot_label(start_ns: int, timezone: str) -> str:
    """``"Tue 14:00"``: the local weekday and time of a window start, for causes a person reads."""
    ts = pd.Timestamp(int(start_ns), tz="UTC").tz_convert(timezone)
    return f"{WEEKDAYS[ts.day_of_week]} {ts:%H:%M}"
