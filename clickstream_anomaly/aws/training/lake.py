"""Training data from the data lake: the work of the pipelines' prepare step (one Lambda per run).

Event ``{"algorithm": "rcf" | "deepar", "run": "<run id>"}``. Reads the window features Firehose delivered
to the lake (``features/dt=YYYY-MM-DD/``, GZIP or plain, one JSON window per line) for the last
``TRAINING_DAYS`` days, and writes the channel files of the one training-job spec (:mod:`.spec`: keys,
content types) under ``CHANNELS_ROOT`` (default ``""``) in ``MODELS_BUCKET``; one run per algorithm at a
time overwrites them, tagged with the run id. Missing windows are ``"NaN"`` in the DeepAR series.

Returns ``{"train": "s3://.../train/", ["test": "s3://.../test/"], ["scaling": "s3://..."], "windows": n}``:
channel folders, which is what the training job's ``S3Prefix`` channels read.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from clickstream_anomaly import sagemaker_formats as fmt
from clickstream_anomaly.features import records_to_windows
from clickstream_anomaly.records import FEATURE_COLUMNS, RecordError, Window
from clickstream_anomaly.scaling import Scaling
from clickstream_anomaly.windowspec import DEFAULT_FREQ

from .spec import DEEPAR_MIN_OBSERVATIONS, SCALING_KEY, Algorithm, channel, root_prefix

LAKE_FEATURES_PREFIX = "features/"


def day_prefixes(days: int, now: datetime) -> list[str]:
    """Lake prefixes of the last ``days`` UTC dates up to and including ``now``'s, oldest first."""
    today = now.astimezone(UTC).date()
    return [f"{LAKE_FEATURES_PREFIX}dt={today - timedelta(days=k):%Y-%m-%d}/" for k in range(days - 1, -1, -1)]


def parse_objects(bodies: Iterable[bytes]) -> Iterator[Window]:
    """Window records from Firehose objects (GZIP or plain; newline-delimited or concatenated JSON).

    Records that are not windows are skipped: the lake may hold what producers got wrong.
    """
    decoder = json.JSONDecoder()
    for body in bodies:
        text = (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).decode("utf-8")
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except ValueError:
                nxt = text.find("\n", pos)
                if nxt < 0:
                    break
                pos = nxt + 1
                continue
            try:
                yield Window.from_mapping(obj)
            except (RecordError, TypeError, AttributeError):
                continue


def lake_windows(s3: Any, lake: str, days: int, now: datetime) -> Iterator[Window]:
    """The window records of the lake's last ``days`` UTC dates up to ``now``'s (:func:`day_prefixes`), oldest
    date first, read with an injected S3 client (``list_objects_v2`` paginator, ``get_object``)."""
    paginator = s3.get_paginator("list_objects_v2")
    bodies = []
    for prefix in day_prefixes(days, now):
        for page in paginator.paginate(Bucket=lake, Prefix=prefix):
            for item in page.get("Contents", []):
                bodies.append(s3.get_object(Bucket=lake, Key=item["Key"])["Body"].read())
    return parse_objects(bodies)


def windows_frame(records: Iterable[Window], freq: str) -> pd.DataFrame:
    """Records -> windows sorted by start, duplicates (re-deliveries) collapsed to the last one, and the
    gaps filled with NaN rows so the series is regular at ``freq``."""
    frame = records_to_windows(list(records))
    if frame.empty:
        return frame
    frame = frame.drop_duplicates("window_start", keep="last").set_index("window_start").sort_index()
    full = pd.date_range(frame.index[0], frame.index[-1], freq=freq)
    return frame.reindex(full).rename_axis("window_start").reset_index()


def channel_files(algorithm: str, windows: pd.DataFrame, prediction_length: int) -> dict[str, tuple[str, str]]:
    """``{channel: (relative key, body)}`` for ``algorithm`` from a regular windows frame."""
    if algorithm == "rcf":
        complete = windows.dropna(subset=list(FEATURE_COLUMNS))
        if complete.empty:
            raise ValueError("no windows in the lake for the training period")
        # The same robust scaling as `sagemaker prepare` and the local twin; the scorer applies it too.
        scaling = Scaling.fit(complete)
        return {
            "train": (channel(Algorithm.RCF, "train").key, fmt.rcf_training_csv(scaling.apply(complete))),
            "scaling": (SCALING_KEY, scaling.to_json()),
        }
    if algorithm == "deepar":
        if windows.empty:
            raise ValueError("no windows in the lake for the training period")
        record = fmt.series_from_windows(windows, "clicks")
        train, test = fmt.train_test_split(record, prediction_length)
        if len(train["target"]) < DEEPAR_MIN_OBSERVATIONS:
            raise ValueError(
                f"DeepAR needs at least {DEEPAR_MIN_OBSERVATIONS} training windows; the lake has "
                f"{len(windows)} for the training period, minus prediction_length="
                f"{prediction_length} leaves {len(train['target'])}"
            )
        return {
            "train": (channel(Algorithm.DEEPAR, "train").key, fmt.to_jsonlines([train])),
            "test": (channel(Algorithm.DEEPAR, "test").key, fmt.to_jsonlines([test])),
        }
    raise ValueError(f"unknown algorithm {algorithm!r}; use rcf or deepar")


def prepare(event: Mapping[str, Any], s3: Any, env: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """The whole step with an injected S3 client (``list_objects_v2`` paginator, ``get_object``,
    ``put_object``), environment and clock."""
    algorithm = str(event["algorithm"])
    run = str(event["run"])
    lake, models = env["LAKE_BUCKET"], env["MODELS_BUCKET"]
    root = root_prefix(env.get("CHANNELS_ROOT", ""))
    windows = windows_frame(
        lake_windows(s3, lake, int(env["TRAINING_DAYS"]), now), env.get("WINDOW_FREQ", DEFAULT_FREQ)
    )
    files = channel_files(algorithm, windows, int(env.get("PREDICTION_LENGTH", "144")))
    out: dict[str, Any] = {"windows": len(windows)}
    for name, (key, body) in files.items():
        full_key = f"{root}{key}"
        s3.put_object(Bucket=models, Key=full_key, Body=body.encode("utf-8"), Metadata={"run": run})
        # a channel is a folder (SageMaker reads all of it); the scaling is one object beside them
        out[name] = f"s3://{models}/{full_key}" if name == "scaling" else f"s3://{models}/{full_key.rsplit('/', 1)[0]}/"
    return out
