"""Helpers shared by the CDK tests: build the app from cdk.json context plus overrides, synthesize once,
and lint the template. Not a test module (no ``test_`` prefix)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STACK_NAME = "ClickstreamAnomaly"
#: cfn-lint findings that are understood and accepted (all warnings; errors are never accepted):
#: W3005 CDK puts a DependsOn on a role that a GetAtt already implies (every Lambda's ServiceRole; the KDA
#:       application's explicit dependency on its role and policy, which the service needs at create time);
#: W7001 aws-cdk-lib's Firehose module adds a per-region CIDR mapping this stack does not use.
CFN_LINT_ACCEPTED = frozenset({"W3005", "W7001"})


def context(**overrides: Any) -> dict[str, Any]:
    """``cdk.json`` context with ``overrides`` applied (what ``cdk synth -c key=value`` does)."""
    ctx = json.loads((ROOT / "cdk.json").read_text())["context"]
    ctx.update(overrides)
    return ctx


def synth(outdir: Path, *, nag: bool = False, **overrides: Any):
    """``(app, stack, template)`` for the app with ``overrides``; the cloud assembly goes to ``outdir``."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from app import build_app

    app = cdk.App(context=context(**overrides), outdir=str(outdir))
    app, stack = build_app(app, nag=nag)
    return app, stack, Template.from_stack(stack)


def cfn_lint_findings(template_path: Path) -> list[tuple[str, str]]:
    """``[(rule id, message)]`` cfn-lint reports for a synthesized template."""
    from cfnlint.api import lint_file

    return [(m.rule.id, str(m)) for m in lint_file(template_path)]


def resources(template, type_: str) -> dict[str, dict]:
    """``{logical id: resource}`` of one type in an ``assertions.Template``."""
    return template.find_resources(type_)


def function_by_handler(template, name: str) -> tuple[str, dict]:
    """The Lambda resource whose handler is ``lambdas.<name>.app.handler``."""
    found = [
        (k, r)
        for k, r in resources(template, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == f"lambdas.{name}.app.handler"
    ]
    assert len(found) == 1, f"expected one {name} function, found {len(found)}"
    return found[0]


def state_machine_definition(template, logical_prefix: str) -> dict:
    """A state machine's ASL as a dict, CloudFormation intrinsics inside strings rendered as JSON."""
    found = [
        r for k, r in resources(template, "AWS::StepFunctions::StateMachine").items() if k.startswith(logical_prefix)
    ]
    assert len(found) == 1, f"expected one state machine {logical_prefix}*, found {len(found)}"
    body = found[0]["Properties"]["DefinitionString"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    return json.loads(text)


def alarm_metric(props: dict) -> dict | None:
    """The single metric an alarm watches, as ``{namespace, name, dimensions, statistic, period}``, whether
    CloudFormation holds it flat or as a one-entry ``Metrics`` list; ``None`` for metric-math alarms."""
    if "MetricName" in props:
        return {
            "namespace": props.get("Namespace"),
            "name": props["MetricName"],
            "dimensions": {d["Name"]: d["Value"] for d in props.get("Dimensions", [])},
            "statistic": props.get("Statistic") or props.get("ExtendedStatistic"),
            "period": props["Period"],
        }
    stats = [m for m in props.get("Metrics", []) if "MetricStat" in m]
    if len(stats) != 1 or len(props["Metrics"]) != 1:
        return None
    stat = stats[0]["MetricStat"]
    return {
        "namespace": stat["Metric"].get("Namespace"),
        "name": stat["Metric"]["MetricName"],
        "dimensions": {d["Name"]: d["Value"] for d in stat["Metric"].get("Dimensions", [])},
        "statistic": stat["Stat"],
        "period": stat["Period"],
    }
