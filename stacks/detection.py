"""Streaming detection, default engine: the detector Lambda (streaming RCF with explanation) on the features
stream. Its forest state lives in the state bucket (``detector/state.bin``); results go to the detections
stream for the alerter.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.functions import FunctionDefaults, failure_queue, kinesis_source, pipeline_function
from stacks.storage import grant_prefix

STATE_KEY = "detector/state.bin"


class LambdaDetection(Construct):
    """The detector Lambda with its event source (bisect, bounded retries and age, partial batch responses,
    SQS failure destination).

    Attributes
    ----------
    function : lambda_.Function
    failure_queue : sqs.Queue
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        features: kinesis.IStream,
        detections: kinesis.IStream,
        state_bucket: s3.IBucket,
        functions: FunctionDefaults,
        num_trees: int,
        sample_size: int,
        time_decay: int,
        shingle_size: int,
        with_directionality: bool,
        detectors: Sequence[str],
        timezone: str,
        window_freq: str,
        retry_attempts: int,
        max_record_age_hours: int,
        detector_rules: str = "{}",
    ) -> None:
        super().__init__(scope, id_)
        self.failure_queue = failure_queue(self, "DetectorFailures")
        # One forest per stream: the features stream carries one record per window, so one shard suffices
        # and batches are processed in order (parallelization factor 1).
        self.function = pipeline_function(
            self,
            "Detector",
            name="detector",
            defaults=functions,
            timeout_seconds=120,
            environment={
                "STATE_BUCKET": state_bucket.bucket_name,
                "STATE_KEY": STATE_KEY,
                "DETECTIONS_STREAM_NAME": detections.stream_name,
                "RCF_NUM_TREES": str(num_trees),
                "RCF_SAMPLE_SIZE": str(sample_size),
                "RCF_TIME_DECAY": str(time_decay),
                "RCF_SHINGLE_SIZE": str(shingle_size),
                "RCF_WITH_DIRECTIONALITY": "true" if with_directionality else "false",
                "DETECTORS": ",".join(detectors),
                "DETECTOR_RULES": detector_rules,
                "TIMEZONE": timezone,
                "WINDOW_FREQ": window_freq,
                "FAILURE_QUEUE_URL": self.failure_queue.queue_url,
            },
            description="Time-aware baseline and streaming Random Cut Forest with explanation on window features",
        )
        self.function.add_event_source(
            kinesis_source(
                features,
                on_failure=self.failure_queue,
                retry_attempts=retry_attempts,
                max_record_age=Duration.hours(max_record_age_hours),
                batch_size=100,
            )
        )
        grant_prefix(state_bucket, self.function, "detector/", state=True)
        detections.grant_write(self.function)
        self.failure_queue.grant_send_messages(self.function)  # event-time rejections
