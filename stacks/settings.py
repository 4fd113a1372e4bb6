"""The one typed settings object of the CDK app, built from ``cdk.json`` context (or ``cdk synth -c k=v``).

Every key, its default and its meaning is listed in :data:`SETTINGS_HELP` (the README table is built from
the same text). Values given on the command line arrive as strings and are converted here; anything
invalid raises :class:`SettingsError` at synth time, naming every bad key and the accepted values.
Constructs never read context: ``app.py`` builds :class:`Settings` and passes plain values down.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

ENGINES = ("lambda", "kda-sql")
STREAM_MODES = ("on-demand", "provisioned")
THRESHOLD_MODES = ("static", "sigma")
REMOVAL_POLICIES = ("retain", "destroy")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_FREQ = re.compile(r"^([1-9][0-9]*)(min|h)$")
_SCHEDULE = re.compile(r"^(rate\(.+\)|cron\(.+\))$")
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,18}$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")
_S3_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]+/$")


class SettingsError(ValueError):
    """Invalid ``cdk.json`` context; the message lists every problem, one per line."""


#: key -> help text (default shown by :func:`settings_table`).
SETTINGS_HELP: dict[str, str] = {
    "prefix": "Short name put in SageMaker job, model and endpoint names (lower case, <= 19 chars).",
    "stream_mode": "Kinesis capacity mode of the clicks, features and detections streams: on-demand | provisioned.",
    "stream_shards": "Shards per stream when stream_mode is provisioned (1-500).",
    "stream_retention_hours": "Kinesis retention in hours (24-8760).",
    "streaming_engine": "lambda (detector Lambda, deploys today) | kda-sql (KDA SQL RCF app; AWS stopped "
    "accepting new SQL apps on 2025-10-15, synth-only).",
    "window_freq": "Window length of the aggregator, e.g. 10min or 1h (also DeepAR's time_freq).",
    "allowed_lateness": (
        "How long the aggregator waits for late clicks before closing a window; the S3 producer "
        "lets records overtake each other by half of it (at most 300 s)."
    ),
    "landing_prefix": "Key prefix in the landing bucket whose new objects trigger the producer.",
    "rcf_num_trees": "Streaming RCF number of trees (1-1000).",
    "rcf_sample_size": "Streaming RCF sample size per tree (10-1000, < rcf_time_decay).",
    "rcf_time_decay": "Streaming RCF time decay in records (the blog's 4320 = 30 days of 10-minute windows).",
    "rcf_shingle_size": "Streaming RCF shingle size (1-30).",
    "rcf_with_directionality": "Streaming RCF reports direction and strength per column (true | false).",
    "sagemaker_rcf_num_trees": "SageMaker RCF num_trees (50-1000).",
    "sagemaker_rcf_num_samples_per_tree": "SageMaker RCF num_samples_per_tree (1-2048).",
    "deepar_hyperparameters": "Overrides of the blog's DeepAR hyperparameters (JSON object); time_freq "
    "always follows window_freq.",
    "training_days": "Days of data-lake history the preparation step reads for training (1-365).",
    "threshold_mode": "Alerter threshold: static (threshold) | sigma (mean + sigma_k * std of recent scores).",
    "threshold": "Static score threshold of the alerter.",
    "sigma_k": "Number of standard deviations for threshold_mode sigma.",
    "alert_email": "E-mail address subscribed to the alert topic (empty: no subscription).",
    "deploy_endpoints": "Deploy SageMaker endpoints and the scorer Lambda (they cost money while running).",
    "training_instance_type": "SageMaker training instance type (ml.*).",
    "endpoint_instance_type": "SageMaker endpoint instance type (ml.*).",
    "retrain_schedule": "EventBridge schedule that starts both training pipelines, e.g. rate(7 days); "
    "empty: start them by hand.",
    "removal_policy": "retain (buckets and data survive cdk destroy) | destroy (buckets emptied and deleted).",
    "lambda_memory_mb": "Memory of the pipeline Lambdas in MB (512-10240; the pandas layer needs >= 512).",
    "log_level": "LOG_LEVEL of the Lambdas: DEBUG | INFO | WARNING | ERROR.",
    "log_retention_days": "CloudWatch Logs retention of the Lambda log groups in days.",
    "metrics_namespace": "CloudWatch namespace of the pipeline's EMF metrics.",
    "event_retry_attempts": "Retries of a failed Kinesis batch before it goes to the failure queue (0-10000).",
    "event_max_record_age_hours": "Records older than this go to the failure queue unprocessed (1-168).",
    "anomaly_alarm_count": "Anomalous windows of one detector within one window period that raise its alarm.",
    "pandas_layer_version": "AWS SDK for pandas release whose public SSM layer parameter is used.",
    "pandas_layer_arn": "Explicit AWS SDK for pandas layer ARN (overrides the SSM parameter).",
    "powertools_layer_version": "Powertools for AWS Lambda (Python) v3 layer version in SSM (semver | latest).",
    "powertools_layer_arn": "Explicit Powertools layer ARN (overrides the SSM parameter).",
}

LOG_RETENTIONS = (1, 3, 5, 7, 14, 30, 60, 90, 180, 365)


@dataclass(frozen=True)
class Settings:
    """Validated app settings; field names are the ``cdk.json`` context keys (see :data:`SETTINGS_HELP`)."""

    prefix: str = "clickstream"
    stream_mode: str = "on-demand"
    stream_shards: int = 1
    stream_retention_hours: int = 24
    streaming_engine: str = "lambda"
    window_freq: str = "10min"
    allowed_lateness: str = "10min"
    landing_prefix: str = "incoming/"
    rcf_num_trees: int = 100
    rcf_sample_size: int = 256
    rcf_time_decay: int = 4320
    rcf_shingle_size: int = 1
    rcf_with_directionality: bool = True
    sagemaker_rcf_num_trees: int = 100
    sagemaker_rcf_num_samples_per_tree: int = 256
    deepar_hyperparameters: dict[str, Any] = field(default_factory=dict)
    training_days: int = 14
    threshold_mode: str = "static"
    threshold: float = 2.6
    sigma_k: float = 3.0
    alert_email: str = ""
    deploy_endpoints: bool = False
    training_instance_type: str = "ml.m5.large"
    endpoint_instance_type: str = "ml.m5.large"
    retrain_schedule: str = ""
    removal_policy: str = "retain"
    lambda_memory_mb: int = 1024
    log_level: str = "INFO"
    log_retention_days: int = 30
    metrics_namespace: str = "ClickstreamAnomaly"
    event_retry_attempts: int = 10
    event_max_record_age_hours: int = 24
    anomaly_alarm_count: int = 1
    pandas_layer_version: str = "3.17.0"
    pandas_layer_arn: str = ""
    powertools_layer_version: str = "latest"
    powertools_layer_arn: str = ""

    def __post_init__(self) -> None:
        errors = _validate(self)
        if errors:
            raise SettingsError("invalid cdk.json settings:\n  " + "\n  ".join(errors))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Settings:
        """Settings from a context mapping (``cdk.json`` values or ``-c`` strings); other keys are ignored.

        Keys that look like a misspelt setting (close to a known name) are rejected with a suggestion.
        """
        known = {f.name: f for f in fields(cls)}
        errors: list[str] = []
        values: dict[str, Any] = {}
        for key, raw in context.items():
            if key in known:
                try:
                    values[key] = _coerce(known[key].type, raw)
                except ValueError as exc:
                    errors.append(f"{key}={raw!r}: {exc}")
            elif not key.startswith(("@", "aws:", "cdk")) and ":" not in key:
                close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.8)
                if close:
                    errors.append(f"unknown setting {key!r}; did you mean {close[0]!r}?")
        if errors:
            raise SettingsError("invalid cdk.json settings:\n  " + "\n  ".join(errors))
        return cls(**values)

    # ------------------------------------------------------------------ derived values
    @property
    def kda_sql(self) -> bool:
        return self.streaming_engine == "kda-sql"

    @property
    def window_seconds(self) -> int:
        n, unit = _FREQ.match(self.window_freq).groups()  # type: ignore[union-attr]
        return int(n) * (60 if unit == "min" else 3600)

    @property
    def deepar_time_freq(self) -> str:
        """DeepAR's ``time_freq`` for the window length (``10min``, ``1H``)."""
        n, unit = _FREQ.match(self.window_freq).groups()  # type: ignore[union-attr]
        return f"{n}min" if unit == "min" else f"{n}H"

    def rcf_hyperparameters(self) -> dict[str, str]:
        """SageMaker RCF hyperparameters as strings (validated by the core's SageMaker config rules)."""
        from clickstream_anomaly.records import FEATURE_COLUMNS
        from clickstream_anomaly.sagemaker_config import rcf_hyperparameters

        return rcf_hyperparameters(
            {
                "feature_dim": len(FEATURE_COLUMNS),
                "num_trees": self.sagemaker_rcf_num_trees,
                "num_samples_per_tree": self.sagemaker_rcf_num_samples_per_tree,
            }
        )

    def deepar_hyperparameters_strings(self) -> dict[str, str]:
        """The blog's DeepAR hyperparameters with this app's overrides and ``time_freq``, as strings."""
        from clickstream_anomaly.sagemaker_config import deepar_hyperparameters

        return deepar_hyperparameters({**self.deepar_hyperparameters, "time_freq": self.deepar_time_freq})


def _coerce(kind: Any, raw: Any) -> Any:
    kind = str(kind)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no", ""):
            return False
        raise ValueError("expected true or false")
    if kind == "int":
        if isinstance(raw, bool):
            raise ValueError("expected an integer")
        if isinstance(raw, float) and not raw.is_integer():
            raise ValueError("expected an integer")
        try:
            return int(str(raw).strip()) if not isinstance(raw, float) else int(raw)
        except ValueError:
            raise ValueError("expected an integer") from None
    if kind == "float":
        if isinstance(raw, bool):
            raise ValueError("expected a number")
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ValueError("expected a number") from None
    if kind.startswith("dict"):
        if isinstance(raw, Mapping):
            return dict(raw)
        try:
            value = json.loads(str(raw)) if str(raw).strip() else {}
        except ValueError:
            raise ValueError("expected a JSON object") from None
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise ValueError("expected a string")
    return raw.strip()


def _choice(errors: list[str], key: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        errors.append(f"{key}={value!r}: must be one of {', '.join(options)}")


def _between(errors: list[str], key: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        errors.append(f"{key}={value!r}: must be between {lo} and {hi}")


def _validate(s: Settings) -> list[str]:
    errors: list[str] = []
    for f in fields(s):
        value = getattr(s, f.name)
        expected = {"int": int, "float": (int, float), "bool": bool, "str": str}.get(str(f.type))
        if expected is not None and (
            not isinstance(value, expected) or (str(f.type) in ("int", "float") and isinstance(value, bool))
        ):
            errors.append(f"{f.name}={value!r}: expected {f.type}")
    if errors:
        return errors
    if not _PREFIX.match(s.prefix):
        errors.append(
            f"prefix={s.prefix!r}: lower-case letters, digits and '-', starting with a letter, at most 19 characters"
        )
    _choice(errors, "stream_mode", s.stream_mode, STREAM_MODES)
    _between(errors, "stream_shards", s.stream_shards, 1, 500)
    _between(errors, "stream_retention_hours", s.stream_retention_hours, 24, 8760)
    _choice(errors, "streaming_engine", s.streaming_engine, ENGINES)
    for key in ("window_freq", "allowed_lateness"):
        if not _FREQ.match(getattr(s, key)):
            errors.append(f"{key}={getattr(s, key)!r}: use <minutes>min or <hours>h, e.g. 10min")
    if not _S3_PREFIX.match(s.landing_prefix):
        errors.append(f"landing_prefix={s.landing_prefix!r}: a non-empty S3 key prefix ending in '/'")
    elif s.landing_prefix.startswith(("rejected/", "unsent/")):
        errors.append(
            f"landing_prefix={s.landing_prefix!r} must not be under rejected/ or unsent/ (the producer "
            "writes there; new objects would trigger it again)"
        )
    # Ranges of KDA's RANDOM_CUT_FOREST_WITH_EXPLANATION (aws-facts.md section 1.1), used by both engines.
    _between(errors, "rcf_num_trees", s.rcf_num_trees, 1, 1000)
    _between(errors, "rcf_sample_size", s.rcf_sample_size, 10, 1000)
    _between(errors, "rcf_time_decay", s.rcf_time_decay, 1, 2_147_483_647)
    _between(errors, "rcf_shingle_size", s.rcf_shingle_size, 1, 30)
    if s.rcf_sample_size >= s.rcf_time_decay:
        errors.append(f"rcf_sample_size={s.rcf_sample_size} must be smaller than rcf_time_decay={s.rcf_time_decay}")
    _between(errors, "training_days", s.training_days, 1, 365)
    _choice(errors, "threshold_mode", s.threshold_mode, THRESHOLD_MODES)
    if not s.threshold > 0:
        errors.append(f"threshold={s.threshold!r}: must be positive")
    if not s.sigma_k > 0:
        errors.append(f"sigma_k={s.sigma_k!r}: must be positive")
    if s.alert_email and not _EMAIL.match(s.alert_email):
        errors.append(f"alert_email={s.alert_email!r}: not an e-mail address")
    for key in ("training_instance_type", "endpoint_instance_type"):
        if not _INSTANCE.match(getattr(s, key)):
            errors.append(f"{key}={getattr(s, key)!r}: a SageMaker instance type such as ml.m5.large")
    if s.retrain_schedule and not _SCHEDULE.match(s.retrain_schedule):
        errors.append(f"retrain_schedule={s.retrain_schedule!r}: use rate(...) or cron(...), or leave empty")
    _choice(errors, "removal_policy", s.removal_policy, REMOVAL_POLICIES)
    _between(errors, "lambda_memory_mb", s.lambda_memory_mb, 512, 10240)
    _choice(errors, "log_level", s.log_level, LOG_LEVELS)
    if s.log_retention_days not in LOG_RETENTIONS:
        errors.append(f"log_retention_days={s.log_retention_days}: one of {LOG_RETENTIONS}")
    namespace = s.metrics_namespace
    if not re.match(r"^[A-Za-z0-9_./#:-]{1,255}$", namespace) or namespace.startswith("AWS/"):
        errors.append(f"metrics_namespace={s.metrics_namespace!r}: not a valid custom CloudWatch namespace")
    _between(errors, "event_retry_attempts", s.event_retry_attempts, 0, 10000)
    _between(errors, "event_max_record_age_hours", s.event_max_record_age_hours, 1, 168)
    _between(errors, "anomaly_alarm_count", s.anomaly_alarm_count, 1, 1000)
    if not _SEMVER.match(s.pandas_layer_version):
        errors.append(f"pandas_layer_version={s.pandas_layer_version!r}: a release such as 3.17.0")
    if s.powertools_layer_version != "latest" and not _SEMVER.match(s.powertools_layer_version):
        errors.append(f"powertools_layer_version={s.powertools_layer_version!r}: latest or a release such as 3.37.0")
    for key in ("pandas_layer_arn", "powertools_layer_arn"):
        if getattr(s, key) and not _LAYER_ARN.match(getattr(s, key)):
            errors.append(f"{key}={getattr(s, key)!r}: not a Lambda layer version ARN")
    if not errors:
        for what, build in (
            ("sagemaker_rcf_*", s.rcf_hyperparameters),
            ("deepar_hyperparameters", s.deepar_hyperparameters_strings),
        ):
            try:
                build()
            except ValueError as exc:
                errors.append(f"{what}: {exc}")
    return errors


def settings_table(defaults: Settings | None = None) -> str:
    """Markdown table of every setting with its default and help text (for the README)."""
    defaults = defaults or Settings()
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for f in fields(defaults):
        value = getattr(defaults, f.name)
        shown = json.dumps(value) if not isinstance(value, str) else (f"`{value}`" if value else "(empty)")
        rows.append(f"| `{f.name}` | {shown} | {SETTINGS_HELP[f.name].replace('|', '/')} |")
    return "\n".join(rows)
