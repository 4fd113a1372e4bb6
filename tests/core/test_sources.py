"""The click sources: each format's sample file (written from the format's documentation), bad and hostile
input, who the user is, what the page is, which requests count, and the CLI reading them."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream_anomaly.cli import main
from clickstream_anomaly.clicks_csv import BadLines
from clickstream_anomaly.records import RecordError
from clickstream_anomaly.sources import FORMATS, Filtered, SourceSettings, detect_format, iter_chunks, iter_clicks
from clickstream_anomaly.sources import blocks as blocks_module
from clickstream_anomaly.sources.cloudfront_realtime import decode_records
from clickstream_anomaly.sources.derive import cookie_value, pseudonyms, uri_path

DATA = Path(__file__).parent / "data" / "sources"
SALT = "test-salt"


def read(path, fmt="auto", *, skip_bad=False, bad=None, filtered=None, **settings_kw):
    cfg = SourceSettings(salt=SALT, **settings_kw)
    chunks = list(iter_chunks(path, fmt, cfg, skip_bad=skip_bad, bad=bad, filtered=filtered))
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame({"ts": [], "user": [], "page": []})
    frame["timestamp"] = pd.to_datetime(frame["ts"].astype("int64"), utc=True)
    return frame


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("cloudfront-standard.log", "cloudfront"),
        ("cloudfront-standard.log.gz", "cloudfront"),
        ("cloudfront-realtime.log", "cloudfront-realtime"),
        ("alb.log.gz", "alb"),
        ("access-combined.log", "combined"),
        ("analytics.jsonl", "jsonl"),
        ("analytics.csv", "csv"),
    ],
)
def test_the_format_is_told_from_the_content(name, fmt):
    assert detect_format(DATA / name) == fmt


def test_the_project_clicks_are_still_clicks(tmp_path):
    csv_path = tmp_path / "clicks.csv"
    csv_path.write_text("timestamp,user,page\n2024-01-01T00:00:00Z,u1,/a\n", encoding="utf-8")
    jsonl = tmp_path / "clicks.data"
    jsonl.write_text('{"timestamp":"2024-01-01T00:00:00Z","user":"u1","page":"/a"}\n', encoding="utf-8")
    for path in (csv_path, jsonl):
        assert detect_format(path) == "clicks"
        frame = read(path)
        assert frame[["user", "page"]].values.tolist() == [["u1", "/a"]]


def test_an_unknown_format_names_the_formats(tmp_path):
    path = tmp_path / "x.log"
    path.write_text("hello world\n", encoding="utf-8")
    with pytest.raises(RecordError, match="pass --format"):
        detect_format(path)
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    with pytest.raises(RecordError, match="empty file"):
        detect_format(empty)


def test_cloudfront_standard_clicks_users_pages_and_filters():
    filtered = Filtered()
    frame = read(DATA / "cloudfront-standard.log.gz", filtered=filtered, user_cookie="session")
    assert frame["page"].tolist() == ["/index.html", "/index.html", "/product/123", "/product/456", "/index.html"]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2019-12-04T21:02:31Z")
    users = frame["user"].tolist()
    assert users[0] == users[1] and users[0].startswith("h")  # same IP + user agent: one hashed user
    assert users[2] == users[3] and users[2].startswith("c")  # the session cookie, wherever it is in the header
    assert users[4] not in (users[0], users[2])  # an unknown bot stays in, as its own user
    assert filtered.by_reason == {"status": 1, "static": 1, "bot": 1, "method": 1}
    plain = read(DATA / "cloudfront-standard.log", user_cookie="session")
    assert plain[["ts", "user", "page"]].equals(frame[["ts", "user", "page"]])


def test_cloudfront_standard_bad_lines_name_file_line_and_reason(tmp_path):
    path = DATA / "cloudfront-standard-bad.log"
    with pytest.raises(RecordError) as err:
        read(path)
    assert err.value.line == 5 and "bad timestamp" in err.value.reason and str(path) in str(err.value)
    bad = BadLines(rejects_path=tmp_path / "rejects.csv")
    frame = read(path, skip_bad=True, bad=bad)
    bad.close()
    assert len(frame) == 2  # lines 3 and 4
    assert [e.split(": ", 1)[0] for e in bad.examples] == [f"{path}:5", f"{path}:6", f"{path}:7"]
    assert bad.by_reason == {"bad timestamp": 1, "wrong field count": 2}
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert rejects["line"].tolist() == [5, 6, 7] and rejects["raw"].iloc[1] == "2019-12-04\t21:02:31\tLAX1"


def test_a_second_fields_header_switches_the_columns(tmp_path):
    lines = (DATA / "cloudfront-standard.log").read_text(encoding="utf-8").splitlines()
    short = "#Fields: date time c-ip cs-method cs-uri-stem sc-status cs(User-Agent)"
    path = tmp_path / "two.log"
    path.write_text("\n".join([*lines[:3], short, "2020-01-01\t00:00:00\t192.0.2.9\tGET\t/later\t200\tcurl"]) + "\n")
    assert read(path)["page"].tolist() == ["/index.html", "/later"]
    no_header = tmp_path / "none.log"
    no_header.write_text(lines[2] + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match="no #Fields header"):
        read(no_header, "cloudfront")


def test_cloudfront_realtime_by_its_configured_fields():
    filtered = Filtered()
    frame = read(DATA / "cloudfront-realtime.log", filtered=filtered, user_cookie="session")
    assert frame["page"].tolist() == ["/index.html", "/product/123"]  # the query string is cut off
    assert frame["ts"].tolist() == [1575493351384000000, 1575493352001000000]
    assert frame["user"].iloc[0].startswith("h") and frame["user"].iloc[1].startswith("c")
    assert filtered.by_reason == {"status": 1, "static": 1}
    other = SourceSettings(salt=SALT, realtime_fields=("timestamp", "c-ip", "sc-status", "cs-method", "cs-uri-stem"))
    with pytest.raises(RecordError, match="wrong field count: expected 5"):
        list(iter_chunks(DATA / "cloudfront-realtime.log", "cloudfront-realtime", other))


def test_stream_records_decode_as_the_file_reads():
    cfg = SourceSettings(salt=SALT, user_cookie="session")
    lines = (DATA / "cloudfront-realtime.log").read_bytes().splitlines()
    records = [line + b"\n" for line in lines[:2]] + lines[2:] + [b"garbage"]
    bad = BadLines()
    frame = decode_records(records, cfg, bad=bad)
    expected = pd.concat(list(iter_chunks(DATA / "cloudfront-realtime.log", "cloudfront-realtime", cfg)))
    assert frame.reset_index(drop=True).equals(expected.reset_index(drop=True))
    assert bad.count == 1 and bad.examples[0].startswith("record:5: wrong field count")


def test_alb_entries_from_the_documentation():
    filtered = Filtered()
    frame = read(DATA / "alb.log.gz", filtered=filtered)
    assert frame["page"].tolist() == ["/", "/product/9", "/"]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2018-07-02T22:23:00.186641Z")
    assert frame["user"].iloc[0] == frame["user"].iloc[0] != frame["user"].iloc[1]  # other user agent
    assert filtered.by_reason == {"status": 1}  # the malformed request ("- - -", 400) is not a click
    # the port is not part of the user; the client IP never leaves the reader
    expected = pseudonyms(np.array(["192.168.131.39\x1fcurl/7.46.0"], dtype=object), SALT, "h")[0]
    assert frame["user"].iloc[0] == expected
    assert not frame["user"].str.contains("192.168").any()


def test_combined_log_format_times_quotes_and_filters():
    filtered = Filtered()
    frame = read(DATA / "access-combined.log", filtered=filtered)
    assert frame["page"].tolist() == ["/start.html", "/search"]
    assert frame["timestamp"].tolist() == [pd.Timestamp("2000-10-10T20:55:37Z"), pd.Timestamp("2000-10-10T20:56:00Z")]
    assert filtered.by_reason == {"static": 1, "status": 1, "bot": 1}
    kept = read(DATA / "access-combined.log", exclude_static=False, exclude_good_bots=False, statuses="200-499")
    assert len(kept) == 5 and kept["page"].iloc[3] == "/ax22b"  # nginx's \x22 escape, read as the CSV rules do


def test_analytics_exports_through_a_field_map():
    frame = read(DATA / "analytics.jsonl")
    assert frame["user"].tolist() == ["1234.5678", "1234.5678", "99.1"]
    assert frame["page"].tolist() == ["/product/1", "/cart", "Checkout screen"]
    assert frame["ts"].iloc[0] == pd.Timestamp("2024-03-01T09:00:00.250Z").value
    csv_frame = read(DATA / "analytics.csv")
    assert csv_frame["page"].tolist() == ["/product/1", "/cart"]
    hashed = read(DATA / "analytics.csv", hash_users=True)
    assert hashed["user"].str.startswith("u").all()


def test_mapped_exports_with_epoch_times_and_missing_columns(tmp_path):
    path = tmp_path / "ga4.jsonl"
    rows = [{"event_timestamp": 1709283600123456, "user_pseudo_id": "a", "page": "/x"}, {"user_pseudo_id": "b"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    fmap = {"timestamp": "event_timestamp", "user": "user_pseudo_id", "page": "page"}
    bad = BadLines()
    frame = read(path, "jsonl", skip_bad=True, bad=bad, field_map=fmap, timestamp_unit="us")
    assert frame["ts"].tolist() == [1709283600123456000]
    assert bad.examples == [f"{path}:2: missing field: 'page'"] or bad.examples == [
        f"{path}:2: missing field: 'event_timestamp'"
    ]
    csv_path = tmp_path / "export.csv"
    csv_path.write_text("when,who\n2024-01-01T00:00:00Z,a\n", encoding="utf-8")
    with pytest.raises(RecordError, match="no column"):
        read(csv_path, "csv", field_map={"timestamp": "when", "user": "who", "page": "page"})


def test_pages_are_paths_rewritten_by_the_rules():
    assert uri_path("/a/b?x=1#top") == "/a/b"
    assert uri_path("https://host:443/a?x") == "/a"
    assert uri_path("https://host") == "/"
    assert uri_path("-") == ""
    frame = read(DATA / "cloudfront-standard.log", page_rules=[(r"^/product/\d+$", "/product/:id")])
    assert set(frame["page"]) == {"/index.html", "/product/:id"}
    collapsed = read(DATA / "alb.log.gz", collapse_ids=True)
    assert collapsed["page"].tolist() == ["/", "/product/:id", "/"]


def test_users_are_salted_hashes_stable_for_one_salt():
    values = np.array(["192.0.2.1\x1fcurl", "192.0.2.2\x1fcurl"], dtype=object)
    one = pseudonyms(values, "salt-a", "h")
    assert one.tolist() == pseudonyms(values, "salt-a", "h").tolist()
    assert set(one) & set(pseudonyms(values, "salt-b", "h")) == set()
    assert all(len(u) == 17 and "192" not in u for u in one)
    assert cookie_value("a=1;%20session=xyz;%20b=2", "session") == "xyz"
    assert cookie_value("sessionx=1", "session") == ""


def test_the_salt_comes_from_the_environment_or_is_random(monkeypatch):
    monkeypatch.setenv("CLICKSTREAM_USER_SALT", "from-env")
    assert SourceSettings().salt == "from-env"
    monkeypatch.delenv("CLICKSTREAM_USER_SALT")
    assert SourceSettings().salt != SourceSettings().salt


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"statuses": "200-1xx"}, "statuses"),
        ({"statuses": "299-200"}, "ends before"),
        ({"sampling_rate": 0}, "sampling_rate"),
        ({"sampling_rate": True}, "sampling_rate"),
        ({"realtime_fields": ["timestamp", "cs-uri-stem", "c-ipp"]}, "unknown CloudFront real-time log field"),
        ({"realtime_fields": ["timestamp", "c-ip"]}, "must include"),
        ({"page_rules": [{"pattern": "(", "replace": ""}]}, "bad pattern"),
        ({"page_rules": ["x"]}, "each rule"),
        ({"field_map": {"when": "x"}}, "unknown role"),
        ({"field_map": {"timestamp": "t"}}, "needs timestamp, page and user"),
        ({"timestamp_unit": "days"}, "timestamp_unit"),
        ({"user_cookie": "a b"}, "not a cookie name"),
        ({"exclude_static": "yes"}, "true or false"),
        ({"colour": 1}, "unknown source setting"),
    ],
)
def test_settings_errors_name_the_setting(data, message):
    with pytest.raises(ValueError, match=message):
        SourceSettings.from_mapping(data)


def test_settings_from_a_json_file(tmp_path):
    path = tmp_path / "source.json"
    path.write_text(json.dumps({"user_cookie": "sid", "methods": "GET,HEAD", "salt": "s"}), encoding="utf-8")
    cfg = SourceSettings.from_file(path)
    assert cfg.user_cookie == "sid" and cfg.methods == ("GET", "HEAD")
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not JSON"):
        SourceSettings.from_file(path)


def test_an_over_long_line_is_a_bad_line(tmp_path, monkeypatch):
    monkeypatch.setattr(blocks_module, "MAX_LINE_BYTES", 1000)
    good = (DATA / "cloudfront-realtime.log").read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "long.log"
    path.write_text("\n".join([good, "x" * 5000, good]) + "\n", encoding="utf-8")
    bad = BadLines()
    chunks = list(
        iter_chunks(path, "cloudfront-realtime", SourceSettings(salt=SALT), skip_bad=True, bad=bad, chunk_rows=1)
    )
    assert sum(len(c) for c in chunks) == 2
    assert bad.examples == [f"{path}:2: line longer than 1000 bytes"]


def test_a_corrupt_gzip_file_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "broken.log.gz"
    data = gzip.compress((DATA / "alb.log.gz").read_bytes() * 3)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordError, match="corrupt gzip"):
        list(iter_chunks(path, "alb", SourceSettings(salt=SALT)))


LOG_FORMATS = [f for f in FORMATS if f not in ("auto", "clicks", "csv")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), fmt=st.sampled_from(LOG_FORMATS))
def test_any_bytes_give_clicks_or_a_clear_error(tmp_path, data, fmt):
    path = tmp_path / "hostile.log"
    path.write_bytes(data)
    cfg = SourceSettings(salt=SALT)
    bad = BadLines()
    try:
        frames = list(iter_chunks(path, fmt, cfg, skip_bad=True, bad=bad))
    except RecordError as exc:
        assert exc.reason and exc.source == str(path)
        return
    for frame in frames:
        assert list(frame.columns) == ["ts", "user", "page"]
        assert (frame["user"] != "").all() and (frame["page"] != "").all()
    try:
        list(iter_chunks(path, fmt, cfg))
    except RecordError as exc:
        assert exc.line is None or exc.line >= 1


paths = st.lists(st.text("abcxyz019-_.", min_size=1, max_size=8), min_size=1, max_size=4).map(
    lambda parts: "/" + "/".join(parts)
)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(946_684_800_000, 4_102_444_800_000),  # epoch ms, 2000-2100
            st.ip_addresses().map(str),
            paths,
            st.text("abcdefABC/ .;()", min_size=1, max_size=20).map(lambda s: s.replace(" ", "%20")),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_realtime_records_round_trip(rows):
    cfg = SourceSettings(salt=SALT, exclude_static=False, exclude_good_bots=False)
    records = [f"{ms / 1000:.3f}\t{ip}\t200\tGET\t{path}?q=1\t{ua}\t-".encode() for ms, ip, path, ua in rows]
    frame = decode_records(records, cfg, skip_bad=False)
    assert frame["ts"].tolist() == [ms * 1_000_000 for ms, *_ in rows]
    assert frame["page"].tolist() == [path for _, _, path, _ in rows]
    same = [(ip, ua) for _, ip, _, ua in rows]
    users = frame["user"].tolist()
    for i in range(len(rows)):
        for j in range(len(rows)):
            assert (users[i] == users[j]) == (same[i] == same[j])


def test_features_reads_a_log_format(tmp_path, capsys):
    out = tmp_path / "windows.csv"
    assert main(["features", str(DATA / "alb.log.gz"), "-o", str(out), "--format", "alb"]) == 0
    windows = pd.read_csv(out)
    assert windows["clicks"].sum() == 3 and windows["users"].sum() == 3  # two IPs, one of them with two agents
    assert "filtered out 1 request(s)" in capsys.readouterr().err
    config = tmp_path / "source.json"
    config.write_text(json.dumps({"statuses": "200-599"}), encoding="utf-8")
    # the 400 counts now, and its "- - -" request has no path: a bad line
    assert main(["features", str(DATA / "alb.log.gz"), "-o", str(out), "--source-config", str(config)]) == 2
    assert main(["features", str(DATA / "analytics.csv"), "-o", str(out), "--format", "alb"]) == 2


def test_detect_still_tells_windows_from_click_logs(tmp_path):
    from clickstream_anomaly.cli.detect import _windows_kind
    from clickstream_anomaly.features import WINDOWS_JSON

    windows = tmp_path / "w.csv"
    windows.write_text("window_start,urls,users,clicks,residual\n2024-01-01T00:00:00Z,1,1,1,0\n", encoding="utf-8")
    records = tmp_path / "w.jsonl"
    records.write_text('{"window_start":"2024-01-01T00:00:00Z","urls":1,"users":1,"clicks":1,"residual":0}\n')
    clicks = tmp_path / "c.jsonl"
    clicks.write_text('{"timestamp":"2024-01-01T00:00:00Z","user":"u","page":"/"}\n')
    cfg = SourceSettings(salt=SALT)
    assert _windows_kind(windows, "auto", cfg) == "windows"
    assert _windows_kind(records, "auto", cfg) == WINDOWS_JSON
    assert _windows_kind(clicks, "auto", cfg) is None
    assert _windows_kind(DATA / "alb.log.gz", "auto", cfg) is None
    assert _windows_kind(DATA / "cloudfront-standard.log", "auto", cfg) is None
    assert _windows_kind(windows, "clicks", cfg) is None
    other = tmp_path / "x.csv"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"neither a clicks CSV .* nor a log in a format"):
        _windows_kind(other, "auto", cfg)


def test_produce_entries_come_from_the_sources():
    from clickstream_anomaly.cli.produce import _reader

    args = argparse.Namespace(input=DATA / "access-combined.log", format="auto", source_config=None, skip_bad=False)
    entries = list(_reader(args)(BadLines()))
    assert len(entries) == 2 and all(b"203.0.113.9" not in e.data for e in entries)
    clicks = list(iter_clicks(DATA / "access-combined.log", settings=SourceSettings(salt=SALT)))
    assert [c.page for c in clicks] == ["/start.html", "/search"]


def _as_logs(clicks: pd.DataFrame, tmp_path: Path) -> dict[str, Path]:
    """The same clicks written as each log format (one client IP per user, one user agent)."""
    ms = pd.to_datetime(clicks["timestamp"], utc=True)
    codes, _ = pd.factorize(clicks["user"])
    ip = pd.Series([f"10.{(c >> 16) & 255}.{(c >> 8) & 255}.{c & 255}" for c in codes])
    page = clicks["page"].reset_index(drop=True)
    agent = "Mozilla/5.0 (X11; Linux x86_64)"
    out = {}
    stamps = ms.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").reset_index(drop=True)
    out["alb"] = [
        f'https {t} app/lb/1 {i}:443 10.0.0.1:80 0 0 0 200 200 1 1 "GET https://x.example:443{p}?a=1 HTTP/1.1" '
        f'"{agent}" - - arn "Root=1" "-" "-" 0 {t} "forward" "-" "-"'
        for t, i, p in zip(stamps, ip, page, strict=True)
    ]
    epoch = (ms.astype("int64") // 1_000_000).reset_index(drop=True)
    out["cloudfront-realtime"] = [
        f"{e // 1000}.{e % 1000:03d}\t{i}\t200\tGET\t{p}?q\t{agent.replace(' ', '%20')}\t-"
        for e, i, p in zip(epoch, ip, page, strict=True)
    ]
    clf = ms.dt.strftime("[%d/%b/%Y:%H:%M:%S +0000]").reset_index(drop=True)
    out["combined"] = [
        f'{i} - - {t} "GET {p} HTTP/1.1" 200 512 "-" "{agent}"' for t, i, p in zip(clf, ip, page, strict=True)
    ]
    day, second = ms.dt.strftime("%Y-%m-%d").reset_index(drop=True), ms.dt.strftime("%H:%M:%S").reset_index(drop=True)
    header = ["#Version: 1.0", "#Fields: date time c-ip cs-method cs-uri-stem sc-status cs(User-Agent) cs(Cookie)"]
    out["cloudfront"] = header + [
        f"{d}\t{t}\t{i}\tGET\t{p}\t200\t{agent.replace(' ', '%20')}\t-"
        for d, t, i, p in zip(day, second, ip, page, strict=True)
    ]
    paths = {}
    for fmt, lines in out.items():
        path = tmp_path / f"{fmt}.log.gz"
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        paths[fmt] = path
    return paths


def test_the_same_clicks_in_any_log_format_give_the_same_windows(tmp_path):
    from clickstream_anomaly.clicks_csv import write_clicks
    from clickstream_anomaly.features import compute_windows
    from clickstream_anomaly.generator import Scenario, generate

    clicks, _ = generate(Scenario(days=1, volume=0.2, incidents=()))
    clicks = clicks.assign(timestamp=pd.to_datetime(clicks["timestamp"], utc=True).dt.floor("ms"))
    csv_path = tmp_path / "clicks.csv"
    write_clicks(clicks, csv_path)
    expected = compute_windows(csv_path)
    cfg = SourceSettings(salt=SALT)
    for fmt, path in _as_logs(clicks, tmp_path).items():
        got = compute_windows(path, fmt="auto", settings=cfg, chunk_rows=500)  # several blocks
        pd.testing.assert_frame_equal(got, expected, obj=fmt)


def test_detect_runs_on_a_log(tmp_path):
    out = tmp_path / "out"
    args = ["detect", str(DATA / "cloudfront-standard.log.gz"), "-o", str(out), "--detectors", "baseline"]
    assert main([*args, "--no-report", "--quiet"]) == 0
    detections = pd.read_csv(out / "detections.csv")
    assert len(detections) == 1306  # 2019-12-04 21:00 to 2019-12-13 22:30, empty windows included
    assert detections["clicks"].iloc[0] == 4 and detections["clicks"].sum() == 5


STATUS = {
    "alb": (" 200 200 ", " 0E0 200 "),
    "cloudfront-realtime": ("\t200\t", "\t0E0\t"),
    "combined": ('" 200 ', '" 0E0 '),
    "cloudfront": ("\t200\t", "\t0E0\t"),
}


def test_one_odd_status_costs_its_line_only(tmp_path):
    from clickstream_anomaly.clicks_csv import BadLines
    from clickstream_anomaly.generator import Scenario, generate

    clicks, _ = generate(Scenario(days=1, volume=0.05, incidents=()))
    clicks = clicks.assign(timestamp=pd.to_datetime(clicks["timestamp"], utc=True).dt.floor("ms")).iloc[:300]
    for fmt, path in _as_logs(clicks, tmp_path).items():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        old, new = STATUS[fmt]
        odd = len(lines) // 2  # a line whose status reads as a number in another notation (0E0 = 0.0)
        lines[odd] = lines[odd].replace(old, new, 1)
        odd_path = tmp_path / f"odd-{fmt}.log"
        odd_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        bad = BadLines()
        got = read(odd_path, skip_bad=True, bad=bad)
        assert (len(got), bad.count) == (len(clicks) - 1, 1), fmt
