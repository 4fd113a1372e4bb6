"""The Lambda engine run locally: the deployed handlers (``lambdas/``) against a moto server on 127.0.0.1.

:func:`run_lambda_engine` does what the deployed stack does with a click log, in one process: the producer
sends the clicks to a clicks stream (keyed by user, a user's clicks aggregated into shared records, as
``produce`` does), the aggregator reads it shard by shard in batches of the deployed size through
:class:`~.kinesis_reader.ShardReader` (a stand-in for the event source mapping, re-delivering failed
batches), writes windows to the features stream, and the detector turns them into detections on the
detections stream. Nothing leaves the loopback interface: ``AWS_ENDPOINT_URL`` points every client at the
local server and the credentials are fake.

The engine's wall clock (``runtime.now``) follows the clicks: while the stream is read it is the newest
click's time (so the event-time policy and the idle-shard rule see a live stream); at the end one scheduled
tick moves it past the last window's close, as wall time would in a deployment. Windows after the last
click's window (the empty ones a deployed engine goes on emitting while no clicks arrive) are not returned,
so the windows are those of the batch ``features`` command.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pandas as pd

from ..features import DEFAULT_FREQ, freq_ns
from ..producer import AGGREGATE_BYTES, MAX_SKEW_SECONDS, Backoff, KinesisSender, click_entry
from ..records import Click, Detection, Window
from ..streaming.aggregation import DEFAULT_ALLOWED_LATENESS, duration_ns
from . import runtime
from .clients import kinesis_client
from .kinesis_reader import ShardReader

REGION = "us-east-1"
#: The deployed event source mappings' batch sizes (stacks/ingest.py, stacks/detection.py).
AGGREGATOR_BATCH = 500
DETECTOR_BATCH = 100
NS = 1_000_000_000
HANDLERS = ("aggregator", "detector")
#: Seconds past the last window's close at the final tick: more than the aggregator's idle-shard time.
IDLE_MARGIN = 3600.0


@dataclass(frozen=True)
class LambdaEngineSettings:
    """What the replay deploys. ``shards``: the clicks stream's (an on-demand stream starts with 4);
    ``detectors``: the detector Lambda's ``DETECTORS``; ``aggregate_bytes`` and ``max_skew``: the
    producer's (``produce``'s defaults); the RCF runs with KDA's defaults when named."""

    freq: str = DEFAULT_FREQ
    lateness: str = DEFAULT_ALLOWED_LATENESS
    detectors: tuple[str, ...] = ("baseline",)
    timezone: str = "UTC"
    shards: int = 4
    aggregator_batch: int = AGGREGATOR_BATCH
    detector_batch: int = DETECTOR_BATCH
    aggregate_bytes: int = AGGREGATE_BYTES
    max_skew: float = MAX_SKEW_SECONDS

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= 64:
            raise ValueError(f"shards must be 1-64, got {self.shards}")
        if self.aggregator_batch < 1 or self.detector_batch < 1:
            raise ValueError("batch sizes must be at least 1")

    def environment(self, endpoint: str, run_id: str) -> dict[str, str]:
        """The functions' environment, as the CDK app sets it, pointed at ``endpoint``; the resources'
        names end in ``run_id`` (a server may hold several replays)."""
        return {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "replay",
            "AWS_SECRET_ACCESS_KEY": "replay",
            "AWS_SESSION_TOKEN": "replay",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "CLICKS_STREAM_NAME": f"clicks-{run_id}",
            "FEATURES_STREAM_NAME": f"features-{run_id}",
            "DETECTIONS_STREAM_NAME": f"detections-{run_id}",
            "STATE_BUCKET": f"replay-state-{run_id}",
            "STATE_KEY": "detector/state.bin",
            "WINDOW_FREQ": self.freq,
            "ALLOWED_LATENESS": self.lateness,
            "DETECTORS": ",".join(self.detectors),
            "TIMEZONE": self.timezone,
            "FAILURE_QUEUE_URL": "",  # set once the queue exists
            "POWERTOOLS_SERVICE_NAME": "clickstream-anomaly-replay",
            "POWERTOOLS_METRICS_NAMESPACE": "ClickstreamAnomaly",
            "POWERTOOLS_METRICS_DISABLED": "true",  # no metric lines on stdout
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }


@dataclass
class LambdaEngineRun:
    """What came out: the windows and detections (time order), and the counts a user checks."""

    windows: list[Window]
    detections: list[Detection]
    clicks_sent: int = 0
    records_sent: int = 0
    invocations: dict[str, int] = field(default_factory=dict)
    rejected_clicks: list[dict[str, Any]] = field(default_factory=list)  # the failure queue's messages
    failed_batches: list[dict[str, Any]] = field(default_factory=list)  # given up after the retries
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        in_windows = sum(w.clicks for w in self.windows)
        return {
            "engine": "lambda",
            "windows": len(self.windows),
            "clicks": self.clicks_sent,
            "clicks_in_windows": in_windows,
            "clicks_not_in_windows": self.clicks_sent - in_windows,
            "event_time_rejected": len(self.rejected_clicks),
            "failed_batches": len(self.failed_batches),
            "detections": len(self.detections),
            "records_sent": self.records_sent,
            "invocations": dict(self.invocations),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Context:
    """The Lambda context the handlers' Powertools decorators read."""

    function_name: str
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:replay"
    aws_request_id: str = "replay"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def checkout_root() -> Path:
    """The repository checkout this package runs from (its ``lambdas/`` and ``flink/`` folders)."""
    return Path(__file__).resolve().parents[2]


def load_handlers(root: Path | None = None) -> dict[str, ModuleType]:
    """Import the aggregator and detector handlers from ``root/lambdas`` (fresh modules, so their
    Powertools objects read the replay's environment)."""
    root = root or checkout_root()
    modules: dict[str, ModuleType] = {}
    for name in HANDLERS:
        path = root / "lambdas" / name / "app.py"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: replay --engine lambda runs the Lambda handlers of a repository checkout "
                "(install the project from its repository, e.g. `make install`)"
            )
        spec = importlib.util.spec_from_file_location(f"clickstream_replay_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[name] = module
    return modules


def invoker(module: ModuleType) -> Callable[[dict[str, Any], Any], Any]:
    """``module.handler``, then its metrics forgotten: Powertools keeps metrics in state shared by every
    ``Metrics`` object of the process, and with ``POWERTOOLS_METRICS_DISABLED`` it never flushes them, so
    they would otherwise come out with the next handler's metrics (another run, a test)."""

    def invoke(event: dict[str, Any], context: Any) -> Any:
        try:
            return module.handler(event, context)
        finally:
            module.metrics.clear_metrics()

    return invoke


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (moto[server], a development dependency); yields its URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise RuntimeError(
            "replay --engine lambda needs moto[server] (pip install -r requirements-dev.txt; `make install`)"
        ) from exc
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        # moto's backends live in this process: forget this run's streams, buckets and queues.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
        server.stop()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    with mock.patch.dict(os.environ, values):
        runtime.reset_clients()
        runtime._shards_of.cache_clear()
        try:
            yield
        finally:
            runtime.reset_clients()
            runtime._shards_of.cache_clear()


def _stream_data(client: Any, stream: str) -> list[bytes]:
    """Every record's data now in ``stream``, shard by shard, in order."""
    data: list[bytes] = []

    def collect(event: dict[str, Any], context: Any) -> dict[str, Any]:
        data.extend(base64.b64decode(r["kinesis"]["data"]) for r in event["Records"])
        return {}

    ShardReader(client, stream, batch_size=1000).drain(collect)
    return data


def _drain_queue(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        out += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )


def run_lambda_engine(
    clicks: Iterable[Click],
    settings: LambdaEngineSettings | None = None,
    *,
    endpoint: str | None = None,
    root: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> LambdaEngineRun:
    """Run ``clicks`` through the Lambda engine as deployed (see the module docstring).

    ``endpoint``: a running moto server's URL (default: one is started on 127.0.0.1 and stopped after);
    ``root``: the checkout whose ``lambdas/`` to run; ``say``: progress lines (stage by stage).
    """
    settings = settings or LambdaEngineSettings()
    if endpoint is None:
        with local_server() as url:
            return run_lambda_engine(clicks, settings, endpoint=url, root=root, say=say)
    if not endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"the replay only talks to a local server on 127.0.0.1, got {endpoint!r}")
    say = say or (lambda _msg: None)
    began = time.perf_counter()
    env = settings.environment(endpoint, uuid.uuid4().hex[:12])
    with _environment(env):
        return _run(list(clicks), settings, endpoint, root, say, began)


def _run(
    clicks: list[Click],
    settings: LambdaEngineSettings,
    endpoint: str,
    root: Path | None,
    say: Callable[[str], None],
    began: float,
) -> LambdaEngineRun:
    if not clicks:
        raise ValueError("no clicks to replay")
    handlers = load_handlers(root)
    s3, sqs = runtime.client("s3"), runtime.client("sqs")
    kin = kinesis_client(region=REGION, endpoint_url=endpoint, retry_mode="standard")
    s3.create_bucket(Bucket=os.environ["STATE_BUCKET"])
    clicks_stream, features, detections_stream = (
        os.environ[f"{n}_STREAM_NAME"] for n in ("CLICKS", "FEATURES", "DETECTIONS")
    )
    kin.create_stream(StreamName=clicks_stream, ShardCount=settings.shards)
    kin.create_stream(StreamName=features, ShardCount=1)
    kin.create_stream(StreamName=detections_stream, ShardCount=1)
    queue = sqs.create_queue(QueueName=f"replay-failures-{os.environ['STATE_BUCKET'][-12:]}")["QueueUrl"]
    os.environ["FAILURE_QUEUE_URL"] = queue

    say(f"producing {len(clicks):,} clicks to a {settings.shards}-shard clicks stream")
    sender = KinesisSender(
        kin, clicks_stream, backoff=Backoff(), aggregate_bytes=settings.aggregate_bytes, max_skew=settings.max_skew
    )
    sent = sender.send(click_entry(c) for c in clicks)
    newest = max(c.timestamp.timestamp() for c in clicks)
    clock = {"now": newest + 1.0}
    run = LambdaEngineRun([], [], clicks_sent=len(clicks), records_sent=sent.records)
    with mock.patch.object(runtime, "now", lambda: clock["now"]):
        say(f"aggregating ({sent.records:,} records, batches of {settings.aggregator_batch})")
        agg_ctx = _Context("aggregator")
        reader = ShardReader(kin, clicks_stream, batch_size=settings.aggregator_batch)
        aggregate, detect_windows = invoker(handlers["aggregator"]), invoker(handlers["detector"])
        run.invocations["aggregator"] = reader.drain(aggregate, agg_ctx)
        run.failed_batches += reader.on_failure
        # The last window closes once wall time passes its end and the lateness (every shard idle by then).
        step = freq_ns(settings.freq) / NS
        lateness = duration_ns(settings.lateness) / NS
        clock["now"] = newest + 1.0 + lateness + 2 * step + IDLE_MARGIN
        aggregate({"source": "aws.events", "detail-type": "Scheduled Event"}, agg_ctx)
        run.invocations["aggregator"] += 1

        say("detecting")
        reader = ShardReader(kin, features, batch_size=settings.detector_batch)
        run.invocations["detector"] = reader.drain(detect_windows, _Context("detector"))
        run.failed_batches += reader.on_failure

    # What the streams hold, read once each (a re-delivered detector batch is not counted twice).
    windows = [Window.from_json(d) for d in _stream_data(kin, features)]
    detections = [Detection.from_mapping(json.loads(d)) for d in _stream_data(kin, detections_stream)]
    run.rejected_clicks = _drain_queue(sqs, queue)
    last_start = _floor_ns(max(c.timestamp for c in clicks), settings.freq)
    run.windows = [w for w in windows if _ns(w.window_start) <= last_start]
    order = {name: i for i, name in enumerate(settings.detectors)}
    run.detections = sorted(
        (d for d in detections if _ns(d.window.window_start) <= last_start),
        key=lambda d: (d.window.window_start, order.get(d.detector, len(order))),
    )
    run.seconds = time.perf_counter() - began
    return run


def _ns(ts: datetime) -> int:
    return int(pd.Timestamp(ts).value)


def _floor_ns(ts: datetime, freq: str) -> int:
    step = freq_ns(freq)
    return (_ns(ts) // step) * step
