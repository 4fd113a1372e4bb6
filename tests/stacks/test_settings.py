"""Settings from cdk.json context: defaults, command-line coercion, and clear failures (no synth needed)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from stacks.settings import SETTINGS_HELP, Settings, SettingsError, settings_table
from tests.stacks.cdk_synth import ROOT, context


def test_cdk_json_holds_every_setting_with_its_default():
    ctx = json.loads((ROOT / "cdk.json").read_text())["context"]
    for f in dataclasses.fields(Settings):
        assert f.name in ctx, f"cdk.json lacks {f.name}"
        assert ctx[f.name] == getattr(Settings(), f.name), f.name
    assert Settings.from_context(ctx) == Settings()


def test_every_setting_is_documented():
    assert set(SETTINGS_HELP) == {f.name for f in dataclasses.fields(Settings)}
    table = settings_table()
    for f in dataclasses.fields(Settings):
        assert f"| `{f.name}` |" in table


def test_command_line_strings_are_converted():
    s = Settings.from_context(
        context(
            stream_shards="4",
            stream_mode="provisioned",
            deploy_endpoints="true",
            threshold="3.5",
            rcf_with_directionality="false",
            deepar_hyperparameters='{"epochs": 50}',
        )
    )
    assert (s.stream_shards, s.deploy_endpoints, s.threshold, s.rcf_with_directionality) == (4, True, 3.5, False)
    assert s.deepar_hyperparameters_strings()["epochs"] == "50"
    assert s.deepar_hyperparameters_strings()["time_freq"] == "10min"


def test_blog_parameters_are_the_streaming_defaults():
    s = Settings()
    assert (s.rcf_num_trees, s.rcf_sample_size, s.rcf_time_decay, s.rcf_shingle_size, s.rcf_with_directionality) == (
        100,
        256,
        4320,
        1,
        True,
    )
    assert s.streaming_engine == "lambda" and s.deploy_endpoints is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"streaming_engine": "flink"}, "streaming_engine='flink': must be one of lambda, kda-sql"),
        ({"rcf_sample_size": "5"}, "rcf_sample_size=5: must be between 10 and 1000"),
        ({"rcf_time_decay": 200}, "rcf_sample_size=256 must be smaller than rcf_time_decay=200"),
        ({"stream_shards": "two"}, "stream_shards='two': expected an integer"),
        ({"deploy_endpoints": "maybe"}, "deploy_endpoints='maybe': expected true or false"),
        ({"alert_email": "not-an-address"}, "alert_email='not-an-address': not an e-mail address"),
        ({"training_instance_type": "m5.large"}, "training_instance_type='m5.large'"),
        ({"retrain_schedule": "weekly"}, "retrain_schedule='weekly': use rate(...) or cron(...)"),
        ({"window_freq": "10s"}, "window_freq='10s'"),
        ({"sagemaker_rcf_num_trees": 20}, "num_trees=20 is outside SageMaker's range 50-1000"),
        ({"prefix": "Clickstream_App"}, "prefix='Clickstream_App'"),
        ({"landing_prefix": "incoming"}, "landing_prefix='incoming'"),
        ({"stream_shard": 2}, "unknown setting 'stream_shard'; did you mean 'stream_shards'?"),
    ],
)
def test_invalid_settings_fail_with_a_clear_message(overrides, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_context(context(**overrides))
    assert message in str(err.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(SettingsError) as err:
        Settings.from_context(context(streaming_engine="x", removal_policy="keep", log_level="loud"))
    text = str(err.value)
    assert "streaming_engine" in text and "removal_policy" in text and "log_level" in text


def test_invalid_settings_fail_the_synth():
    import aws_cdk as cdk

    from app import build_app

    app = cdk.App(context=context(streaming_engine="kda"))
    with pytest.raises(SettingsError, match="streaming_engine='kda'"):
        build_app(app, nag=False)


@pytest.mark.parametrize("lateness, skew", [("10min", 300), ("4min", 120), ("1min", 30), ("2h", 300)])
def test_s3_producer_skew_stays_within_half_the_allowed_lateness(lateness: str, skew: int) -> None:
    from stacks.ingest import max_skew_seconds

    assert max_skew_seconds(lateness) == skew
