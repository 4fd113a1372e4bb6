"""Settings from cdk.json context: defaults, command-line coercion, and clear failures (no synth needed)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

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
        ({"streaming_engine": "spark"}, "streaming_engine='spark': must be one of lambda, kda-sql, flink"),
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
        ({"detector_rules": {"baseline": {"huber": 2}}}, "detector_rules: baseline has no rule huber"),
        ({"detector_rules": '{"baseline-pages": {"surge_z": 0}}'}, "baseline-pages.surge_z must be positive"),
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


# ---------------------------------------------------------------------- the pydantic model


def test_every_field_has_a_type_a_default_and_a_description():
    from stacks.settings import FIELDS

    for name, info in FIELDS.items():
        assert info.description, f"{name} has no description"
        assert info.annotation is not None, name
        assert not info.is_required(), f"{name} has no default"


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().prefix = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"environment": "prod"}, "unknown setting 'environment'"),
        ({"time_zone": "UTC"}, "unknown setting 'time_zone'; did you mean 'timezone'?"),
        ({"rcf_num_tree": 50}, "unknown setting 'rcf_num_tree'; did you mean 'rcf_num_trees'?"),
    ],
)
def test_unknown_keys_are_named(overrides, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_context(context(**overrides))
    assert message in str(err.value)


def test_cdk_own_context_keys_are_left_alone():
    extra = {
        "@aws-cdk/core:newFlag": True,
        "aws:cdk:bundling-stacks": [],
        "acknowledged-issue-numbers": [34892],
        "availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a"],
    }
    assert Settings.from_context(context(**extra)) == Settings()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rcf_num_trees": True}, "rcf_num_trees=True: expected an integer"),
        ({"rcf_num_trees": 12.5}, "rcf_num_trees=12.5: expected an integer"),
        ({"threshold": "high"}, "threshold='high': expected a number"),
        ({"threshold": False}, "threshold=False: expected a number"),
        ({"threshold": "nan"}, "threshold='nan': expected a finite number"),
        ({"rcf_with_directionality": "sometimes"}, "rcf_with_directionality='sometimes': expected true or false"),
        ({"prefix": 5}, "prefix=5: expected a string"),
        ({"deepar_hyperparameters": "[1, 2]"}, "deepar_hyperparameters='[1, 2]': expected a JSON object"),
        ({"deepar_hyperparameters": "{epochs: 5}"}, "deepar_hyperparameters='{epochs: 5}': expected a JSON object"),
    ],
)
def test_wrong_types_name_the_key_and_the_expected_type(overrides, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_context(context(**overrides))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stream_retention_hours": "12"}, "stream_retention_hours=12: must be between 24 and 8760"),
        ({"lambda_memory_mb": 128}, "lambda_memory_mb=128: must be between 512 and 10240"),
        ({"event_retry_attempts": -1}, "event_retry_attempts=-1: must be between 0 and 10000"),
        ({"threshold": "0"}, "threshold=0.0: must be positive"),
        ({"sigma_k": -1}, "sigma_k=-1: must be positive"),
        (
            {"sagemaker_rcf_num_samples_per_tree": 4096},
            "sagemaker_rcf_num_samples_per_tree=4096 is outside SageMaker's range 1-2048",
        ),
        ({"log_retention_days": "8"}, "log_retention_days=8: must be one of 1, 3, 5, 7, 14, 30, 60, 90, 180, 365"),
        ({"log_level": "loud"}, "log_level='loud': must be one of DEBUG, INFO, WARNING, ERROR"),
        ({"stream_mode": "auto"}, "stream_mode='auto': must be one of on-demand, provisioned"),
    ],
)
def test_out_of_range_values_name_the_key_and_the_accepted_values(overrides, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_context(context(**overrides))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"metrics_namespace": "AWS/Lambda"}, "metrics_namespace='AWS/Lambda': not a valid custom CloudWatch"),
        ({"powertools_layer_version": "v3"}, "powertools_layer_version='v3': latest or a release such as 3.37.0"),
        ({"pandas_layer_version": "3.17"}, "pandas_layer_version='3.17': a release such as 3.17.0"),
        ({"pandas_layer_arn": "arn:aws:s3:::bucket"}, "pandas_layer_arn='arn:aws:s3:::bucket': not a Lambda layer"),
        ({"allowed_lateness": "5m"}, "allowed_lateness='5m': use <minutes>min or <hours>h, e.g. 10min"),
        ({"landing_prefix": "rejected/"}, "landing_prefix='rejected/': must not be under rejected/ or unsent/"),
    ],
)
def test_bad_patterns_name_the_key_and_the_accepted_form(overrides, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_context(context(**overrides))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stream_shards": 4}, "stream_shards=4 applies only with stream_mode=provisioned"),
        ({"rcf_sample_size": 500, "rcf_time_decay": 500}, "rcf_sample_size=500 must be smaller than rcf_time_decay"),
        ({"deepar_hyperparameters": {"epochs": 0}}, "deepar_hyperparameters: DeepAR hyperparameters: epochs"),
        ({"cloudfront_realtime_log": True}, "cloudfront_realtime_log=true needs clicks_format=cloudfront-realtime"),
        ({"source_settings": {"salt": "in-the-template"}}, "source_settings: salt (use user_salt_secret_arn)"),
        ({"source_settings": {"sampling_rate": 10}}, "sampling_rate (use realtime_log_sampling_rate)"),
        ({"source_settings": {"statuses": "2xx"}}, "source_settings: statuses: '2xx' is not a status code"),
        ({"source_settings": {"colour": 1}}, "source_settings: unknown source setting(s): colour"),
        ({"realtime_log_fields": "timestamp,c-ip"}, "realtime_log_fields: realtime_fields: must include"),
    ],
)
def test_cross_field_rules(overrides, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_context(context(**overrides))
    assert message in str(err.value)


def test_source_settings_reach_the_functions_without_the_salt():
    s = Settings.from_context(
        context(
            clicks_format="cloudfront-realtime",
            realtime_log_fields="timestamp(ms),c-ip,cs-uri-stem,cs-user-agent",
            realtime_log_sampling_rate="25",
            source_settings='{"user_cookie": "sid"}',
        )
    )
    assert json.loads(s.source_settings_json()) == {
        "realtime_fields": ["timestamp(ms)", "c-ip", "cs-uri-stem", "cs-user-agent"],
        "sampling_rate": 25,
        "user_cookie": "sid",
    }
    assert s.needs_user_salt and not Settings.from_context(context()).needs_user_salt


def test_every_cross_field_problem_is_reported():
    with pytest.raises(SettingsError) as err:
        Settings.from_context(context(stream_shards=3, rcf_time_decay=100))
    text = str(err.value)
    assert "stream_shards=3" in text and "rcf_time_decay=100" in text


def test_unknown_keys_and_bad_values_are_reported_together():
    with pytest.raises(SettingsError) as err:
        Settings.from_context(context(stream_shard=2, log_level="loud", timezone="Nowhere"))
    lines = str(err.value).splitlines()[1:]
    assert len(lines) == 3
    assert all(line.startswith(("  unknown setting 'stream_shard'", "  log_level=", "  timezone=")) for line in lines)


def test_more_command_line_strings_are_converted():
    s = Settings.from_context(
        context(
            log_retention_days="7",
            lambda_memory_mb=" 2048 ",
            sigma_k="2",
            deploy_endpoints="",
            rcf_with_directionality="no",
            deepar_hyperparameters="",
            alert_email=" ops@example.com ",
            timezone="Europe/Berlin",
        )
    )
    assert (s.log_retention_days, s.lambda_memory_mb, s.sigma_k) == (7, 2048, 2.0)
    assert (s.deploy_endpoints, s.rcf_with_directionality, s.deepar_hyperparameters) == (False, False, {})
    assert (s.alert_email, s.timezone) == ("ops@example.com", "Europe/Berlin")


def test_kda_sql_engine_brings_the_synth_warning():
    from stacks.settings import KDA_SQL_WARNING_ID

    assert Settings().synth_warnings == {}
    warnings = Settings.from_context(context(streaming_engine="kda-sql")).synth_warnings
    assert list(warnings) == [KDA_SQL_WARNING_ID]
    assert re.match(r".*2025-10-15.*streaming_engine=lambda.*", warnings[KDA_SQL_WARNING_ID])


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Etc/GMT+5"])
def test_timezone_accepts_iana_names(name):
    assert Settings.from_context(context(timezone=name)).timezone == name


@pytest.mark.parametrize("name", ["Mars/Olympus", "europe/berlin", "CEST", "+02:00", "localtime", "../etc/passwd", ""])
def test_timezone_rejects_other_names(name):
    with pytest.raises(SettingsError) as err:
        Settings.from_context(context(timezone=name))
    assert f"timezone={name!r}: not an IANA time zone name such as UTC or Europe/Berlin" in str(err.value)


def test_timezone_default_is_utc():
    assert Settings().timezone == "UTC"


# ---------------------------------------------------------------------- generated reference page


def test_docs_settings_page_is_up_to_date():
    from stacks.settings import settings_markdown

    page = ROOT / "docs" / "settings.md"
    assert page.read_text(encoding="utf-8") == settings_markdown(), (
        "docs/settings.md is out of date: run python -m stacks.settings --markdown docs/settings.md"
    )


def test_markdown_command_writes_the_page(tmp_path):
    from stacks.settings import main, settings_markdown

    target = tmp_path / "settings.md"
    assert main(["--markdown", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == settings_markdown()


def test_page_lists_type_default_allowed_values_and_description():
    from stacks.settings import FIELDS

    table = settings_table()
    assert table.splitlines()[0] == "| key | type | default | allowed | description |"
    assert "| `stream_mode` | str | `on-demand` | `on-demand`, `provisioned` |" in table
    assert "| `rcf_sample_size` | int | `256` | 10–1000 |" in table
    assert "| `sagemaker_rcf_num_trees` | int | `100` | 50–1000 (SageMaker's range) |" in table
    timezone = "| `timezone` | str | `UTC` | an IANA time zone name, e.g. `UTC`, `Europe/Berlin` |"
    assert f"{timezone} {FIELDS['timezone'].description} |" in table
    assert SETTINGS_HELP["timezone"] == FIELDS["timezone"].description


def test_pydantic_is_needed_by_neither_the_core_nor_the_lambdas():
    code = (
        "import importlib, importlib.abc, pkgutil, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pydantic', 'pydantic_core'):\n"
        "            raise ImportError(f'{name} blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import clickstream_anomaly, lambdas\n"
        "for pkg in (clickstream_anomaly,):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if not m.name.endswith('__main__'):\n            importlib.import_module(m.name)\n"
        "for m in pkgutil.iter_modules(lambdas.__path__, 'lambdas.'):\n"
        "    importlib.import_module(m.name + '.app')\n"
        "assert not [m for m in sys.modules if m.startswith('pydantic')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
