"""Scenario backtest: do the detectors catch injected incidents, quickly, with the right reason, and how
often do they raise false incidents?

Run from the repository root (or a worktree's): ``.venv/bin/python bench/scenarios.py`` (defaults: seeds
0 1 2, levels 3 12 40 peak visits per minute, 10 days, the CLI's default detector set); ``--quick`` for a
smoke run (1 seed, 1 level, 4 days). Markdown on stdout, progress on stderr, everything in ``--json``,
the tables for the docs in ``docs/benchmarks/scenarios.md`` with ``--markdown``;
``--write-scenarios DIR`` saves each scenario (``clicks.csv``, ``incidents.json``, ``labels.csv``) for
``clickstream-anomaly detect DIR/NAME/clicks.csv -o out [--labels DIR/NAME/labels.csv]``. About 20 s for
``--detectors "rcf-streaming,rcf-batch;rcf-streaming"`` on 2 shared cores (18 scenarios of ~60 k to
~1 M clicks); DeepAR adds about 10 s per scenario.

For every seed x level the bench generates (``bench/scenario_gen.py``) a *mixed* scenario (16 incidents
of all kinds at spread-out local hours, none in the first day) and a *clean* one (no incident, other
noise), computes the 10-minute windows with ``windows_from_frame`` and runs each detector set through
``run_detection(windows, build_detectors(names, ...))``. Scoring, with ``grace`` = 30 minutes:

* an injected incident is **found** when a reported incident has an anomalous window overlapping
  ``[start, end + grace)``; among those, the one with the earliest such window is *its* incident (ties:
  the better rank). **delay** = that window's start minus the time the incident became visible (for a
  ramp, when the excess reached 25 %; else its start), in minutes; negative when the window began before
  (a window is only complete ``freq`` later: ``alert_delay`` = window end minus visible time).
  **cause ok** when its ``Incident.cause`` names one of the kind's expected (column, direction) pairs
  (``scenario_gen.EXPECTED_CAUSE``: outages "clicks LOW", tracking loss "users LOW", bot flood clicks or
  residual HIGH, page storm users or clicks HIGH, broken page urls or clicks LOW, ramp clicks or users
  HIGH); **cause consistent** also accepts the residual signatures and other pairs in
  ``scenario_gen.CONSISTENT_CAUSE`` (tracking loss residual HIGH, page storm residual LOW, outages users
  LOW, ...). **rank**: its position in ``DetectionResult.incidents`` (confirmed first, most severe first).
* a reported incident is **false** when it overlaps no injected ``[start - grace, end + grace)`` and
  starts after the first day (the detectors' history); false incidents per day divide by the days after
  the first.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import markdown_table, write_markdown  # noqa: E402
from scenario_gen import KINDS, Scenario, generate_scenario, write_scenario  # noqa: E402

from clickstream_anomaly.detectors import DETECTOR_NAMES, ContextRCFDetector, build_detectors  # noqa: E402
from clickstream_anomaly.features import PageCounts, windows_from_frame  # noqa: E402
from clickstream_anomaly.workflow import run_detection  # noqa: E402

FREQ = pd.Timedelta("10min")
CAUSE_RE = re.compile(r"\b(urls|users|clicks|residual)\s+(HIGH|LOW)\b")
OUTAGE_MINUTES = 20
RAMP_MINUTES = 30


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ detector sets


def default_detectors() -> list[str]:
    """The CLI's default ``--detectors`` (read from its parser, so it follows the CLI), else DETECTOR_NAMES."""
    try:
        from clickstream_anomaly.cli.detect import add_detection_options

        p = argparse.ArgumentParser()
        add_detection_options(p)
        value = p.get_default("detectors")
        names = [n.strip() for n in str(value).split(",") if n.strip()]
        if names:
            return names
    except Exception:
        pass
    return [str(n) for n in DETECTOR_NAMES]


def parse_sets(values: Sequence[str] | None) -> list[list[str]]:
    """``--detectors`` values -> detector sets: ``;`` separates sets, ``,`` names, ``default`` expands."""
    raw = list(values) if values else ["default"]
    sets: list[list[str]] = []
    for value in raw:
        for part in value.split(";"):
            names: list[str] = []
            for name in (n.strip() for n in part.split(",")):
                if not name:
                    continue
                for n in default_detectors() if name == "default" else [name]:
                    if n not in names:
                        names.append(n)
            if names and names not in sets:
                sets.append(names)
    if not sets:
        raise SystemExit("--detectors: no detector named")
    return sets


def make_detectors(
    names: Sequence[str],
    args: argparse.Namespace,
    start: pd.Timestamp | None = None,
    timezone: str = "UTC",
    pages: PageCounts | None = None,
) -> list:
    """``build_detectors(names, ...)`` with the CLI's overrides (``random_state``; the site's ``timezone``, as
    ``detect --timezone`` gives it; the clicks per page, as ``detect`` counts them from a click log; DeepAR
    epochs and, with ``--deepar-train-days``, training on the first days only so that it scores all the
    later ones)."""
    overrides: dict[str, dict[str, Any]] = {}
    for name in ("rcf-streaming", "rcf-batch", "deepar"):
        if name in names:
            overrides[name.replace("-", "_")] = {"random_state": args.detector_seed}
    for name in ("baseline", "baseline-pages", "rcf-context"):
        if name in names:
            overrides[name.replace("-", "_")] = {"timezone": timezone}
    if "baseline-pages" in names:
        overrides["baseline_pages"]["pages"] = pages
    if "deepar" in names and args.deepar_epochs is not None:
        overrides["deepar"]["epochs"] = args.deepar_epochs
    if "deepar" in names and args.deepar_train_days is not None and start is not None:
        overrides["deepar"]["train_until"] = start + pd.Timedelta(days=args.deepar_train_days)
    kwargs: dict[str, Any] = dict(overrides)
    if args.threshold is not None:
        kwargs["threshold"] = args.threshold
    variants = [n for n in names if n.startswith("rcf-context:")]  # the other ways of giving RCF context
    built = build_detectors([n for n in names if n not in variants], **kwargs)
    for name in variants:
        context = name.split(":", 1)[1]
        extra = {"threshold": args.threshold} if args.threshold is not None else {}
        built.append(ContextRCFDetector(context=context, timezone=timezone, **extra))
    return built


# ------------------------------------------------------------------------------------------------ scoring


def cause_pairs(cause: str) -> set[tuple[str, str]]:
    return {(m[1], m[2]) for m in CAUSE_RE.finditer(cause or "")}


def cause_matches(cause: str, expected: Sequence[tuple[str, str]]) -> bool:
    return bool(cause_pairs(cause) & set(expected))


@dataclass
class Reported:
    rank: int
    start: pd.Timestamp
    end: pd.Timestamp
    windows: list[pd.Timestamp]  # starts of its anomalous windows, sorted
    cause: str
    confirmed: bool
    severity: float
    detectors: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "windows": len(self.windows),
            "cause": self.cause,
            "confirmed": self.confirmed,
            "severity": round(self.severity, 4),
            "detectors": self.detectors,
        }


def _ts(value: str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def reported_incidents(incidents: Sequence) -> list[Reported]:
    out = []
    for rank, inc in enumerate(incidents, 1):
        wins = sorted({_ts(d.window.window_start) for d in inc.detections if d.is_anomaly})
        out.append(
            Reported(
                rank=rank,
                start=_ts(inc.start),
                end=_ts(inc.end),
                windows=wins,
                cause=str(inc.cause),
                confirmed=bool(inc.confirmed),
                severity=float(inc.severity),
                detectors=[str(d) for d in inc.detectors],
            )
        )
    return out


def score_scenario(
    scenario: Scenario,
    reported: Sequence[Reported],
    grace: pd.Timedelta,
    covered: Sequence[pd.Timestamp] | None = None,
) -> dict[str, Any]:
    """Per injected incident: found, delay, cause, confirmed, rank; plus the false incidents.

    ``covered``: starts of the windows the detectors gave a verdict on (default: all windows). A detector
    that scores only part of the data (DeepAR by default scores the last day) is charged for false incidents
    per covered day only, and incidents outside its cover are marked ``covered: false``."""
    rows = []
    tz = scenario.tz
    scored_from = scenario.start + pd.Timedelta(days=1)
    if covered is None:
        cover = pd.date_range(scenario.start.floor(FREQ), scenario.end - FREQ, freq=FREQ)
    else:
        cover = pd.DatetimeIndex(sorted({_ts(w) for w in covered}))
    for inc in scenario.incidents:
        lo, hi = inc.start, inc.end + grace
        best: tuple[pd.Timestamp, int, Reported] | None = None
        matches = []
        for rep in reported:
            hits = [w for w in rep.windows if w + FREQ > lo and w < hi]
            if hits:
                matches.append(rep)
                key = (hits[0], rep.rank, rep)
                if best is None or key[:2] < best[:2]:
                    best = key
        row: dict[str, Any] = {
            "scenario": scenario.name,
            "seed": scenario.seed,
            "level": scenario.level,
            **inc.to_dict(tz),
            "covered": bool(((cover < inc.end) & (cover + FREQ > inc.start)).any()),
            "found": best is not None,
        }
        if best is not None:
            first, _, rep = best
            row.update(
                delay_minutes=(first - inc.visible).total_seconds() / 60.0,
                alert_delay_minutes=(first + FREQ - inc.visible).total_seconds() / 60.0,
                cause_ok=cause_matches(rep.cause, inc.expected_cause),
                cause_ok_any=any(cause_matches(m.cause, inc.expected_cause) for m in matches),
                cause_consistent=cause_matches(rep.cause, inc.consistent_cause),
                confirmed=rep.confirmed,
                rank=rep.rank,
                matches=len(matches),
                reported=rep.to_dict(),
            )
        else:
            row.update(
                delay_minutes=None,
                alert_delay_minutes=None,
                cause_ok=False,
                cause_ok_any=False,
                cause_consistent=False,
                confirmed=False,
                rank=None,
                matches=0,
                reported=None,
            )
        rows.append(row)
    false = [
        rep
        for rep in reported
        if rep.start >= scored_from
        and not any(rep.start < i.end + grace and rep.end > i.start - grace for i in scenario.incidents)
    ]
    return {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "level": scenario.level,
        "clean": not scenario.incidents,
        "scored_days": float((cover >= scored_from).sum()) * FREQ.total_seconds() / 86400.0,
        "reported": len(reported),
        "incidents": rows,
        "false_incidents": [{**r.to_dict(), "local_start": r.start.tz_convert(tz).strftime("%a %H:%M")} for r in false],
    }


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def summarise(scored: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Summary figures of one detector set over all its scenarios."""
    incidents = [row for s in scored for row in s["incidents"]]
    by_kind = {}
    for kind in KINDS:
        rows = [r for r in incidents if r["kind"] == kind]
        if not rows:
            continue
        found = [r for r in rows if r["found"]]
        by_kind[kind] = {
            "injected": len(rows),
            "covered": sum(r["covered"] for r in rows),
            "found": len(found),
            "cause_ok": sum(r["cause_ok"] for r in found),
            "cause_consistent": sum(r["cause_consistent"] for r in found),
            "confirmed": sum(r["confirmed"] for r in found),
            "median_delay_minutes": _median([r["delay_minutes"] for r in found]),
            "by_level": {
                f"{lvl:g}": [sum(r["found"] for r in rows if r["level"] == lvl), sum(r["level"] == lvl for r in rows)]
                for lvl in sorted({r["level"] for r in rows})
            },
        }

    def within(kind: str, minutes: float, need_cause: bool) -> list[int]:
        rows = [r for r in incidents if r["kind"] == kind]
        ok = [r for r in rows if r["found"] and r["delay_minutes"] <= minutes and (r["cause_ok"] or not need_cause)]
        return [len(ok), len(rows)]

    def false_rates(group: list[dict[str, Any]]) -> dict[str, Any]:
        days = sum(s["scored_days"] for s in group)
        n = sum(len(s["false_incidents"]) for s in group)
        c = sum(sum(f["confirmed"] for f in s["false_incidents"]) for s in group)
        return {
            "scenarios": len(group),
            "scored_days": days,
            "false": n,
            "false_per_day": n / days if days else None,
            "false_confirmed": c,
            "false_confirmed_per_day": c / days if days else None,
        }

    mixed = [s for s in scored if not s["clean"]]
    clean = [s for s in scored if s["clean"]]
    levels = sorted({s["level"] for s in scored})
    return {
        "injected": len(incidents),
        "covered": sum(r["covered"] for r in incidents),
        "found": sum(r["found"] for r in incidents),
        "cause_ok": sum(r["found"] and r["cause_ok"] for r in incidents),
        "cause_consistent": sum(r["found"] and r["cause_consistent"] for r in incidents),
        "confirmed": sum(r["found"] and r["confirmed"] for r in incidents),
        "by_kind": by_kind,
        "full_outages_within_20min_clicks_low": within("full-outage", OUTAGE_MINUTES, True),
        "partial_outages_within_20min_clicks_low": within("partial-outage", OUTAGE_MINUTES, True),
        "ramps_within_30min_of_visible": within("slow-ramp", RAMP_MINUTES, False),
        "false_mixed": false_rates(mixed),
        "false_clean": false_rates(clean),
        "false_by_level": {
            f"{lvl:g}": {
                "mixed": false_rates([s for s in mixed if s["level"] == lvl]),
                "clean": false_rates([s for s in clean if s["level"] == lvl]),
            }
            for lvl in levels
        },
    }


# ------------------------------------------------------------------------------------------------ output


def _frac(pair: Sequence[int]) -> str:
    return f"{pair[0]}/{pair[1]}"


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


def report_set(
    label: str, run: dict[str, Any], per_incident: bool, cause_chars: int, heading: str = "##", fold: bool = False
) -> str:
    """One detector set's summary, tables and (``per_incident``) the row of every injected incident; ``heading``
    is the Markdown heading of the set, ``fold`` puts the per-incident table in a collapsed block (the docs)."""
    s = run["summary"]
    out = [f"{heading} Detectors: {label}", ""]
    fm, fc = s["false_mixed"], s["false_clean"]
    uncovered = s["injected"] - s["covered"]
    out += [
        f"- incidents found: {s['found']}/{s['injected']} (cause ok {s['cause_ok']}, consistent "
        f"{s['cause_consistent']}, confirmed {s['confirmed']})"
        + (f"; {uncovered} of them fall where these detectors give no verdict" if uncovered else ""),
        f"- full outages found within {OUTAGE_MINUTES} min with clicks LOW: "
        f"{_frac(s['full_outages_within_20min_clicks_low'])}; partial outages: "
        f"{_frac(s['partial_outages_within_20min_clicks_low'])}",
        f"- ramps reported within {RAMP_MINUTES} min of becoming visible: {_frac(s['ramps_within_30min_of_visible'])}",
        f"- false incidents per day (mixed scenarios): {_num(fm['false_per_day'])} ({fm['false']} in "
        f"{fm['scored_days']:.0f} days), confirmed: {_num(fm['false_confirmed_per_day'])} ({fm['false_confirmed']})",
        f"- false incidents per day (clean scenarios): {_num(fc['false_per_day'])} ({fc['false']} in "
        f"{fc['scored_days']:.0f} days), confirmed: {_num(fc['false_confirmed_per_day'])} ({fc['false_confirmed']})",
        f"- detection time: {run['seconds']:.0f} s",
        "",
    ]
    levels = sorted({lvl for k in s["by_kind"].values() for lvl in k["by_level"]}, key=float)
    rows = []
    for kind, k in s["by_kind"].items():
        rows.append(
            [
                kind,
                f"{k['found']}/{k['injected']}",
                k["covered"],
                k["cause_ok"],
                k["cause_consistent"],
                k["confirmed"],
                _num(k["median_delay_minutes"], "{:.0f}"),
                *[_frac(k["by_level"].get(lvl, [0, 0])) for lvl in levels],
            ]
        )
    out += [
        markdown_table(
            [
                "kind",
                "found",
                "scored",
                "cause ok",
                "cause consistent",
                "confirmed",
                "median delay (min)",
                *[f"found @{lvl}/min" for lvl in levels],
            ],
            rows,
        ),
        "",
    ]
    rows = []
    for lvl, v in s["false_by_level"].items():
        for kind in ("mixed", "clean"):
            f = v[kind]
            if f["scenarios"]:
                rows.append(
                    [lvl, kind, f"{f['scored_days']:.0f}", f["false"], _num(f["false_per_day"]), f["false_confirmed"]]
                )
    out += [
        markdown_table(["level (visits/min)", "scenario", "scored days", "false", "per day", "confirmed"], rows),
        "",
    ]
    if per_incident:
        rows = []
        for sc in run["scenarios"]:
            for r in sc["incidents"]:
                cause = (r["reported"] or {}).get("cause", "")
                if len(cause) > cause_chars:
                    cause = cause[: cause_chars - 1] + "…"
                rows.append(
                    [
                        sc["scenario"],
                        r["kind"],
                        r.get("local_start", "")[:3] + r.get("local_start", "")[14:],
                        r["band"],
                        f"{r['duration_minutes']:.0f}",
                        "found" if r["found"] else "missed" if r["covered"] else "not scored",
                        _num(r["delay_minutes"], "{:.0f}"),
                        ("yes" if r["cause_ok"] else "no") if r["found"] else "",
                        ("yes" if r["confirmed"] else "no") if r["found"] else "",
                        r["rank"] or "",
                        cause,
                    ]
                )
        table = markdown_table(
            [
                "scenario",
                "kind",
                "start (local)",
                "band",
                "min",
                "result",
                "delay",
                "cause ok",
                "confirmed",
                "rank",
                "reported cause",
            ],
            rows,
        )
        if fold:  # pymdownx.details: a collapsed block, its body indented
            table = f'??? note "Every injected incident ({len(rows)})"\n\n' + "\n".join(
                "    " + line for line in table.splitlines()
            )
        out += [table, ""]
    return "\n".join(out)


def comparison(runs: dict[str, dict[str, Any]]) -> str:
    rows = []
    for label, run in runs.items():
        s = run["summary"]
        rows.append(
            [
                label,
                f"{s['found']}/{s['injected']}",
                s["cause_ok"],
                s["cause_consistent"],
                _frac(s["full_outages_within_20min_clicks_low"]),
                _frac(s["ramps_within_30min_of_visible"]),
                _num(s["false_mixed"]["false_per_day"]),
                _num(s["false_mixed"]["false_confirmed_per_day"]),
                _num(s["false_clean"]["false_per_day"]),
                _num(s["false_clean"]["false_confirmed_per_day"]),
                f"{run['seconds']:.0f}",
            ]
        )
    return markdown_table(
        [
            "detectors",
            "found",
            "cause ok",
            "cause consistent",
            f"outages ≤{OUTAGE_MINUTES} min, clicks LOW",
            f"ramps ≤{RAMP_MINUTES} min",
            "false/day",
            "confirmed false/day",
            "false/day clean",
            "confirmed false/day clean",
            "seconds",
        ],
        rows,
    )


# --------------------------------------------------------------------------------------------------- main


def labels_frame(scenario: Scenario) -> pd.DataFrame:
    """The CLI's labels CSV shape (``window_start, is_anomaly, incident``) for ``detect --labels``."""
    starts = pd.date_range(scenario.start.floor(FREQ), scenario.end - FREQ, freq=FREQ)
    kind = np.full(len(starts), "", dtype=object)
    for inc in scenario.incidents:
        kind[(starts < inc.end) & (starts + FREQ > inc.start)] = inc.kind
    return pd.DataFrame(
        {
            "window_start": starts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "is_anomaly": (kind != "").astype(int),
            "incident": kind,
        }
    )


@dataclass
class Prepared:
    scenario: Scenario
    windows: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    pages: PageCounts = field(default_factory=PageCounts)


def prepare(seed: int, level: float, days: int, clean: bool, write_dir: Path | None) -> Prepared:
    t0 = time.perf_counter()
    sc = generate_scenario(seed, level, days, clean=clean)
    t1 = time.perf_counter()
    pages = PageCounts()
    windows = windows_from_frame(sc.clicks, start=sc.start, end=sc.end - FREQ, pages=pages)
    t2 = time.perf_counter()
    if write_dir is not None:
        folder = write_scenario(sc, write_dir / sc.name)
        labels_frame(sc).to_csv(folder / "labels.csv", index=False)
    seconds = {"generate": t1 - t0, "windows": t2 - t1}
    log(
        f"[{sc.name}] {len(sc.clicks):,} clicks, {len(windows)} windows, {len(sc.incidents)} incidents, "
        f"{sc.tz}, start {sc.start.tz_convert(sc.tz):%a %Y-%m-%d} (generate {seconds['generate']:.1f} s, "
        f"windows {seconds['windows']:.1f} s)"
    )
    n_clicks = len(sc.clicks)
    sc.clicks = sc.clicks.iloc[:0]  # keep memory low: only windows are needed from here
    prepared = Prepared(sc, windows, seconds, pages)
    prepared.seconds["clicks"] = n_clicks
    return prepared


def _check_sets(sets: Sequence[list[str]], args: argparse.Namespace) -> None:
    """Fail early (``SystemExit``) on a detector set ``make_detectors`` refuses."""
    for names in sets:
        try:
            make_detectors(names, args)
        except (ValueError, TypeError) as exc:
            raise SystemExit(f"--detectors {','.join(names)}: {exc}") from exc


def _run_set(prep: Prepared, names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """One detector set on one prepared scenario: :func:`score_scenario`'s row, with its ``seconds``."""
    t0 = time.perf_counter()
    tz = prep.scenario.tz
    detectors = make_detectors(names, args, prep.scenario.start, tz, prep.pages)
    result = run_detection(prep.windows, detectors, timezone=tz)
    dt = time.perf_counter() - t0
    dets = getattr(result, "detections", None)
    covered = [d.window.window_start for d in dets] if dets is not None else None
    scored = score_scenario(
        prep.scenario,
        reported_incidents(result.incidents),
        pd.Timedelta(minutes=args.grace),
        covered,
    )
    scored["seconds"] = dt
    return scored


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="scenario seeds (default 0 1 2)")
    p.add_argument("--levels", type=float, nargs="+", default=None, help="peak visits per minute (default 3 12 40)")
    p.add_argument("--days", type=int, default=None, help="days per scenario (default 10; --quick: 4)")
    p.add_argument(
        "--detectors",
        action="append",
        default=None,
        help="detector set: comma-separated names as build_detectors accepts them, 'default' = the CLI's "
        "default set, rcf-context:baseline or rcf-context:shingle = rcf-context with that context; several "
        "sets separated by ';' or repeated flags, each run separately (default: default)",
    )
    p.add_argument("--no-clean", action="store_true", help="skip the clean (no incident) scenarios")
    p.add_argument("--no-mixed", action="store_true", help="skip the scenarios with incidents")
    p.add_argument("--grace", type=float, default=30.0, help="minutes around an incident that are not false (30)")
    p.add_argument("--threshold", default=None, help="threshold rule passed to build_detectors (default: its own)")
    p.add_argument("--detector-seed", type=int, default=0, help="random_state of the RCF/DeepAR detectors (0)")
    p.add_argument("--deepar-epochs", type=int, default=None, help="DeepAR epochs (default: the detector's)")
    p.add_argument(
        "--deepar-train-days",
        type=float,
        default=None,
        help="train DeepAR on the first N days and score the rest (default: the detector's own split, "
        "all but the last day, so it scores only the last day, as the CLI runs it)",
    )
    p.add_argument("--json", type=Path, default=None, help="write every figure and row to this JSON file")
    p.add_argument(
        "--write-scenarios",
        type=Path,
        default=None,
        metavar="DIR",
        help="save each scenario as DIR/NAME/clicks.csv, incidents.json, labels.csv",
    )
    p.add_argument("--no-incident-table", action="store_true", help="print the summaries only")
    p.add_argument("--cause-chars", type=int, default=80, help="cause text width in the per-incident table")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 1 level (12), 4 days")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="also write the tables to docs/benchmarks/scenarios.md (bench/report.py)",
    )
    args = p.parse_args(argv)

    levels = args.levels or [3.0, 12.0, 40.0]
    seeds = args.seeds
    days = args.days or 10
    if args.quick:
        seeds = seeds[:1]
        levels = args.levels[:1] if args.levels else [12.0]
        days = args.days or 4
    sets = parse_sets(args.detectors)
    _check_sets(sets, args)
    kinds = [False] * (not args.no_mixed) + [True] * (not args.no_clean)
    if not kinds:
        raise SystemExit("--no-clean and --no-mixed leave nothing to run")
    labels = {",".join(n): n for n in sets}
    log(f"detector sets: {' ; '.join(labels)}; seeds {seeds}; levels {levels}; {days} days")

    t_start = time.perf_counter()
    runs: dict[str, dict[str, Any]] = {
        label: {"detectors": names, "scenarios": [], "seconds": 0.0} for label, names in labels.items()
    }
    metas = []
    for seed in seeds:
        for level in levels:
            for clean in kinds:
                prep = prepare(seed, level, days, clean, args.write_scenarios)
                metas.append({**prep.scenario.meta(), "clicks": prep.seconds["clicks"], "seconds": prep.seconds})
                for label, names in labels.items():
                    scored = _run_set(prep, names, args)
                    runs[label]["scenarios"].append(scored)
                    runs[label]["seconds"] += scored["seconds"]
                    found = sum(r["found"] for r in scored["incidents"])
                    log(
                        f"  {label}: {scored['seconds']:.1f} s, {scored['reported']} reported, found {found}/"
                        f"{len(scored['incidents'])}, false {len(scored['false_incidents'])}"
                    )
    for run in runs.values():
        run["summary"] = summarise(run["scenarios"])
    total = time.perf_counter() - t_start

    what = " + ".join(["clean" if c else "mixed" for c in kinds])
    intro = (
        f"seeds {' '.join(map(str, seeds))}; levels {' '.join(f'{lvl:g}' for lvl in levels)} peak visits/min; "
        f"{days} days per scenario; {what} scenarios; grace {args.grace:g} min; run time {total:.0f} s\n"
    )
    print("# Scenario backtest\n")
    print(intro)
    print(comparison(runs) + "\n")
    for label, run in runs.items():
        print(report_set(label, run, not args.no_incident_table, args.cause_chars))
    if args.markdown:
        sets = [
            report_set(lb, r, not args.no_incident_table, args.cause_chars, "###", fold=True) for lb, r in runs.items()
        ]
        write_markdown("scenarios", "\n".join([intro, comparison(runs), "", *sets]), argv=argv, seconds=total)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "config": {
                "seeds": seeds,
                "levels": levels,
                "days": days,
                "grace_minutes": args.grace,
                "threshold": args.threshold,
                "detector_seed": args.detector_seed,
                "deepar_epochs": args.deepar_epochs,
                "deepar_train_days": args.deepar_train_days,
                "sets": list(labels),
            },
            "scenarios": metas,
            "runs": runs,
            "seconds": total,
        }
        args.json.write_text(json.dumps(payload, indent=1, default=str) + "\n")
        log(f"wrote {args.json}")
    log(f"done in {total:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
