"""DeepAR (numpy) against a seasonal-naive forecaster on the default clickstream scenario.

Data: ``generate(Scenario())`` -> 10-minute windows; train on the first 7 days (1008 windows), forecast the
next day (07-14, clean) with ``context_length = prediction_length = 144``, then score 07-15 (the blog's
incident day: user miscount 10:10-11:20, outage 17:30-17:40), conditioned on the observed 07-14.

Seasonal naive, fitted in the same run: the value one day earlier plus the empirical quantiles of the
day-over-day differences of the training week.

Metrics per forecaster: mean weighted quantile loss at 0.1/0.5/0.9 on the clean day (SageMaker's
``test:mean_wQuantileLoss``: ``2 sum |QL_q| / sum |y|``, averaged over q), coverage of the [0.01, 0.99]
band on the clean day, and on the incident day whether the outage windows fall outside the band and how
many other unlabelled windows do (false alarms). Training time is wall-clock seconds of ``fit``.

DeepAR settings (defaults): 1 layer, 40 cells, batch 32, learning rate 5e-4, student-T, zoneout 0.1,
at most 60 epochs with ``early_stopping_patience=5`` (the last training day held out), and the forecast
spread calibrated on that held-out day at level 0.98 (``calibration_level``; ``--calibration-level 0``
gives the raw DeepAR band). The "band factor" column is the fitted ``calibration_factor_``.

Run: ``.venv/bin/python bench/deepar.py [--epochs 60] [--patience 5] [--likelihood student-T]
[--calibration-level 0.98] [--seeds 0 1 2]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clickstream_anomaly.deepar import DeepAR, forecast_band_detections
from clickstream_anomaly.features import windows_from_frame
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.sagemaker_formats import deepar_request, parse_deepar_response, series_from_windows

DAY = 144
QUANTILES = (0.1, 0.5, 0.9)


def weighted_quantile_loss(q_forecast: np.ndarray, y: np.ndarray, tau: float) -> float:
    diff = y - q_forecast
    return float(2.0 * np.sum(np.maximum(tau * diff, (tau - 1.0) * diff)) / np.sum(np.abs(y)))


class SeasonalNaive:
    """Yesterday's value plus the empirical quantiles of day-over-day differences."""

    def fit(self, y: np.ndarray) -> SeasonalNaive:
        self.residuals = y[DAY:] - y[:-DAY]
        return self

    def quantiles(self, yesterday: np.ndarray, taus) -> np.ndarray:
        return yesterday[None, :] + np.quantile(self.residuals, list(taus))[:, None]


def incident_stats(flagged: np.ndarray, labels: pd.DataFrame) -> tuple[str, int, int]:
    outage = (labels["incident"] == "outage").to_numpy()
    other = (labels["incident"] == "").to_numpy()
    miscount = (labels["incident"] == "user-miscount").to_numpy()
    return (
        f"{int(flagged[outage].sum())}/{int(outage.sum())}",
        int(flagged[other].sum()),
        int(flagged[miscount].sum()),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--likelihood", default="student-T")
    parser.add_argument("--patience", type=int, default=5, help="early_stopping_patience (0: off)")
    parser.add_argument("--num-cells", type=int, default=40)
    parser.add_argument("--num-layers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--band-samples", type=int, default=1000, help="sample paths for quantiles")
    parser.add_argument(
        "--calibration-level",
        type=float,
        default=0.98,
        help="calibration_level of the forecast spread (0: off, the raw DeepAR band)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)

    clicks, labels = generate(Scenario())
    windows = windows_from_frame(clicks)
    y = windows["clicks"].to_numpy(dtype="float64")
    train, clean, incident = windows.iloc[: 7 * DAY], y[7 * DAY : 8 * DAY], y[8 * DAY : 9 * DAY]
    inc_labels = labels.iloc[8 * DAY : 9 * DAY].reset_index(drop=True)
    assert (labels["window_start"].iloc[: 9 * DAY].to_numpy() == windows["window_start"].to_numpy()).all()

    rows = []
    t0 = time.perf_counter()
    naive = SeasonalNaive().fit(y[: 7 * DAY])
    fit_naive = time.perf_counter() - t0
    qn = naive.quantiles(y[6 * DAY : 7 * DAY], QUANTILES)
    bn = naive.quantiles(y[6 * DAY : 7 * DAY], (0.01, 0.99))
    bi = naive.quantiles(clean, (0.01, 0.99))
    flagged = (incident < bi[0]) | (incident > bi[1])
    rows.append(
        {
            "forecaster": "seasonal naive",
            "seed": "-",
            "train s": fit_naive,
            "epochs run": "-",
            "best epoch": "-",
            "band factor": "-",
            "wQL 0.1/0.5/0.9": np.mean([weighted_quantile_loss(qn[i], clean, t) for i, t in enumerate(QUANTILES)]),
            "coverage [0.01,0.99]": float(np.mean((clean >= bn[0]) & (clean <= bn[1]))),
            **dict(
                zip(
                    ("outage outside", "false alarms", "miscount flagged"),
                    incident_stats(flagged, inc_labels),
                    strict=True,
                )
            ),
        }
    )

    record = series_from_windows(train)
    for seed in args.seeds:
        model = DeepAR(
            context_length=DAY,
            prediction_length=DAY,
            time_freq="10min",
            epochs=args.epochs,
            num_cells=args.num_cells,
            num_layers=args.num_layers,
            likelihood=args.likelihood,
            dropout_rate=args.dropout,
            learning_rate=args.learning_rate,
            mini_batch_size=args.batch,
            num_eval_samples=200,
            random_state=seed,
            early_stopping_patience=args.patience or None,
            calibration_level=args.calibration_level or None,
        )
        t0 = time.perf_counter()
        model.fit([record])
        fit_s = time.perf_counter() - t0
        request = deepar_request(
            [record], num_samples=args.band_samples, output_types=("quantiles",), quantiles=(*QUANTILES, 0.01, 0.99)
        )
        pred = parse_deepar_response(model.predict(request))[0]["quantiles"]
        wql = np.mean([weighted_quantile_loss(pred[f"{t:g}"], clean, t) for t in QUANTILES])
        cov = float(np.mean((clean >= pred["0.01"]) & (clean <= pred["0.99"])))
        dets = forecast_band_detections(windows.iloc[7 * DAY : 9 * DAY], model, num_samples=args.band_samples)
        flagged = np.asarray([d.is_anomaly for d in dets[DAY:]])
        clean_flags = [
            (d.window.window_start.strftime("%m-%d %H:%M"), d.window.clicks, round(d.p01), round(d.p99))
            for d in dets
            if d.is_anomaly
        ]
        res = model.result_
        rows.append(
            {
                "forecaster": f"DeepAR numpy ({args.likelihood})",
                "seed": seed,
                "train s": fit_s,
                "epochs run": res.epochs_run,
                "best epoch": res.best_epoch + 1 if res.val_loss else "-",
                "band factor": model.calibration_factor_,
                "wQL 0.1/0.5/0.9": wql,
                "coverage [0.01,0.99]": cov,
                **dict(
                    zip(
                        ("outage outside", "false alarms", "miscount flagged"),
                        incident_stats(flagged, inc_labels),
                        strict=True,
                    )
                ),
            }
        )
        print(
            f"seed {seed}: final train loss {model.train_loss_[-1]:.3f}; flagged (window, clicks, p01, p99): "
            f"{clean_flags}",
            file=sys.stderr,
        )

    table = pd.DataFrame(rows)
    print(
        f"epochs<={args.epochs} patience={args.patience} num_cells={args.num_cells} "
        f"num_layers={args.num_layers} batch={args.batch} lr={args.learning_rate} dropout={args.dropout} "
        f"calibration_level={args.calibration_level or None} band_samples={args.band_samples} "
        f"cpus={os.cpu_count()}"
    )
    print(markdown(table))
    return 0


def markdown(table: pd.DataFrame) -> str:
    """A frame as a Markdown table (floats to 3 decimals)."""

    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
