"""Configuration of the Lambda functions, read from their environment when called (never at import).

Every reader takes the mapping to read (default ``os.environ``), so a handler's configuration can be
built from a plain dict in a test; a missing or invalid variable raises :class:`ConfigError` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..baseline import TimeAwareBaseline
from ..baseline.calendar import check_timezone
from ..baseline.pages import PageSettings, PageStream
from ..baseline.rules import DetectorRules
from ..kda import KdaRcfParameters
from ..records import BASELINE, PAGES
from ..streaming.aggregation import DEFAULT_ALLOWED_LATENESS
from ..streaming.alerting import AlertConfig
from ..streaming.detection import DEFAULT_STREAMING_DETECTORS, streaming_detector_names
from ..streaming.eventtime import EARLIEST_EVENT_TIME, LAMBDA_MAX_FUTURE_SECONDS, EventTimePolicy
from ..streaming.scoring import DeepARScoring
from ..windowspec import DEFAULT_FREQ, WindowSpec

if TYPE_CHECKING:
    from ..sources import SourceSettings


class ConfigError(ValueError):
    """A missing or invalid environment variable."""


def env(name: str, default: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """An environment variable; raises :class:`ConfigError` naming it when required and missing."""
    value = (os.environ if environ is None else environ).get(name)
    if value is None or value == "":
        if default is None:
            raise ConfigError(f"environment variable {name} is not set")
        return default
    return value


def env_int(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    try:
        return int(env(name, str(default), environ))
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer") from None


def env_float(name: str, default: float) -> float:
    try:
        return float(env(name, str(default)))
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number") from None


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    text = env(name, "true" if default else "false", environ).strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"environment variable {name} must be true or false")
    return text in ("true", "1", "yes")


@dataclass(frozen=True)
class AggregatorConfig:
    features_stream: str
    freq: str
    lateness: str

    @classmethod
    def from_env(cls) -> AggregatorConfig:
        return cls(
            env("FEATURES_STREAM_NAME"),
            env("WINDOW_FREQ", DEFAULT_FREQ),
            env("ALLOWED_LATENESS", DEFAULT_ALLOWED_LATENESS),
        )


def clicks_format_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``CLICKS_FORMAT``: what the clicks stream's records are, ``clicks`` (the default) or
    ``cloudfront-realtime`` (:mod:`clickstream_anomaly.sources.stream`)."""
    from ..sources.stream import STREAM_FORMATS

    fmt = env("CLICKS_FORMAT", STREAM_FORMATS[0], environ)
    if fmt not in STREAM_FORMATS:
        raise ConfigError(f"CLICKS_FORMAT must be one of {', '.join(STREAM_FORMATS)}, got {fmt!r}")
    return fmt


def source_settings_from_env(salt: str, environ: Mapping[str, str] | None = None) -> SourceSettings:
    """``SOURCE_SETTINGS``: the click source's settings as a JSON object (the keys of ``--source-config``
    but ``salt``, which is the ``salt`` argument: a secret is not put in a function's environment)."""
    import json

    from ..sources import SourceSettings

    text = env("SOURCE_SETTINGS", "{}", environ)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"environment variable SOURCE_SETTINGS is not JSON: {exc}") from None
    if isinstance(data, dict) and "salt" in data:
        raise ConfigError("SOURCE_SETTINGS must not hold the salt: give it by USER_SALT_SECRET_ARN")
    try:
        return SourceSettings.from_mapping({**data, "salt": salt} if isinstance(data, dict) else data)
    except ValueError as exc:
        raise ConfigError(f"SOURCE_SETTINGS: {exc}") from None


def sampling_rate_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The aggregator's sampling rate (percent): ``SOURCE_SETTINGS``' ``sampling_rate`` when the stream
    carries CloudFront real-time records (``CLICKS_FORMAT``), else 100 (the project's clicks are not sampled)."""
    import json

    if clicks_format_from_env(environ) == "clicks":
        return 100
    try:
        rate = json.loads(env("SOURCE_SETTINGS", "{}", environ)).get("sampling_rate", 100)
    except (ValueError, AttributeError):
        raise ConfigError("environment variable SOURCE_SETTINGS must be a JSON object") from None
    if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= 100:
        raise ConfigError(f"SOURCE_SETTINGS: sampling_rate must be a whole percent 1-100, got {rate!r}")
    return rate


def rcf_params_from_env(environ: Mapping[str, str] | None = None) -> KdaRcfParameters:
    """``RCF_NUM_TREES``, ``RCF_SAMPLE_SIZE``, ``RCF_TIME_DECAY``, ``RCF_SHINGLE_SIZE``,
    ``RCF_WITH_DIRECTIONALITY`` (KDA's defaults 100, 256, 100000, 1; directionality on)."""
    try:
        return KdaRcfParameters(
            number_of_trees=env_int("RCF_NUM_TREES", 100, environ),
            sub_sample_size=env_int("RCF_SAMPLE_SIZE", 256, environ),
            time_decay=env_int("RCF_TIME_DECAY", 100_000, environ),
            shingle_size=env_int("RCF_SHINGLE_SIZE", 1, environ),
            with_directionality=env_bool("RCF_WITH_DIRECTIONALITY", True, environ),
        )
    except ValueError as exc:
        raise ConfigError(f"RCF_* settings: {exc}") from exc


def alert_config_from_env() -> AlertConfig:
    try:
        return AlertConfig(
            mode=env("THRESHOLD_MODE", "static"),
            threshold=env_float("THRESHOLD", 2.6),
            sigma_k=env_float("SIGMA_K", 3.0),
            freq=env("WINDOW_FREQ", DEFAULT_FREQ),
            timezone=check_timezone(env("TIMEZONE", "UTC")),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def streaming_detectors_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """``DETECTORS``: the detector Lambda's detectors, comma-separated, among ``baseline``,
    ``baseline-pages`` and ``rcf-streaming`` (default ``baseline,baseline-pages``, as the CDK app's
    ``streaming_detectors``)."""
    try:
        default = ",".join(DEFAULT_STREAMING_DETECTORS)
        return streaming_detector_names(env("DETECTORS", default, environ).split(","))
    except ValueError as exc:
        raise ConfigError(f"DETECTORS {exc}") from exc


def rules_from_env(environ: Mapping[str, str] | None = None) -> DetectorRules:
    """``DETECTOR_RULES``: the detectors' verdict rules as JSON (:mod:`clickstream_anomaly.baseline.rules`;
    unset or empty: the defaults)."""
    try:
        return DetectorRules.parse(env("DETECTOR_RULES", "", environ))
    except ValueError as exc:
        raise ConfigError(f"DETECTOR_RULES: {exc}") from exc


def baseline_from_env(environ: Mapping[str, str] | None = None) -> TimeAwareBaseline | None:
    """The time-aware baseline of a new detector state (``TIMEZONE``, ``WINDOW_FREQ``, its
    ``DETECTOR_RULES``), or ``None`` when ``DETECTORS`` leaves it out."""
    if BASELINE not in streaming_detectors_from_env(environ):
        return None
    rules = rules_from_env(environ).baseline_params()
    try:
        return TimeAwareBaseline(
            timezone=check_timezone(env("TIMEZONE", "UTC", environ)),
            window=env("WINDOW_FREQ", DEFAULT_FREQ, environ),
            **rules,
        )
    except ValueError as exc:
        raise ConfigError(f"TIMEZONE / WINDOW_FREQ: {exc}") from exc


def pages_from_env(environ: Mapping[str, str] | None = None) -> PageStream | None:
    """The per-page baseline of a new detector state (``TIMEZONE``, ``WINDOW_FREQ``, its
    ``DETECTOR_RULES``; the batch detector's defaults otherwise), or ``None`` when ``DETECTORS`` leaves
    ``baseline-pages`` out."""
    if PAGES not in streaming_detectors_from_env(environ):
        return None
    rules = rules_from_env(environ).page_params()
    try:
        settings = PageSettings(
            timezone=check_timezone(env("TIMEZONE", "UTC", environ)),
            freq=env("WINDOW_FREQ", DEFAULT_FREQ, environ),
            **rules,
        )
    except ValueError as exc:
        raise ConfigError(f"TIMEZONE / WINDOW_FREQ: {exc}") from exc
    return PageStream(settings)


def deepar_scoring_from_env(environ: Mapping[str, str] | None = None) -> DeepARScoring:
    """``WINDOW_FREQ`` (10min), ``DEEPAR_CONTEXT_LENGTH`` and ``DEEPAR_PREDICTION_LENGTH`` (default: a day
    of windows, as the model was trained)."""
    try:
        context = env("DEEPAR_CONTEXT_LENGTH", "", environ)
        prediction = env("DEEPAR_PREDICTION_LENGTH", "", environ)
        return DeepARScoring(
            window=WindowSpec.parse(env("WINDOW_FREQ", DEFAULT_FREQ, environ)),
            context_length=int(context) if context else None,
            prediction_length=int(prediction) if prediction else None,
        )
    except ValueError as exc:
        raise ConfigError(f"DeepAR scorer settings: {exc}") from exc


def _seconds(name: str, default: str, environ: Mapping[str, str] | None) -> float:
    import pandas as pd

    text = env(name, default, environ)
    try:
        value = pd.Timedelta(text).total_seconds()
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a duration such as 6h or 15min, got {text!r}") from None
    return value


def event_time_policy_from_env(environ: Mapping[str, str] | None = None) -> EventTimePolicy:
    """The event-time policy of the stateful Lambdas (:mod:`clickstream_anomaly.streaming.eventtime`):
    ``EVENT_TIME_MAX_AHEAD`` (``6h`` ahead of the component's event clock), ``EVENT_TIME_MAX_FUTURE``
    (``15min`` ahead of the wall clock) and ``EVENT_TIME_EARLIEST`` (``2000-01-01T00:00:00Z``)."""
    from ..records import RecordError, parse_timestamp

    earliest_text = env("EVENT_TIME_EARLIEST", EARLIEST_EVENT_TIME.isoformat(), environ)
    try:
        earliest = parse_timestamp(earliest_text).timestamp()
    except RecordError:
        raise ConfigError(
            f"environment variable EVENT_TIME_EARLIEST must be an ISO 8601 time, got {earliest_text!r}"
        ) from None
    try:
        return EventTimePolicy(
            max_ahead=_seconds("EVENT_TIME_MAX_AHEAD", "6h", environ),
            max_future=_seconds("EVENT_TIME_MAX_FUTURE", f"{LAMBDA_MAX_FUTURE_SECONDS:.0f}s", environ),
            earliest=earliest,
        )
    except ValueError as exc:
        raise ConfigError(f"EVENT_TIME_*: {exc}") from exc
