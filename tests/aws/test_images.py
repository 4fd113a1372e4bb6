"""The one SageMaker image table: current with the SDK it is generated from, and used by both the boto3
workflows and the CDK mapping."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("generate_image_table", ROOT / "scripts" / "generate_image_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_table_is_what_the_script_generates():
    assert _generator().main(["--check"]) == 0


@pytest.mark.slow
def test_image_table_matches_the_sdk_offline():
    image_uris = pytest.importorskip("sagemaker.core.image_uris", reason="sagemaker SDK not installed")
    from clickstream_anomaly.aws.training.images import REGISTRY_ACCOUNTS, image_uri
    from clickstream_anomaly.aws.training.tags import BUILTIN

    for algo, repo in BUILTIN.items():
        for region in REGISTRY_ACCOUNTS[repo]:
            assert image_uri(algo, region) == image_uris.retrieve(repo, region)
    # a region the old hand-written table lacked is in the generated one
    assert image_uri("rcf", "ap-northeast-1") == image_uris.retrieve("randomcutforest", "ap-northeast-1")


def test_regions_outside_the_table_fail_clearly():
    from clickstream_anomaly.aws.training.images import image_uri
    from clickstream_anomaly.sagemaker_config import SageMakerConfigError

    with pytest.raises(SageMakerConfigError, match="no randomcutforest image known for xx-east-9"):
        image_uri("rcf", "xx-east-9")
