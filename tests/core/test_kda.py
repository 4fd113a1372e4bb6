"""KDA RANDOM_CUT_FOREST(_WITH_EXPLANATION) emulation: parameters, output rows, streaming state, SQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly import persist
from clickstream_anomaly.kda import (
    STATE_KIND,
    STATE_VERSION,
    KdaRcfParameters,
    KdaRcfStream,
    application_sql,
    parse_application_sql,
    random_cut_forest,
    random_cut_forest_with_explanation,
)
from clickstream_anomaly.records import FEATURE_COLUMNS, explanation_fields

COLS = ("a", "b")
SMALL = {"number_of_trees": 20, "sub_sample_size": 32}


def _rows(n: int = 120, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return [{"ts": f"t{i}", "a": float(x), "b": float(y), "note": "x"} for i, (x, y) in enumerate(X)]


# ---------------------------------------------------------------------------------------------- parameters


def test_defaults_are_the_service_defaults() -> None:
    p = KdaRcfParameters()
    assert (p.number_of_trees, p.sub_sample_size, p.time_decay, p.shingle_size, p.with_directionality) == (
        100,
        256,
        100000,
        1,
        False,
    )
    assert p.decay_rate == pytest.approx(1e-5)


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"number_of_trees": 0}, "numberOfTrees"),
        ({"number_of_trees": 1001}, "numberOfTrees"),
        ({"sub_sample_size": 9}, "subSampleSize"),
        ({"sub_sample_size": 1001}, "subSampleSize"),
        ({"sub_sample_size": 300, "time_decay": 300}, "less than timeDecay"),
        ({"time_decay": 0}, "timeDecay"),
        ({"time_decay": 2**31}, "timeDecay"),
        ({"shingle_size": 0}, "shingleSize"),
        ({"shingle_size": 31}, "shingleSize"),
        ({"number_of_trees": 10.0}, "integer"),
        ({"number_of_trees": True}, "integer"),
        ({"with_directionality": "yes"}, "boolean"),
    ],
)
def test_parameter_validation(kwargs: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        KdaRcfParameters(**kwargs)


def test_parameter_bounds_accepted() -> None:
    KdaRcfParameters(1, 10, 11, 1)
    KdaRcfParameters(1000, 1000, 2147483647, 30, True)


def test_column_limits() -> None:
    KdaRcfStream([f"c{i}" for i in range(30)], KdaRcfParameters(**SMALL))
    with pytest.raises(ValueError, match="at most 30"):
        KdaRcfStream([f"c{i}" for i in range(31)], KdaRcfParameters(**SMALL))
    for bad in ([], ["a", "a"], ['x"y'], "ab"):
        with pytest.raises(ValueError):
            KdaRcfStream(bad)


# ---------------------------------------------------------------------------------------------- rows


def test_random_cut_forest_rows_and_learning_phase() -> None:
    rows = _rows()
    out = random_cut_forest(rows, COLS, **SMALL, random_state=1)
    assert len(out) == len(rows)
    for r_in, r_out in zip(rows, out, strict=True):
        assert {k: r_out[k] for k in r_in} == r_in  # pass-through, including non-numeric columns
        assert "ANOMALY_EXPLANATION" not in r_out
    scores = np.array([r["ANOMALY_SCORE"] for r in out])
    assert (scores[:32] == 0).all() and (scores[32:] > 0).all()


def test_explanation_format_sums_and_directions() -> None:
    rows = _rows()
    rows[100]["a"] = -9.0
    rows[110]["b"] = 9.0
    out = random_cut_forest_with_explanation(rows, COLS, **SMALL, with_directionality=True, random_state=2)
    for i, r in enumerate(out):
        expl = json.loads(r["ANOMALY_EXPLANATION"])
        assert list(expl) == list(COLS)
        for entry in expl.values():
            assert list(entry) == ["DIRECTION", "STRENGTH", "ATTRIBUTION_SCORE"]
            assert entry["DIRECTION"] in ("HIGH", "LOW")
            assert re.fullmatch(r"\d+\.\d{4}", entry["STRENGTH"])
            assert re.fullmatch(r"\d+\.\d{4}", entry["ATTRIBUTION_SCORE"])
            assert float(entry["STRENGTH"]) <= float(entry["ATTRIBUTION_SCORE"]) + 1e-4
        total = sum(float(e["ATTRIBUTION_SCORE"]) for e in expl.values())
        assert total == pytest.approx(r["ANOMALY_SCORE"], abs=1e-4 * len(COLS) + 1e-12)
        if i < 32:
            assert all(
                e == {"DIRECTION": "LOW", "STRENGTH": "0.0000", "ATTRIBUTION_SCORE": "0.0000"} for e in expl.values()
            )
    low_a = json.loads(out[100]["ANOMALY_EXPLANATION"])
    assert low_a["a"]["DIRECTION"] == "LOW" and float(low_a["a"]["ATTRIBUTION_SCORE"]) > 1.5
    high_b = json.loads(out[110]["ANOMALY_EXPLANATION"])
    assert high_b["b"]["DIRECTION"] == "HIGH" and float(high_b["b"]["STRENGTH"]) > 1.5
    # the project's record layer reads it back
    attribution, direction, strength = explanation_fields(out[110]["ANOMALY_EXPLANATION"])
    assert direction == {"a": json.loads(out[110]["ANOMALY_EXPLANATION"])["a"]["DIRECTION"], "b": "HIGH"}
    assert set(attribution) == set(strength) == set(COLS)


def test_without_directionality_only_attribution() -> None:
    out = random_cut_forest_with_explanation(_rows(60), COLS, **SMALL, random_state=3)
    expl = json.loads(out[-1]["ANOMALY_EXPLANATION"])
    assert all(list(e) == ["ATTRIBUTION_SCORE"] for e in expl.values())


def test_shingled_learning_phase_and_with_dataframe() -> None:
    df = pd.DataFrame(_rows(80))
    out = random_cut_forest(df, COLS, **SMALL, shingle_size=3, random_state=4)
    scores = [r["ANOMALY_SCORE"] for r in out]
    assert all(s == 0 for s in scores[: 32 + 2]) and all(s > 0 for s in scores[34:])


def test_batch_functions_are_loops_over_the_stream() -> None:
    rows = _rows()
    params = KdaRcfParameters(**SMALL, shingle_size=2, with_directionality=True)
    out = random_cut_forest_with_explanation(
        rows, COLS, **SMALL, shingle_size=2, with_directionality=True, random_state=5
    )
    stream = KdaRcfStream(COLS, params, random_state=5)
    for r in out:
        assert stream.process_row([r["a"], r["b"]]) == (r["ANOMALY_SCORE"], r["ANOMALY_EXPLANATION"])


def test_bad_rows() -> None:
    rows = _rows(10)
    rows[5]["b"] = "n/a"
    with pytest.raises(ValueError, match=r"row 5.*'b'"):
        random_cut_forest(rows, COLS, **SMALL)
    with pytest.raises(ValueError, match="lacks"):
        random_cut_forest([{"a": 1.0}], COLS, **SMALL)
    with pytest.raises(ValueError, match="subSampleSize"):
        random_cut_forest(_rows(5), COLS, sub_sample_size=5)


# ---------------------------------------------------------------------------------------------- stream state


def test_stream_bytes_roundtrip_continues_identically_and_rejects_bad_values() -> None:
    params = KdaRcfParameters(**SMALL, shingle_size=2, with_directionality=True)
    stream = KdaRcfStream(COLS, params, random_state=6)
    rows = _rows(150)
    for r in rows[:90]:
        stream.process_row([r["a"], r["b"]])
    blob = stream.to_bytes()
    for bad in ([1.0], [1.0, float("nan")], [1.0, "x"], [None, 1.0], [True, 1.0]):
        with pytest.raises(ValueError):
            stream.process_row(bad)
    assert stream.to_bytes() == blob
    restored = KdaRcfStream.from_bytes(blob)
    assert restored.columns == COLS and restored.params == params and restored.records_seen == 90
    for r in rows[90:]:
        v = [r["a"], r["b"]]
        assert stream.process_row(v) == restored.process_row(v)
    with pytest.raises(ValueError):
        KdaRcfStream.from_bytes(b"garbage")


def test_stream_state_is_a_persist_state_and_the_version_1_layout_still_loads() -> None:
    data = Path(__file__).parent / "data"
    with np.load(data / "rcf_v2_expected.npz", allow_pickle=False) as npz:
        X, scores, explanations = npz["X"], npz["kda_scores"], npz["kda_explanations"]
    old = KdaRcfStream.from_bytes((data / "kda_stream_v1.bin").read_bytes())  # written by commit 0f1df5b
    assert old.columns == ("a", "b", "c") and old.records_seen == 90
    blob = old.to_bytes()
    assert persist.peek_kind(blob) == (STATE_KIND, STATE_VERSION)
    restored = KdaRcfStream.from_bytes(blob)
    assert restored.params == old.params and restored.to_bytes() == blob
    for stream in (old, restored):
        out = [stream.process_row(row) for row in X[90:200]]
        assert [score for score, _ in out] == scores.tolist()
        assert [expl for _, expl in out] == explanations.tolist()


# ---------------------------------------------------------------------------------------------- SQL


@pytest.mark.parametrize("params", [KdaRcfParameters(), KdaRcfParameters(50, 64, 5000, 4, True)])
def test_sql_parameters_equal_the_emulation(params: KdaRcfParameters) -> None:
    sql = application_sql(FEATURE_COLUMNS, params, passthrough=[("window_start", "TIMESTAMP")])
    cols, parsed = parse_application_sql(sql)
    assert parsed == params
    assert cols == (*FEATURE_COLUMNS, "window_start")
    assert f"{params.sql_arguments()}));" in sql
    # the emulation built from the deployed SQL is the emulation built from the parameter object
    small = KdaRcfParameters(10, 16, parsed.time_decay, parsed.shingle_size, parsed.with_directionality)
    a = KdaRcfStream(FEATURE_COLUMNS, small, random_state=0)
    b = KdaRcfStream(
        cols[: len(FEATURE_COLUMNS)],
        KdaRcfParameters(10, 16, params.time_decay, params.shingle_size, params.with_directionality),
        random_state=0,
    )
    rng = np.random.default_rng(0)
    for v in rng.normal(size=(40, 4)).tolist():
        assert a.process_row(v) == b.process_row(v)


def test_sql_structure() -> None:
    sql = application_sql(
        ["urls", "users"], KdaRcfParameters(with_directionality=True), input_stream="SRC_001", output_stream="OUT"
    )
    assert 'CREATE OR REPLACE STREAM "OUT" (' in sql
    assert '"ANOMALY_SCORE" DOUBLE' in sql and '"ANOMALY_EXPLANATION" VARCHAR(' in sql
    assert 'CREATE OR REPLACE PUMP "RCF_PUMP" AS INSERT INTO "OUT"' in sql
    assert 'CURSOR(SELECT STREAM "urls", "users" FROM "SRC_001")' in sql
    assert "RANDOM_CUT_FOREST_WITH_EXPLANATION(" in sql and "100, 256, 100000, 1, true" in sql
    with pytest.raises(ValueError, match="numeric type"):
        application_sql(["urls"], KdaRcfParameters(), passthrough=[("n", "INTEGER")])
    with pytest.raises(ValueError, match="at most 30"):
        application_sql([f"c{i}" for i in range(31)], KdaRcfParameters())
