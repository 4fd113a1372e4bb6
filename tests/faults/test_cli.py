"""CLI rough edges (issue #14): no traceback for a user error, exit 2 and a message naming the file, line or
flag; windows CSVs checked row by row; a cap on the windows a mis-dated click would make."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from clickstream_anomaly.cli import main
from clickstream_anomaly.features import windows_from_frame, write_windows
from clickstream_anomaly.generator import Scenario, generate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def windows_csv(tmp_path_factory) -> Path:
    clicks, _ = generate(Scenario(start="2020-07-14 00:00", days=5, volume=0.2, seed=3))
    path = tmp_path_factory.mktemp("cli") / "windows.csv"
    write_windows(windows_from_frame(clicks), path)
    return path


def rows(path: Path) -> tuple[list[str], list[list[str]]]:
    header, *body = list(csv.reader(path.open()))
    return header, body


def write(path: Path, header: list[str], body: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *body]) + "\n")
    return path


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "afile"
    path.write_text("not a folder")
    return path


def test_outputs_pointing_at_a_file_or_under_a_file_exit_2_naming_the_path(tmp_path, windows_csv, a_file, capsys):
    """Before: FileExistsError / NotADirectoryError tracebacks (exit 1)."""
    clicks = tmp_path / "clicks.csv"
    clicks.write_text("timestamp,user,page\n2020-07-14T00:00:00Z,u,/\n")
    cases = [
        ["detect", str(windows_csv), "-o", str(a_file), "--quiet", "--no-report", "--detectors", "baseline"],
        ["detect", str(windows_csv), "-o", str(a_file / "sub"), "--quiet", "--no-report", "--detectors", "baseline"],
        ["features", str(clicks), "-o", str(a_file / "w.csv"), "--quiet"],
        ["sagemaker", "prepare", "--input", str(windows_csv), "--output-dir", str(a_file / "x"), "--no-deepar"],
        ["sagemaker", "train", "rcf", "--local", "--input", str(windows_csv), "--model-dir", str(a_file / "m")],
        ["sagemaker", "train", "rcf", "--local", "--input", str(windows_csv), "--model-dir", str(a_file)],
    ]
    for argv in cases:
        code, err = run(argv, capsys)
        assert code == 2, argv
        assert str(a_file) in err and "error:" in err, (argv, err)


def test_detectors_naming_no_detector_is_a_user_error(tmp_path, windows_csv, capsys):
    code, err = run(["detect", str(windows_csv), "-o", str(tmp_path / "o"), "--detectors", ",", "--quiet"], capsys)
    assert code == 2 and "--detectors" in err


def test_a_windows_csv_that_is_not_utf8_names_the_line_and_skip_bad_skips_it(tmp_path, windows_csv, capsys):
    """Before: "'utf-8' codec can't decode byte 0xff", no file or line, and --skip-bad did not skip it."""
    header, body = rows(windows_csv)
    path = write(tmp_path / "w.csv", header, body[:40])
    lines = path.read_bytes().split(b"\n")
    lines[6] = lines[6].replace(b",", b",\xff", 1)
    path.write_bytes(b"\n".join(lines))
    out = tmp_path / "o"
    code, err = run(["detect", str(path), "-o", str(out), "--quiet", "--no-report", "--detectors", "baseline"], capsys)
    assert code == 2 and f"{path}:7: not UTF-8" in err
    argv = ["detect", str(path), "-o", str(out), "--no-report", "--detectors", "baseline", "--skip-bad"]
    code, err = run(argv, capsys)
    assert code == 0 and "skipped 1 bad line(s)" in err
    assert len(rows(out / "detections.csv")[1]) == 39


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: [r[0], r[1], r[2], "inf", r[4]], "clicks 'inf' out of range"),
        (lambda r: [r[0], r[1], r[2], "1e300", r[4]], "clicks '1e300' out of range"),
        (lambda r: [r[0], r[1], "-3", r[3], r[4]], "negative users '-3'"),
        (lambda r: [r[0], "2.5", r[2], r[3], r[4]], "fractional urls '2.5'"),
    ],
)
def test_bad_values_in_a_windows_csv_name_their_line(tmp_path, windows_csv, capsys, change, reason):
    """Before: inf and 1e300 failed later with no line number; negative and fractional counts were accepted."""
    header, body = rows(windows_csv)
    body = body[:30]
    body[9] = change(body[9])
    path = write(tmp_path / "w.csv", header, body)
    argv = ["detect", str(path), "-o", str(tmp_path / "o"), "--quiet", "--no-report", "--detectors", "baseline"]
    code, err = run(argv, capsys)
    assert code == 2 and f"{path}:11:" in err and reason in err, err


def test_a_duplicate_window_names_both_lines(tmp_path, windows_csv, capsys):
    """Before: "cannot reindex on an axis with duplicate labels"."""
    header, body = rows(windows_csv)
    path = write(tmp_path / "w.csv", header, [*body[:20], body[4], *body[20:30]])
    argv = ["detect", str(path), "-o", str(tmp_path / "o"), "--quiet", "--no-report", "--detectors", "baseline"]
    code, err = run(argv, capsys)
    assert code == 2 and f"{path}:22: duplicate window_start" in err and "first on line 6" in err


def test_windows_in_reverse_order_are_scored_in_time_order(tmp_path, windows_csv, capsys):
    """Before: scored in file order (288 of 400 streaming scores differed)."""
    header, body = rows(windows_csv)
    body = body[:200]
    forward = write(tmp_path / "fwd.csv", header, body)
    backward = write(tmp_path / "rev.csv", header, body[::-1])
    for name, path in (("f", forward), ("r", backward)):
        argv = [
            "detect",
            str(path),
            "-o",
            str(tmp_path / name),
            "--quiet",
            "--no-report",
            "--detectors",
            "rcf-streaming",
        ]
        assert run(argv, capsys)[0] == 0
    assert (tmp_path / "f" / "detections.csv").read_text() == (tmp_path / "r" / "detections.csv").read_text()


def test_a_one_window_file_does_not_flag_its_only_window(tmp_path, windows_csv, capsys):
    """Before: sigma:3 over one score is that score, so score >= threshold flagged it."""
    header, body = rows(windows_csv)
    path = write(tmp_path / "one.csv", header, body[30:31])
    argv = ["detect", str(path), "-o", str(tmp_path / "o"), "--quiet", "--no-report", "--detectors", "rcf-batch"]
    assert run(argv, capsys)[0] == 0
    (det,) = list(csv.DictReader((tmp_path / "o" / "detections.csv").open()))
    assert det["is_anomaly"] == "False"


def test_two_clicks_in_1900_and_2100_do_not_write_millions_of_windows(tmp_path, capsys):
    """Before: a 326 MB windows file (10.5 M empty windows), silently."""
    clicks = tmp_path / "clicks.csv"
    clicks.write_text("timestamp,user,page\n1900-01-01T00:00:00Z,a,/\n2100-01-01T00:00:00Z,b,/\n")
    out = tmp_path / "w.csv"
    code, err = run(["features", str(clicks), "-o", str(out), "--quiet"], capsys)
    assert code == 2 and "10,519,057 windows" in err and "--max-windows" in err and not out.exists()
    code, _ = run(["features", str(clicks), "-o", str(out), "--quiet", "--start", "2099-12-31T23:00:00Z"], capsys)
    assert code == 0 and len(rows(out)[1]) == 7
