"""Training data for SageMaker from a windows or clicks CSV, written through the core's format module.

Layout under ``s3://BUCKET/PREFIX/`` (each channel is its own folder, which is what the job's
``S3Prefix`` channels point at):

* ``rcf/train/train.csv``   no header, feature columns only   ``text/csv;label_size=0``
* ``rcf/test/test.csv``     label first, then features        ``text/csv;label_size=1`` (needs labels)
* ``rcf/scaling.json``      the per-column centre and scale applied to the RCF features (outside the
  channel folders, so the algorithm never reads it; ``invoke`` applies it to requests)
* ``deepar/train/train.json``  JSON Lines, series minus the last ``prediction_length`` points
* ``deepar/test/test.json``    JSON Lines, the full series
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from clickstream_anomaly import features
from clickstream_anomaly import sagemaker_formats as fmt
from clickstream_anomaly.sagemaker_config import SageMakerConfigError, validate_bucket, validate_prefix
from clickstream_anomaly.scaling import Scaling

from .spec import CHANNELS, DEEPAR_MIN_OBSERVATIONS, SCALING_KEY, root_prefix

#: ``{name: key under the root}`` of every file ``prepare`` writes (names as ``<algorithm>-<channel>``).
CHANNEL_KEYS: dict[str, str] = {
    **{f"{alg}-{ch.name}": ch.key for alg, chans in CHANNELS.items() for ch in chans},
    "rcf-scaling": SCALING_KEY,
}
CONTENT_TYPES: dict[str, str] = {
    **{f"{alg}-{ch.name}": ch.content_type for alg, chans in CHANNELS.items() for ch in chans},
    "rcf-scaling": "application/json",
}


@dataclass(frozen=True)
class Dataset:
    """One channel file: its name (a key of :data:`CHANNEL_KEYS`), body text and content type."""

    name: str
    body: str
    content_type: str

    @property
    def key(self) -> str:
        return CHANNEL_KEYS[self.name]


def load_windows(path: str | Path) -> pd.DataFrame:
    """A windows CSV as is, or a clicks CSV (header ``timestamp,user,page``) turned into windows."""
    return features.load_windows(path)


def channel_uri(bucket: str, prefix: str, name: str) -> str:
    """``s3://bucket/prefix/rcf/train/`` style URI of a channel's folder (what a job's channel reads)."""
    folder = CHANNEL_KEYS[name].rsplit("/", 1)[0]
    return f"s3://{bucket}/{root_prefix(validate_prefix(prefix))}{folder}/"


def build_datasets(
    windows: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    *,
    prediction_length: int = 144,
    column: str = "clicks",
    include_deepar: bool = True,
    scaling: Scaling | None = None,
) -> list[Dataset]:
    """The channel files for ``windows`` (``n`` rows of :data:`WINDOW_COLUMNS`).

    RCF features are standardised with ``scaling`` (default: :meth:`Scaling.fit` on ``windows``; pass
    :meth:`Scaling.identity` for raw features), which is written as ``rcf-scaling`` for ``invoke``.
    ``labels`` (``window_start, is_anomaly``) adds the labelled RCF test channel; windows without a label
    count as normal. The DeepAR series is ``column`` per window, split per DeepAR's convention
    (``include_deepar=False`` leaves the DeepAR files out).
    """
    if windows.empty:
        raise SageMakerConfigError("no windows to prepare")
    scaling = scaling or Scaling.fit(windows)
    features = scaling.apply(windows)
    out = [
        Dataset("rcf-train", fmt.rcf_training_csv(features), CONTENT_TYPES["rcf-train"]),
        Dataset("rcf-scaling", scaling.to_json(), CONTENT_TYPES["rcf-scaling"]),
    ]
    if labels is not None:
        label_of = pd.Series(
            labels["is_anomaly"].astype("int64").to_numpy(), index=pd.to_datetime(labels["window_start"], utc=True)
        )
        label_of = label_of[~label_of.index.duplicated()]
        starts = pd.to_datetime(windows["window_start"], utc=True)
        y = label_of.reindex(starts).fillna(0).astype("int64").to_numpy()
        out.append(Dataset("rcf-test", fmt.rcf_test_csv(features, y), CONTENT_TYPES["rcf-test"]))
    if not include_deepar:
        return out
    record = fmt.series_from_windows(windows, column)
    train, test = fmt.train_test_split(record, prediction_length)
    if len(train["target"]) < DEEPAR_MIN_OBSERVATIONS:
        raise SageMakerConfigError(
            f"DeepAR needs at least {DEEPAR_MIN_OBSERVATIONS} training points; {len(windows)} windows minus "
            f"prediction_length={prediction_length} leaves {len(train['target'])}"
        )
    out.append(Dataset("deepar-train", fmt.to_jsonlines([train]), CONTENT_TYPES["deepar-train"]))
    out.append(Dataset("deepar-test", fmt.to_jsonlines([test]), CONTENT_TYPES["deepar-test"]))
    return out


def write_local(datasets: list[Dataset], folder: str | Path) -> list[Path]:
    """Write the channel files under ``folder`` with the same relative keys as in S3."""
    paths = []
    for ds in datasets:
        path = Path(folder) / ds.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ds.body, encoding="utf-8")
        paths.append(path)
    return paths


def upload(s3: Any, datasets: list[Dataset], bucket: str, prefix: str = "clickstream-anomaly") -> dict[str, str]:
    """Upload each dataset to ``s3://bucket/prefix/<key>``; returns ``{name: s3 URI of the file}``."""
    bucket = validate_bucket(bucket)
    prefix = validate_prefix(prefix)
    uris = {}
    for ds in datasets:
        key = f"{prefix}/{ds.key}" if prefix else ds.key
        s3.put_object(Bucket=bucket, Key=key, Body=ds.body.encode("utf-8"), ContentType=ds.content_type)
        uris[ds.name] = f"s3://{bucket}/{key}"
    return uris
