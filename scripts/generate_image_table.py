#!/usr/bin/env python3
"""Write the SageMaker built-in image table (``clickstream_anomaly/aws/training/images.json``).

Source: the SageMaker Python SDK's offline image tables (``sagemaker/core/image_uri_config/`` for
``randomcutforest`` and ``forecasting-deepar``, image version ``1``), ISO partitions left out (their
registries use other URL suffixes). The SDK is a development dependency only; the table it produces is
committed and read at run time by the CLI, the Lambdas and the CDK app.

Usage: ``python scripts/generate_image_table.py`` (rewrite) or ``--check`` (exit 1 when out of date).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "clickstream_anomaly" / "aws" / "training" / "images.json"
REPOSITORIES = ("randomcutforest", "forecasting-deepar")
IMAGE_VERSION = "1"


def build_table() -> dict[str, dict[str, str]]:
    """``{repository: {region: registry account}}`` from the installed SDK's configuration files."""
    import sagemaker.core

    config = Path(sagemaker.core.__file__).resolve().parent / "image_uri_config"
    out: dict[str, dict[str, str]] = {}
    for repo in REPOSITORIES:
        data = json.loads((config / f"{repo}.json").read_text(encoding="utf-8"))
        registries = data["versions"][IMAGE_VERSION]["registries"]
        out[repo] = {r: a for r, a in sorted(registries.items()) if not r.startswith("us-iso")}
    return out


def render(table: dict[str, dict[str, str]]) -> str:
    from importlib.metadata import version

    doc = {"_source": f"sagemaker {version('sagemaker')} image_uri_config, version {IMAGE_VERSION}", **table}
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed table is out of date")
    args = parser.parse_args(argv)
    text = render(build_table())
    if args.check:
        if not TABLE.exists() or TABLE.read_text(encoding="utf-8") != text:
            print(f"{TABLE} is out of date: run python scripts/generate_image_table.py", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
