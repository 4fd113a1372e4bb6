"""Errors raised by the SageMaker workflows (validation errors are
:class:`clickstream_anomaly.sagemaker_config.SageMakerConfigError`, a ``ValueError``)."""

from __future__ import annotations


class SageMakerError(RuntimeError):
    """An AWS-side failure: a call that failed, a job or endpoint that did not reach its goal."""


class JobFailedError(SageMakerError):
    """A training job ended ``Failed`` or ``Stopped``; the message carries SageMaker's FailureReason."""

    def __init__(self, job_name: str, status: str, reason: str | None) -> None:
        self.job_name = job_name
        self.status = status
        self.reason = reason
        super().__init__(f"training job {job_name} {status.lower()}: {reason or 'no reason given'}")


class EndpointFailedError(SageMakerError):
    """An endpoint ended ``Failed`` (or left ``Creating``/``Updating`` for another state)."""

    def __init__(self, endpoint_name: str, status: str, reason: str | None) -> None:
        self.endpoint_name = endpoint_name
        self.status = status
        self.reason = reason
        super().__init__(f"endpoint {endpoint_name} is {status}: {reason or 'no reason given'}")


class WaitTimeoutError(SageMakerError):
    """A wait gave up after its timeout; the resource keeps running (and billing) on AWS."""
