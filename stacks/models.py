"""Models: SageMaker training pipelines (Step Functions) for RCF and DeepAR, and the scorer Lambda.

Each state machine (one per algorithm) runs::

    NewRun (id = States.UUID())
    -> PrepareData    (prepare λ: lake features of the last training_days -> channel files in the models bucket)
    -> Train          (CreateTrainingJob .sync: waits for completion; RCF train channel ShardedByS3Key)
    -> CreateModel
    [deploy_endpoints only]
    -> CreateEndpointConfig -> FindEndpoint (DescribeEndpoint; fails: Create, else Update)
    -> WaitForEndpoint -> DescribeEndpoint -> InService on this run's config? (Succeed) | InService on
    another (a rolled-back update: Fail) | Failed? (Fail) | else wait again

Jobs, models and endpoint configs are named ``<prefix>-<algorithm>-<uuid>`` (<= 63 characters); the endpoints
have fixed names ``<prefix>-<algorithm>`` so the scorer can call them across retrainings.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from clickstream_anomaly.aws.training.spec import MODELS_FOLDER, SCALING_KEY, Algorithm, TrainingJobSpec
from stacks.functions import FunctionDefaults, failure_queue, kinesis_source, pipeline_function
from stacks.images import image_uri
from stacks.nag import arn_ref, wildcard_resource
from stacks.storage import grant_prefix, secure_bucket

ALGORITHMS = tuple(Algorithm)
#: The training-job spec's root in the dedicated models bucket: channel folders ``rcf/``, ``deepar/`` and the
#: artifacts under ``models/`` (fixed keys, so the SageMaker role reads and writes exactly these prefixes;
#: with a JSONPath channel location CDK would grant s3:GetObject and s3:ListBucket on every bucket).
CHANNELS_ROOT = ""
_DISTRIBUTIONS = {"ShardedByS3Key": "SHARDED_BY_S3_KEY", "FullyReplicated": "FULLY_REPLICATED"}
ENDPOINT_POLL_SECONDS = 60


class S3Uri(tasks.S3Location):
    """An ``s3://bucket/key`` location as given. ``S3Location.from_bucket`` renders an https URL, which
    SageMaker misreads (the endpoint host becomes the bucket: BucketRegionError); access is granted on the
    SageMaker role explicitly instead."""

    def __init__(self, uri: str) -> None:
        super().__init__()
        self._uri = uri

    def bind(
        self, task: tasks.ISageMakerTask, *, for_reading: bool | None = None, for_writing: bool | None = None
    ) -> tasks.S3LocationConfig:
        return tasks.S3LocationConfig(uri=self._uri)


def _instance(ml_type: str) -> ec2.InstanceType:
    """``ml.m5.large`` -> the ``InstanceType`` CDK renders back as ``ml.m5.large``."""
    return ec2.InstanceType(ml_type.removeprefix("ml."))


class Models(Construct):
    """Models bucket, SageMaker execution role, the preparation Lambda, one training state machine per
    algorithm (optionally deploying an endpoint) and, with endpoints, the scorer Lambda.

    Attributes
    ----------
    bucket : s3.Bucket
    role : iam.Role
        SageMaker execution role (training jobs and models): the models bucket, its own logs and metrics.
    prepare : lambda_.Function
    state_machines : dict[str, sfn.StateMachine]
        Keyed ``rcf`` and ``deepar``.
    endpoint_names : dict[str, str]
        Keyed like ``state_machines``; only meaningful when endpoints are deployed.
    scorer : lambda_.Function | None
    scorer_failure_queue : sqs.Queue | None
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        prefix: str,
        lake: s3.IBucket,
        access_logs: s3.IBucket,
        removal_policy: RemovalPolicy,
        functions: FunctionDefaults,
        training_days: int,
        window_freq: str,
        rcf_hyperparameters: Mapping[str, str],
        deepar_hyperparameters: Mapping[str, str],
        training_instance_type: str,
        endpoint_instance_type: str,
        deploy_endpoints: bool,
        retrain_schedule: str,
        features: kinesis.IStream,
        detections: kinesis.IStream,
        state_bucket: s3.IBucket,
        retry_attempts: int,
        max_record_age_hours: int,
    ) -> None:
        super().__init__(scope, id_)
        self.prefix = prefix
        self.bucket = secure_bucket(
            self, "Bucket", access_logs=access_logs, removal_policy=removal_policy, log_prefix="models/"
        )
        self.endpoint_names: dict[str, str] = {alg: f"{prefix}-{alg}" for alg in ALGORITHMS}

        self.role = iam.Role(
            self,
            "SageMakerRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Execution role of the clickstream anomaly training jobs and models",
        )
        stack = Stack.of(self)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            )
        )
        for alg in ALGORITHMS:
            grant_prefix(self.bucket, self.role, f"{CHANNELS_ROOT}{alg}/", write=False)
        grant_prefix(self.bucket, self.role, f"{CHANNELS_ROOT}{MODELS_FOLDER}")
        wildcard_resource(
            self.role,
            "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/*",
            "SageMaker jobs and endpoints log to log groups it names under /aws/sagemaker/",
        )
        wildcard_resource(
            self.role,
            "*",
            "cloudwatch:PutMetricData has no resource type; the statement is "
            "limited to SageMaker's metric namespaces by a condition",
        )
        # The tasks get an immutable reference: CDK would otherwise add read access to every bucket for the
        # model artifacts (a JSONPath location); the grants above are the exact prefixes instead.
        self.task_role = iam.Role.from_role_arn(self, "SageMakerRoleForTasks", self.role.role_arn, mutable=False)

        self.prepare = pipeline_function(
            self,
            "Prepare",
            name="prepare",
            defaults=functions,
            timeout_seconds=900,
            environment={
                "LAKE_BUCKET": lake.bucket_name,
                "MODELS_BUCKET": self.bucket.bucket_name,
                "TRAINING_DAYS": str(training_days),
                "WINDOW_FREQ": window_freq,
                "PREDICTION_LENGTH": str(deepar_hyperparameters["prediction_length"]),
            },
            description="Turns the lake's window features into SageMaker training channels",
        )
        grant_prefix(lake, self.prepare, "features/", write=False)
        for alg in ALGORITHMS:
            grant_prefix(self.bucket, self.prepare, f"{CHANNELS_ROOT}{alg}/", read=False)

        hyperparameters = {"rcf": dict(rcf_hyperparameters), "deepar": dict(deepar_hyperparameters)}
        self.state_machines: dict[str, sfn.StateMachine] = {}
        for alg in ALGORITHMS:
            definition = self._pipeline(
                alg, hyperparameters[alg], training_instance_type, endpoint_instance_type if deploy_endpoints else None
            )
            log_group = logs.LogGroup(
                self,
                f"{alg.capitalize()}PipelineLogs",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=removal_policy,
            )
            self.state_machines[alg] = sfn.StateMachine(
                self,
                f"{alg.capitalize()}Pipeline",
                definition_body=sfn.DefinitionBody.from_chainable(definition),
                timeout=Duration.hours(6),
                tracing_enabled=True,
                logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL),
                comment=f"Prepare data, train SageMaker {alg}, create the model"
                + (" and deploy its endpoint" if deploy_endpoints else ""),
            )
            self._acknowledge_pipeline(self.state_machines[alg])

        if retrain_schedule:
            self.schedule = events.Rule(
                self,
                "RetrainSchedule",
                schedule=events.Schedule.expression(retrain_schedule),
                description="Retrains the SageMaker models from the data lake",
                targets=[targets.SfnStateMachine(sm) for sm in self.state_machines.values()],
            )

        self.scorer = None
        self.scorer_failure_queue = None
        if deploy_endpoints:
            self.scorer_failure_queue = failure_queue(self, "ScorerFailures")
            self.scorer = pipeline_function(
                self,
                "Scorer",
                name="scorer",
                defaults=functions,
                timeout_seconds=120,
                environment={
                    "RCF_ENDPOINT_NAME": self.endpoint_names["rcf"],
                    "RCF_SCALING_URI": f"s3://{self.bucket.bucket_name}/{CHANNELS_ROOT}{SCALING_KEY}",
                    "DEEPAR_ENDPOINT_NAME": self.endpoint_names["deepar"],
                    "WINDOW_FREQ": window_freq,
                    "DEEPAR_CONTEXT_LENGTH": str(deepar_hyperparameters["context_length"]),
                    "DEEPAR_PREDICTION_LENGTH": str(deepar_hyperparameters["prediction_length"]),
                    "DETECTIONS_STREAM_NAME": detections.stream_name,
                    "STATE_BUCKET": state_bucket.bucket_name,
                    "FAILURE_QUEUE_URL": self.scorer_failure_queue.queue_url,
                },
                description="Scores window features with the SageMaker RCF and DeepAR endpoints",
            )
            self.scorer.add_event_source(
                kinesis_source(
                    features,
                    on_failure=self.scorer_failure_queue,
                    retry_attempts=retry_attempts,
                    max_record_age=Duration.hours(max_record_age_hours),
                    batch_size=100,
                )
            )
            self.scorer.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:InvokeEndpoint"],
                    resources=[self._endpoint_arn(name) for name in self.endpoint_names.values()],
                )
            )
            detections.grant_write(self.scorer)
            self.scorer.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[self.bucket.arn_for_objects(f"{CHANNELS_ROOT}{SCALING_KEY}")],
                )
            )
            grant_prefix(state_bucket, self.scorer, "scorer/", state=True)
            self.scorer_failure_queue.grant_send_messages(self.scorer)  # event-time rejections

    # ------------------------------------------------------------------ helpers
    def _acknowledge_pipeline(self, machine: sfn.StateMachine) -> None:
        """The wildcards CDK's Step Functions service integrations need, with why each is accepted."""
        account = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
        for kind in ("training-job", "model", "endpoint-config"):
            wildcard_resource(
                machine,
                f"{account}:{kind}/*",
                f"each run creates a new SageMaker {kind} named after its run id (a UUID)",
            )
        wildcard_resource(
            machine,
            f"{arn_ref(self.prepare)}:*",
            "Step Functions may invoke any version of the prepare function (CDK's grant)",
        )
        wildcard_resource(
            machine,
            "*",
            "X-Ray tracing and CloudWatch Logs delivery of the state machine, and "
            "sagemaker:ListTags, have no narrower resource type",
        )

    def _endpoint_arn(self, name: str) -> str:
        return Stack.of(self).format_arn(service="sagemaker", resource="endpoint", resource_name=name)

    def _name(self, alg: str) -> str:
        """``<prefix>-<alg>-<run id>`` as a Step Functions intrinsic (the run id is a UUID)."""
        return sfn.JsonPath.format(f"{self.prefix}-{alg}-{{}}", sfn.JsonPath.string_at("$.run.id"))

    def _pipeline(
        self, alg: str, hyperparameters: dict[str, str], training_type: str, endpoint_type: str | None
    ) -> sfn.IChainable:
        cap = alg.capitalize()
        image = tasks.DockerImage.from_registry(image_uri(self, alg))
        new_run = sfn.Pass(self, f"{cap}NewRun", parameters={"id.$": "States.UUID()"}, result_path="$.run")
        prepare = tasks.LambdaInvoke(
            self,
            f"{cap}PrepareData",
            lambda_function=self.prepare,
            payload=sfn.TaskInput.from_object({"algorithm": alg, "run": sfn.JsonPath.string_at("$.run.id")}),
            payload_response_only=True,
            result_path="$.data",
            retry_on_service_exceptions=True,
        )
        spec = TrainingJobSpec(
            algorithm=Algorithm(alg),
            hyperparameters=hyperparameters,
            instance_type=training_type,
            root=CHANNELS_ROOT,
            with_test=False,  # the lake has no labels: RCF trains without its test channel
        )
        channels = [
            tasks.Channel(
                channel_name=ch.name,
                content_type=ch.content_type,
                data_source=tasks.DataSource(
                    s3_data_source=tasks.S3DataSource(
                        s3_location=S3Uri(spec.channel_uri(self.bucket.bucket_name, ch)),
                        s3_data_type=tasks.S3DataType.S3_PREFIX,
                        s3_data_distribution_type=tasks.S3DataDistributionType(_DISTRIBUTIONS[ch.distribution]),
                    )
                ),
            )
            for ch in spec.channels
        ]
        train = tasks.SageMakerCreateTrainingJob(
            self,
            f"{cap}Train",
            training_job_name=self._name(alg),
            algorithm_specification=tasks.AlgorithmSpecification(
                training_image=image, training_input_mode=tasks.InputMode.FILE
            ),
            input_data_config=channels,
            output_data_config=tasks.OutputDataConfig(
                s3_output_location=S3Uri(spec.output_uri(self.bucket.bucket_name))
            ),
            resource_config=tasks.ResourceConfig(
                instance_count=spec.instance_count,
                instance_type=_instance(spec.instance_type),
                volume_size=Size.gibibytes(spec.volume_gb),
            ),
            stopping_condition=tasks.StoppingCondition(max_runtime=Duration.seconds(spec.max_runtime_s)),
            hyperparameters=dict(spec.hyperparameters),
            role=self.task_role,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_selector={"artifacts.$": "$.ModelArtifacts.S3ModelArtifacts", "job.$": "$.TrainingJobName"},
            result_path="$.training",
        )
        model = tasks.SageMakerCreateModel(
            self,
            f"{cap}CreateModel",
            model_name=self._name(alg),
            primary_container=tasks.ContainerDefinition(
                image=image, model_s3_location=tasks.S3Location.from_json_expression("$.training.artifacts")
            ),
            role=self.task_role,
            result_path="$.model",
        )
        chain = new_run.next(prepare).next(train).next(model)
        if endpoint_type is None:
            return chain.next(sfn.Succeed(self, f"{cap}ModelReady"))

        endpoint = self.endpoint_names[alg]
        config = tasks.SageMakerCreateEndpointConfig(
            self,
            f"{cap}CreateEndpointConfig",
            endpoint_config_name=self._name(alg),
            production_variants=[
                tasks.ProductionVariant(
                    model_name=self._name(alg),
                    variant_name="AllTraffic",
                    initial_instance_count=1,
                    instance_type=_instance(endpoint_type),
                )
            ],
            result_path="$.config",
        )
        find = tasks.CallAwsService(
            self,
            f"{cap}FindEndpoint",
            service="sagemaker",
            action="describeEndpoint",
            parameters={"EndpointName": endpoint},
            iam_resources=[self._endpoint_arn(endpoint)],
            result_selector={"status.$": "$.EndpointStatus"},
            result_path="$.existing",
        )
        create = tasks.SageMakerCreateEndpoint(
            self,
            f"{cap}CreateEndpoint",
            endpoint_name=endpoint,
            endpoint_config_name=self._name(alg),
            result_path=sfn.JsonPath.DISCARD,
        )
        update = tasks.SageMakerUpdateEndpoint(
            self,
            f"{cap}UpdateEndpoint",
            endpoint_name=endpoint,
            endpoint_config_name=self._name(alg),
            result_path=sfn.JsonPath.DISCARD,
        )
        wait = sfn.Wait(
            self, f"{cap}WaitForEndpoint", time=sfn.WaitTime.duration(Duration.seconds(ENDPOINT_POLL_SECONDS))
        )
        describe = tasks.CallAwsService(
            self,
            f"{cap}DescribeEndpoint",
            service="sagemaker",
            action="describeEndpoint",
            parameters={"EndpointName": endpoint},
            iam_resources=[self._endpoint_arn(endpoint)],
            result_selector={"status.$": "$.EndpointStatus", "config.$": "$.EndpointConfigName"},
            result_path="$.endpoint",
        )
        # the config this run deployed, beside the one the endpoint serves (a failed update rolls back)
        expect = sfn.Pass(
            self,
            f"{cap}ExpectedConfig",
            parameters={"status.$": "$.endpoint.status", "config.$": "$.endpoint.config", "expected": self._name(alg)},
            result_path="$.endpoint",
        )
        in_service = sfn.Condition.string_equals("$.endpoint.status", "InService")
        status = (
            sfn.Choice(self, f"{cap}EndpointInService?")
            .when(
                sfn.Condition.and_(
                    in_service, sfn.Condition.string_equals_json_path("$.endpoint.config", "$.endpoint.expected")
                ),
                sfn.Succeed(self, f"{cap}EndpointReady"),
            )
            .when(
                in_service,
                sfn.Fail(
                    self,
                    f"{cap}EndpointNotUpdated",
                    error="EndpointNotUpdated",
                    cause=f"SageMaker endpoint {endpoint} is InService on its previous config: the update "
                    "failed and SageMaker rolled it back",
                ),
            )
            .when(
                sfn.Condition.string_equals("$.endpoint.status", "Failed"),
                sfn.Fail(
                    self,
                    f"{cap}EndpointFailed",
                    error="EndpointFailed",
                    cause=f"SageMaker endpoint {endpoint} failed to deploy",
                ),
            )
            .otherwise(wait)
        )
        wait.next(describe).next(expect).next(status)
        # DescribeEndpoint fails when the endpoint does not exist yet: then create it, else update it.
        find.add_catch(create, errors=["States.TaskFailed"], result_path="$.lookup_error")
        find.next(update)
        create.next(wait)
        update.next(wait)
        return chain.next(config).next(find)
