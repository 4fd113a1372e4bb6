"""Ingest: the three Kinesis streams, the producer and aggregator Lambdas, and Firehose into the data lake.

``landing bucket --(ObjectCreated under landing_prefix)--> producer λ --> clicks stream``
``clicks stream + 1-minute schedule --> aggregator λ --> features stream``
``clicks, features --> Firehose --> lake bucket`` (``<stream>/dt=YYYY-MM-DD/``, GZIP, one JSON per line)

The ``detections`` stream carries the detector results to the alerter.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from clickstream_anomaly.producer import MAX_SKEW_SECONDS
from stacks.functions import FunctionDefaults, failure_queue, kinesis_source, pipeline_function
from stacks.nag import BASIC_EXECUTION_ROLE, acknowledge, arn_ref, wildcard_actions, wildcard_resource
from stacks.storage import grant_prefix, secure_bucket

REJECTED_PREFIX = "rejected/"


def max_skew_seconds(allowed_lateness: str) -> int:
    """The S3 producer's event-time skew bound: half the aggregator's allowed lateness (``<n>min`` or
    ``<n>h``, validated by the settings), at most the producer's default, so that records that overtake
    each other still land within the lateness the aggregator waits for."""
    n, unit = int(allowed_lateness.rstrip("minh")), allowed_lateness.lstrip("0123456789")
    seconds = n * (60 if unit == "min" else 3600)
    return min(int(MAX_SKEW_SECONDS), seconds // 2)


#: Where the producer leaves records Kinesis did not accept after its retries (copy back to re-send).
UNSENT_PREFIX = "unsent/"
NOTIFICATIONS_HANDLER = "BucketNotificationsHandler"
LAKE_PREFIXES = {"clicks": "clicks/", "features": "features/"}


def lake_prefix(stream: str) -> str:
    """Firehose data prefix of ``stream`` in the lake: one folder per UTC delivery date."""
    return f"{LAKE_PREFIXES[stream]}dt=!{{timestamp:yyyy-MM-dd}}/"


class Ingest(Construct):
    """Streams, producer, aggregator and the data lake.

    Attributes
    ----------
    clicks, features, detections : kinesis.Stream
    landing, lake : s3.Bucket
    producer : lambda_.Function
    aggregator : lambda_.Function or None
        ``None`` with ``aggregator=False`` (the flink engine: the job aggregates).
    failure_queues : dict[str, sqs.Queue]
        Per function, the queue receiving what it gave up on.
    delivery_streams : dict[str, firehose.DeliveryStream]
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        stream_mode: str,
        shards: int,
        retention_hours: int,
        landing_prefix: str,
        window_freq: str,
        allowed_lateness: str,
        state_bucket: s3.IBucket,
        access_logs: s3.IBucket,
        removal_policy: RemovalPolicy,
        functions: FunctionDefaults,
        retry_attempts: int,
        max_record_age_hours: int,
        clicks_format: str = "clicks",
        landing_format: str = "clicks",
        source_settings: str = "{}",
        user_salt: secretsmanager.ISecret | None = None,
        aggregator: bool = True,
    ) -> None:
        super().__init__(scope, id_)
        # How both functions read clicks (docs/sources.md): formats, click rules and the salt's secret.
        source_env = {"SOURCE_SETTINGS": source_settings}
        if user_salt is not None:
            source_env["USER_SALT_SECRET_ARN"] = user_salt.secret_arn
        mode = kinesis.StreamMode.ON_DEMAND if stream_mode == "on-demand" else kinesis.StreamMode.PROVISIONED
        self.streams: dict[str, kinesis.Stream] = {}
        for name in ("clicks", "features", "detections"):
            self.streams[name] = kinesis.Stream(
                self,
                name.capitalize(),
                stream_mode=mode,
                shard_count=shards if mode == kinesis.StreamMode.PROVISIONED else None,
                encryption=kinesis.StreamEncryption.MANAGED,
                retention_period=Duration.hours(retention_hours),
                removal_policy=removal_policy,
            )
        self.clicks = self.streams["clicks"]
        self.features = self.streams["features"]
        self.detections = self.streams["detections"]

        self.landing = secure_bucket(
            self, "Landing", access_logs=access_logs, removal_policy=removal_policy, log_prefix="landing/"
        )
        self.lake = secure_bucket(
            self, "Lake", access_logs=access_logs, removal_policy=removal_policy, log_prefix="lake/"
        )
        self.failure_queues: dict[str, sqs.Queue] = {}

        # producer: new click files in the landing bucket -> clicks stream; bad lines to rejected/, records
        # Kinesis kept refusing to unsent/.
        self.failure_queues["producer"] = failure_queue(self, "ProducerFailures")
        self.producer = pipeline_function(
            self,
            "Producer",
            name="producer",
            defaults=functions,
            timeout_seconds=900,
            environment={
                "CLICKS_STREAM_NAME": self.clicks.stream_name,
                "REJECTED_PREFIX": REJECTED_PREFIX,
                "CLICKS_MAX_SKEW_SECONDS": str(max_skew_seconds(allowed_lateness)),
                "LANDING_FORMAT": landing_format,
                **source_env,
            },
            description="Reads click and access log files from the landing bucket and puts them on the clicks stream",
        )
        self.producer.configure_async_invoke(
            retry_attempts=2, on_failure=destinations.SqsDestination(self.failure_queues["producer"])
        )
        self.clicks.grant_write(self.producer)
        grant_prefix(self.landing, self.producer, landing_prefix, write=False)
        grant_prefix(self.landing, self.producer, REJECTED_PREFIX, read=False)
        grant_prefix(self.landing, self.producer, UNSENT_PREFIX, read=False)
        if user_salt is not None:
            user_salt.grant_read(self.producer)
        self.landing.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.producer),
            s3.NotificationKeyFilter(prefix=landing_prefix),
        )
        for child in Stack.of(self).node.children:  # CDK's singleton that configures bucket notifications
            if child.node.id.startswith(NOTIFICATIONS_HANDLER):
                acknowledge(
                    child,
                    BASIC_EXECUTION_ROLE,
                    "CDK's bucket-notifications handler only needs to write its own CloudWatch Logs",
                )

        # aggregator: clicks -> 10-minute windows -> features; a 1-minute schedule closes quiet windows.
        # Not built with the flink engine (aggregator=False): the Flink job makes the windows.
        self.aggregator: lambda_.Function | None = None
        if aggregator:
            self.failure_queues["aggregator"] = failure_queue(self, "AggregatorFailures")
            self.aggregator = pipeline_function(
                self,
                "Aggregator",
                name="aggregator",
                defaults=functions,
                timeout_seconds=120,
                environment={
                    "FEATURES_STREAM_NAME": self.features.stream_name,
                    "STATE_BUCKET": state_bucket.bucket_name,
                    "WINDOW_FREQ": window_freq,
                    "ALLOWED_LATENESS": allowed_lateness,
                    "FAILURE_QUEUE_URL": self.failure_queues["aggregator"].queue_url,
                    "CLICKS_FORMAT": clicks_format,
                    **source_env,
                },
                description="Aggregates clicks into fixed windows and puts window features on the features stream",
            )
            self.aggregator.add_event_source(
                kinesis_source(
                    self.clicks,
                    on_failure=self.failure_queues["aggregator"],
                    retry_attempts=retry_attempts,
                    max_record_age=Duration.hours(max_record_age_hours),
                    batch_size=500,
                    max_batching_seconds=5,
                )
            )
            self.features.grant_write(self.aggregator)
            if user_salt is not None:
                user_salt.grant_read(self.aggregator)
            self.failure_queues["aggregator"].grant_send_messages(self.aggregator)  # event-time rejections
            grant_prefix(state_bucket, self.aggregator, "aggregator/", state=True)
            self.window_closer = events.Rule(
                self,
                "CloseWindowsEveryMinute",
                schedule=events.Schedule.rate(Duration.minutes(1)),
                description="Invokes the aggregator every minute so windows without clicks still close",
                targets=[targets.LambdaFunction(self.aggregator, retry_attempts=2)],
            )

        # Firehose: clicks and features into the lake, partitioned by delivery date (training input). Raw
        # CloudFront real-time records hold viewer IPs and cookies: that stream is not copied to the lake.
        self.delivery_streams: dict[str, firehose.DeliveryStream] = {}
        for name in ("clicks", "features") if clicks_format == "clicks" else ("features",):
            self.delivery_streams[name] = firehose.DeliveryStream(
                self,
                f"{name.capitalize()}ToLake",
                source=firehose.KinesisStreamSource(self.streams[name]),
                destination=firehose.S3Bucket(
                    self.lake,
                    data_output_prefix=lake_prefix(name),
                    error_output_prefix=f"errors/{name}/!{{firehose:error-output-type}}/dt=!{{timestamp:yyyy-MM-dd}}/",
                    buffering_interval=Duration.minutes(5),
                    compression=firehose.Compression.GZIP,
                    processors=[firehose.AppendDelimiterToRecordProcessor()],
                ),
            )
            stream = self.delivery_streams[name]
            acknowledge(
                stream,
                "AwsSolutions-KDF1",
                "a delivery stream with a Kinesis stream source cannot enable its own SSE; the data is "
                "encrypted at rest in the source stream (aws/kinesis) and in the SSE-S3 lake bucket",
            )
            why = "CDK's Firehose S3-destination grant: Firehose lists the lake and runs multipart uploads into it"
            wildcard_actions(
                stream, ["s3:Abort*", "s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:DeleteObject*"], why
            )
            wildcard_resource(stream, f"{arn_ref(self.lake)}/*", why)
            # That grant is grantReadWrite, deletes included; Firehose only writes. An explicit Deny wins
            # over it, so the delivery role can never delete (or overwrite a version of) the lake's objects.
            role = stream.node.find_child("S3 Destination Role")  # aws-cdk-lib's id for the delivery role
            assert isinstance(role, iam.Role)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="NeverDeleteTheLake",
                    effect=iam.Effect.DENY,
                    actions=["s3:DeleteObject*"],
                    resources=[self.lake.arn_for_objects("*")],
                )
            )

    @property
    def functions(self) -> dict[str, lambda_.Function]:
        fns = {"producer": self.producer}
        if self.aggregator is not None:
            fns["aggregator"] = self.aggregator
        return fns
