"""Streaming engine ``flink``: the PyFlink job of ``flink/clickstream_job`` as an application of Amazon Managed
Service for Apache Flink (``AWS::KinesisAnalyticsV2::Application``, runtime ``FLINK-1_20``, ADR 14). It
reads the clicks stream, makes the windows and runs the detectors, and writes the features and detections
streams, so the stack builds neither the aggregator nor the detector Lambda; the alerter still reads the
detections stream. The L1 resource, not the alpha L2 construct: ADR 15.

Resources: the zip ``make flink-zip`` builds, uploaded as an S3 asset; the application with the property
groups the job reads (:func:`property_groups`, the contract with ``clickstream_job.msf``), checkpointing,
parallelism and snapshots; its log group and log stream with a logging option; a least-privilege role; and a
custom resource that starts the application (CloudFormation never does) and stops it on delete, as the KDA
SQL variant does (:mod:`stacks.kda_sql`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisanalyticsv2 as msf
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as assets
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.nag import BASIC_EXECUTION_ROLE, acknowledge, wildcard_resource

RUNTIME = "FLINK-1_20"
RUN_OPTIONS = "kinesis.analytics.flink.run.options"
#: The zip's entry point and connector jar (the packaging contract of ``make flink-zip``).
PYTHON_ENTRY = "main.py"
CONNECTOR_JAR = "lib/clickstream-flink-connectors.jar"
#: Seconds a shard may send nothing before it stops holding the watermark (the job's default).
IDLE_TIMEOUT_SECONDS = 60
#: The key the job's windows and detectors are keyed by (one site today; the job's default).
SITE = "site"
CUSTOM_RESOURCE_SINGLETON = "AWS679f53fac002430cb0da5b7982bd2287"
#: What the role may do on the streams: the ``FlinkKinesisConsumer`` of connector 4.3.0-1.19 calls
#: ``DescribeStream`` (the stream's ARN, before ``ListShards``; read from its bytecode), lists the shards and
#: reads them; ``KinesisStreamsSink`` writes batches.
READ_ACTIONS = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)
WRITE_ACTIONS = ("kinesis:PutRecords",)


def property_groups(
    *,
    region: str,
    clicks: tuple[str, str],
    features: tuple[str, str],
    detections: tuple[str, str],
    job: Mapping[str, str],
) -> dict[str, dict[str, str]]:
    """``{PropertyGroupId: PropertyMap}`` of the application (what ``clickstream_job.msf`` reads).

    Parameters
    ----------
    region : str
        The streams' region (``aws.region`` of each stream group).
    clicks, features, detections : tuple of (str, str)
        Each stream's ``(name, arn)``.
    job : Mapping
        The ``Job`` group: ``freq``, ``allowed_lateness``, ``out_of_orderness`` and ``idle_timeout`` (s),
        ``detectors``, ``timezone``, ``site``, ``clicks_format``, ``source_settings``,
        ``python_execution_mode`` (all text).
    """

    def stream(name_arn: tuple[str, str]) -> dict[str, str]:
        return {"stream.name": name_arn[0], "stream.arn": name_arn[1], "aws.region": region}

    return {
        RUN_OPTIONS: {"python": PYTHON_ENTRY, "jarfile": CONNECTOR_JAR},
        "ClicksStream": stream(clicks),
        "FeaturesStream": stream(features),
        "DetectionsStream": stream(detections),
        "Job": dict(job),
    }


class FlinkApplication(Construct):
    """The Managed Service for Apache Flink application running the clickstream job, its role, logs and starter.

    Parameters
    ----------
    clicks, features, detections : kinesis.IStream
        The job's source and its two sinks.
    zip_path : Path
        The application zip (``make flink-zip``); uploaded as an S3 asset.
    parallelism, parallelism_per_kpu : int
        The application's parallelism (KPUs = parallelism / parallelism_per_kpu, plus one for orchestration).
    autoscaling : bool
        Whether the service may raise the parallelism with the load.
    checkpoint_interval_ms, min_pause_ms : int
        Checkpoint interval and minimum pause between checkpoints, in milliseconds.
    job : Mapping
        The ``Job`` property group (see :func:`property_groups`).
    log_retention : logs.RetentionDays
    removal_policy : RemovalPolicy
        Of the log group.

    Attributes
    ----------
    application : msf.CfnApplication
    role : iam.Role
    code : assets.Asset
    log_group : logs.LogGroup
    log_stream : logs.LogStream
    logging : msf.CfnApplicationCloudWatchLoggingOption
    starter : cr.AwsCustomResource
    groups : dict[str, dict[str, str]]
        The property groups as given to the application.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        clicks: kinesis.IStream,
        features: kinesis.IStream,
        detections: kinesis.IStream,
        zip_path: Path,
        parallelism: int,
        parallelism_per_kpu: int,
        autoscaling: bool,
        checkpoint_interval_ms: int,
        min_pause_ms: int,
        job: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.code = assets.Asset(self, "Code", path=str(zip_path))
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        self.log_stream = logs.LogStream(self, "LogStream", log_group=self.log_group, removal_policy=removal_policy)
        log_stream_arn = self._log_arn(f"{self.log_group.log_group_name}:log-stream:{self.log_stream.log_stream_name}")

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("kinesisanalytics.amazonaws.com").with_conditions(
                {
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": self._application_arn("*")},
                }
            ),
            description="Lets the clickstream Flink application read clicks, write features and detections, log",
        )
        self._grant(clicks=clicks, sinks=(features, detections), log_stream_arn=log_stream_arn)

        self.groups = property_groups(
            region=stack.region,
            clicks=(clicks.stream_name, clicks.stream_arn),
            features=(features.stream_name, features.stream_arn),
            detections=(detections.stream_name, detections.stream_arn),
            job=job,
        )
        self.application = msf.CfnApplication(
            self,
            "Application",
            runtime_environment=RUNTIME,
            service_execution_role=self.role.role_arn,
            application_description="Clickstream windows and anomaly detectors (PyFlink, flink/clickstream_job)",
            application_configuration=msf.CfnApplication.ApplicationConfigurationProperty(
                application_code_configuration=msf.CfnApplication.ApplicationCodeConfigurationProperty(
                    code_content_type="ZIPFILE",
                    code_content=msf.CfnApplication.CodeContentProperty(
                        s3_content_location=msf.CfnApplication.S3ContentLocationProperty(
                            bucket_arn=self.code.bucket.bucket_arn, file_key=self.code.s3_object_key
                        )
                    ),
                ),
                environment_properties=msf.CfnApplication.EnvironmentPropertiesProperty(
                    property_groups=[
                        msf.CfnApplication.PropertyGroupProperty(property_group_id=k, property_map=v)
                        for k, v in self.groups.items()
                    ]
                ),
                flink_application_configuration=msf.CfnApplication.FlinkApplicationConfigurationProperty(
                    checkpoint_configuration=msf.CfnApplication.CheckpointConfigurationProperty(
                        configuration_type="CUSTOM",
                        checkpointing_enabled=True,
                        checkpoint_interval=checkpoint_interval_ms,
                        min_pause_between_checkpoints=min_pause_ms,
                    ),
                    parallelism_configuration=msf.CfnApplication.ParallelismConfigurationProperty(
                        configuration_type="CUSTOM",
                        parallelism=parallelism,
                        parallelism_per_kpu=parallelism_per_kpu,
                        auto_scaling_enabled=autoscaling,
                    ),
                    # Application level: the service's metrics and the job's counters carry only the
                    # ``Application`` dimension (stacks.alerting.flink_monitoring reads them so).
                    monitoring_configuration=msf.CfnApplication.MonitoringConfigurationProperty(
                        configuration_type="CUSTOM", log_level="INFO", metrics_level="APPLICATION"
                    ),
                ),
                application_snapshot_configuration=msf.CfnApplication.ApplicationSnapshotConfigurationProperty(
                    snapshots_enabled=True
                ),
            ),
            # How CloudFormation restarts a running application it updates: from its latest snapshot, so the
            # detectors' keyed state survives a new zip.
            run_configuration=msf.CfnApplication.RunConfigurationProperty(
                application_restore_configuration=msf.CfnApplication.ApplicationRestoreConfigurationProperty(
                    application_restore_type="RESTORE_FROM_LATEST_SNAPSHOT"
                ),
                flink_run_configuration=msf.CfnApplication.FlinkRunConfigurationProperty(
                    allow_non_restored_state=False
                ),
            ),
        )
        # The service checks the role when the application is created: wait for the role *and* its policy.
        self.application.node.add_dependency(self.role)

        self.logging = msf.CfnApplicationCloudWatchLoggingOption(
            self,
            "Logging",
            application_name=self.application.ref,
            cloud_watch_logging_option=msf.CfnApplicationCloudWatchLoggingOption.CloudWatchLoggingOptionProperty(
                log_stream_arn=log_stream_arn
            ),
        )
        self.starter = self._starter()
        # Start only once logging is attached (that is an update of the application, which a starting one
        # would refuse), so the job's first lines are logged.
        self.starter.node.add_dependency(self.logging)

    @property
    def application_name(self) -> str:
        """The application's name (CloudFormation-generated): the ``Application`` dimension of its metrics."""
        return self.application.ref

    # ------------------------------------------------------------------ helpers
    def _application_arn(self, name: str) -> str:
        return Stack.of(self).format_arn(service="kinesisanalytics", resource="application", resource_name=name)

    def _log_arn(self, resource_name: str) -> str:
        return Stack.of(self).format_arn(
            service="logs", resource="log-group", resource_name=resource_name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )

    def _grant(self, *, clicks: kinesis.IStream, sinks: Sequence[kinesis.IStream], log_stream_arn: str) -> None:
        """The role's statements: exactly what the job and the service need (the VPC-less set MSF documents)."""
        role = self.role
        role.add_to_policy(
            iam.PolicyStatement(sid="ReadClicks", actions=list(READ_ACTIONS), resources=[clicks.stream_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteFeaturesAndDetections", actions=list(WRITE_ACTIONS), resources=[s.stream_arn for s in sinks]
            )
        )
        # Streams encrypted with a customer managed key (the stack's use alias/aws/kinesis, which needs no grant).
        if clicks.encryption_key is not None:
            clicks.encryption_key.grant_decrypt(role)
        for sink in sinks:
            if sink.encryption_key is not None:
                sink.encryption_key.grant(role, "kms:GenerateDataKey")
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadCode",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.code.bucket.arn_for_objects(self.code.s3_object_key)],
            )
        )
        all_groups = self._log_arn("*")
        role.add_to_policy(
            iam.PolicyStatement(sid="DescribeLogGroups", actions=["logs:DescribeLogGroups"], resources=[all_groups])
        )
        own_streams = self._log_arn(f"{self.log_group.log_group_name}:log-stream:*")
        role.add_to_policy(
            iam.PolicyStatement(sid="DescribeLogStreams", actions=["logs:DescribeLogStreams"], resources=[own_streams])
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="PutLogEvents", actions=["logs:PutLogEvents"], resources=[log_stream_arn])
        )
        wildcard_resource(
            role,
            "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*",
            "logs:DescribeLogGroups lists groups, so it has no one-group resource; Managed Service for Apache "
            "Flink's documented application policy grants it on log-group:* for application logging",
        )
        wildcard_resource(
            role,
            f"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:<{self._logical(self.log_group)}>"
            ":log-stream:*",
            "logs:DescribeLogStreams lists the streams of the application's own log group (MSF's documented "
            "application policy); writing stays limited to its one log stream",
        )

    def _logical(self, construct: Construct) -> str:
        stack = Stack.of(self)
        child = construct.node.default_child
        return str(stack.resolve(stack.get_logical_id(child)))  # type: ignore[arg-type]

    def _starter(self) -> cr.AwsCustomResource:
        """Start the application on create (and after a replacement), stop it (with a snapshot) on delete."""
        name = self.application.ref
        start = cr.AwsSdkCall(
            service="KinesisAnalyticsV2",
            action="startApplication",
            parameters={"ApplicationName": name},
            physical_resource_id=cr.PhysicalResourceId.of(f"start-{name}"),
            ignore_error_codes_matching="ResourceInUseException",  # already running
        )
        starter = cr.AwsCustomResource(
            self,
            "Starter",
            on_create=start,
            on_update=start,
            on_delete=cr.AwsSdkCall(
                service="KinesisAnalyticsV2",
                action="stopApplication",
                parameters={"ApplicationName": name, "Force": False},
                ignore_error_codes_matching="ResourceNotFoundException|ResourceInUseException",
            ),
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[self._application_arn(name)]),
            install_latest_aws_sdk=False,
        )
        for child in Stack.of(self).node.children:  # the singleton Lambda behind every AwsCustomResource
            if child.node.id.startswith(CUSTOM_RESOURCE_SINGLETON):
                acknowledge(
                    child,
                    BASIC_EXECUTION_ROLE,
                    "CDK's AwsCustomResource provider only needs to write its own CloudWatch Logs",
                )
        return starter
