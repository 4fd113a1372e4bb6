"""The verdict rules a deployment may change, per detector: their names, parsing and defaults.

One home for ``detect --rule``, the detector Lambda's ``DETECTOR_RULES``, the Flink job's
``detector_rules`` and ``cdk.json``'s ``detector_rules``. A rule changes when a detector raises an anomaly,
not what it learned, so a saved detector state takes the rules it is given each time it is loaded
(:meth:`clickstream_anomaly.streaming.detection.DetectorState.take_rules`): a rule left out is the default
again.

* ``baseline`` (the site's time-aware baseline): ``point_threshold``, ``pair_threshold``,
  ``drift_threshold``, ``run_threshold`` (threshold units; ``inf`` turns the test off) and ``run_window``
  (a duration);
* ``baseline-pages``: ``surge_share`` (a share of the window's clicks, (0, 1]) and ``surge_z`` (Poisson
  spreads; ``inf``: no page-storm test).

In JSON: ``{"baseline": {"point_threshold": 6}, "baseline-pages": {"surge_z": "inf"}}``; on the command
line: ``--rule baseline.point_threshold=6 --rule baseline-pages.surge_z=inf``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..records import BASELINE, PAGES
from .detector import TimeAwareBaseline
from .pages import PageSettings

#: The rules each detector takes, by detector name.
RULES: dict[str, tuple[str, ...]] = {
    BASELINE: ("point_threshold", "pair_threshold", "drift_threshold", "run_threshold", "run_window"),
    PAGES: ("surge_share", "surge_z"),
}
DURATIONS = frozenset({"run_window"})  # rules whose value is a duration ("30min"); the others are numbers


@functools.cache
def _defaults() -> dict[str, dict[str, Any]]:
    """Each detector's rules at their defaults (the estimators' own; taken once: a loaded state takes the
    rules at every load)."""
    baseline, pages = TimeAwareBaseline().get_params(), PageSettings()
    return {
        BASELINE: {name: baseline[name] for name in RULES[BASELINE]},
        PAGES: {name: getattr(pages, name) for name in RULES[PAGES]},
    }


def _value(detector: str, name: str, value: Any) -> float | str:
    where = f"{detector}.{name}"
    if name in DURATIONS:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a duration such as '30min', got {value!r}")
        try:
            if pd.Timedelta(value) <= pd.Timedelta(0):
                raise ValueError
        except ValueError:
            raise ValueError(f"{where} must be a positive duration such as '30min', got {value!r}") from None
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{where} must be a number or 'inf', got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where} must be a number or 'inf', got {value!r}") from None
    if math.isnan(number) or number <= 0:
        raise ValueError(f"{where} must be positive, got {value!r}")
    return number


@dataclass(frozen=True)
class DetectorRules:
    """The rules given, per detector name (:data:`RULES`); empty: every detector's defaults."""

    rules: Mapping[str, Mapping[str, float | str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Mapping[str, Any] | str | None) -> DetectorRules:
        """From JSON text or its mapping (``None`` or ``""``: none); raises ``ValueError`` naming what is
        wrong (an unknown detector or rule, a bad value, a value the detector refuses)."""
        if data is None or (isinstance(data, str) and not data.strip()):
            return cls()
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ValueError(f"detector rules are not JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"detector rules must be an object by detector name, got {data!r}")
        rules: dict[str, dict[str, float | str]] = {}
        for detector, given in data.items():
            if detector not in RULES:
                raise ValueError(f"no rules for detector {detector!r}: rules are for {', '.join(RULES)}")
            if not isinstance(given, Mapping):
                raise ValueError(f"the rules of {detector} must be an object, got {given!r}")
            unknown = sorted(set(given) - set(RULES[detector]))
            if unknown:
                raise ValueError(f"{detector} has no rule {', '.join(unknown)}: use {', '.join(RULES[detector])}")
            if given:
                rules[detector] = {name: _value(detector, name, v) for name, v in given.items()}
        out = cls(rules)
        TimeAwareBaseline(**out.baseline_params()).fit(None)  # the detectors' own checks, once, here
        PageSettings(**out.page_params())
        return out

    @classmethod
    def from_pairs(cls, pairs: Iterable[str]) -> DetectorRules:
        """From ``DETECTOR.RULE=VALUE`` texts (the command line's ``--rule``)."""
        data: dict[str, dict[str, str]] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            detector, dot, name = key.strip().rpartition(".")
            if not sep or not dot or not detector or not name:
                raise ValueError(f"a rule is DETECTOR.RULE=VALUE (e.g. baseline.point_threshold=6), got {pair!r}")
            data.setdefault(detector, {})[name] = value.strip()
        return cls.parse(data)

    def of(self, detector: str) -> dict[str, float | str]:
        """The rules given for ``detector`` (may be empty)."""
        return dict(self.rules.get(detector, {}))

    def baseline_params(self) -> dict[str, Any]:
        """Every ``baseline`` rule, the defaults where none is given (for a new or a loaded baseline)."""
        return _defaults()[BASELINE] | self.of(BASELINE)

    def page_params(self) -> dict[str, Any]:
        """Every ``baseline-pages`` rule, the defaults where none is given."""
        return _defaults()[PAGES] | self.of(PAGES)

    def to_json(self) -> str:
        """Compact JSON that :meth:`parse` reads back (``inf`` as the text ``"inf"``)."""

        def plain(v: float | str) -> float | str:
            return "inf" if isinstance(v, float) and math.isinf(v) else v

        data = {d: {n: plain(v) for n, v in r.items()} for d, r in sorted(self.rules.items())}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    def __bool__(self) -> bool:
        return any(self.rules.values())
