"""The architecture as tests: the core imports no cloud library, and only the cloud front ends reach
``clickstream_anomaly.aws``; nothing edits ``sys.path`` to find a package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "clickstream_anomaly"
BLOCKED = ("boto3", "botocore", "aws_cdk", "constructs", "sagemaker", "pyflink", "aws_lambda_powertools")
#: Packages allowed to import the cloud side: the cloud side itself and the CLI's cloud commands.
MAY_IMPORT_AWS = ("aws", "cli")


def _modules() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__main__.py":  # runs the CLI when imported
            continue
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


def test_every_module_imports_with_the_cloud_libraries_blocked():
    code = (
        "import importlib, sys\n"
        f"for name in {BLOCKED!r}:\n"
        "    sys.modules[name] = None\n"
        f"for module in {_modules()!r}:\n"
        "    importlib.import_module(module)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((name, node.lineno))
            found += [(f"{name}.{alias.name}", node.lineno) for alias in node.names]
    return found


def test_only_the_cloud_front_ends_import_the_cloud_side():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        sub = path.relative_to(PACKAGE).parts[0]
        if sub in MAY_IMPORT_AWS:
            continue
        for name, line in _imports(path):
            if name == "clickstream_anomaly.aws" or name.startswith("clickstream_anomaly.aws."):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not offenders, offenders


def test_no_module_edits_sys_path():
    offenders = []
    for folder in ("clickstream_anomaly", "stacks", "lambdas"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "sys.path.insert" in text or "sys.path.append" in text:
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders
