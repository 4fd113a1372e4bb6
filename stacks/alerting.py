"""Alerting and monitoring: the SNS topic and alerter Lambda, CloudWatch alarms and the dashboard.

Metrics the Lambdas publish through Powertools EMF (namespace ``metrics_namespace``; Powertools adds the
``service`` dimension = the function name), as emitted by ``lambdas/aggregator`` and by
``clickstream_anomaly.streaming.alerting.metric_values`` for the alerter:

=============  ==============================  =================  ==========================================
service        metric                          extra dimension    meaning
=============  ==============================  =================  ==========================================
aggregator     Clicks                          (none)             clicks aggregated (Sum per window period)
alerter        IsAnomaly                       ``detector``       1 per anomalous window, 0 otherwise
alerter        AnomalyScore                    ``detector``       the detection's score
alerter        AnomalyThreshold                ``detector``       the threshold it was compared with
alerter        WindowUrls, WindowUsers,        ``detector``       the window's features
               WindowClicks, WindowResidual
=============  ==============================  =================  ==========================================

With ``streaming_engine=flink`` there is no aggregator: :func:`flink_monitoring` adds the application's
alarms and dashboard row, and the clicks band watches the alerter's ``WindowClicks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.functions import FunctionDefaults, failure_queue, kinesis_source, pipeline_function
from stacks.nag import wildcard_actions
from stacks.storage import grant_prefix

FEATURE_METRICS = ("WindowUrls", "WindowUsers", "WindowClicks", "WindowResidual")
ANOMALIES_METRIC = "IsAnomaly"
SCORE_METRIC = "AnomalyScore"
THRESHOLD_METRIC = "AnomalyThreshold"
CLICKS_METRIC = "Clicks"
CORRUPT_STATE_METRIC = "CorruptState"  # clickstream_anomaly.aws.batch.corrupt_state_reported
STATEFUL_FUNCTIONS = ("aggregator", "detector", "alerter", "scorer")  # each keeps one state object in S3
#: Iterator age (ms) above which a Kinesis consumer counts as falling behind.
ITERATOR_AGE_LIMIT_MS = 15 * 60 * 1000

# Managed Service for Apache Flink's metrics, as "Metrics and dimensions in Managed Service for Apache Flink"
# (docs.aws.amazon.com/managed-flink/latest/java/metrics-dimensions.html, read 2026-11) lists them: namespace
# AWS/KinesisAnalytics; downtime, uptime, numberOfFailedCheckpoints (a count since the start),
# lastCheckpointDuration and KPUs (one sample per hour, the orchestration KPU included) at the Application
# level, i.e. the one dimension ``Application`` = the application's name; millisbehindLatest of the Kinesis
# source "Application (for Stream), Parallelism (for ShardId)", the names of its stream and shard dimensions
# not given, so it is read with a Metrics Insights query on ``Application`` alone. The job's own counters
# reach CloudWatch only when registered under the group ``KinesisAnalytics`` ("Use custom metrics with Amazon
# Managed Service for Apache Flink", monitoring-metrics-custom.html), at the Application level by default.
# The alarms are the service's recommended ones (monitoring-metrics-alarms.html): downtime > 0 and
# RATE(numberOfFailedCheckpoints) > 0, and millisBehindLatest above a threshold.
MSF_NAMESPACE = "AWS/KinesisAnalytics"
MSF_APPLICATION_METRICS = ("downtime", "uptime", "numberOfFailedCheckpoints", "lastCheckpointDuration", "KPUs")
MSF_LAG_METRIC = "millisBehindLatest"
FLINK_JOB_METRICS = ("Clicks", "MalformedClicks", "LateClicksDropped")  # clickstream_job.job's counters
#: What the aggregator Lambda counts per invocation (lambdas/aggregator/app.py's EMF): clicks in, requests
#: that were not clicks, clicks the event-time policy rejected, late and re-delivered clicks, bad records.
AGGREGATOR_METRICS = (
    "Clicks",
    "RequestsFiltered",
    "EventTimeRejected",
    "LateClicksDropped",
    "DuplicateClicks",
    "PoisonRecords",
)


def flink_monitoring(
    scope: Construct,
    *,
    application: str,
    max_lag_ms: int,
    alarm: Callable[..., cw.Alarm],
) -> tuple[dict[str, cw.Alarm], list[cw.IWidget]]:
    """Alarms and the dashboard row of the Managed Service for Apache Flink application ``application``.

    Parameters
    ----------
    scope : Construct
        Where the alarms go (ids ``Flink*``).
    application : str
        The application's name (its metrics' ``Application`` dimension).
    max_lag_ms : int
        ``millisBehindLatest`` above which (three 5-minute periods in a row) the lag alarm fires.
    alarm : callable
        ``alarm(id, **cw.Alarm kwargs) -> cw.Alarm`` that also adds the alert topic action.

    Returns
    -------
    alarms : dict[str, cw.Alarm]
        ``flink-downtime``, ``flink-failed-checkpoints``, ``flink-lag``.
    row : list of cw.IWidget
        KPUs, uptime and downtime, checkpoints, lag, the job's click counters.
    """
    five_minutes, hour = Duration.minutes(5), Duration.hours(1)

    def metric(name: str, statistic: str = "Maximum", period: Duration = five_minutes) -> cw.Metric:
        return cw.Metric(
            namespace=MSF_NAMESPACE,
            metric_name=name,
            statistic=statistic,
            period=period,
            dimensions_map={"Application": application},
            label=name,
        )

    lag = cw.MathExpression(
        expression=f"SELECT MAX({MSF_LAG_METRIC}) FROM \"{MSF_NAMESPACE}\" WHERE Application = '{application}'",
        period=five_minutes,
        label="millisBehindLatest (max over the clicks stream's shards)",
    )
    failed = cw.MathExpression(
        expression="RATE(m1)",
        using_metrics={"m1": metric("numberOfFailedCheckpoints")},
        period=five_minutes,
        label="failed checkpoints per second",
    )
    alarms = {
        # A stopped or failed application publishes nothing: missing data is an outage too.
        "flink-downtime": alarm(
            "FlinkDowntime",
            metric=metric("downtime"),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.BREACHING,
            alarm_description="The Flink application is failing or restarting (downtime > 0), or reports no "
            "metrics at all (stopped)",
        ),
        "flink-failed-checkpoints": alarm(
            "FlinkFailedCheckpoints",
            metric=failed,
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description="The Flink application's checkpoints failed (numberOfFailedCheckpoints rose)",
        ),
        "flink-lag": alarm(
            "FlinkLag",
            metric=lag,
            threshold=max_lag_ms,
            evaluation_periods=3,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=f"The Flink job is more than {max_lag_ms} ms behind the clicks stream",
        ),
    }
    row: list[cw.IWidget] = [
        cw.GraphWidget(title="Flink: KPUs (hourly)", left=[metric("KPUs", period=hour)], width=4),
        cw.GraphWidget(
            title="Flink: uptime and downtime", left=[metric("uptime")], right=[metric("downtime")], width=4
        ),
        cw.GraphWidget(
            title="Flink: checkpoints",
            left=[metric("lastCheckpointDuration")],
            right=[metric("numberOfFailedCheckpoints")],
            width=4,
        ),
        cw.GraphWidget(title="Flink: consumer lag (ms)", left=[lag], width=4),
        cw.GraphWidget(title="Flink job: clicks", left=[metric(m) for m in FLINK_JOB_METRICS], width=8),
    ]
    return alarms, row


class Alerting(Construct):
    """Encrypted, SSL-only SNS topic (optional e-mail subscription) and the alerter Lambda.

    The alerter reads the detections stream (and, with the kda-sql engine, is also the KDA application's
    Lambda output), applies the threshold rule, publishes EMF metrics and sends incidents to the topic.

    Attributes
    ----------
    topic : sns.Topic
    key : kms.Key
        Customer managed key of the topic (CloudWatch alarms cannot publish to a topic encrypted with the
        AWS managed ``alias/aws/sns`` key).
    function : lambda_.Function
    failure_queue : sqs.Queue
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        detections: kinesis.IStream,
        state_bucket: s3.IBucket,
        functions: FunctionDefaults,
        threshold_mode: str,
        threshold: float,
        sigma_k: float,
        window_freq: str,
        timezone: str,
        alert_email: str,
        retry_attempts: int,
        max_record_age_hours: int,
    ) -> None:
        super().__init__(scope, id_)
        self.key = kms.Key(
            self, "TopicKey", enable_key_rotation=True, description="Encrypts the clickstream anomaly alert topic"
        )
        # CloudWatch alarms of this account, and only those, may use the key and publish to the topic.
        stack = Stack.of(self)
        from_our_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"},
        }
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=from_our_alarms,
            )
        )
        self.topic = sns.Topic(
            self, "Alerts", display_name="Clickstream anomalies", master_key=self.key, enforce_ssl=True
        )
        # enforce_ssl makes a topic policy that replaces the default one and holds only its Deny: without
        # this Allow every alarm action fails ("not authorized to perform: SNS:Publish").
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=from_our_alarms,
            )
        )
        if alert_email:
            self.topic.add_subscription(subs.EmailSubscription(alert_email))

        self.failure_queue = failure_queue(self, "AlerterFailures")
        self.function = pipeline_function(
            self,
            "Alerter",
            name="alerter",
            defaults=functions,
            timeout_seconds=60,
            environment={
                "TOPIC_ARN": self.topic.topic_arn,
                "STATE_BUCKET": state_bucket.bucket_name,
                "THRESHOLD_MODE": threshold_mode,
                "THRESHOLD": f"{threshold:g}",
                "SIGMA_K": f"{sigma_k:g}",
                "WINDOW_FREQ": window_freq,
                "TIMEZONE": timezone,
                "METRICS_NAMESPACE": functions.metrics_namespace,
                "FAILURE_QUEUE_URL": self.failure_queue.queue_url,
            },
            description="Thresholds detections, publishes anomaly metrics and sends alerts",
        )
        self.function.add_event_source(
            kinesis_source(
                detections,
                on_failure=self.failure_queue,
                retry_attempts=retry_attempts,
                max_record_age=Duration.hours(max_record_age_hours),
                batch_size=100,
            )
        )
        self.topic.grant_publish(self.function)
        self.failure_queue.grant_send_messages(self.function)  # rejected detections
        grant_prefix(state_bucket, self.function, "alerter/", state=True)
        wildcard_actions(
            self.function,
            ["kms:GenerateDataKey*"],
            "publishing to the encrypted topic needs data keys of its one KMS key (resource-scoped)",
        )


def _clicks_per_window(namespace: str, window: Duration, *, from_alerter: bool, detector: str) -> cw.Metric:
    """Clicks per window: the aggregator's ``Clicks``, or (``from_alerter``: no aggregator, the flink engine)
    the alerter's ``WindowClicks`` of ``detector``."""
    if from_alerter:
        name, statistic, dimensions = "WindowClicks", "Maximum", {"service": "alerter", "detector": detector}
    else:
        name, statistic, dimensions = CLICKS_METRIC, "Sum", {"service": "aggregator"}
    return cw.Metric(
        namespace=namespace,
        metric_name=name,
        statistic=statistic,
        period=window,
        dimensions_map=dimensions,
        label="clicks per window",
    )


class Monitoring(Construct):
    """CloudWatch alarms (anomalies per detector, pipeline health, a clicks anomaly-detection band) that
    notify ``topic``, and one dashboard of features, scores, thresholds and alarms.

    Attributes
    ----------
    anomaly_alarms : dict[str, cw.Alarm]
        Per detector name; ``detectors[0]`` is the streaming detector, whose window features are graphed.
    health_alarms : dict[str, cw.Alarm]
        ``<function>-errors``, ``<function>-iterator-age``, ``<function>-failures``, ``<endpoint>-errors``,
        ``<algorithm>-pipeline-failed``.
        With ``flink_application``, also ``flink-downtime``, ``flink-failed-checkpoints``, ``flink-lag``.
    clicks_band_alarm : cw.AnomalyDetectionAlarm
        On the aggregator's ``Clicks``; with ``flink_application`` (no aggregator), on the alerter's
        ``WindowClicks`` of ``detectors[0]``.
    dashboard : cw.Dashboard
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        namespace: str,
        window_seconds: int,
        detectors: Sequence[str],
        functions: Mapping[str, lambda_.IFunction],
        stream_consumers: Sequence[str],
        failure_queues: Mapping[str, sqs.IQueue],
        endpoint_names: Sequence[str],
        state_machines: Mapping[str, sfn.IStateMachine],
        anomaly_alarm_count: int,
        flink_application: str | None = None,
        flink_max_lag_ms: int = 60_000,
    ) -> None:
        super().__init__(scope, id_)
        action = cw_actions.SnsAction(topic)
        window = Duration.seconds(window_seconds)
        five_minutes = Duration.minutes(5)

        def alarm(alarm_id: str, **kwargs: Any) -> cw.Alarm:
            made = cw.Alarm(self, alarm_id, **kwargs)
            made.add_alarm_action(action)
            return made

        def detector_metric(name: str, detector: str, statistic: str) -> cw.Metric:
            return cw.Metric(
                namespace=namespace,
                metric_name=name,
                statistic=statistic,
                period=window,
                dimensions_map={"service": "alerter", "detector": detector},
                label=f"{detector} {name}",
            )

        self.anomaly_alarms: dict[str, cw.Alarm] = {}
        for detector in detectors:
            self.anomaly_alarms[detector] = alarm(
                f"Anomalies-{detector}",
                metric=detector_metric(ANOMALIES_METRIC, detector, "Sum"),
                threshold=anomaly_alarm_count,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=f"{detector} reported an anomalous window",
            )

        self.health_alarms: dict[str, cw.Alarm] = {}
        for name, function in functions.items():
            self.health_alarms[f"{name}-errors"] = alarm(
                f"Errors-{name}",
                metric=function.metric_errors(period=five_minutes, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=f"The {name} Lambda raised errors",
            )
        for name in (n for n in STATEFUL_FUNCTIONS if n in functions):
            self.health_alarms[f"{name}-corrupt-state"] = alarm(
                f"CorruptState-{name}",
                metric=cw.Metric(
                    namespace=namespace,
                    metric_name=CORRUPT_STATE_METRIC,
                    statistic="Sum",
                    period=five_minutes,
                    dimensions_map={"service": name},
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=f"The {name} Lambda cannot read its state object in S3: it stops on every call "
                f"until it is reset (clickstream-anomaly state check|reset --component {name}; docs: Reliability)",
            )
        for name in stream_consumers:
            iterator_age = cw.Metric(
                namespace="AWS/Lambda",
                metric_name="IteratorAge",
                statistic="Maximum",
                period=five_minutes,
                dimensions_map={"FunctionName": functions[name].function_name},
            )
            self.health_alarms[f"{name}-iterator-age"] = alarm(
                f"IteratorAge-{name}",
                metric=iterator_age,
                threshold=ITERATOR_AGE_LIMIT_MS,
                evaluation_periods=3,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=f"The {name} Lambda is falling behind its Kinesis stream",
            )
        for name, queue in failure_queues.items():
            self.health_alarms[f"{name}-failures"] = alarm(
                f"FailureQueue-{name}",
                metric=queue.metric_approximate_number_of_messages_visible(period=five_minutes, statistic="Maximum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=f"The {name} Lambda sent records it could not process to its failure queue",
            )
        for endpoint in endpoint_names:
            errors = cw.MathExpression(
                expression="e4 + e5",
                period=five_minutes,
                label=f"{endpoint} 4xx+5xx",
                using_metrics={
                    f"e{code}": cw.Metric(
                        namespace="AWS/SageMaker",
                        metric_name=f"Invocation{code}XXErrors",
                        statistic="Sum",
                        period=five_minutes,
                        dimensions_map={"EndpointName": endpoint, "VariantName": "AllTraffic"},
                    )
                    for code in (4, 5)
                },
            )
            self.health_alarms[f"{endpoint}-errors"] = alarm(
                f"EndpointErrors-{endpoint}",
                metric=errors,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=f"SageMaker endpoint {endpoint} returned errors",
            )

        for name, machine in state_machines.items():
            self.health_alarms[f"{name}-pipeline-failed"] = alarm(
                f"PipelineFailed-{name}",
                metric=machine.metric_failed(period=five_minutes, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=f"The {name} training pipeline failed",
            )

        flink_row = self._flink_health(flink_application, flink_max_lag_ms, alarm)

        # The AWS-native peer of the detectors: CloudWatch anomaly detection on clicks per window.
        clicks = _clicks_per_window(
            namespace, window, from_alerter=flink_application is not None, detector=detectors[0]
        )
        self.clicks_band_alarm = cw.AnomalyDetectionAlarm(
            self,
            "ClicksOutsideBand",
            metric=clicks,
            std_devs=2,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_LOWER_OR_GREATER_THAN_UPPER_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description="Clicks per window left CloudWatch's anomaly detection band (2 std devs)",
        )
        self.clicks_band_alarm.add_alarm_action(action)

        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.days(2))
        feature_metrics = [detector_metric(m, detectors[0], "Maximum") for m in FEATURE_METRICS]
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Window features", left=feature_metrics, width=12),
            cw.GraphWidget(
                title="Clicks and CloudWatch anomaly band",
                left=[
                    cw.MathExpression(
                        expression="ANOMALY_DETECTION_BAND(m1, 2)",
                        using_metrics={"m1": clicks},
                        label="band",
                        period=window,
                    ),
                    clicks,
                ],
                width=12,
            ),
        )
        for detector in detectors:
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title=f"{detector}: score and threshold",
                    left=[
                        detector_metric(SCORE_METRIC, detector, "Maximum"),
                        detector_metric(THRESHOLD_METRIC, detector, "Average"),
                    ],
                    right=[detector_metric(ANOMALIES_METRIC, detector, "Sum")],
                    width=12,
                )
            )
        if flink_application is None:  # the Lambda engine's aggregator: what came in and what was left out
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title="Aggregator: clicks in, requests filtered, clicks rejected, late, re-delivered, bad records",
                    left=[
                        cw.Metric(
                            namespace=namespace,
                            metric_name=name,
                            statistic="Sum",
                            period=window,
                            dimensions_map={"service": "aggregator"},
                        )
                        for name in AGGREGATOR_METRICS
                    ],
                    width=24,
                )
            )
        self.dashboard.add_widgets(*flink_row)  # nothing without the flink engine
        all_alarms = [*self.anomaly_alarms.values(), *self.health_alarms.values(), self.clicks_band_alarm]
        self.dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=all_alarms, width=24))

    def _flink_health(
        self, application: str | None, max_lag_ms: int, alarm: Callable[..., cw.Alarm]
    ) -> list[cw.IWidget]:
        """Add the Flink application's alarms to ``health_alarms``; its dashboard row (empty without one)."""
        if application is None:
            return []
        alarms, row = flink_monitoring(self, application=application, max_lag_ms=max_lag_ms, alarm=alarm)
        self.health_alarms.update(alarms)
        return row
