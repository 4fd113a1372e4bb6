"""The one stack: wires the constructs of :mod:`stacks` together with plain values from :class:`Settings`."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, CfnOutput, RemovalPolicy, Stack
from constructs import Construct

from clickstream_anomaly.streaming import detection as detector_names
from clickstream_anomaly.streaming import scoring as scorer_names
from stacks.alerting import Alerting, Monitoring
from stacks.detection import LambdaDetection
from stacks.functions import LOG_RETENTION, FunctionDefaults, project_code
from stacks.ingest import Ingest, max_skew_seconds
from stacks.layers import PARTITION_WARNING, managed_layers
from stacks.models import Models
from stacks.nag import acknowledge
from stacks.settings import Settings
from stacks.storage import Storage
from stacks.traffic import RealtimeLog, user_salt_secret


class ClickstreamAnomalyStack(Stack):
    """Ingest, streaming detection (Lambda, Flink or KDA SQL), SageMaker pipelines, alerting and monitoring.

    Attributes are the constructs: ``storage``, ``ingest``, ``alerting``, ``detection`` (lambda engine),
    ``flink`` (flink engine: no aggregator and no detector Lambda) or ``kda`` (kda-sql engine), ``models``,
    ``monitoring``.
    """

    def __init__(self, scope: Construct, id_: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        s = settings
        for warning_id, text in s.synth_warnings.items():  # the legacy KDA SQL engine's
            Annotations.of(self).add_warning_v2(warning_id, text)
        if not (s.pandas_layer_arn and s.powertools_layer_arn):
            Annotations.of(self).add_warning_v2("clickstream:layers-from-ssm", PARTITION_WARNING)
        removal = RemovalPolicy.DESTROY if s.removal_policy == "destroy" else RemovalPolicy.RETAIN
        functions = FunctionDefaults(
            code=project_code(),
            layers=managed_layers(
                self,
                pandas_release=s.pandas_layer_version,
                powertools_release=s.powertools_layer_version,
                pandas_arn=s.pandas_layer_arn,
                powertools_arn=s.powertools_layer_arn,
            ),
            memory_mb=s.lambda_memory_mb,
            log_level=s.log_level,
            metrics_namespace=s.metrics_namespace,
            log_retention=LOG_RETENTION[s.log_retention_days],
            removal_policy=removal,
        )
        retries = {"retry_attempts": s.event_retry_attempts, "max_record_age_hours": s.event_max_record_age_hours}

        self.storage = Storage(self, "Storage", removal_policy=removal)
        self.user_salt = (
            user_salt_secret(self, "UserSalt", secret_arn=s.user_salt_secret_arn, removal_policy=removal)
            if s.needs_user_salt
            else None
        )
        self.ingest = Ingest(
            self,
            "Ingest",
            stream_mode=s.stream_mode,
            shards=s.stream_shards,
            retention_hours=s.stream_retention_hours,
            landing_prefix=s.landing_prefix,
            window_freq=s.window_freq,
            allowed_lateness=s.allowed_lateness,
            state_bucket=self.storage.state,
            access_logs=self.storage.access_logs,
            removal_policy=removal,
            functions=functions,
            clicks_format=s.clicks_format,
            landing_format=s.landing_format,
            source_settings=s.source_settings_json(),
            user_salt=self.user_salt,
            aggregator=not s.flink,
            **retries,
        )
        self.realtime_log: RealtimeLog | None = None
        if s.cloudfront_realtime_log:
            self.realtime_log = RealtimeLog(
                self,
                "RealtimeLog",
                stream=self.ingest.clicks,
                fields=s.realtime_fields,
                sampling_rate=s.realtime_log_sampling_rate,
            )
        self.alerting = Alerting(
            self,
            "Alerting",
            detections=self.ingest.detections,
            state_bucket=self.storage.state,
            functions=functions,
            threshold_mode=s.threshold_mode,
            threshold=s.threshold,
            sigma_k=s.sigma_k,
            window_freq=s.window_freq,
            timezone=s.timezone,
            alert_email=s.alert_email,
            **retries,
        )

        fns = {**self.ingest.functions, "alerter": self.alerting.function}
        queues = {**self.ingest.failure_queues, "alerter": self.alerting.failure_queue}
        consumers: list[str] = [n for n in ("aggregator", "alerter") if n in fns]
        self.detection: LambdaDetection | None = None
        self.kda = None
        self.flink = None
        if s.flink:
            from stacks.flink_app import IDLE_TIMEOUT_SECONDS, SITE, FlinkApplication

            self.flink = FlinkApplication(
                self,
                "Flink",
                clicks=self.ingest.clicks,
                features=self.ingest.features,
                detections=self.ingest.detections,
                zip_path=s.flink_zip_path,
                parallelism=s.flink_parallelism,
                parallelism_per_kpu=s.flink_parallelism_per_kpu,
                autoscaling=s.flink_autoscaling,
                checkpoint_interval_ms=s.flink_checkpoint_interval_ms,
                min_pause_ms=s.flink_min_pause_ms,
                job={
                    "freq": s.window_freq,
                    "allowed_lateness": s.allowed_lateness,
                    "out_of_orderness": str(max_skew_seconds(s.allowed_lateness)),
                    "idle_timeout": str(IDLE_TIMEOUT_SECONDS),
                    "detectors": ",".join(s.streaming_detector_names),
                    "timezone": s.timezone,
                    "site": SITE,
                    "clicks_format": s.clicks_format,
                    "source_settings": s.source_settings_json(),
                    "python_execution_mode": s.flink_python_execution_mode,
                    "detector_rules": s.detector_rules_json(),
                },
                log_retention=LOG_RETENTION[s.log_retention_days],
                removal_policy=removal,
            )
        elif s.kda_sql:
            from stacks.kda_sql import KdaSqlDetection

            self.kda = KdaSqlDetection(
                self,
                "KdaSql",
                features=self.ingest.features,
                alerter=self.alerting.function,
                num_trees=s.rcf_num_trees,
                sample_size=s.rcf_sample_size,
                time_decay=s.rcf_time_decay,
                shingle_size=s.rcf_shingle_size,
                with_directionality=s.rcf_with_directionality,
            )
        else:
            self.detection = LambdaDetection(
                self,
                "Detection",
                features=self.ingest.features,
                detections=self.ingest.detections,
                state_bucket=self.storage.state,
                functions=functions,
                num_trees=s.rcf_num_trees,
                sample_size=s.rcf_sample_size,
                time_decay=s.rcf_time_decay,
                shingle_size=s.rcf_shingle_size,
                with_directionality=s.rcf_with_directionality,
                detectors=s.streaming_detector_names,
                detector_rules=s.detector_rules_json(),
                timezone=s.timezone,
                window_freq=s.window_freq,
                **retries,
            )
            fns["detector"] = self.detection.function
            queues["detector"] = self.detection.failure_queue
            consumers.append("detector")

        detectors = [detector_names.KDA_DETECTOR_NAME] if s.kda_sql else s.streaming_detector_names
        endpoint_names: list[str] = []
        self.models = Models(
            self,
            "Models",
            prefix=s.prefix,
            lake=self.ingest.lake,
            access_logs=self.storage.access_logs,
            removal_policy=removal,
            functions=functions,
            training_days=s.training_days,
            window_freq=s.window_freq,
            rcf_hyperparameters=s.rcf_hyperparameters(),
            deepar_hyperparameters=s.deepar_hyperparameters_strings(),
            training_instance_type=s.training_instance_type,
            endpoint_instance_type=s.endpoint_instance_type,
            deploy_endpoints=s.deploy_endpoints,
            retrain_schedule=s.retrain_schedule,
            features=self.ingest.features,
            detections=self.ingest.detections,
            state_bucket=self.storage.state,
            **retries,
        )
        scorer, scorer_queue = self.models.scorer, self.models.scorer_failure_queue
        if scorer is not None and scorer_queue is not None:  # built exactly when s.deploy_endpoints
            detectors += [scorer_names.RCF_DETECTOR, scorer_names.DEEPAR_DETECTOR]
            endpoint_names = list(self.models.endpoint_names.values())
            fns["scorer"] = scorer
            queues["scorer"] = scorer_queue
            consumers.append("scorer")
        fns["prepare"] = self.models.prepare

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            topic=self.alerting.topic,
            namespace=s.metrics_namespace,
            window_seconds=s.window_seconds,
            detectors=detectors,
            functions=fns,
            stream_consumers=consumers,
            failure_queues=queues,
            endpoint_names=endpoint_names,
            state_machines=self.models.state_machines,
            anomaly_alarm_count=s.anomaly_alarm_count,
            flink_application=self.flink.application_name if self.flink else None,
            flink_max_lag_ms=s.flink_max_lag_ms,
        )

        acknowledge(
            self,
            "CloudFormation-Validate::W7001",
            "aws-cdk-lib's Firehose module adds a per-region CIDR mapping that this stack does not use "
            "(it is only needed for Firehose to Redshift/OpenSearch in a VPC)",
        )

        CfnOutput(
            self,
            "LandingBucket",
            value=self.ingest.landing.bucket_name,
            description=f"Upload click CSV files under s3://<bucket>/{s.landing_prefix}",
        )
        CfnOutput(self, "ClicksStream", value=self.ingest.clicks.stream_name)
        CfnOutput(self, "FeaturesStream", value=self.ingest.features.stream_name)
        CfnOutput(self, "AlertTopic", value=self.alerting.topic.topic_arn)
        CfnOutput(self, "Dashboard", value=self.monitoring.dashboard.dashboard_name)
        CfnOutput(self, "ModelsBucket", value=self.models.bucket.bucket_name)
        CfnOutput(
            self,
            "StateBucket",
            value=self.storage.state.bucket_name,
            description="The Lambdas' state objects: clickstream-anomaly state check|reset|rebuild --bucket <this>",
        )
        CfnOutput(
            self,
            "LakeBucket",
            value=self.ingest.lake.bucket_name,
            description="The data lake (clicks/ and features/ by delivery date): state rebuild --lake-bucket <this>",
        )
        if self.flink is not None:
            CfnOutput(
                self,
                "FlinkApplication",
                value=self.flink.application_name,
                description="The Managed Service for Apache Flink application (aws kinesisanalyticsv2 "
                "describe-application --application-name <this>)",
            )
        if self.realtime_log is not None:
            CfnOutput(
                self,
                "RealtimeLogConfigArn",
                value=self.realtime_log.config.realtime_log_config_arn,
                description="Attach to your CloudFront cache behaviours (RealtimeLogConfigArn): their requests "
                "then reach the clicks stream",
            )
        if self.user_salt is not None:
            CfnOutput(
                self,
                "UserSaltSecret",
                value=self.user_salt.secret_arn,
                description="The user hash's salt: give its value to every producer as CLICKSTREAM_USER_SALT",
            )
        for alg, machine in self.models.state_machines.items():
            CfnOutput(
                self,
                f"{alg.capitalize()}Pipeline",
                value=machine.state_machine_arn,
                description=f"Start to train the SageMaker {alg} model (aws stepfunctions start-execution)",
            )
