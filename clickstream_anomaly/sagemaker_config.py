"""Pure validation of SageMaker settings, done before any AWS call.

* RCF hyperparameters against the ranges SageMaker documents (``feature_dim`` 1-10000 required,
  ``num_trees`` 50-1000, ``num_samples_per_tree`` 1-2048, ``eval_metrics`` a subset of
  ``accuracy``/``precision_recall_fscore``). Source: the SageMaker developer guide's page
  "RCF Hyperparameters" (``rcf_hyperparameters.html``).
* DeepAR hyperparameters: the AWS blog's values (:data:`DEEPAR_BLOG_HYPERPARAMETERS`) merged with
  overrides, then checked by :func:`clickstream_anomaly.deepar.validate_hyperparameters` (imported when
  called; the DeepAR module owns those rules and this module does not duplicate them).
* Names: role ARN, bucket, region, instance type, resource names.

Every function returns the hyperparameters as ``{name: str}``: the CreateTrainingJob API takes strings only.
No AWS library is imported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .params import as_int


class SageMakerConfigError(ValueError):
    """A setting SageMaker would reject (or that is missing); raised before any AWS call."""


# --------------------------------------------------------------------------- RCF
RCF_INT_RANGES: dict[str, tuple[int, int]] = {
    "feature_dim": (1, 10_000),
    "num_trees": (50, 1000),
    "num_samples_per_tree": (1, 2048),
}
RCF_EVAL_METRICS: tuple[str, ...] = ("accuracy", "precision_recall_fscore")
RCF_DEFAULTS: dict[str, int] = {"num_trees": 100, "num_samples_per_tree": 256}


def _as_int(name: str, value: Any) -> int:
    return as_int(name, value, error=SageMakerConfigError)


def _parse_metrics(value: Any) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise SageMakerConfigError(f"eval_metrics {value!r} is not a JSON list") from None
        else:
            value = [v.strip() for v in text.split(",") if v.strip()]
    metrics = [str(v) for v in value]
    if not metrics:
        raise SageMakerConfigError("eval_metrics must name at least one metric")
    bad = [m for m in metrics if m not in RCF_EVAL_METRICS]
    if bad:
        raise SageMakerConfigError(f"unknown RCF eval_metrics {bad}; choose from {list(RCF_EVAL_METRICS)}")
    return list(dict.fromkeys(metrics))


def rcf_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, str]:
    """Validate RCF hyperparameters and render them as strings.

    ``feature_dim`` is required; ``num_trees``/``num_samples_per_tree`` default to 100/256;
    ``eval_metrics`` (list or comma-separated string) is sent as a JSON list and left out when not given
    (SageMaker then reports both metrics). Unknown names are rejected.
    """
    known = {*RCF_INT_RANGES, "eval_metrics"}
    unknown = sorted(set(hyperparameters) - known)
    if unknown:
        raise SageMakerConfigError(f"unknown RCF hyperparameter(s) {unknown}; known: {sorted(known)}")
    values = {**RCF_DEFAULTS, **{k: v for k, v in hyperparameters.items() if v is not None}}
    if "feature_dim" not in values:
        raise SageMakerConfigError("RCF needs feature_dim (the number of feature columns)")
    out: dict[str, str] = {}
    for name, (lo, hi) in RCF_INT_RANGES.items():
        number = _as_int(name, values[name])
        if not lo <= number <= hi:
            raise SageMakerConfigError(f"RCF {name}={number} is outside SageMaker's range {lo}-{hi}")
        out[name] = str(number)
    if "eval_metrics" in values:
        out["eval_metrics"] = json.dumps(_parse_metrics(values["eval_metrics"]))
    return out


# --------------------------------------------------------------------------- DeepAR
#: The AWS blog's DeepAR settings for 10-minute click counts (one day = 144 windows of context and horizon),
#: with the likelihood of the local detector (``negative-binomial``: click counts, no band below zero).
DEEPAR_BLOG_HYPERPARAMETERS: dict[str, Any] = {
    "time_freq": "10min",
    "context_length": 144,
    "prediction_length": 144,
    "num_layers": 1,
    "num_cells": 40,
    "epochs": 400,
    "early_stopping_patience": 40,
    "mini_batch_size": 32,
    "learning_rate": 5e-4,
    "likelihood": "negative-binomial",
}
DEEPAR_REQUIRED: tuple[str, ...] = ("time_freq", "context_length", "prediction_length", "epochs")


def _hp_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return str(value)


def deepar_hyperparameters(overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The blog's DeepAR hyperparameters with ``overrides`` applied, validated, as strings.

    Validation is :func:`clickstream_anomaly.deepar.validate_hyperparameters` (the DeepAR module owns
    SageMaker's DeepAR rules); a ``None`` override removes a default (SageMaker's own default applies).
    """
    from .deepar import validate_hyperparameters

    merged: dict[str, Any] = dict(DEEPAR_BLOG_HYPERPARAMETERS)
    for key, value in (overrides or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    missing = [k for k in DEEPAR_REQUIRED if k not in merged]
    if missing:
        raise SageMakerConfigError(f"DeepAR needs hyperparameter(s) {missing}")
    try:
        checked = validate_hyperparameters(merged)
    except (ValueError, TypeError) as exc:
        raise SageMakerConfigError(f"DeepAR hyperparameters: {exc}") from exc
    return {k: _hp_string(checked.get(k, v)) for k, v in merged.items()}


# --------------------------------------------------------------------------- names
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_RESOURCE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def require(value: str | None, what: str, hint: str) -> str:
    """``value`` or a :class:`SageMakerConfigError` saying what is missing and how to give it."""
    if value is None or not str(value).strip():
        raise SageMakerConfigError(f"missing {what}: {hint}")
    return str(value).strip()


def validate_role_arn(value: str | None) -> str:
    """An IAM role ARN (``arn:aws:iam::123456789012:role/Name``) for SageMaker to assume."""
    role = require(value, "SageMaker execution role", "pass --role arn:aws:iam::ACCOUNT:role/NAME")
    if not _ROLE_ARN.match(role):
        raise SageMakerConfigError(f"--role {role!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    return role


def validate_bucket(value: str | None) -> str:
    """An S3 bucket name (3-63 lower-case letters, digits, dots, hyphens; no ``s3://``)."""
    bucket = require(value, "S3 bucket", "pass --bucket NAME")
    if bucket.startswith("s3://"):
        raise SageMakerConfigError(f"--bucket takes a bucket name, not a URI: {bucket!r}")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise SageMakerConfigError(f"--bucket {bucket!r} is not a valid S3 bucket name")
    return bucket


def validate_region(value: str | None) -> str:
    """An AWS region name such as ``us-east-1``."""
    region = require(value, "AWS region", "pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    if not _REGION.match(region):
        raise SageMakerConfigError(f"{region!r} is not an AWS region name (e.g. us-east-1)")
    return region


def validate_instance_type(value: str) -> str:
    """A SageMaker instance type (``ml.<family>.<size>``)."""
    if not _INSTANCE.match(value or ""):
        raise SageMakerConfigError(f"{value!r} is not a SageMaker instance type (e.g. ml.m5.large)")
    return value


def validate_instance_count(value: Any) -> int:
    count = _as_int("instance count", value)
    if count < 1:
        raise SageMakerConfigError(f"instance count must be at least 1, got {count}")
    return count


def validate_resource_name(value: str, what: str = "name") -> str:
    """A SageMaker resource name: 1-63 letters, digits and single hyphens, starting alphanumeric."""
    if not _RESOURCE_NAME.match(value or ""):
        raise SageMakerConfigError(
            f"{what} {value!r} is not a valid SageMaker name "
            "(1-63 letters, digits, hyphens; starts with a letter or digit)"
        )
    return value


def validate_prefix(value: str) -> str:
    """An S3 key prefix without leading/trailing slashes (may be empty)."""
    prefix = (value or "").strip("/")
    if prefix.startswith("s3:"):
        raise SageMakerConfigError(f"--prefix takes a key prefix, not a URI: {value!r}")
    return prefix
