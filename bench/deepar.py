"""DeepAR (numpy) forecast band against a seasonal-naive forecaster: rolling day-ahead forecasts.

Two data sets, each run per seed:

* ``clean``: 14 days of 10-minute click counts from 2020-07-07, Poisson around the generator's daily
  profile (400 clicks per window at the afternoon peak, 45 at night) with weekends at 0.8 (the seed
  draws the counts). DeepAR, with the detector's settings, is trained on the first 8 days; then each of
  days 9-14 is forecast through the SageMaker request format (``predict``, 1000 sample paths,
  quantiles 0.01/0.1/0.5/0.9/0.99) from the observed history before it, one trained model throughout.
* ``blog``: the blog scenario exactly as ``make demo`` makes it (``generate(Scenario(seed=0))``, 9 days,
  outage 07-15 17:30, user miscount 07-15 10:10-11:20) through ``DeepARDetector().detect(windows)``, as
  ``detect`` runs it: trained on the first 7 days, 07-14 and 07-15 scored block by block. The seed is
  the detector's ``random_state``.

Seasonal naive, fitted in the same run: the value one day earlier plus the empirical quantiles of the
day-over-day differences of the training days.

Metrics: mean weighted quantile loss at 0.1/0.5/0.9 (SageMaker's ``test:mean_wQuantileLoss``,
``2 sum |QL_q| / sum |y|``), averaged over the forecast days, and its ratio to seasonal naive's (also
over the weekdays Wed-Fri alone, and for day 9 alone); coverage of the [0.01, 0.99] band (blog: over
the unlabelled windows); training seconds (wall clock of ``train``, calibration included); on the blog
day the outage's verdict and cause, the lowest p01, and false alarms (unlabelled windows outside).

``--retrain`` adds, for ``clean``, the alternative to one model with a growing history: a model trained
from scratch before every forecast day on all days before it (cost and quantile loss).

Run: ``.venv/bin/python bench/deepar.py [--seeds 0 1 2] [--only clean|blog] [--retrain]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import write_markdown

from clickstream_anomaly.deepar import DeepARPredictor
from clickstream_anomaly.detectors import DeepARDetector
from clickstream_anomaly.features import windows_from_frame
from clickstream_anomaly.generator import Scenario, daily_profile, generate
from clickstream_anomaly.incidents import group_incidents
from clickstream_anomaly.sagemaker_formats import deepar_record, deepar_request, parse_deepar_response
from clickstream_anomaly.windowspec import WindowSpec

DAY = 144
TAUS = (0.1, 0.5, 0.9)
CLEAN_DAYS, CLEAN_TRAIN = 14, 8
WEEKDAYS = (0, 1, 2)  # forecast days 9-11 of the clean series: Wed-Fri 07-15..07-17


def weighted_quantile_loss(q_forecast: np.ndarray, y: np.ndarray, tau: float) -> float:
    diff = y - q_forecast
    return float(2.0 * np.sum(np.maximum(tau * diff, (tau - 1.0) * diff)) / np.sum(np.abs(y)))


def mean_wql(quantiles: dict[float, np.ndarray], y: np.ndarray) -> float:
    return float(np.mean([weighted_quantile_loss(quantiles[t], y, t) for t in TAUS]))


class SeasonalNaive:
    """Yesterday's value plus the empirical quantiles of day-over-day differences."""

    def fit(self, y: np.ndarray) -> SeasonalNaive:
        self.residuals = y[DAY:] - y[:-DAY]
        return self

    def quantiles(self, yesterday: np.ndarray, taus: Sequence[float]) -> dict[float, np.ndarray]:
        return {t: yesterday + np.quantile(self.residuals, t) for t in taus}


def clean_series(seed: int) -> pd.DataFrame:
    """The ``clean`` windows (only ``clicks`` is meaningful)."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range("2020-07-07", periods=CLEAN_DAYS * DAY, freq="10min", tz="UTC")
    hour = starts.hour.to_numpy() + (starts.minute.to_numpy() + 5) / 60.0
    rate = 400.0 * daily_profile(hour) / daily_profile(np.array([15.0]))[0]
    rate = rate * np.where(starts.day_of_week.to_numpy() >= 5, 0.8, 1.0)
    clicks = rng.poisson(rate).astype("int64")
    frame = pd.DataFrame({"window_start": starts, "urls": 0, "users": 0, "clicks": clicks, "residual": 0.0})
    return WindowSpec.parse("10min").attach(frame)


def forecast_day(predictor: DeepARPredictor, start: pd.Timestamp, history: np.ndarray) -> dict[float, np.ndarray]:
    """The next day's quantiles through the SageMaker request and response bodies."""
    levels = (*TAUS, 0.01, 0.99)
    request = deepar_request(
        [deepar_record(start, history)], num_samples=1000, output_types=("quantiles",), quantiles=levels
    )
    q = parse_deepar_response(predictor.predict(request))[0]["quantiles"]
    return {t: q[f"{t:g}"] for t in levels}


def train(windows: pd.DataFrame, seed: int) -> tuple[DeepARPredictor, float]:
    detector = DeepARDetector(random_state=seed)
    t0 = time.perf_counter()
    detector.fit(windows)
    return detector.model_, time.perf_counter() - t0


def clean_run(seed: int, retrain: bool) -> list[dict]:
    windows = clean_series(seed)
    y = windows["clicks"].to_numpy(dtype="float64")
    start = windows["window_start"].iloc[0]
    predictor, fit_s = train(windows.iloc[: CLEAN_TRAIN * DAY], seed)
    naive = SeasonalNaive().fit(y[: CLEAN_TRAIN * DAY])
    rows = []
    for mode in ("one model", "retrain per day") if retrain else ("one model",):
        wql, base, covered, seconds = [], [], [], [fit_s]
        for d in range(CLEAN_TRAIN, CLEAN_DAYS):
            if mode == "retrain per day" and d > CLEAN_TRAIN:
                predictor, s = train(windows.iloc[: d * DAY], seed)
                seconds.append(s)
            truth = y[d * DAY : (d + 1) * DAY]
            q = forecast_day(predictor, start, y[: d * DAY])
            wql.append(mean_wql(q, truth))
            base.append(mean_wql(naive.quantiles(y[(d - 1) * DAY : d * DAY], TAUS), truth))
            covered.append((truth >= q[0.01]) & (truth <= q[0.99]))
        res = predictor.training
        ratio = np.asarray(wql) / np.asarray(base)
        rows.append(
            {
                "data": "clean",
                "mode": mode,
                "seed": seed,
                "train s": float(np.sum(seconds)),
                "epochs (best)": f"{res.epochs_run} ({res.best_epoch + 1})",
                "factor": predictor.calibration.low,
                "wQL": float(np.mean(wql)),
                "naive wQL": float(np.mean(base)),
                "ratio": float(np.mean(wql) / np.mean(base)),
                "ratio Wed-Fri": float(
                    np.mean(np.asarray(wql)[list(WEEKDAYS)]) / np.mean(np.asarray(base)[list(WEEKDAYS)])
                ),
                "ratio day 9": float(ratio[0]),
                "coverage": float(np.concatenate(covered).mean()),
            }
        )
    return rows


def blog_run(seed: int) -> dict:
    clicks, labels = generate(Scenario(seed=0))
    windows = windows_from_frame(clicks)
    y = windows["clicks"].to_numpy(dtype="float64")
    detector = DeepARDetector(random_state=seed)
    t0 = time.perf_counter()
    dets = detector.detect(windows)
    detect_s = time.perf_counter() - t0
    first = len(windows) - len(dets)
    lab = labels["incident"].to_numpy()[first:]
    flagged = np.asarray([d.is_anomaly for d in dets])
    inside = ~flagged
    clean = lab == ""
    naive = SeasonalNaive().fit(y[:first])
    start = windows["window_start"].iloc[0]
    wql, base = [], []
    for b in range(first, len(y), DAY):  # the detector's blocks, forecast again for the 0.1/0.9 quantiles
        truth = y[b : b + DAY]
        wql.append(mean_wql(forecast_day(detector.model_, start, y[:b]), truth))
        base.append(mean_wql(naive.quantiles(y[b - DAY : b], TAUS), truth))
    outage = [d for d, k in zip(dets, lab, strict=True) if k == "outage"]
    incident = group_incidents(outage)[0] if outage and outage[0].is_anomaly else None
    return {
        "data": "blog (demo data)",
        "mode": "detect",
        "seed": seed,
        "train s": float(detect_s),
        "epochs (best)": f"{detector.model_.training.epochs_run} ({detector.model_.training.best_epoch + 1})",
        "factor": detector.model_.calibration.low,
        "wQL": float(np.mean(wql)),
        "naive wQL": float(np.mean(base)),
        "ratio": float(np.mean(wql) / np.mean(base)),
        "coverage": float(inside[clean].mean()),
        "false alarms": int(flagged[clean].sum()),
        "min p01": float(min(d.p01 for d in dets)),
        "outage": incident.cause if incident is not None else "missed",
    }


def markdown(table: pd.DataFrame) -> str:
    """A frame as a Markdown table (floats to 3 decimals)."""

    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=("clean", "blog"), default=None)
    parser.add_argument("--retrain", action="store_true", help="also retrain before every clean forecast day")
    parser.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/deepar.md")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    d = DeepARDetector()
    out: list[str] = []
    out.append(
        f"DeepARDetector defaults: likelihood={d.likelihood} epochs<={d.epochs} patience={d.early_stopping_patience} "
        f"num_cells={d.num_cells} num_layers={d.num_layers} batch={d.mini_batch_size} lr={d.learning_rate} "
        f"dropout={d.dropout_rate} calibration_level={d.calibration_level} band_samples={d.num_samples} "
        f"cpus={os.cpu_count()}"
    )
    if args.only in (None, "clean"):
        rows = [r for seed in args.seeds for r in clean_run(seed, args.retrain)]
        out += ["", "### Clean daily/weekly Poisson series", "", markdown(pd.DataFrame(rows))]
    if args.only in (None, "blog"):
        out += ["", "### The demo's data", "", markdown(pd.DataFrame([blog_run(seed) for seed in args.seeds]))]
    text = "\n".join(out)
    print(text)
    if args.markdown:
        write_markdown("deepar", text, argv=argv, seconds=time.perf_counter() - t_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
