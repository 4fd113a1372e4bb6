"""The one training-job spec: channels, content types, distribution, run limit, output path, hyperparameters.

Three callers render it: the boto3 workflow (:func:`TrainingJobSpec.create_training_job_request`, used by
``clickstream-anomaly sagemaker train``), the Step Functions pipeline of the CDK app (``stacks/models.py``
builds its ``SageMakerCreateTrainingJob`` task from the same fields) and the data preparation (the CLI's
``sagemaker prepare`` and the pipeline's prepare Lambda write the channel files at :attr:`Channel.key`).

Layout under a *root* key prefix (``"exp1/"`` for the CLI's ``--prefix exp1``, ``""`` in the CDK app's
dedicated models bucket)::

    <root>rcf/train/train.csv       train channel   text/csv;label_size=0   ShardedByS3Key
    <root>rcf/test/test.csv         test channel    text/csv;label_size=1   FullyReplicated (needs labels)
    <root>rcf/scaling.json          the RCF feature scaling (outside the channel folders)
    <root>deepar/train/train.json   train channel   application/jsonlines   FullyReplicated
    <root>deepar/test/test.json     test channel    application/jsonlines   FullyReplicated
    <root>models/<job name>/output/model.tar.gz     what SageMaker writes
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from clickstream_anomaly import sagemaker_formats as fmt
from clickstream_anomaly.deepar.estimator import MIN_OBSERVATIONS
from clickstream_anomaly.scaling import RCF_SCALING_KEY


class Algorithm(StrEnum):
    """The SageMaker built-in algorithms the project trains."""

    RCF = "rcf"
    DEEPAR = "deepar"


#: SageMaker DeepAR refuses training data with fewer observations in total (the core's one constant).
DEEPAR_MIN_OBSERVATIONS = MIN_OBSERVATIONS
#: Run limit of every training job (seconds): minutes are typical for weeks of 10-minute windows.
MAX_RUNTIME_SECONDS = 3600
VOLUME_GB = 10
MODELS_FOLDER = "models/"
DEFAULT_TRAINING_INSTANCE: dict[str, str] = {Algorithm.RCF: "ml.m5.large", Algorithm.DEEPAR: "ml.c5.2xlarge"}


@dataclass(frozen=True)
class Channel:
    """One input channel: its name, the key of its file under the root, content type and distribution."""

    name: str
    key: str
    content_type: str
    distribution: str
    optional: bool = False

    @property
    def folder(self) -> str:
        """The channel's folder (what the job's ``S3Prefix`` data source reads), ending in ``/``."""
        return self.key.rsplit("/", 1)[0] + "/"


CHANNELS: dict[Algorithm, tuple[Channel, ...]] = {
    Algorithm.RCF: (
        Channel("train", "rcf/train/train.csv", fmt.RCF_TRAIN_CONTENT_TYPE, "ShardedByS3Key"),
        Channel("test", "rcf/test/test.csv", fmt.RCF_TEST_CONTENT_TYPE, "FullyReplicated", optional=True),
    ),
    Algorithm.DEEPAR: (
        Channel("train", "deepar/train/train.json", fmt.DEEPAR_JSONLINES_CONTENT_TYPE, "FullyReplicated"),
        Channel("test", "deepar/test/test.json", fmt.DEEPAR_JSONLINES_CONTENT_TYPE, "FullyReplicated"),
    ),
}
SCALING_KEY = RCF_SCALING_KEY


def channel(algorithm: str, name: str) -> Channel:
    """The channel ``name`` of ``algorithm``."""
    for ch in CHANNELS[Algorithm(algorithm)]:
        if ch.name == name:
            return ch
    raise KeyError(f"{algorithm} has no {name!r} channel")


def root_prefix(prefix: str) -> str:
    """A key prefix as a root: ``""`` or ``"a/b/"`` (surrounding slashes normalised)."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


@dataclass(frozen=True)
class TrainingJobSpec:
    """What a training job of ``algorithm`` is, whoever starts it.

    ``with_test`` adds the optional channels (RCF's labelled test channel). Times in seconds, volume in GB.
    """

    algorithm: Algorithm
    hyperparameters: Mapping[str, str]
    instance_type: str
    root: str = ""
    with_test: bool = True
    instance_count: int = 1
    volume_gb: int = VOLUME_GB
    max_runtime_s: int = MAX_RUNTIME_SECONDS
    tags: tuple[tuple[str, str], ...] = field(default=())

    @property
    def channels(self) -> tuple[Channel, ...]:
        return tuple(ch for ch in CHANNELS[self.algorithm] if self.with_test or not ch.optional)

    def channel_uri(self, bucket: str, ch: Channel) -> str:
        """``s3://bucket/<root><channel folder>``."""
        return f"s3://{bucket}/{self.root}{ch.folder}"

    def output_uri(self, bucket: str) -> str:
        """``s3://bucket/<root>models/``: SageMaker adds ``<job name>/output/model.tar.gz``."""
        return f"s3://{bucket}/{self.root}{MODELS_FOLDER}"

    def create_training_job_request(self, *, bucket: str, job_name: str, role_arn: str, image: str) -> dict[str, Any]:
        """The ``CreateTrainingJob`` request (boto3 shape) of this spec."""
        return {
            "TrainingJobName": job_name,
            "RoleArn": role_arn,
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "HyperParameters": dict(self.hyperparameters),
            "InputDataConfig": [
                {
                    "ChannelName": ch.name,
                    "ContentType": ch.content_type,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": self.channel_uri(bucket, ch),
                            "S3DataDistributionType": ch.distribution,
                        }
                    },
                }
                for ch in self.channels
            ],
            "OutputDataConfig": {"S3OutputPath": self.output_uri(bucket)},
            "ResourceConfig": {
                "InstanceType": self.instance_type,
                "InstanceCount": self.instance_count,
                "VolumeSizeInGB": self.volume_gb,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_runtime_s},
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags],
        }
