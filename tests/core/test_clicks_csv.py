"""Bad click lines: errors with file and line number, or --skip-bad with counts and a rejects file."""

import csv
import gzip

import pytest

from clickstream_anomaly.clicks_csv import BadLines, read_clicks
from clickstream_anomaly.features import compute_windows
from clickstream_anomaly.records import RecordError

GOOD = "2020-07-07T00:01:00Z,alice,/\n"


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ("2020-07-07T00:02:00Z,bob\n", "missing field"),
        ("yesterday,bob,/\n", "bad timestamp 'yesterday'"),
        ("2020-07-07T00:02:00Z,,/\n", "empty user"),
        ("2020-07-07T00:02:00Z,bob,\n", "empty page"),
        ("2020-07-07T00:02:00Z,bob,/,extra\n", "expected 3 fields, saw 4"),
    ],
)
def test_bad_line_error_names_file_line_and_reason(tmp_path, bad_line, reason):
    path = tmp_path / "c.csv"
    path.write_text("timestamp,user,page\n" + GOOD + GOOD + bad_line + GOOD)
    with pytest.raises(RecordError) as err:
        read_clicks(path)
    assert err.value.line == 4
    assert str(err.value).startswith(f"{path}:4: ")
    assert reason in str(err.value)


def test_skip_bad_counts_reports_and_writes_rejects(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "timestamp,user,page\n"
        + GOOD
        + "nope,bob,/\n"
        + GOOD
        + "2020-07-07T00:03:00Z,,/\n"
        + "2020-07-07T00:04:00Z,bob,/,x\n"
        + GOOD
    )
    bad = BadLines(rejects_path=tmp_path / "rejects.csv")
    frame = read_clicks(path, skip_bad=True, bad=bad)
    bad.close()
    assert len(frame) == 3
    assert bad.count == 3
    assert bad.by_reason == {"bad timestamp 'nope'": 1, "empty user": 1, "expected 3 fields, saw 4": 1}
    with open(tmp_path / "rejects.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["line"]) for r in rows] == [3, 5, 6]
    assert rows[0]["raw"] == "nope,bob,/"
    assert "skipped 3 bad line(s)" in bad.summary()


def test_skip_bad_in_features_keeps_good_rows(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("timestamp,user,page\n" + GOOD + "bad,bob,/\n" + "2020-07-07T00:02:00Z,bob,/x\n")
    bad = BadLines()
    w = compute_windows(path, skip_bad=True, bad=bad)
    assert w["clicks"].tolist() == [2]
    assert bad.count == 1


def test_wrong_header_and_empty_file(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("time,user,page\n" + GOOD)
    with pytest.raises(RecordError, match="header must be timestamp,user,page"):
        read_clicks(path)
    path.write_text("")
    with pytest.raises(RecordError, match="empty file"):
        read_clicks(path)
    with pytest.raises(FileNotFoundError):
        read_clicks(tmp_path / "missing.csv")


def test_gzip_input(tmp_path):
    path = tmp_path / "c.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("timestamp,user,page\n" + GOOD + GOOD)
    assert len(read_clicks(path)) == 2


def test_header_only_file_gives_no_clicks(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("timestamp,user,page\n")
    assert len(read_clicks(path)) == 0
    assert compute_windows(path).empty


def test_numeric_looking_ids_keep_their_text(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("timestamp,user,page\n2020-07-07T00:01:00Z,007,1\n2020-07-07T00:02:00Z,7,01\n")
    frame = read_clicks(path)
    assert frame["user"].tolist() == ["007", "7"] and frame["page"].tolist() == ["1", "01"]
    assert compute_windows(path)["users"].tolist() == [2]
