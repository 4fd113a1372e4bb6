"""The training-data preparation Lambda of the Step Functions pipelines, with an in-memory S3 stand-in."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from clickstream_anomaly import sagemaker_formats as fmt
from clickstream_anomaly.records import Window
from clickstream_anomaly.scaling import RCF_SCALING_KEY, Scaling
from lambdas.prepare.app import channel_files, day_prefixes, parse_objects, prepare, windows_frame
from tests.stacks.cdk_synth import ROOT  # noqa: F401  (puts the project root on sys.path)

NOW = datetime(2020, 7, 16, 0, 5, tzinfo=UTC)


class FakeS3:
    """Just the S3 calls the Lambda makes: a paginated listing, get_object and put_object."""

    def __init__(self, objects: dict[tuple[str, str], bytes]) -> None:
        self.objects = dict(objects)
        self.puts: dict[tuple[str, str], bytes] = {}

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        outer = self

        class Paginator:
            def paginate(self, Bucket, Prefix):
                keys = sorted(k for b, k in outer.objects if b == Bucket and k.startswith(Prefix))
                yield {"Contents": [{"Key": k} for k in keys]} if keys else {}

        return Paginator()

    def get_object(self, Bucket, Key):
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def put_object(self, Bucket, Key, Body, **kwargs):
        self.puts[(Bucket, Key)] = Body


def _windows(start: datetime, n: int) -> list[Window]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        users = int(rng.integers(20, 40))
        clicks = users + int(rng.integers(0, 30))
        out.append(Window(start + timedelta(minutes=10 * i), int(rng.integers(5, 15)), users, clicks, clicks - users))
    return out


def _lake(windows: list[Window], *, gzip_it: bool, newline: bool) -> bytes:
    sep = "\n" if newline else ""
    text = sep.join(w.to_json() for w in windows) + sep
    return gzip.compress(text.encode()) if gzip_it else text.encode()


def test_day_prefixes_cover_the_training_period():
    assert day_prefixes(2, NOW) == ["features/dt=2020-07-15/", "features/dt=2020-07-16/"]


@pytest.mark.parametrize(("gzip_it", "newline"), [(True, True), (False, False)])
def test_parse_objects_reads_firehose_output(gzip_it, newline):
    wins = _windows(datetime(2020, 7, 15, tzinfo=UTC), 5)
    body = _lake(wins, gzip_it=gzip_it, newline=newline)
    assert list(parse_objects([body])) == wins


def test_parse_objects_skips_records_that_are_not_windows():
    good = _windows(datetime(2020, 7, 15, tzinfo=UTC), 2)
    body = (good[0].to_json() + '\n{"timestamp": "x"}\nnot json\n' + good[1].to_json() + "\n").encode()
    assert list(parse_objects([body])) == good


def test_windows_frame_dedupes_sorts_and_fills_gaps():
    wins = _windows(datetime(2020, 7, 15, tzinfo=UTC), 6)
    shuffled = [wins[3], wins[0], wins[1], wins[5], wins[0], wins[4]]  # wins[2] missing, wins[0] twice
    frame = windows_frame(shuffled, "10min")
    assert len(frame) == 6
    assert frame["window_start"].is_monotonic_increasing
    assert np.isnan(frame["clicks"].iloc[2])
    assert frame["clicks"].iloc[5] == wins[5].clicks


def test_rcf_channel_is_the_core_training_csv_without_gaps_scaled_as_the_cli_does():
    wins = _windows(datetime(2020, 7, 15, tzinfo=UTC), 5)
    frame = windows_frame([w for i, w in enumerate(wins) if i != 2], "10min")
    files = channel_files("rcf", frame, 144)
    key, body = files["train"]
    assert key == "rcf/train/train.csv"
    rows = np.loadtxt(io.StringIO(body), delimiter=",")
    assert rows.shape == (4, 4)  # the gap is dropped, 4 feature columns
    raw = np.array([[w.urls, w.users, w.clicks, w.residual] for i, w in enumerate(wins) if i != 2], dtype=float)
    scaling_key, scaling_json = files["scaling"]
    scaling = Scaling.from_json(scaling_json)
    assert scaling_key == RCF_SCALING_KEY and not scaling_key.startswith("rcf/train/")  # outside the channel
    assert scaling == Scaling.fit(frame.dropna())  # the one robust scaling of the CLI and the local twin
    assert body == fmt.rcf_training_csv((raw - np.asarray(scaling.center)) / np.asarray(scaling.scale))


def test_deepar_channels_hold_out_prediction_length():
    wins = _windows(datetime(2020, 7, 15, tzinfo=UTC), 320)
    files = channel_files("deepar", windows_frame(wins, "10min"), 6)
    (train,) = fmt.from_jsonlines(files["train"][1])
    (test,) = fmt.from_jsonlines(files["test"][1])
    assert len(test["target"]) == 320 and len(train["target"]) == 314
    assert test["start"] == "2020-07-15 00:00:00"
    assert files["train"][0] == "deepar/train/train.json" and files["test"][0] == "deepar/test/test.json"


def test_deepar_needs_enough_history():
    wins = _windows(datetime(2020, 7, 15, tzinfo=UTC), 305)
    with pytest.raises(ValueError, match=r"at least 300 training windows.*305.*prediction_length=6 leaves 299"):
        channel_files("deepar", windows_frame(wins, "10min"), 6)


def test_unknown_algorithm_and_empty_lake_fail_clearly():
    with pytest.raises(ValueError, match="unknown algorithm"):
        channel_files("xgboost", windows_frame(_windows(datetime(2020, 7, 15, tzinfo=UTC), 3), "10min"), 1)
    with pytest.raises(ValueError, match="no windows"):
        prepare({"algorithm": "rcf", "run": "r1"}, FakeS3({}), _env(), NOW)


def _env():
    return {
        "LAKE_BUCKET": "lake",
        "MODELS_BUCKET": "models",
        "TRAINING_DAYS": "2",
        "WINDOW_FREQ": "10min",
        "PREDICTION_LENGTH": "6",
    }


def test_prepare_reads_the_period_and_writes_channel_folders():
    day1 = _windows(datetime(2020, 7, 15, tzinfo=UTC), 144)
    day2 = _windows(datetime(2020, 7, 16, tzinfo=UTC), 180)
    old = _windows(datetime(2020, 7, 1, tzinfo=UTC), 3)  # outside the two-day period
    s3 = FakeS3(
        {
            ("lake", "features/dt=2020-07-15/a.gz"): _lake(day1, gzip_it=True, newline=True),
            ("lake", "features/dt=2020-07-16/b.gz"): _lake(day2, gzip_it=True, newline=True),
            ("lake", "features/dt=2020-07-01/c.gz"): _lake(old, gzip_it=True, newline=True),
            ("lake", "clicks/dt=2020-07-15/d.gz"): b"not features",
        }
    )
    out = prepare({"algorithm": "deepar", "run": "r1"}, s3, _env(), NOW)
    assert out["train"] == "s3://models/deepar/train/"
    assert out["test"] == "s3://models/deepar/test/"
    assert out["windows"] == 324  # 2020-07-15 00:00 .. 2020-07-16 05:50 at 10 minutes, no gap
    (test,) = fmt.from_jsonlines(s3.puts[("models", "deepar/test/test.json")].decode())
    assert test["target"][:144] == [float(w.clicks) for w in day1]
    out = prepare({"algorithm": "rcf", "run": "r2"}, s3, _env(), NOW)
    assert out == {
        "windows": 324,
        "train": "s3://models/rcf/train/",
        "scaling": "s3://models/rcf/scaling.json",
    }
