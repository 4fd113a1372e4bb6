"""The window spec: parsing, per-day counts, and carried with (or inferred from) a windows frame."""

from __future__ import annotations

import pandas as pd
import pytest

from clickstream_anomaly.features import read_windows, windows_from_frame, write_windows
from clickstream_anomaly.windowspec import DEFAULT_WINDOW, WindowSpec


@pytest.mark.parametrize(("text", "freq", "per_day"), [("10min", "10min", 144), ("1h", "1h", 24), ("90s", "90s", 960)])
def test_parse(text, freq, per_day):
    spec = WindowSpec.parse(text)
    assert (spec.freq, spec.per_day, spec.per_week) == (freq, per_day, per_day * 7)


@pytest.mark.parametrize("bad", ["0min", "-5min", "often"])
def test_bad_lengths(bad):
    with pytest.raises(ValueError, match="window frequency"):
        WindowSpec.parse(bad)


def test_spec_travels_with_windows(tmp_path):
    clicks = pd.DataFrame(
        {"timestamp": ["2020-01-01T00:05:00Z", "2020-01-01T03:10:00Z"], "user": ["a", "b"], "page": ["/", "/x"]}
    )
    hourly = windows_from_frame(clicks, "1h")
    assert WindowSpec.of(hourly).freq == "1h" and len(hourly) == 4
    write_windows(hourly, tmp_path / "w.csv")
    assert WindowSpec.of(read_windows(tmp_path / "w.csv")).freq == "1h"  # inferred from the spacing
    bare = pd.DataFrame({"window_start": pd.to_datetime(["2020-01-01"], utc=True)})
    assert WindowSpec.of(bare) == DEFAULT_WINDOW
