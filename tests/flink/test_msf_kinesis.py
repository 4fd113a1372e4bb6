"""The application zip as MSF runs it: ``main.py`` from the extracted zip (``make flink-zip``), the real Kinesis
connector of ``lib/clickstream-flink-connectors.jar`` on the local mini-cluster (.venv-flink), against a moto
server on 127.0.0.1. The clicks go in through the project's producer (aggregated records); the features and
detections streams must hold the batch ``features`` windows and the batch baseline's detections."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest

from clickstream_anomaly.aws.clients import kinesis_client
from clickstream_anomaly.baseline import TimeAwareBaseline, detections_from_baseline
from clickstream_anomaly.features import PageCounts, compute_windows, records_to_windows
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.producer import AGGREGATE_BYTES, KinesisSender, send_file
from clickstream_anomaly.records import Click, Detection, Window, write_detections_csv

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import package_flink  # noqa: E402  (scripts/ is not a package)

FLINK_PYTHON = Path(os.environ.get("FLINK_PYTHON", ROOT / ".venv-flink" / "bin" / "python"))
REGION = "us-east-1"
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/{}"
# The windows the last click closes: its watermark (00:54:57, out-of-orderness 5 min) passes the end plus the
# allowed lateness (10 min) of every window of the two days. The empty windows after them come out when a later
# window closes (none does here), as in the Lambda engine.
CLOSED_WINDOWS = 2 * 144
FAKE_KEY = "testing"
# The clicks stream's shards (4: an on-demand stream's start) and the job's parallelism: any, now that the
# watermark is per shard (MSF_TEST_PARALLELISM=1 and 2 pass too; docs/flink.md, "Connector").
SHARDS = int(os.environ.get("MSF_TEST_SHARDS", "4"))
PARALLELISM = int(os.environ.get("MSF_TEST_PARALLELISM", str(SHARDS)))
# The lagging shard: its first records are in the stream at the start, the rest come a few at a time over
# TRICKLE_SECONDS while the job runs (every TRICKLE_STEP s), well past the end of the watermark's hold
# (IDLE_TIMEOUT after the start, the job's idle_timeout, 60 s by default: shorter here to keep the test short).
LAGGING = SHARDS - 1
LAGGING_KEEP = 200
IDLE_TIMEOUT = 20
TRICKLE_SECONDS = 50
TRICKLE_STEP = 0.5

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Path:
    """The application zip, built by scripts/package_flink.py from this tree and extracted."""
    if not package_flink.JAR.is_file():
        pytest.fail(f"{package_flink.JAR} is missing: `make flink-jar` builds it (`make test` does)")
    if not FLINK_PYTHON.exists():
        pytest.fail(f"{FLINK_PYTHON} is missing: `make flink-venv` creates it (`make test` does)")
    tmp = tmp_path_factory.mktemp("app")
    package_flink.build_zip(package_flink.JAR, tmp / "app.zip")
    with zipfile.ZipFile(tmp / "app.zip") as zf:
        zf.extractall(tmp / "root")
    return tmp / "root"


def test_zip_holds_the_contracts_layout_and_nothing_else(app, tmp_path):
    names = zipfile.ZipFile(app.parent / "app.zip").namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"main.py", "clickstream_job", "clickstream_anomaly", "lib"}
    assert "lib/clickstream-flink-connectors.jar" in names and "clickstream_job/msf.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "test" in n.split("/")[0]]
    package_flink.build_zip(package_flink.JAR, tmp_path / "again.zip")  # reproducible: same bytes
    assert (tmp_path / "again.zip").read_bytes() == (app.parent / "app.zip").read_bytes()


def test_the_zips_code_needs_only_what_pyflinks_runtime_brings(app):
    """Every module the job imports comes from the zip, the standard library or a distribution that
    apache-flink 1.20.5 itself installs (flink/constraints.txt): no lib/python/ is needed."""
    code = """
import json, sys, sysconfig
from importlib.metadata import packages_distributions
before = set(sys.modules)  # what the interpreter loaded at start-up (site, .pth hooks)
import clickstream_job.msf
stdlib = sysconfig.get_paths()["stdlib"]
dists = packages_distributions()
out = {"core": sys.modules["clickstream_anomaly"].__file__, "dists": set()}
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None) or ""
    if name not in before and path and not path.startswith(sys.argv[1]) and not path.startswith(stdlib + "/"):
        out["dists"].update(dists.get(name.split(".")[0], [name.split(".")[0]]))
out["dists"] = sorted(out["dists"])
print(json.dumps(out))
"""
    env = {**os.environ, "PYTHONPATH": str(app)}
    cmd = [str(FLINK_PYTHON), "-c", code, str(app)]
    done = subprocess.run(cmd, cwd=app, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["core"].startswith(str(app))  # the zip's core, not the venv's editable install
    runtime = {line.split("==")[0].lower().replace("_", "-") for line in (ROOT / "flink" / "constraints.txt").open()}
    used = {d.lower().replace("_", "-") for d in found["dists"]}
    assert used <= runtime, used - runtime
    assert {"apache-flink", "numpy", "pandas"} <= used


def two_days() -> list[Click]:
    """Two generated days (day 2 judged by the baseline)."""
    clicks, _ = generate(Scenario(days=2, seed=5))
    ts = pd.to_datetime(clicks["timestamp"], utc=True)
    return [Click(t.to_pydatetime(), str(u), str(p)) for t, u, p in zip(ts, clicks.user, clicks.page, strict=True)]


class HoldBack:
    """A Kinesis client for the producer that writes one shard's records only up to ``keep`` of them and holds
    the rest (in order) for :meth:`trickle`; the producer sees every record written."""

    def __init__(self, client, shard: dict, keep: int) -> None:
        self.client, self.shard, self.keep = client, shard, keep
        self.low, self.high = (int(shard["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
        self.written, self.held = 0, []

    def _lags(self, record: dict) -> bool:
        return self.low <= int(hashlib.md5(record["PartitionKey"].encode()).hexdigest(), 16) <= self.high

    def put_records(self, StreamName: str, Records: list[dict]) -> dict:  # boto3 names its arguments so
        hold = []
        for r in Records:
            lags = self._lags(r)
            hold.append(lags and self.written >= self.keep)
            self.written += lags
        self.held += [r for r, h in zip(Records, hold, strict=True) if h]
        now = [r for r, h in zip(Records, hold, strict=True) if not h]
        response = self.client.put_records(StreamName=StreamName, Records=now) if now else {"Records": []}
        done = iter(response["Records"])
        ok = {"SequenceNumber": "0", "ShardId": self.shard["ShardId"]}
        return {"FailedRecordCount": 0, "Records": [ok if h else next(done) for h in hold]}

    def trickle(self, stream: str, seconds: float, then: dict) -> None:
        """Write the held records a few at a time over ``seconds`` (the shard keeps sending, far behind the
        others in event time, never idle), then ``then``."""
        steps = max(1, int(seconds / TRICKLE_STEP))
        size = min(500, -(-len(self.held) // steps))  # PutRecords takes at most 500 records
        for i in range(0, len(self.held), size):
            self.client.put_records(StreamName=stream, Records=self.held[i : i + size])
            time.sleep(TRICKLE_STEP)
        self.client.put_record(StreamName=stream, **then)


def send_clicks(client, path: Path) -> tuple[HoldBack, dict]:
    """Two days through the producer, a malformed record, then on every shard one click an hour after the last
    (2020-07-09 00:59:57): each shard's watermark passes every window of the two days. ``path`` gets them all.

    The last shard (:data:`LAGGING`) gets only its first :data:`LAGGING_KEEP` records now: the rest and its
    last click are held for :meth:`HoldBack.trickle` while the job runs, so that shard is read far behind the
    others (hours of event time), as a backlogged shard is. Returns the holder and that last click."""
    rows = two_days()
    path.write_text("".join(c.to_json() + "\n" for c in rows), encoding="utf-8")
    client.put_record(StreamName="clicks", Data=b"not json", PartitionKey="bad")
    shards = client.list_shards(StreamName="clicks")["Shards"]
    holder = HoldBack(client, shards[LAGGING], LAGGING_KEEP)
    send_file(KinesisSender(holder, "clicks", aggregate_bytes=AGGREGATE_BYTES), path)
    assert len(holder.held) > 1000, len(holder.held)
    lagging_last = {}
    with path.open("a", encoding="utf-8") as fh:
        for i, shard in enumerate(shards):
            last = Click(rows[-1].timestamp + timedelta(hours=1), f"u-last-{i}", "/").to_json()
            key = shard["HashKeyRange"]["StartingHashKey"]
            record = {"Data": last.encode(), "PartitionKey": "last", "ExplicitHashKey": key}
            if shard is shards[LAGGING]:
                lagging_last = record
            else:
                client.put_record(StreamName="clicks", **record)
            fh.write(last + "\n")
    return holder, lagging_last


def read_stream(client, stream: str) -> list[str]:
    """Every record's data (text) of ``stream``, shard by shard from the start."""
    out: list[str] = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        it = it["ShardIterator"]
        while it:
            resp = client.get_records(ShardIterator=it, Limit=10_000)
            out.extend(r["Data"].decode("utf-8") for r in resp["Records"])
            it = resp["NextShardIterator"] if resp["Records"] else None
    return out


def properties(path: Path, endpoint: str) -> Path:
    """The application's property groups as CDK writes them, plus what a local emulator needs: the endpoint,
    TRIM_HORIZON (the clicks are in the stream before the job starts) and HTTP/1.1 for the sink's client."""
    local = {"aws.region": REGION, "aws.endpoint": endpoint}
    sink = {**local, "aws.http.protocol.version": "HTTP1_1"}
    groups = {
        "kinesis.analytics.flink.run.options": {"python": "main.py", "jarfile": package_flink.JAR_ENTRY},
        "ClicksStream": {
            "stream.name": "clicks",
            "stream.arn": ARN.format("clicks"),
            "flink.stream.initpos": "TRIM_HORIZON",
            **local,
        },
        "FeaturesStream": {"stream.name": "features", "stream.arn": ARN.format("features"), **sink},
        "DetectionsStream": {"stream.name": "detections", "stream.arn": ARN.format("detections"), **sink},
        "Job": {"detectors": "baseline", "freq": "10min", "idle_timeout": str(IDLE_TIMEOUT)},
        "LocalRun": {"parallelism.default": str(PARALLELISM)},
    }
    doc = [{"PropertyGroupId": k, "PropertyMap": v} for k, v in groups.items()]
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def job_env(app: Path, props: Path, logs: Path) -> dict[str, str]:
    """The job's environment: the zip's code only, and no ``PYTHONPATH`` (the job runs from another directory,
    so the Python operators import the packages ``msf.py`` ships them, as on MSF's task managers); JSON instead
    of CBOR for moto (the shaded SDK v1 reads ``AWS_CBOR_DISABLE``; the SDK v2 of the sink honoured only the
    system property, not ``AWS_CBOR_ENABLED``)."""
    logs.mkdir(exist_ok=True)
    return {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "AWS_ACCESS_KEY_ID": FAKE_KEY,  # the connector's default credentials chain reads them
        "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
        "APPLICATION_PROPERTIES": str(props),
        "AWS_CBOR_DISABLE": "true",
        "JVM_ARGS": "-Daws.cborEnabled=false",  # PyFlink adds it to the local JVM command line
        "FLINK_LOG_DIR": str(logs),
    }


def stop(proc: subprocess.Popen) -> None:
    """Stop the job's process group (the Python client, its JVM and Python workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def deployed(app, moto_server, tmp_path_factory):
    """The clicks sent by the producer (partitioned by user over the shards, aggregated), ``main.py`` run
    until both output streams hold every window of the two days; returns the input file and their records."""
    tmp = tmp_path_factory.mktemp("msf")
    path = tmp / "clicks.jsonl"
    session = boto3.Session(aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY, region_name=REGION)
    client = kinesis_client(region=REGION, endpoint_url=moto_server, session=session)
    client.create_stream(StreamName="clicks", ShardCount=SHARDS)
    for name in ("features", "detections"):
        client.create_stream(StreamName=name, ShardCount=1)
    holder, lagging_last = send_clicks(client, path)
    logs = tmp / "log"
    with open(tmp / "job.err", "w") as err:  # the child keeps its own descriptor
        env = job_env(app, properties(tmp / "props.json", moto_server), logs)
        cmd = [str(FLINK_PYTHON), str(app / "main.py")]  # not from the zip's root: its code is not on the path
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    trickle = threading.Thread(target=holder.trickle, args=("clicks", TRICKLE_SECONDS, lagging_last), daemon=True)
    trickle.start()
    try:
        deadline = time.monotonic() + 240
        features: list[str] = []
        detections: list[str] = []
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(3)
            features, detections = read_stream(client, "features"), read_stream(client, "detections")
            if len(features) >= CLOSED_WINDOWS and len(detections) >= CLOSED_WINDOWS:
                break
    finally:
        stop(proc)
        trickle.join(timeout=TRICKLE_SECONDS + 30)
    log = [line for p in logs.glob("*.log") for line in p.read_text(errors="replace").splitlines()]
    why = (tmp / "job.err").read_text(errors="replace")[-3000:] + "\n".join([x for x in log if " ERROR " in x][-20:])
    assert len(features) >= CLOSED_WINDOWS, f"{len(features)} of {CLOSED_WINDOWS} windows:\n{why}"
    return path, features, detections, log


def test_rejects_go_to_the_log_and_no_click_is_late(deployed):
    """The malformed record is logged with its reason (CloudWatch Logs on MSF); no click of the backlog fell
    behind the watermark, not even the lagging shard's, hours behind the others (a watermark over all the
    shards together lost them: the fused job before per-shard clocks)."""
    *_, log = deployed
    rejects = [line.split("malformed click: ", 1)[1] for line in log if "malformed click: " in line]
    assert [json.loads(r)["reason"] for r in rejects] == ["not JSON: Expecting value: line 1 column 1 (char 0)"]
    assert not [line for line in log if "late click: " in line]


def test_features_stream_holds_the_batch_windows(deployed):
    path, features, *_ = deployed
    pages = PageCounts()
    batch = compute_windows(path, fmt="auto", skip_bad=True, pages=pages)
    records = [Window.from_json(f) for f in features]
    job = records_to_windows(records)
    pd.testing.assert_frame_equal(job, batch.iloc[: len(job)], check_dtype=False, check_exact=True)
    per_window = pages.of_window()
    assert [w.page_clicks for w in records] == [per_window.get(s, {}) for s in batch["window_start"][: len(job)]]
    assert len(job) == CLOSED_WINDOWS and len(batch) == CLOSED_WINDOWS + 6  # the hour to the last click: open


def test_detections_stream_holds_the_batch_baselines(deployed):
    path, _, detections, _ = deployed
    windows = compute_windows(path, fmt="auto", skip_bad=True)
    model = TimeAwareBaseline(window="10min").fit(None)
    batch, job = io.StringIO(), io.StringIO()
    write_detections_csv(detections_from_baseline(windows, model.process(windows)), batch)
    write_detections_csv((Detection.from_mapping(json.loads(d)) for d in detections), job)
    lines = job.getvalue().splitlines()
    assert lines == batch.getvalue().splitlines()[: len(lines)]
    judged = pd.read_csv(io.StringIO(job.getvalue()))
    assert len(judged) == CLOSED_WINDOWS and (~judged["warmup"]).sum() >= 100
