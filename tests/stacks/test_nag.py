"""cdk-nag 3 AwsSolutions on both engines (lambda with endpoints, schedule and CloudFront real-time logs on
the clicks stream, with the generated salt secret; kda-sql with removal_policy destroy and an e-mail
subscription) in one app and one synth, with a deliberately non-compliant control stack that proves the
checks ran."""

from __future__ import annotations

import json

import pytest

from tests.stacks.cdk_synth import context

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
CONTROL = "NagControl"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import aws_cdk as cdk
    from aws_cdk import aws_sns as sns

    from app import build_app
    from stacks.pipeline_stack import ClickstreamAnomalyStack
    from stacks.settings import Settings

    outdir = tmp_path_factory.mktemp("cdk-nag")
    ctx = context(
        deploy_endpoints=True,
        retrain_schedule="rate(7 days)",
        clicks_format="cloudfront-realtime",
        cloudfront_realtime_log=True,
        landing_format="auto",
    )
    app = cdk.App(context=ctx, outdir=str(outdir))
    build_app(app, nag=True)
    ClickstreamAnomalyStack(
        app,
        "KdaSqlVariant",
        settings=Settings.from_context(
            context(streaming_engine="kda-sql", removal_policy="destroy", alert_email="ops@example.com")
        ),
    )
    control = cdk.Stack(app, CONTROL)
    sns.Topic(control, "PlainTopic")  # no SSL enforcement: AwsSolutions-SNS3
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    data = json.loads((outdir / "validation-report.json").read_text())
    metadata = {
        name: json.loads((outdir / f"{name}.metadata.json").read_text())
        for name in ("ClickstreamAnomaly", "KdaSqlVariant")
    }
    return data, metadata


def _violations(data):
    return [
        (v["ruleName"], c["constructPath"])
        for p in data["pluginReports"]
        if p["pluginName"] == "AwsSolutions"
        for v in p.get("violations", [])
        for c in v["violatingConstructs"]
    ]


def test_checks_ran_on_the_control_stack(report):
    rules = {rule for rule, path in _violations(report[0]) if path.startswith(f"{CONTROL}/")}
    assert "AwsSolutions-SNS3" in rules


def test_no_unacknowledged_finding_in_the_pipeline(report):
    ours = [(rule, path) for rule, path in _violations(report[0]) if not path.startswith(f"{CONTROL}/")]
    assert ours == []


def test_every_acknowledgement_has_a_specific_reason(report):
    acks: dict[str, str] = {}
    for entries in report[1].values():
        for items in entries.values():
            for e in items:
                if e["type"] == "aws:cdk:acknowledged-rules":
                    acks.update(e["data"])
    assert any(rule.startswith("AwsSolutions::AwsSolutions-IAM5[") for rule in acks)
    for rule, reason in acks.items():
        assert len(reason) >= 40, f"{rule}: reason too short: {reason!r}"
    # Wildcards are acknowledged one by one, never with a bare rule id.
    assert not {"AwsSolutions::AwsSolutions-IAM5", "AwsSolutions::AwsSolutions-IAM4"} & set(acks)
