"""CLI smoke runs: generate, features (with --skip-bad), demo, errors as exit code 2."""

import subprocess
import sys

import pandas as pd

from clickstream_anomaly.cli import main


def test_generate_then_features(tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "-o",
                str(tmp_path),
                "--days",
                "1",
                "--start",
                "2020-07-15",
                "--incident",
                "bot-flood@2020-07-15T14:00+20min",
            ]
        )
        == 0
    )
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert labels["incident"].fillna("").str.contains("bot-flood").sum() == 2
    assert main(["features", str(tmp_path / "clicks.csv"), "-o", str(tmp_path / "w.csv")]) == 0
    w = pd.read_csv(tmp_path / "w.csv")
    assert len(w) == 144 and w.loc[w["window_start"] == "2020-07-15T17:30:00Z", "clicks"].item() == 0


def test_features_bad_input_exit_code_and_skip_bad(tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("timestamp,user,page\n2020-07-07T00:00:00Z,a,/\nnot-a-time,b,/\n")
    assert main(["features", str(path), "-o", str(tmp_path / "w.csv")]) == 2
    assert f"{path}:3: bad timestamp" in capsys.readouterr().err
    rc = main(
        ["features", str(path), "-o", str(tmp_path / "w.csv"), "--skip-bad", "--rejects", str(tmp_path / "rej.csv")]
    )
    assert rc == 0
    assert "skipped 1 bad line(s)" in capsys.readouterr().err
    assert "not-a-time" in (tmp_path / "rej.csv").read_text()


def test_module_entry_point_and_help():
    out = subprocess.run(
        [sys.executable, "-m", "clickstream_anomaly", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("generate", "features", "demo"):
        assert command in out.stdout
