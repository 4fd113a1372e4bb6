"""The Lambda functions' work, one function each: state stores, senders and publishers around the core.

Every function reads the environment when called (never at import), and boto3 is imported inside
:func:`client`, so the handlers stay a few lines and the core stays importable without AWS libraries.
Clients use botocore's ``standard`` retry mode and honour ``AWS_ENDPOINT_URL`` (moto, LocalStack).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from ..producer import AGGREGATE_BYTES, MAX_SKEW_SECONDS, Backoff, Entry, KinesisSender
from ..records import RCF_STREAMING, Detection, Window
from ..streaming.aggregation import BatchStats
from ..streaming.alerting import Alert, run_alerter, sns_attributes
from ..streaming.detection import run_detector
from ..streaming.eventtime import Rejection
from ..streaming.state import transact
from .clients import _client, client
from .config import (
    AggregatorConfig,
    ConfigError,
    alert_config_from_env,
    baseline_from_env,
    clicks_format_from_env,
    deepar_scoring_from_env,
    env,
    env_float,
    env_int,
    event_time_policy_from_env,
    pages_from_env,
    rcf_params_from_env,
    rules_from_env,
    sampling_rate_from_env,
    source_settings_from_env,
    streaming_detectors_from_env,
)
from .s3_store import S3ShardStores, S3Store

if TYPE_CHECKING:
    from ..records import Click, RecordError
    from ..scaling import Scaling
    from ..sources import SourceSettings
    from ..sources.derive import Filtered

FEATURES_PARTITION_KEY = "windows"  # one key: windows stay in time order on one shard
AGGREGATOR_STATE_KEY = "aggregator/state.json.gz"  # the single-object state of earlier versions
AGGREGATOR_PREFIX = "aggregator/"  # merge.state, shards/<id>.state, summaries/<id>.json
ALERTER_STATE_KEY = "alerter/state.json"
SCORER_STATE_KEY = "scorer/history.json"


def reset_clients() -> None:
    """Forget cached clients and the cached RCF scaling (tests switch endpoints and mocks)."""
    _client.cache_clear()
    _scaling_cache.clear()
    _secret.cache_clear()


def state_store(key: str) -> S3Store:
    return S3Store(client("s3"), env("STATE_BUCKET"), key)


@cache
def _secret(secret_id: str) -> str:
    return str(client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])


def user_salt() -> str:
    """The key of the user hash, which every producer and aggregator must share: the Secrets Manager
    secret ``USER_SALT_SECRET_ARN`` (read once per container), else ``CLICKSTREAM_USER_SALT``. Neither is
    a :class:`ConfigError`: a random salt per container would give a visitor a new id in each one."""
    from ..sources.settings import SALT_ENV

    arn = env("USER_SALT_SECRET_ARN", "")
    if arn:
        return _secret(arn)
    salt = env(SALT_ENV, "")
    if not salt:
        raise ConfigError(
            f"set USER_SALT_SECRET_ARN (or {SALT_ENV}): the user hash needs a salt shared by every function"
        )
    return salt


def source_settings() -> SourceSettings:
    """The click source's settings of this function (``SOURCE_SETTINGS`` and :func:`user_salt`)."""
    return source_settings_from_env(user_salt())


def decode_clicks(
    records: list[dict[str, Any]], filtered: Filtered | None = None
) -> dict[str, tuple[list[Click], list[RecordError]]] | None:
    """The clicks of a Kinesis batch by sequence number when the stream carries CloudFront real-time
    records (``CLICKS_FORMAT=cloudfront-realtime``: one decoding pass for the batch); ``None`` for the
    project's own clicks, which each record decodes itself. A record whose data is not base64 is left out
    (its own decoding fails with that reason)."""
    import base64
    import binascii

    from ..sources.stream import CLICKS, decode_stream_records

    fmt = clicks_format_from_env()
    if fmt == CLICKS:
        return None
    seqs, payloads = [], []
    for record in records:
        try:
            payloads.append(base64.b64decode(record["kinesis"]["data"]))
        except (binascii.Error, ValueError):
            continue
        seqs.append(record["kinesis"]["sequenceNumber"])
    decoded = decode_stream_records(payloads, fmt, source_settings(), filtered=filtered)
    return dict(zip(seqs, decoded, strict=True))


def stream_sender(stream: str) -> KinesisSender:
    return KinesisSender(client("kinesis"), stream, backoff=Backoff())


def clicks_sender(stream: str) -> KinesisSender:
    """The S3 producer's sender: as ``produce``, a user's clicks aggregated into records of at most
    ``CLICKS_AGGREGATE_BYTES`` (default 25 KiB; ``0`` = one click per record), records overtaking each
    other by at most ``CLICKS_MAX_SKEW_SECONDS`` of event time (default 300; the CDK app sets half the
    aggregator's allowed lateness, at most 300)."""
    size = env_int("CLICKS_AGGREGATE_BYTES", AGGREGATE_BYTES)
    skew = env_float("CLICKS_MAX_SKEW_SECONDS", MAX_SKEW_SECONDS)
    try:
        return KinesisSender(client("kinesis"), stream, backoff=Backoff(), aggregate_bytes=size, max_skew=skew)
    except ValueError as exc:
        raise ConfigError(f"CLICKS_AGGREGATE_BYTES / CLICKS_MAX_SKEW_SECONDS: {exc}") from exc


def send_windows(stream: str) -> Callable[[list[Window]], None]:
    """Write windows to the features stream (one partition key, so they stay in order)."""

    def send(windows: list[Window]) -> None:
        stream_sender(stream).send(Entry(w.to_json().encode("utf-8"), FEATURES_PARTITION_KEY) for w in windows)

    return send


def send_detections(stream: str) -> Callable[[list[Detection]], None]:
    """Write detections to the detections stream (keyed by detector: in order per detector)."""

    def send(dets: list[Detection]) -> None:
        stream_sender(stream).send(Entry(d.to_json().encode("utf-8"), d.detector) for d in dets)

    return send


#: An SQS message body is at most 256 KiB; rejections are packed into messages below this size.
MAX_MESSAGE_BYTES = 200 * 1024


def send_rejections(queue_url: str | None = None) -> Callable[[list[Rejection]], None]:
    """Send rejected records (event-time policy) to the function's failure queue (``FAILURE_QUEUE_URL``):
    one SQS message per rejection, body ``{"component", "reason", "record", "source"}``, in batches of 10.
    The queue is the one that receives the event source mapping's failed batches; its alarm fires."""

    def send(rejections: list[Rejection]) -> None:
        import json

        url = queue_url or env("FAILURE_QUEUE_URL")
        sqs = client("sqs")
        bodies = [json.dumps(r.to_dict(), separators=(",", ":"))[:MAX_MESSAGE_BYTES] for r in rejections]
        for i in range(0, len(bodies), 10):
            entries = [{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies[i : i + 10])]
            resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            if resp.get("Failed"):
                raise RuntimeError(f"SQS did not take {len(resp['Failed'])} rejection message(s): {resp['Failed'][0]}")

    return send


def sns_publisher(topic_arn: str) -> Callable[[Alert], None]:
    """Publish an alert: plain text body, JSON incident payload in the message attributes.

    A FIFO topic (``.fifo``) also gets the alert key as deduplication id.
    """

    def publish(alert: Alert) -> None:
        extra: dict[str, Any] = {}
        if topic_arn.endswith(".fifo"):
            extra = {"MessageGroupId": "alerts", "MessageDeduplicationId": alert.key[:128]}
        client("sns").publish(
            TopicArn=topic_arn,
            Subject=alert.subject,
            Message=alert.text,
            MessageAttributes=sns_attributes(alert),
            **extra,
        )

    return publish


@cache
def _shards_of(stream_arn: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(open shard ids, parents of every shard) of a stream (one ListShards, paginated)."""
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamARN": stream_arn}
    while True:
        resp = client("kinesis").list_shards(**kwargs)
        shards += resp["Shards"]
        if not resp.get("NextToken"):
            break
        kwargs = {"NextToken": resp["NextToken"]}
    opened = tuple(s["ShardId"] for s in shards if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {}))
    parents = {
        s["ShardId"]: tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p) for s in shards
    }
    return opened, parents


def open_shards(stream_arn: str | None, seen: Iterable[str] = ()) -> tuple[str, ...]:
    """The open shards of the source stream (cached per container, read again when a batch comes from a
    shard the cache does not know: a reshard); empty when unknown or not allowed."""
    if not stream_arn:
        return ()
    try:
        if not set(seen) <= set(_shards_of(stream_arn)[1]):
            _shards_of.cache_clear()
        return _shards_of(stream_arn)[0]
    except Exception:
        return ()


def shard_parents(stream_arn: str | None, shards: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The parent shards of ``shards`` (a reshard's children inherit their open windows' users)."""
    if not stream_arn:
        return {}
    try:
        lineage = _shards_of(stream_arn)[1]
    except Exception:
        return {}
    return {sid: lineage.get(sid, ()) for sid in shards}


def now() -> float:
    return time.time()


@dataclass
class ObjectResult:
    """What the S3 producer did with one object. ``bad_lines`` holds the first bad lines' reasons
    (``file:line: reason``), ``stopped`` why the send stopped early (a Lambda about to time out), ``error``
    why the rest was not sent."""

    key: str
    sent: int = 0
    rejected: int = 0
    unsent: int = 0
    rejected_key: str | None = None
    unsent_key: str | None = None
    bad_lines: list[str] = field(default_factory=list)
    stopped: str | None = None
    error: str | None = None


#: The S3 producer stops sending when its Lambda has less than this left, to write ``unsent/`` in time.
DEADLINE_MARGIN_SECONDS = 30.0


def deadline_stop(remaining_ms: Callable[[], int] | None) -> Callable[[], str | None] | None:
    """A ``stop`` for the sender that gives a reason once ``remaining_ms()`` (the Lambda context's
    ``get_remaining_time_in_millis``) is under :data:`DEADLINE_MARGIN_SECONDS`."""
    if remaining_ms is None:
        return None

    def stop() -> str | None:
        left = remaining_ms() / 1000.0
        if left < DEADLINE_MARGIN_SECONDS:
            return f"Lambda timeout in {left:.0f} s: stopped to write the rest to unsent/"
        return None

    return stop


def produce_s3_object(
    bucket: str,
    key: str,
    *,
    stream: str,
    rejected_prefix: str = "rejected/",
    unsent_prefix: str = "unsent/",
    remaining_ms: Callable[[], int] | None = None,
) -> ObjectResult:
    """Send one log object (optionally gzip) to the clicks stream: the project's clicks CSV or JSON Lines,
    or the format ``LANDING_FORMAT`` names (``auto``: detected from the first line; CloudFront, ALB,
    combined, ``jsonl``/``csv`` with ``SOURCE_SETTINGS``' field map; users hashed with :func:`user_salt`).
    An object whose format cannot be told is not read: ``error`` says why (nothing was sent).

    Bad lines (malformed, not UTF-8, a click over the 1 MiB record limit) are skipped and written with
    their reason to ``s3://bucket/<rejected_prefix><key>.csv``; records that could not be sent (after the
    retries, or because the Lambda is about to time out: ``remaining_ms``) go to
    ``s3://bucket/<unsent_prefix><key>.jsonl`` (JSON Lines: copy it back under the input prefix to re-send).
    Every good click is either on the stream or in that object: nothing is dropped silently.
    """
    import tempfile
    from pathlib import Path

    from ..clicks_csv import BadLines
    from ..producer import ProducerError, send_file, source_entries
    from ..records import RecordError
    from ..sources.stream import CLICKS

    s3 = client("s3")
    out = ObjectResult(key)
    name = Path(key).name or "object"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / name
        s3.download_file(bucket, key, str(local))
        fmt = env("LANDING_FORMAT", CLICKS)
        try:
            entries = source_entries(local, fmt, None if fmt == CLICKS else source_settings())
        except RecordError as exc:  # auto: the first line says no format
            out.error = str(exc).replace(str(local), key)
            return out
        rejects = Path(tmp) / "rejected.csv"
        bad = BadLines(rejects_path=rejects)
        try:
            result = send_file(
                clicks_sender(stream),
                local,
                skip_bad=True,
                bad=bad,
                stop=deadline_stop(remaining_ms),
                entries=entries,
            )
        except ProducerError as exc:
            result = exc.result
            out.stopped, out.error = exc.stopped, None if exc.stopped else str(exc)
            if result.unsent:
                out.unsent = result.failed
                out.unsent_key = f"{unsent_prefix}{key}.jsonl"
                unsent_path = result.write_unsent(Path(tmp) / "unsent.jsonl")
                s3.upload_file(str(unsent_path), bucket, out.unsent_key)
        finally:
            bad.close()
        out.sent = result.sent
        out.rejected = bad.count
        out.bad_lines = [line.replace(str(local), key) for line in bad.examples]
        if bad.count:
            out.rejected_key = f"{rejected_prefix}{key}.csv"
            s3.upload_file(str(rejects), bucket, out.rejected_key)
    return out


def aggregator_stores() -> S3ShardStores:
    """The aggregator's per-shard objects under ``aggregator/`` in ``STATE_BUCKET``."""
    return S3ShardStores(client("s3"), env("STATE_BUCKET"), AGGREGATOR_PREFIX, AGGREGATOR_STATE_KEY)


def aggregate(
    cfg: AggregatorConfig, records: list, shards: Iterable[str] = (), stream_arn: str | None = None
) -> BatchStats:
    """The aggregator's work for one invocation: one shard's records (per-shard state and the merge step,
    :mod:`clickstream_anomaly.streaming.sharded`), or none for the scheduled tick."""
    from ..sources.stream import CLICKS
    from ..streaming.sharded import Settings, run_records

    # CloudFront writes real-time log records with its own partition keys: a user's requests may land on
    # any shard, so the shards' summaries carry their user sets and the merge counts their union.
    exact = clicks_format_from_env() != CLICKS
    settings = Settings(cfg.freq, cfg.lateness, event_time_policy_from_env(), sampling_rate_from_env(), exact)
    return run_records(
        aggregator_stores(),
        records,
        send=send_windows(cfg.features_stream),
        cfg=settings,
        now=now(),
        shards=shards,
        parents=shard_parents(stream_arn, {r[0] for r in records}),
        reject=send_rejections(),
    )


def detect(windows: list[Window]) -> tuple[list[Detection], list[Rejection]]:
    """The detector's work: step the saved models (``DETECTORS``) over ``windows``, send detections;
    returns them and the rejected windows sent to the failure queue."""
    store = state_store(env("STATE_KEY", "detector/state.bin"))
    params = rcf_params_from_env() if RCF_STREAMING in streaming_detectors_from_env() else None
    rejected: list[Rejection] = []
    send_rejected = send_rejections()

    def reject(rejections: list[Rejection]) -> None:
        send_rejected(rejections)
        rejected.extend(rejections)

    detections = run_detector(
        store,
        windows,
        params=params,
        baseline=baseline_from_env(),
        pages=pages_from_env(),
        rules=rules_from_env(),
        send=send_detections(env("DETECTIONS_STREAM_NAME")),
        now=now(),
        policy=event_time_policy_from_env(),
        reject=reject,
    )
    return detections, rejected


def alert(detections: list[Detection]) -> tuple[list[Detection], list[Alert], list[Rejection]]:
    """The alerter's work: judge, group, publish to ``TOPIC_ARN``; returns (judged, published, rejected
    detections sent to the failure queue)."""
    rejected: list[Rejection] = []
    send_rejected = send_rejections()

    def reject(rejections: list[Rejection]) -> None:
        send_rejected(rejections)
        rejected.extend(rejections)

    judged, published = run_alerter(
        state_store(ALERTER_STATE_KEY),
        detections,
        alert_config_from_env(),
        publish=sns_publisher(env("TOPIC_ARN")),
        now=now(),
        policy=event_time_policy_from_env(),
        reject=reject,
    )
    return judged, published, rejected


def sagemaker_invoke(endpoint: str, body: str, content_type: str) -> bytes:
    """``InvokeEndpoint`` (botocore retries whole-call errors; :func:`scoring.with_retries` the rest)."""
    resp = client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, Body=body.encode("utf-8"), ContentType=content_type, Accept="application/json"
    )
    return resp["Body"].read()


SCALING_TTL_SECONDS = 300.0
_scaling_cache: dict[str, tuple[float, Scaling]] = {}


def rcf_scaling() -> Scaling | None:
    """The feature scaling the RCF endpoint was trained with, from ``RCF_SCALING_URI`` (``s3://bucket/key``,
    written by the training pipeline's prepare step); ``None`` (raw features) when the variable is empty.

    Read once per :data:`SCALING_TTL_SECONDS` per container, not once per window: a retraining (hours
    apart) is picked up within minutes."""
    from ..scaling import Scaling

    uri = env("RCF_SCALING_URI", "")
    if not uri:
        return None
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"RCF_SCALING_URI must be s3://bucket/key, got {uri!r}")
    cached = _scaling_cache.get(uri)
    if cached is not None and now() - cached[0] < SCALING_TTL_SECONDS:
        return cached[1]
    bucket, key = uri[5:].split("/", 1)
    scaling = Scaling.from_json(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    _scaling_cache[uri] = (now(), scaling)
    return scaling


def score(window: Window) -> tuple[list[Detection], Rejection | None]:
    """The scorer's work for one window: configured endpoints -> detections -> detections stream.

    A window outside the event-time policy's wall-clock bounds (the scorer keeps no event clock) is not
    scored: it goes to the failure queue and is returned as the rejection."""
    from ..streaming.scoring import History, score_window

    reason = event_time_policy_from_env().reason(window.window_start.timestamp(), now=now())
    if reason is not None:
        rejection = Rejection("scorer", reason, window.to_dict())
        send_rejections()([rejection])
        return [], rejection

    rcf, deepar = env("RCF_ENDPOINT_NAME", ""), env("DEEPAR_ENDPOINT_NAME", "")
    scaling = rcf_scaling() if rcf else None
    if deepar:
        cfg = deepar_scoring_from_env()

        def change(history: History) -> list[Detection]:
            dets = score_window(
                window,
                invoke=sagemaker_invoke,
                rcf_endpoint=rcf,
                deepar_endpoint=deepar,
                history=history,
                rcf_scaling=scaling,
                deepar=cfg,
            )
            history.add(window)
            return dets

        def load(raw: bytes | None) -> History:
            return History.from_bytes(raw, cfg.keep_windows)

        _, dets = transact(state_store(SCORER_STATE_KEY), load, History.to_bytes, change)
    else:
        dets = score_window(window, invoke=sagemaker_invoke, rcf_endpoint=rcf, rcf_scaling=scaling)
    if dets:
        send_detections(env("DETECTIONS_STREAM_NAME"))(dets)
    return dets, None
