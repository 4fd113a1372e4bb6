"""The one typed settings object of the CDK app, built from ``cdk.json`` context (or ``cdk synth -c k=v``).

:class:`Settings` is a frozen pydantic dataclass with one field per context key: its type, its range or
pattern, its default and its description. Values given on the command line arrive as strings and are
converted by the field types; anything invalid raises :class:`SettingsError` at synth time, naming every
bad or unknown key and the accepted values. Constructs never read context: ``app.py`` builds
:class:`Settings` once and passes plain values down.

The settings reference page is generated from the model::

    python -m stacks.settings --markdown docs/settings.md
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import sys
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass as plain_dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from clickstream_anomaly.baseline.rules import DetectorRules
from clickstream_anomaly.sagemaker_config import RCF_INT_RANGES
from clickstream_anomaly.sources import DEFAULT_REALTIME_FIELDS, SourceSettings

Engine = Literal["lambda", "kda-sql", "flink"]
StreamMode = Literal["on-demand", "provisioned"]
ThresholdMode = Literal["static", "sigma"]
RemovalPolicyName = Literal["retain", "destroy"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
PythonExecutionMode = Literal["thread", "process"]
ClicksFormat = Literal["clicks", "cloudfront-realtime"]
LandingFormat = Literal["clicks", "auto", "cloudfront", "cloudfront-realtime", "alb", "combined", "jsonl", "csv"]
#: The retention periods CloudWatch Logs offers up to a year.
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 180, 365]

ENGINES: tuple[str, ...] = get_args(Engine)
STREAM_MODES: tuple[str, ...] = get_args(StreamMode)
THRESHOLD_MODES: tuple[str, ...] = get_args(ThresholdMode)
REMOVAL_POLICIES: tuple[str, ...] = get_args(RemovalPolicyName)
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
LOG_RETENTIONS: tuple[int, ...] = get_args(LogRetentionDays)

_FREQ = re.compile(r"^([1-9][0-9]*)(min|h)$")
_SEMVER = r"\d+\.\d+\.\d+"
_LAYER_ARN = r"^$|^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$"
#: Context keys shaped like a setting (lower snake case); CDK's own keys have '@', ':', '-' or capitals.
_SETTING_LIKE = re.compile(r"^[a-z][a-z0-9_]*$")
_PRODUCER_PREFIXES = ("rejected/", "unsent/")
#: Where ``flink_application_zip`` is resolved when relative (the folder of cdk.json).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_SECRET_ARN = r"^$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$"
#: source_settings keys that have their own setting (or must never be in cdk.json: the salt).
_OWN_SETTINGS = {
    "salt": "user_salt_secret_arn",
    "realtime_fields": "realtime_log_fields",
    "sampling_rate": "realtime_log_sampling_rate",
}

KDA_SQL_WARNING_ID = "clickstream:kda-sql-discontinued"
KDA_SQL_WARNING = (
    "streaming_engine=kda-sql: Amazon Kinesis Data Analytics for SQL stopped accepting new applications on "
    "2025-10-15 and deletes existing ones from 2026-01-27, so this stack will fail to deploy the SQL "
    "application. It is kept for reference and local testing; deploy the default engine "
    "(streaming_engine=lambda) for a working pipeline."
)


class SettingsError(ValueError):
    """Invalid ``cdk.json`` context; the message lists every problem, one per line."""


@plain_dataclass(frozen=True)
class Rule:
    """Field metadata: how a pattern (or a service-owned range) reads in the docs and in error messages.

    Parameters
    ----------
    allowed : str
        The accepted values in words, for the settings reference page.
    problem : str
        What an error message says after ``key=value:`` when the pattern does not match (default: ``allowed``).
    range_owner : str
        The service whose documented range the field's bounds are (error: "outside <owner>'s range").
    """

    allowed: str = ""
    problem: str = ""
    range_owner: str = ""


# ---------------------------------------------------------------------- conversion of context values
def _problem(text: str) -> PydanticCustomError:
    """A validation error whose message is ``text`` as is (no template placeholders)."""
    return PydanticCustomError("settings", "{text}", {"text": text})


def _integer(raw: Any) -> Any:
    if isinstance(raw, bool):
        raise _problem("expected an integer")
    if isinstance(raw, str) and re.fullmatch(r"\s*[+-]?\d+\s*", raw):
        return int(raw)  # also for Literal[1, 3, ...], which does not convert strings itself
    return raw


def _number(raw: Any) -> Any:
    if isinstance(raw, bool):
        raise _problem("expected a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return raw  # pydantic reports it
    if not math.isfinite(value):
        raise _problem("expected a finite number")
    return raw


def _flag(raw: Any) -> Any:
    if isinstance(raw, str) and not raw.strip():
        return False  # `-c key=` switches a flag off
    return raw.strip() if isinstance(raw, str) else raw


def _json_object(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise _problem("expected a JSON object") from None
    if not isinstance(raw, dict):
        raise _problem("expected a JSON object")
    return raw


def _text(raw: Any) -> Any:
    return "" if raw is None else raw


Int = Annotated[int, BeforeValidator(_integer)]
Number = Annotated[float, BeforeValidator(_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(_json_object)]
Text = Annotated[str, BeforeValidator(_text)]

_FREQ_RULE = Rule("`<n>min` or `<n>h`, e.g. `10min`", "use <minutes>min or <hours>h, e.g. 10min")
_INSTANCE_RULE = Rule("a SageMaker instance type `ml.<family>.<size>`", "a SageMaker instance type such as ml.m5.large")
_ARN_RULE = Rule("empty or a Lambda layer version ARN", "not a Lambda layer version ARN")
_SAGEMAKER = Rule(range_owner="SageMaker")


#: SageMaker's ranges of the RCF settings (passed to Field as ge=, le=: mypy reads no **kwargs there).
_TREES = RCF_INT_RANGES["num_trees"]
_SAMPLES = RCF_INT_RANGES["num_samples_per_tree"]


# ---------------------------------------------------------------------- the model
@dataclass(
    frozen=True,
    config=ConfigDict(extra="forbid", str_strip_whitespace=True, regex_engine="python-re", validate_default=True),
)
class Settings:
    """Validated app settings; field names are the ``cdk.json`` context keys.

    Build it with :meth:`from_context`; ``docs/settings.md`` lists every field (``python -m stacks.settings``).
    """

    prefix: Annotated[
        str,
        Rule("lower-case letters, digits and '-', starting with a letter, at most 19 characters"),
    ] = Field(
        default="clickstream",
        pattern=r"^[a-z][a-z0-9-]{0,18}$",
        description="Short name put in SageMaker job, model and endpoint names.",
    )
    stream_mode: StreamMode = Field(
        default="on-demand", description="Kinesis capacity mode of the clicks, features and detections streams."
    )
    stream_shards: Int = Field(
        default=1, ge=1, le=500, description="Shards per stream; only with stream_mode provisioned (on-demand: keep 1)."
    )
    stream_retention_hours: Int = Field(default=24, ge=24, le=8760, description="Kinesis retention in hours.")
    streaming_engine: Engine = Field(
        default="lambda",
        description="lambda: the aggregator and detector Lambdas (the default); flink: the PyFlink job on "
        "Managed Service for Apache Flink does both (needs flink_application_zip: make flink-zip); kda-sql: the "
        "KDA SQL RCF application (AWS stopped accepting new SQL applications on 2025-10-15: synth-only, with a "
        "synth warning).",
    )
    streaming_detectors: Annotated[str, Rule("comma-separated, from `baseline`, `baseline-pages`, `rcf-streaming`")] = (
        Field(
            default="baseline,baseline-pages",
            pattern=r"^(baseline|baseline-pages|rcf-streaming)(,(baseline|baseline-pages|rcf-streaming)){0,2}$",
            description="Detectors of the lambda and flink engines: baseline (each window against what is normal at "
            "its local time of day and day of week; its own verdict, no SageMaker needed), baseline-pages (the same "
            "for the clicks of each popular page: a broken page the site's totals hide) and/or rcf-streaming (the "
            "KDA-faithful RCF with explanation, judged by the alerter's threshold; noisier, see docs/detectors.md).",
        )
    )
    detector_rules: JsonObject = Field(
        default_factory=dict,
        description="Verdict rules of the lambda and flink engines' detectors, by detector: baseline "
        '(point_threshold, pair_threshold, drift_threshold, run_threshold: numbers or "inf" for off; run_window: '
        'a duration) and baseline-pages (surge_share, surge_z), e.g. {"baseline-pages": {"surge_z": "inf"}}; '
        "left out: the defaults (docs/detectors.md). A saved detector state takes them at its next window.",
    )
    window_freq: Annotated[str, _FREQ_RULE] = Field(
        default="10min", pattern=_FREQ.pattern, description="Window length of the aggregator (also DeepAR's time_freq)."
    )
    allowed_lateness: Annotated[str, _FREQ_RULE] = Field(
        default="10min",
        pattern=_FREQ.pattern,
        description="How long the aggregator waits for late clicks before closing a window; the S3 producer "
        "lets records overtake each other by half of it (at most 300 s).",
    )
    landing_prefix: Annotated[
        str,
        Rule(
            "an S3 key prefix ending in `/`, not under `rejected/` or `unsent/`",
            "a non-empty S3 key prefix ending in '/'",
        ),
    ] = Field(
        default="incoming/",
        pattern=r"^[A-Za-z0-9!_.*'()/-]+/$",
        description="Key prefix in the landing bucket whose new objects trigger the producer.",
    )
    rcf_num_trees: Int = Field(default=100, ge=1, le=1000, description="Streaming RCF number of trees.")
    rcf_sample_size: Int = Field(
        default=256, ge=10, le=1000, description="Streaming RCF sample size per tree; smaller than rcf_time_decay."
    )
    rcf_time_decay: Int = Field(
        default=4320,
        ge=1,
        le=2_147_483_647,
        description="Streaming RCF time decay in records (the blog's 4320 = 30 days of 10-minute windows).",
    )
    rcf_shingle_size: Int = Field(default=1, ge=1, le=30, description="Streaming RCF shingle size.")
    rcf_with_directionality: Flag = Field(
        default=True, description="Streaming RCF reports direction and strength per column."
    )
    sagemaker_rcf_num_trees: Annotated[Int, _SAGEMAKER] = Field(
        default=100, ge=_TREES[0], le=_TREES[1], description="SageMaker RCF num_trees."
    )
    sagemaker_rcf_num_samples_per_tree: Annotated[Int, _SAGEMAKER] = Field(
        default=256, ge=_SAMPLES[0], le=_SAMPLES[1], description="SageMaker RCF num_samples_per_tree."
    )
    deepar_hyperparameters: JsonObject = Field(
        default_factory=dict,
        description="Overrides of the blog's DeepAR hyperparameters; time_freq always follows window_freq.",
    )
    training_days: Int = Field(
        default=14, ge=1, le=365, description="Days of data-lake history the preparation step reads for training."
    )
    threshold_mode: ThresholdMode = Field(
        default="static",
        description="Alerter threshold: static (threshold) or sigma (mean + sigma_k * std of recent scores).",
    )
    threshold: Number = Field(default=2.6, gt=0, description="Static score threshold of the alerter.")
    sigma_k: Number = Field(default=3.0, gt=0, description="Number of standard deviations for threshold_mode sigma.")
    alert_email: Annotated[Text, Rule("empty or an e-mail address", "not an e-mail address")] = Field(
        default="",
        pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="E-mail address subscribed to the alert topic (empty: no subscription).",
    )
    deploy_endpoints: Flag = Field(
        default=False, description="Deploy SageMaker endpoints and the scorer Lambda (they cost money while running)."
    )
    training_instance_type: Annotated[str, _INSTANCE_RULE] = Field(
        default="ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$", description="SageMaker training instance type."
    )
    endpoint_instance_type: Annotated[str, _INSTANCE_RULE] = Field(
        default="ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$", description="SageMaker endpoint instance type."
    )
    retrain_schedule: Annotated[
        Text, Rule("empty, `rate(...)` or `cron(...)`", "use rate(...) or cron(...), or leave empty")
    ] = Field(
        default="",
        pattern=r"^$|^(rate\(.+\)|cron\(.+\))$",
        description="EventBridge schedule that starts both training pipelines, e.g. rate(7 days); "
        "empty: start them by hand.",
    )
    removal_policy: RemovalPolicyName = Field(
        default="retain",
        description="retain: buckets and data survive cdk destroy; destroy: buckets emptied and deleted.",
    )
    lambda_memory_mb: Int = Field(
        default=1024,
        ge=512,
        le=10240,
        description="Memory of the pipeline Lambdas in MB (the pandas layer needs >= 512).",
    )
    log_level: LogLevel = Field(default="INFO", description="LOG_LEVEL of the Lambdas.")
    log_retention_days: Annotated[LogRetentionDays, BeforeValidator(_integer)] = Field(
        default=30, description="CloudWatch Logs retention of the Lambda log groups in days."
    )
    metrics_namespace: Annotated[
        str,
        Rule(
            "a custom CloudWatch namespace: 1-255 of `A-Za-z0-9_./#:-`, not starting with `AWS/`",
            "not a valid custom CloudWatch namespace",
        ),
    ] = Field(
        default="ClickstreamAnomaly",
        pattern=r"^(?!AWS/)[A-Za-z0-9_./#:-]{1,255}$",
        description="CloudWatch namespace of the pipeline's EMF metrics.",
    )
    event_retry_attempts: Int = Field(
        default=10, ge=0, le=10000, description="Retries of a failed Kinesis batch before it goes to the failure queue."
    )
    event_max_record_age_hours: Int = Field(
        default=24, ge=1, le=168, description="Records older than this go to the failure queue unprocessed."
    )
    anomaly_alarm_count: Int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Anomalous windows of one detector within one window period that raise its alarm.",
    )
    pandas_layer_version: Annotated[str, Rule("a release `x.y.z`", "a release such as 3.17.0")] = Field(
        default="3.17.0",
        pattern=f"^{_SEMVER}$",
        description="AWS SDK for pandas release whose public SSM layer parameter is used.",
    )
    pandas_layer_arn: Annotated[Text, _ARN_RULE] = Field(
        default="",
        pattern=_LAYER_ARN,
        description="Explicit AWS SDK for pandas layer ARN (overrides the SSM parameter).",
    )
    powertools_layer_version: Annotated[
        str, Rule("`latest` or a release `x.y.z`", "latest or a release such as 3.37.0")
    ] = Field(
        default="3.37.0",
        pattern=f"^(latest|{_SEMVER})$",
        description="Powertools for AWS Lambda (Python) v3 layer release in SSM: the release the tests run "
        "(requirements.txt), so a deploy does not change it; `latest` follows new releases.",
    )
    powertools_layer_arn: Annotated[Text, _ARN_RULE] = Field(
        default="", pattern=_LAYER_ARN, description="Explicit Powertools layer ARN (overrides the SSM parameter)."
    )
    clicks_format: ClicksFormat = Field(
        default="clicks",
        description="Records of the clicks stream: clicks (the project's JSON clicks, from produce and the S3 "
        "producer) or cloudfront-realtime (CloudFront real-time log records, fields realtime_log_fields; JSON "
        "clicks are still read; the stream is then not copied to the lake: its records hold viewer IPs).",
    )
    landing_format: LandingFormat = Field(
        default="clicks",
        description="Format of the S3 producer's landing objects (gzip or not): clicks, auto (detected from "
        "the first line) or one of the --format readers (docs/sources.md).",
    )
    source_settings: JsonObject = Field(
        default_factory=dict,
        description="Click rules of the S3 producer and the aggregator: the --source-config keys (user_cookie, "
        "statuses, methods, exclude_static, exclude_good_bots, page_rules, collapse_ids, field_map, "
        "timestamp_unit, hash_users...) except salt, realtime_fields and sampling_rate.",
    )
    user_salt_secret_arn: Annotated[
        Text, Rule("empty or a Secrets Manager secret's complete ARN", "not a Secrets Manager secret's complete ARN")
    ] = Field(
        default="",
        pattern=_SECRET_ARN,
        description="Secret whose value is the user hash's salt, shared with your produce machines "
        "(CLICKSTREAM_USER_SALT); empty: the stack generates one when a format needs it (output UserSaltSecret).",
    )
    cloudfront_realtime_log: Flag = Field(
        default=False,
        description="Create a CloudFront real-time log configuration that writes to the clicks stream (output "
        "RealtimeLogConfigArn; attach it to your cache behaviours); needs clicks_format cloudfront-realtime.",
    )
    realtime_log_fields: Annotated[str, Rule("comma-separated CloudFront real-time log fields")] = Field(
        default=",".join(DEFAULT_REALTIME_FIELDS),
        description="Fields of the real-time log configuration, in order (also how the aggregator reads the "
        "records); timestamp (or timestamp(ms)) and cs-uri-stem required.",
    )
    realtime_log_sampling_rate: Int = Field(
        default=100,
        ge=1,
        le=100,
        description="Percent of requests CloudFront logs; below 100 the windows' clicks are scaled up "
        "(distinct users and pages cannot be: docs/sources.md).",
    )
    timezone: Annotated[str, Rule("an IANA time zone name, e.g. `UTC`, `Europe/Berlin`")] = Field(
        default="UTC",
        description="The site's local time zone, used by the time-aware baseline for time of day and day of "
        "week (DST included).",
    )
    flink_application_zip: Annotated[str, Rule("a path to a `.zip` file", "must be a path ending in .zip")] = Field(
        default="build/flink/clickstream-flink.zip",
        pattern=r"^.+\.zip$",
        description="streaming_engine flink: the application zip `make flink-zip` builds (relative to the "
        "project root); synth fails when it is missing.",
    )
    flink_parallelism: Int = Field(
        default=4,
        ge=1,
        le=256,
        description="streaming_engine flink: parallelism of the job (any: the job keeps one event clock per "
        "shard, so a subtask may read several shards; more subtasks read the shards in parallel, and the "
        "windows of a site are one subtask). The application's KPUs are parallelism / "
        "flink_parallelism_per_kpu, rounded up, plus one for orchestration.",
    )
    flink_parallelism_per_kpu: Annotated[Int, Rule(range_owner="Managed Service for Apache Flink")] = Field(
        default=4, ge=1, le=8, description="streaming_engine flink: parallel tasks per KPU (1 KPU = 1 vCPU, 4 GB)."
    )
    flink_autoscaling: Flag = Field(
        default=False,
        description="streaming_engine flink: let the service raise the parallelism with the load (and bill "
        "the KPUs it adds).",
    )
    flink_python_execution_mode: PythonExecutionMode = Field(
        default="thread",
        description="streaming_engine flink: PyFlink's python.execution-mode for the job's Python operators: "
        "`thread` runs them inside the JVM (the faster, docs/flink.md); `process` in Python worker processes "
        "(the fallback: thread mode is tested locally, not yet on Managed Service for Apache Flink).",
    )
    flink_checkpoint_interval_ms: Int = Field(
        default=60000, ge=1, description="streaming_engine flink: checkpoint interval in milliseconds."
    )
    flink_min_pause_ms: Int = Field(
        default=5000,
        ge=0,
        description="streaming_engine flink: minimum pause between the end of one checkpoint and the start of "
        "the next, in milliseconds.",
    )
    flink_max_lag_ms: Int = Field(
        default=60000,
        ge=1,
        description="streaming_engine flink: millisBehindLatest of the clicks stream's consumer above which "
        "the lag alarm fires (3 periods of 5 minutes).",
    )

    # ------------------------------------------------------------------ single-field rules
    @field_validator("landing_prefix")
    @classmethod
    def _outside_producer_prefixes(cls, value: str) -> str:
        if value.startswith(_PRODUCER_PREFIXES):
            raise _problem(
                "must not be under rejected/ or unsent/ (the producer writes there; new objects would trigger it again)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _iana_time_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise _problem("not an IANA time zone name such as UTC or Europe/Berlin") from None
        if value in ("localtime", "posixrules"):  # machine-dependent links in the tz database directory
            raise _problem("not an IANA time zone name such as UTC or Europe/Berlin")
        return value

    # ------------------------------------------------------------------ cross-field rules
    @model_validator(mode="after")
    def _cross_field_rules(self) -> Settings:
        problems = [text for rule in _CROSS_FIELD_RULES if (text := rule(self))]
        if problems:
            raise _problem("\n".join(problems))
        return self

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Settings:
        """Settings from a context mapping (``cdk.json`` values or ``-c`` strings).

        Parameters
        ----------
        context : Mapping
            The app's context, e.g. ``app.node.get_all_context()``. CDK's own keys (feature flags such
            as ``@aws-cdk/...``, ``aws:cdk:...``, cached look-ups) are ignored; every other key in lower
            snake case must be a setting.

        Returns
        -------
        Settings

        Raises
        ------
        SettingsError
            Naming every unknown key (with a suggestion when one is close) and every invalid value.
        """
        errors: list[str] = []
        values: dict[str, Any] = {}
        for key, raw in context.items():
            if key in FIELDS:
                values[key] = raw
            elif _SETTING_LIKE.match(key):
                errors.append(_unknown_key(key))
        try:
            settings = cls(**values)
        except ValidationError as exc:
            errors.extend(_messages(exc))
        if errors:
            raise SettingsError("invalid cdk.json settings:\n  " + "\n  ".join(errors))
        return settings

    # ------------------------------------------------------------------ derived values
    @property
    def realtime_fields(self) -> tuple[str, ...]:
        """``realtime_log_fields`` as a tuple."""
        return tuple(f.strip() for f in self.realtime_log_fields.split(",") if f.strip())

    @property
    def needs_user_salt(self) -> bool:
        """Whether a function hashes users (a format other than the project's own clicks)."""
        return self.clicks_format != "clicks" or self.landing_format != "clicks"

    def detector_rules_json(self) -> str:
        """``DETECTOR_RULES`` of the detector Lambda and the Flink job's ``detector_rules`` (compact JSON)."""
        return DetectorRules.parse(self.detector_rules).to_json()

    def source_settings_json(self) -> str:
        """``SOURCE_SETTINGS`` of the S3 producer and the aggregator (no salt: that is a secret)."""
        data = {
            **self.source_settings,
            "realtime_fields": list(self.realtime_fields),
            "sampling_rate": self.realtime_log_sampling_rate,
        }
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @property
    def streaming_detector_names(self) -> list[str]:
        """The lambda engine's detectors, in order, without repeats."""
        return list(dict.fromkeys(n.strip() for n in self.streaming_detectors.split(",")))

    @property
    def kda_sql(self) -> bool:
        """Whether the legacy KDA SQL engine is switched on."""
        return self.streaming_engine == "kda-sql"

    @property
    def flink(self) -> bool:
        """Whether the Managed Service for Apache Flink engine is switched on."""
        return self.streaming_engine == "flink"

    @property
    def flink_zip_path(self) -> Path:
        """``flink_application_zip`` as an absolute path (relative ones from the project root)."""
        path = Path(self.flink_application_zip).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path

    @property
    def synth_warnings(self) -> dict[str, str]:
        """``{warning id: text}`` the stack adds as synth-time warnings (the KDA SQL engine's)."""
        return {KDA_SQL_WARNING_ID: KDA_SQL_WARNING} if self.kda_sql else {}

    @property
    def window_seconds(self) -> int:
        """Window length in seconds."""
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


#: key -> pydantic field information (type, constraints, default, description, :class:`Rule`).
FIELDS: dict[str, FieldInfo] = Settings.__pydantic_fields__  # type: ignore[attr-defined]  # set by pydantic's @dataclass, which its stub does not declare

#: key -> description (from the model).
SETTINGS_HELP: dict[str, str] = {name: info.description or "" for name, info in FIELDS.items()}


# ---------------------------------------------------------------------- cross-field rules
def _sample_size_below_time_decay(s: Settings) -> str | None:
    if s.rcf_sample_size < s.rcf_time_decay:
        return None
    return f"rcf_sample_size={s.rcf_sample_size} must be smaller than rcf_time_decay={s.rcf_time_decay}"


def _shards_only_when_provisioned(s: Settings) -> str | None:
    if s.stream_mode == "provisioned" or s.stream_shards == 1:
        return None
    return f"stream_shards={s.stream_shards} applies only with stream_mode=provisioned (on-demand scales itself)"


def _hyperparameters_accepted(s: Settings) -> str | None:
    for what, build in (
        ("sagemaker_rcf_*", s.rcf_hyperparameters),
        ("deepar_hyperparameters", s.deepar_hyperparameters_strings),
    ):
        try:
            build()
        except ValueError as exc:
            return f"{what}: {exc}"
    return None


def _realtime_log_needs_its_format(s: Settings) -> str | None:
    if not s.cloudfront_realtime_log or s.clicks_format == "cloudfront-realtime":
        return None
    return "cloudfront_realtime_log=true needs clicks_format=cloudfront-realtime (the aggregator must read the records)"


def _source_settings_valid(s: Settings) -> str | None:
    own = [f"{key} (use {setting})" for key, setting in _OWN_SETTINGS.items() if key in s.source_settings]
    if own:
        return f"source_settings: {', '.join(own)} cannot be given here"
    try:
        SourceSettings.from_mapping({**json.loads(s.source_settings_json()), "salt": "synth-check"})
    except ValueError as exc:
        field = "realtime_log_fields" if str(exc).startswith("realtime_fields") else "source_settings"
        return f"{field}: {exc}"
    return None


def _detector_rules_valid(s: Settings) -> str | None:
    try:
        DetectorRules.parse(s.detector_rules)
    except ValueError as exc:
        return f"detector_rules: {exc}"
    return None


def _flink_zip_built(s: Settings) -> str | None:
    if not s.flink or s.flink_zip_path.is_file():
        return None
    return (
        f"flink_application_zip={s.flink_application_zip!r}: no such file ({s.flink_zip_path}); "
        "build it with `make flink-zip` (streaming_engine=flink deploys that zip)"
    )


def _flink_reads_project_clicks(s: Settings) -> str | None:
    if not s.flink or s.clicks_format == "clicks":
        return None
    return (
        f"streaming_engine=flink needs clicks_format=clicks (got {s.clicks_format}): the job cannot read the "
        "user salt's secret yet, and the salt never goes into the application's properties"
    )


_CROSS_FIELD_RULES: tuple[Callable[[Settings], str | None], ...] = (
    _sample_size_below_time_decay,
    _realtime_log_needs_its_format,
    _source_settings_valid,
    _detector_rules_valid,
    _shards_only_when_provisioned,
    _hyperparameters_accepted,
    _flink_zip_built,
    _flink_reads_project_clicks,
)


# ---------------------------------------------------------------------- error messages
_TYPE_PROBLEMS = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a JSON object",
}
_RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def _rule(info: FieldInfo) -> Rule:
    return next((m for m in info.metadata if isinstance(m, Rule)), Rule())


def _bounds(info: FieldInfo) -> dict[str, Any]:
    """``{"ge"|"gt"|"le"|"lt": bound}`` of a field."""
    out: dict[str, Any] = {}
    for m in info.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(m, name, None) is not None:
                out[name] = getattr(m, name)
    return out


def _range_text(info: FieldInfo) -> str:
    b = _bounds(info)
    if "ge" in b and "le" in b:
        return f"must be between {b['ge']} and {b['le']}"
    if b.get("gt") == 0 and len(b) == 1:
        return "must be positive"
    return "must be " + " and ".join(f"{_OPERATOR[k]} {v}" for k, v in b.items())


_OPERATOR = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _shown(value: Any, info: FieldInfo) -> Any:
    """The value as the field holds it (``"5"`` from ``-c`` is shown as 5 in a range error)."""
    if isinstance(value, str) and info.annotation in (int, float):
        try:
            return info.annotation(value.strip())
        except ValueError:
            return value
    return value


def _field_message(key: str, error: Mapping[str, Any]) -> str:
    info = FIELDS[key]
    kind, value = error["type"], error["input"]
    if kind in _RANGE_ERRORS:
        value = _shown(value, info)
        owner = _rule(info).range_owner
        if owner:
            b = _bounds(info)
            return f"{key}={value!r} is outside {owner}'s range {b['ge']}-{b['le']}"
        return f"{key}={value!r}: {_range_text(info)}"
    if kind == "literal_error":
        text = "must be one of " + ", ".join(map(str, _options(info)))
    elif kind == "string_pattern_mismatch":
        rule = _rule(info)
        text = rule.problem or rule.allowed or f"must match {error['ctx']['pattern']}"
    elif kind == "settings":
        text = error["msg"]
    else:
        text = _TYPE_PROBLEMS.get(kind, error["msg"])
    return f"{key}={value!r}: {text}"


def _messages(exc: ValidationError) -> list[str]:
    """One line per problem, naming the key, the value and what is accepted."""
    out: list[str] = []
    for error in exc.errors():
        loc = error["loc"]
        if loc and loc[0] in FIELDS:
            out.append(_field_message(str(loc[0]), error))
        else:  # cross-field rules: one line each
            out.extend(error["msg"].splitlines())
    return out


def _unknown_key(key: str) -> str:
    close = difflib.get_close_matches(key, list(FIELDS), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else "; see docs/settings.md for the settings"
    return f"unknown setting {key!r}{hint}"


# ---------------------------------------------------------------------- reference page
def _options(info: FieldInfo) -> tuple[Any, ...]:
    """The values of a ``Literal`` field (empty for other fields)."""
    return get_args(info.annotation) if get_origin(info.annotation) is Literal else ()


_TYPE_NAMES: dict[object, str] = {int: "int", float: "float", bool: "bool", str: "str"}


def _type_name(info: FieldInfo) -> str:
    options = _options(info)
    if options:
        return type(options[0]).__name__
    return _TYPE_NAMES.get(info.annotation, "JSON object")


def _allowed(info: FieldInfo) -> str:
    rule = _rule(info)
    if rule.allowed:
        return rule.allowed
    if info.annotation is bool:
        return "`true`, `false`"
    if _options(info):
        return ", ".join(f"`{o}`" for o in _options(info))
    b = _bounds(info)
    if "ge" in b and "le" in b:
        owner = f" ({rule.range_owner}'s range)" if rule.range_owner else ""
        return f"{b['ge']}–{b['le']}{owner}"
    if b:
        return " and ".join(f"{_OPERATOR[k]} {v}" for k, v in b.items())
    return "a JSON object" if _type_name(info) == "JSON object" else "any"


def _default(value: Any) -> str:
    if isinstance(value, str):
        return f"`{value}`" if value else "(empty)"
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_table(defaults: Settings | None = None) -> str:
    """Markdown table of every setting: key, type, default, allowed values, description.

    Parameters
    ----------
    defaults : Settings, optional
        Whose values fill the default column; the model's defaults when not given.
    """
    defaults = defaults or Settings()
    rows = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for name, info in FIELDS.items():
        cells = (f"`{name}`", _type_name(info), _default(getattr(defaults, name)), _allowed(info))
        rows.append("| " + " | ".join(_cell(c) for c in (*cells, info.description or "")) + " |")
    return "\n".join(rows)


SETTINGS_PAGE_INTRO = """\
# Settings

The CDK app reads its settings from the `context` of `cdk.json`, and `cdk synth -c key=value` overrides
any of them for one run (command-line values are strings: `-c lambda_memory_mb=2048`, `-c deploy_endpoints=true`,
`-c deepar_hyperparameters='{"epochs": 50}'`). `app.py` validates them once, before any construct is
built: an invalid value or an unknown key (any key in lower snake case that is not listed here; CDK's own
keys are left alone) stops the synth with a message naming each bad key and what it accepts.

Rules between settings: `rcf_sample_size` must be smaller than `rcf_time_decay`; `stream_shards` other
than 1 needs `stream_mode` `provisioned`; `deepar_hyperparameters` must pass the DeepAR checks with
`time_freq` taken from `window_freq`; `cloudfront_realtime_log` `true` needs `clicks_format`
`cloudfront-realtime`; `source_settings` and `realtime_log_fields` must be valid click-source settings
(see [Connect your traffic](sources.md)). `streaming_engine` `flink` needs the file `flink_application_zip`
(`make flink-zip`) and `clicks_format` `clicks`. `streaming_engine` `kda-sql` adds a synth-time warning: that
engine cannot be deployed any more.

This page is generated from `stacks/settings.py`; after changing a setting there, run
`python -m stacks.settings --markdown docs/settings.md`.
"""


def settings_markdown() -> str:
    """The settings reference page (``docs/settings.md``): a short introduction and the table."""
    return f"{SETTINGS_PAGE_INTRO}\n{settings_table()}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stacks.settings --markdown PATH``: write the settings reference page (``-``: stdout)."""
    parser = argparse.ArgumentParser(prog="python -m stacks.settings", description=main.__doc__)
    parser.add_argument("--markdown", metavar="PATH", required=True, help="file to write, or - for stdout")
    args = parser.parse_args(argv)
    page = settings_markdown()
    if args.markdown == "-":
        sys.stdout.write(page)
    else:
        target = Path(args.markdown)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
