#!/usr/bin/env python3
"""CDK entry point: settings from cdk.json context (or ``cdk synth -c key=value``) -> one stack."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from stacks.pipeline_stack import ClickstreamAnomalyStack
from stacks.settings import Settings


def build_app(app: cdk.App | None = None, *, nag: bool = True) -> tuple[cdk.App, ClickstreamAnomalyStack]:
    """The app and its stack; settings errors raise :class:`stacks.settings.SettingsError`.

    With ``nag`` the cdk-nag AwsSolutions checks run at synth and any unacknowledged finding fails it.
    """
    app = app or cdk.App()
    settings = Settings.from_context(app.node.get_all_context())
    # Environment-agnostic on purpose: region-specific values (image accounts, layer ARNs) resolve at deploy.
    stack = ClickstreamAnomalyStack(
        app,
        "ClickstreamAnomaly",
        settings=settings,
        description="Clickstream anomaly detection: Kinesis, Lambda RCF, SageMaker RCF and DeepAR, CloudWatch, SNS",
    )
    if nag:
        try:
            from cdk_nag import AwsSolutionsChecks
        except ImportError:  # cdk-nag is a dev dependency (requirements-dev.txt)
            sys.stderr.write("cdk-nag is not installed: AwsSolutions checks skipped\n")
        else:
            cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


if __name__ == "__main__":
    build_app()[0].synth()
