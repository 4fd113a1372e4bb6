"""Click-source readers: lines per second of each format's reader (``clickstream_anomaly.sources``: split,
validate, filter, hash users, derive pages) beside a plain ``pandas.read_csv`` of the same file (split
only: every field as text, no validation), in the same run.

The logs are synthetic but shaped as the documentation gives them (field lists, quoting, header lines):
``--lines`` requests over one day from ``--users`` visitors on 5 000 product pages plus a few fixed
pages, 10 % static assets, 2 % errors, 1 % declared crawlers.

Run: ``.venv/bin/python bench/sources.py [--lines 1000000] [--markdown]``; ``--markdown`` also writes the
table to ``docs/benchmarks/sources.md`` (:mod:`report`).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import markdown_table, write_markdown

from clickstream_anomaly.sources import SourceSettings, iter_chunks
from clickstream_anomaly.sources.cloudfront import FIELDS as STANDARD_FIELDS

UA = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]


def requests(n: int, users: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-03-01T00:00:00Z").value // 1_000_000
    ms = np.sort(start + rng.integers(0, 86_400_000, n))
    user = rng.integers(0, users, n)
    pages = np.array([f"/product/{i}" for i in range(5000)] + ["/", "/cart", "/search", "/checkout"], dtype=object)
    page = pages[rng.integers(0, len(pages), n)]
    static = rng.random(n) < 0.10
    page[static] = "/static/app.js"
    status = np.where(rng.random(n) < 0.02, "503", "200")
    agent = np.array(UA, dtype=object)[np.where(rng.random(n) < 0.01, 4, user % 4)]
    ip = np.array([f"198.51.{(u >> 8) & 255}.{u & 255}" for u in range(users)], dtype=object)[user]
    return pd.DataFrame({"ms": ms, "ip": ip, "page": page, "status": status, "agent": agent})


def write_standard(frame: pd.DataFrame, path: Path) -> None:
    stamps = pd.to_datetime(frame["ms"], unit="ms", utc=True)
    cols = dict.fromkeys(STANDARD_FIELDS, "-")
    cols.update(
        {
            "date": stamps.dt.strftime("%Y-%m-%d"),
            "time": stamps.dt.strftime("%H:%M:%S"),
            "x-edge-location": "LAX1",
            "sc-bytes": "392",
            "c-ip": frame["ip"],
            "cs-method": "GET",
            "cs(Host)": "d111111abcdef8.cloudfront.net",
            "cs-uri-stem": frame["page"],
            "sc-status": frame["status"],
            "cs(User-Agent)": frame["agent"].str.replace(" ", "%20"),
            "x-edge-result-type": "Hit",
            "x-edge-request-id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
            "cs-protocol": "https",
            "time-taken": "0.001",
        }
    )
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("#Version: 1.0\n#Fields: " + " ".join(STANDARD_FIELDS) + "\n")
        pd.DataFrame(cols)[list(STANDARD_FIELDS)].to_csv(
            fh, sep="\t", header=False, index=False, quoting=csv.QUOTE_NONE
        )


def write_realtime(frame: pd.DataFrame, path: Path) -> None:
    out = pd.DataFrame(
        {
            "timestamp": (frame["ms"] / 1000).map("{:.3f}".format),
            "c-ip": frame["ip"],
            "sc-status": frame["status"],
            "cs-method": "GET",
            "cs-uri-stem": frame["page"] + "?utm_source=mail",
            "cs-user-agent": frame["agent"].str.replace(" ", "%20"),
            "cs-cookie": "-",
        }
    )
    out.to_csv(path, sep="\t", header=False, index=False, quoting=csv.QUOTE_NONE)


def write_alb(frame: pd.DataFrame, path: Path) -> None:
    stamps = pd.to_datetime(frame["ms"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    lines = (
        "https "
        + stamps
        + " app/my-loadbalancer/50dc6c495c0c9188 "
        + frame["ip"]
        + ":2817 10.0.0.1:80 0.000 0.001 0.000 "
        + frame["status"]
        + " "
        + frame["status"]
        + ' 34 366 "GET https://www.example.com:443'
        + frame["page"]
        + '?x=1 HTTP/1.1" "'
        + frame["agent"]
        + '" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/'
        'my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "www.example.com" "-" 0 '
        + stamps
        + ' "forward" "-" "-" "10.0.0.1:80" "200" "-" "-"'
    )
    path.write_text("\n".join(lines.tolist()) + "\n", encoding="utf-8")


def write_combined(frame: pd.DataFrame, path: Path) -> None:
    stamps = pd.to_datetime(frame["ms"], unit="ms", utc=True).dt.strftime("[%d/%b/%Y:%H:%M:%S +0000]")
    lines = (
        frame["ip"]
        + " - - "
        + stamps
        + ' "GET '
        + frame["page"]
        + ' HTTP/1.1" '
        + frame["status"]
        + ' 2326 "https://www.example.com/" "'
        + frame["agent"]
        + '"'
    )
    path.write_text("\n".join(lines.tolist()) + "\n", encoding="utf-8")


def write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    out = pd.DataFrame(
        {
            "event_time": pd.to_datetime(frame["ms"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "client_id": frame["ip"],
            "page_location": "https://www.example.com" + frame["page"],
            "event_name": "page_view",
        }
    )
    out.to_json(path, orient="records", lines=True)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    out = pd.DataFrame(
        {
            "event_time": pd.to_datetime(frame["ms"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "client_id": frame["ip"],
            "page_location": frame["page"],
        }
    )
    out.to_csv(path, index=False)


# format -> (writer, the plain pandas read of the same file)
FORMATS: dict[str, tuple[Callable[[pd.DataFrame, Path], None], Callable[[Path], object]]] = {
    "cloudfront": (write_standard, lambda p: pd.read_csv(p, sep="\t", header=None, skiprows=2, quoting=3)),
    "cloudfront-realtime": (write_realtime, lambda p: pd.read_csv(p, sep="\t", header=None, quoting=3)),
    "alb": (write_alb, lambda p: pd.read_csv(p, sep=" ", header=None, quotechar='"')),
    "combined": (write_combined, lambda p: pd.read_csv(p, sep=" ", header=None, quotechar='"')),
    "jsonl": (write_jsonl, lambda p: pd.read_json(p, lines=True)),
    "csv": (write_csv, lambda p: pd.read_csv(p)),
}


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def ours(path: Path, fmt: str) -> int:
    cfg = SourceSettings(salt="bench")
    return sum(len(chunk) for chunk in iter_chunks(path, fmt, cfg))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default=None, help="comma-separated formats (default all)")
    ap.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/sources.md")
    args = ap.parse_args()
    t_start = time.perf_counter()
    frame = requests(args.lines, args.users)
    names = args.only.split(",") if args.only else list(FORMATS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in names:
            write, plain = FORMATS[fmt]
            path = Path(tmp) / f"log.{fmt}"
            write(frame, path)
            mb = path.stat().st_size / 1e6
            clicks = ours(path, fmt)
            t_ours = best_of(lambda path=path, fmt=fmt: ours(path, fmt), args.repeat)
            t_plain = best_of(lambda path=path, plain=plain: plain(path), args.repeat)
            rows.append(
                [
                    fmt,
                    f"{mb:,.0f}",
                    f"{clicks:,}",
                    f"{t_ours:.2f}",
                    f"{args.lines / t_ours:,.0f}",
                    f"{mb / t_ours:,.0f}",
                    f"{t_plain:.2f}",
                    f"{args.lines / t_plain:,.0f}",
                    f"{t_ours / t_plain:.2f}",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
            path.unlink()
    table = markdown_table(
        [
            "format",
            "MB",
            "clicks kept",
            "ours s (best of 3)",
            "ours lines/s",
            "ours MB/s",
            "plain read_csv s",
            "plain lines/s",
            "time ÷ plain",
        ],
        rows,
    )
    text = "\n".join(
        [
            f"input: {args.lines:,} requests per format over one day, {args.users:,} visitors; one process, "
            "one core (pandas' parser is single-threaded). *ours* splits, validates every line, filters "
            "(status, static assets, declared crawlers), hashes users and derives pages; *plain* is "
            "`pandas.read_csv` (`read_json` for jsonl) of the same file with no validation.",
            "",
            table,
        ]
    )
    print(text)
    if args.markdown:
        write_markdown("sources", text, seconds=time.perf_counter() - t_start)


if __name__ == "__main__":
    main()
