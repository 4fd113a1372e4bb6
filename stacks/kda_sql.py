"""Streaming detection, ``kda-sql`` engine (opt-in, legacy): a Kinesis Data Analytics for SQL application
running ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` on the features stream, its output to the alerter Lambda.

AWS stopped accepting new SQL applications on 2025-10-15 (existing ones are deleted from 2026-01-27), so
this engine synthesizes and passes the checks but cannot be deployed; the stack adds a synth warning.
The SQL text comes from the core's one generator, :func:`clickstream_anomaly.kda.application_sql`.

Resources: the application (input ``SOURCE_SQL_STREAM`` -> in-app ``SOURCE_SQL_STREAM_001``, JSON windows),
an ``ApplicationOutput`` from ``DESTINATION_SQL_STREAM`` to the alerter (``LambdaOutput``), the IAM role
(the application depends on the role's policy: the service validates the role at create time) and a
custom resource that starts the application (CloudFormation never does) and stops it on delete.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisanalytics as kda
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.nag import BASIC_EXECUTION_ROLE, acknowledge

INPUT_PREFIX = "SOURCE_SQL_STREAM"
INPUT_STREAM = f"{INPUT_PREFIX}_001"
OUTPUT_STREAM = "DESTINATION_SQL_STREAM"
#: The first (only) input of a KDA SQL application always has id 1.1.
INPUT_ID = "1.1"
WINDOW_COLUMN = ("window_start", "VARCHAR(32)")
CUSTOM_RESOURCE_SINGLETON = "AWS679f53fac002430cb0da5b7982bd2287"


def input_columns() -> list[kda.CfnApplication.RecordColumnProperty]:
    """The JSON window record as KDA columns: ``window_start`` text plus the numeric feature columns."""
    from clickstream_anomaly.records import FEATURE_COLUMNS

    name, sql_type = WINDOW_COLUMN
    columns = [kda.CfnApplication.RecordColumnProperty(name=name, sql_type=sql_type, mapping=f"$.{name}")]
    columns += [
        kda.CfnApplication.RecordColumnProperty(name=c, sql_type="DOUBLE", mapping=f"$.{c}") for c in FEATURE_COLUMNS
    ]
    return columns


class KdaSqlDetection(Construct):
    """KDA SQL application with RCF-with-explanation, its Lambda output, role and starter.

    Attributes
    ----------
    application : kda.CfnApplication
    output : kda.CfnApplicationOutput
    role : iam.Role
    starter : cr.AwsCustomResource
    sql : str
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        features: kinesis.IStream,
        alerter: lambda_.IFunction,
        num_trees: int,
        sample_size: int,
        time_decay: int,
        shingle_size: int,
        with_directionality: bool,
    ) -> None:
        super().__init__(scope, id_)
        from clickstream_anomaly.kda import KdaRcfParameters, application_sql
        from clickstream_anomaly.records import FEATURE_COLUMNS

        params = KdaRcfParameters(
            number_of_trees=num_trees,
            sub_sample_size=sample_size,
            time_decay=time_decay,
            shingle_size=shingle_size,
            with_directionality=with_directionality,
        )
        # window_start passes through unscored so the alerter can place each result in time.
        self.sql = application_sql(
            FEATURE_COLUMNS, params, input_stream=INPUT_STREAM, output_stream=OUTPUT_STREAM, passthrough=[WINDOW_COLUMN]
        )

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("kinesisanalytics.amazonaws.com"),
            description="Lets the KDA SQL application read features and invoke the alerter",
        )
        features.grant_read(self.role)
        # The unqualified function only (grant_invoke would add every version, ``<arn>:*``).
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"], resources=[alerter.function_arn]
            )
        )

        self.application = kda.CfnApplication(
            self,
            "Application",
            application_description="Streaming RANDOM_CUT_FOREST_WITH_EXPLANATION on clickstream windows",
            application_code=self.sql,
            inputs=[
                kda.CfnApplication.InputProperty(
                    name_prefix=INPUT_PREFIX,
                    input_parallelism=kda.CfnApplication.InputParallelismProperty(count=1),
                    kinesis_streams_input=kda.CfnApplication.KinesisStreamsInputProperty(
                        resource_arn=features.stream_arn, role_arn=self.role.role_arn
                    ),
                    input_schema=kda.CfnApplication.InputSchemaProperty(
                        record_columns=input_columns(),
                        record_encoding="UTF-8",
                        record_format=kda.CfnApplication.RecordFormatProperty(
                            record_format_type="JSON",
                            mapping_parameters=kda.CfnApplication.MappingParametersProperty(
                                json_mapping_parameters=kda.CfnApplication.JSONMappingParametersProperty(
                                    record_row_path="$"
                                )
                            ),
                        ),
                    ),
                )
            ],
        )
        # The service checks the role when the application is created: wait for the role *and* its policy.
        self.application.node.add_dependency(self.role)

        self.output = kda.CfnApplicationOutput(
            self,
            "AlerterOutput",
            application_name=self.application.ref,
            output=kda.CfnApplicationOutput.OutputProperty(
                name=OUTPUT_STREAM,
                destination_schema=kda.CfnApplicationOutput.DestinationSchemaProperty(record_format_type="JSON"),
                lambda_output=kda.CfnApplicationOutput.LambdaOutputProperty(
                    resource_arn=alerter.function_arn, role_arn=self.role.role_arn
                ),
            ),
        )
        self.output.node.add_dependency(self.role)

        app_arn = Stack.of(self).format_arn(
            service="kinesisanalytics", resource="application", resource_name=self.application.ref
        )
        self.starter = cr.AwsCustomResource(
            self,
            "Starter",
            on_create=cr.AwsSdkCall(
                service="KinesisAnalytics",
                action="startApplication",
                parameters={
                    "ApplicationName": self.application.ref,
                    "InputConfigurations": [
                        {"Id": INPUT_ID, "InputStartingPositionConfiguration": {"InputStartingPosition": "NOW"}}
                    ],
                },
                physical_resource_id=cr.PhysicalResourceId.of(f"start-{self.application.ref}"),
            ),
            on_delete=cr.AwsSdkCall(
                service="KinesisAnalytics",
                action="stopApplication",
                parameters={"ApplicationName": self.application.ref},
                ignore_error_codes_matching="ResourceNotFoundException",
            ),
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[app_arn]),
            install_latest_aws_sdk=False,
        )
        # Start only once the output exists, so no result is produced before it has somewhere to go.
        self.starter.node.add_dependency(self.output)
        for child in Stack.of(self).node.children:  # the singleton Lambda behind every AwsCustomResource
            if child.node.id.startswith(CUSTOM_RESOURCE_SINGLETON):
                acknowledge(
                    child,
                    BASIC_EXECUTION_ROLE,
                    "CDK's AwsCustomResource provider only needs to write its own CloudWatch Logs",
                )
