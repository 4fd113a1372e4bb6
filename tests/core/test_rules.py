"""The detectors' verdict rules (clickstream_anomaly/baseline/rules.py): parsed and checked in one place,
given to new detector states, and taken by saved ones each time they are loaded, as the engines do."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clickstream_anomaly.baseline import TimeAwareBaseline
from clickstream_anomaly.baseline.pages import PageSettings, PageStream
from clickstream_anomaly.baseline.rules import RULES, DetectorRules
from clickstream_anomaly.features import PageCounts, windows_from_frame, windows_to_records
from clickstream_anomaly.records import BASELINE, PAGES
from clickstream_anomaly.streaming.detection import DetectorState, new_state

from .test_pages import clicks, storm


def test_rules_parse_from_json_and_pairs_and_read_back():
    rules = DetectorRules.from_pairs(
        ["baseline.point_threshold=6", "baseline-pages.surge_z=inf", "baseline.run_window=1h"]
    )
    assert rules.of(BASELINE) == {"point_threshold": 6.0, "run_window": "1h"} and math.isinf(rules.of(PAGES)["surge_z"])
    assert DetectorRules.parse(rules.to_json()) == rules and rules.to_json().count('"inf"') == 1
    assert DetectorRules.parse(None) == DetectorRules.parse("") == DetectorRules.parse("{}") == DetectorRules()
    assert not DetectorRules() and rules
    defaults = TimeAwareBaseline().get_params()
    params = rules.baseline_params()
    assert set(params) == set(RULES[BASELINE]) and params["pair_threshold"] == defaults["pair_threshold"]
    assert rules.page_params() == {"surge_share": PageSettings().surge_share, "surge_z": math.inf}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"deepar": {}}', "no rules for detector 'deepar'"),
        ('{"baseline": {"huber": 2}}', "baseline has no rule huber"),
        ('{"baseline": {"point_threshold": -1}}', "must be positive"),
        ('{"baseline": {"point_threshold": true}}', "a number or 'inf'"),
        ('{"baseline": {"run_window": 30}}', "a duration"),
        ('{"baseline": {"run_window": "soon"}}', "a positive duration"),
        ('{"baseline-pages": {"surge_share": 2}}', "surge_share must be in"),
        ('{"baseline": 5}', "must be an object"),
        ("[1]", "an object by detector name"),
        ("{not json", "not JSON"),
    ],
)
def test_bad_rules_are_refused_with_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        DetectorRules.parse(data)


def test_a_rule_is_detector_dot_rule_equals_value():
    with pytest.raises(ValueError, match=r"DETECTOR\.RULE=VALUE"):
        DetectorRules.from_pairs(["point_threshold=6"])


def test_a_saved_state_takes_the_rules_it_is_loaded_with_and_the_defaults_when_they_are_left_out():
    """A storm on /rare on day 4: the state saved before it and loaded with surge_z=inf does not flag it,
    loaded without rules it does again, and the rules change nothing the state learned."""
    data = storm(clicks(seed=2), "/rare", "2024-01-04 15:02", 20, 10.0)
    counts = PageCounts()
    records = windows_to_records(windows_from_frame(data, pages=counts), counts)
    cut = next(i for i, w in enumerate(records) if w.window_start.isoformat().startswith("2024-01-04T12:00"))
    baseline = TimeAwareBaseline(window="10min")
    state = new_state(None, baseline=baseline, pages=PageStream(PageSettings()))
    state.step(records[:cut])
    saved = state.to_bytes()

    def rest(rules: DetectorRules) -> list[str]:
        loaded = DetectorState.from_bytes(saved).take_rules(rules)
        return [d.to_json() for d in loaded.step(records[cut:]) if d.is_anomaly and d.detector == PAGES]

    assert rest(DetectorRules()) and rest(DetectorRules()) == rest(DetectorRules.parse(None))
    assert rest(DetectorRules.parse('{"baseline-pages": {"surge_z": "inf"}}')) == []
    off = DetectorState.from_bytes(saved).take_rules(DetectorRules.parse('{"baseline-pages": {"surge_z": "inf"}}'))
    back = DetectorState.from_bytes(off.to_bytes()).take_rules(DetectorRules())
    assert back.to_bytes() == saved  # the rules were all that changed, and the defaults put them back
    strict = DetectorState.from_bytes(saved).take_rules(DetectorRules.parse('{"baseline": {"point_threshold": 50}}'))
    assert strict.baseline is not None and strict.baseline.point_threshold == 50
    assert np.isclose(strict.baseline.state_.params.point_threshold, 50)
