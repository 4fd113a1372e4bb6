"""Run the job on a local mini-cluster with a file source (one clicks-stream record per line).

A line is a click's JSON or, for a producer-aggregated record, its clicks' JSON joined by
:data:`RECORD_SEPARATOR` (RS, ``\x1e``) where the stream has a newline, which a line cannot hold; the
source turns RS back into the newline (in the JVM) before the job sees the record.

``python -m clickstream_job.local INPUT -o OUT`` (with ``flink/`` on the path, as ``make flink-run`` does)
writes ``OUT/windows.csv`` and ``OUT/detections.csv`` in the formats of the ``features`` and ``detect``
commands, ``OUT/windows.jsonl`` (the windows as the features stream gets them: with ``page_clicks``, which
a CSV windows file does not hold), ``OUT/malformed.jsonl`` and ``OUT/late.jsonl`` (the side outputs) and
``OUT/summary.json`` (counts and the job's wall time).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import site
import sys
import time
from pathlib import Path

from pyflink.common import Configuration, Types, WatermarkStrategy
from pyflink.datastream import DataStream, RuntimeExecutionMode, StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import FileSource, StreamFormat
from pyflink.java_gateway import get_gateway

import clickstream_anomaly
from clickstream_anomaly.features import records_to_windows, write_windows
from clickstream_anomaly.records import Detection, Window, write_detections_csv
from clickstream_anomaly.sources.settings import SourceSettings

from .job import JARFILE, build, java_class
from .logic import JobSettings
from .shards import SHARD_SEPARATOR

PACKAGE_DIR = Path(__file__).resolve().parent
#: Our Java operators (``make flink-jar``: the connector jar, which holds them), from this checkout.
JAR = PACKAGE_DIR.parents[1] / "build" / "flink" / JARFILE
RECORD_SEPARATOR = "\x1e"  # between an aggregated record's clicks on one line of the input file
LINE_RECORDS = "io.github.clickstream_anomaly.flink.LineRecords"  # RECORD_SEPARATOR to newline, in the JVM


EXECUTION_MODES = ("thread", "process")


def environment(
    parallelism: int = 1,
    bundle_size: int | None = None,
    execution_mode: str = EXECUTION_MODES[0],
    jar: Path = JAR,
) -> StreamExecutionEnvironment:
    """A streaming environment on the local mini-cluster whose Python operators run this interpreter, with
    ``jar`` (the job's Java operators) loaded.

    ``execution_mode`` is ``python.execution-mode``: ``thread`` (the operators run inside the JVM through
    pemja; the default: fastest, docs/flink.md) or ``process`` (Beam's runner in Python worker processes).
    ``bundle_size`` caps the elements a ``process``-mode worker takes at once.
    """
    if execution_mode not in EXECUTION_MODES:
        raise ValueError(f"execution_mode must be one of {', '.join(EXECUTION_MODES)}, got {execution_mode!r}")
    if not jar.is_file():
        raise FileNotFoundError(f"{jar} is missing: `make flink-jar` builds it (the job's Java operators)")
    config = Configuration()
    config.set_string("pipeline.jars", jar.resolve().as_uri())
    if bundle_size is not None:
        config.set_string("python.fn-execution.bundle.size", str(bundle_size))
    config.set_string("python.executable", sys.executable)
    config.set_string("python.client.executable", sys.executable)
    config.set_string("python.execution-mode", execution_mode)
    if execution_mode == "thread":
        # the embedded interpreter starts from the base Python: give it this virtualenv's packages, the core
        # package's folder (an editable install's .pth file is not read there) and our path
        core = str(Path(clickstream_anomaly.__file__).resolve().parent.parent)
        paths = [*site.getsitepackages(), core, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
        config.set_string("python.pythonpath", os.pathsep.join(p for p in paths if p))
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_runtime_mode(RuntimeExecutionMode.STREAMING)
    env.set_parallelism(parallelism)
    env.add_python_file(str(PACKAGE_DIR))
    return env


def run(
    input_path: Path,
    settings: JobSettings,
    parallelism: int = 1,
    bundle_size: int | None = None,
    execution_mode: str = EXECUTION_MODES[0],
) -> dict[str, list[str]]:
    """Run the job over ``input_path`` to the end; each output stream's records (JSON text) by name."""
    env = environment(parallelism, bundle_size, execution_mode)
    source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(input_path)).build()
    lines = env.from_source(source, WatermarkStrategy.no_watermarks(), "clicks file")
    records = file_records(lines) if has_separator(input_path) else lines
    streams = build(records, settings, split=split_name(input_path))
    tagged = [
        getattr(streams, name).map(lambda v, n=name: (n, v), output_type=Types.TUPLE([Types.STRING(), Types.STRING()]))
        for name in ("windows", "detections", "malformed", "late", "window_stats")
    ]
    out: dict[str, list[str]] = {"windows": [], "detections": [], "malformed": [], "late": [], "window_stats": []}
    with tagged[0].union(*tagged[1:]).execute_and_collect("clickstream-anomaly (local)") as results:
        for name, value in results:
            out[name].append(value)
    return out


def split_name(path: Path) -> str:
    """The shard id of a file's records: its name (the file is one split; :mod:`.shards`)."""
    return path.name.replace(SHARD_SEPARATOR, "_")


def has_separator(path: Path) -> bool:
    """Whether the file holds an aggregated record (a :data:`RECORD_SEPARATOR` anywhere in it)."""
    if path.stat().st_size == 0:
        return False
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(RECORD_SEPARATOR.encode()) >= 0


def file_records(lines: DataStream) -> DataStream:
    """The input's lines as clicks-stream records: :data:`RECORD_SEPARATOR` becomes the stream's newline, in
    the JVM (:data:`LINE_RECORDS`; one more call per record, so only for a file that has one:
    :func:`has_separator`)."""
    j_string = Types.STRING().get_java_type_info()
    return DataStream(lines._j_data_stream.map(java_class(LINE_RECORDS)(), j_string).name("file records"))


def jvm_cpu_seconds() -> float:
    """CPU seconds the JVM of the mini-cluster has used so far: the whole job in ``thread`` mode, where the
    Python operators run inside it (on a shared machine a steadier measure than the wall time)."""
    pid = get_gateway().jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getPid()
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime (Linux)


def write(
    out: dict[str, list[str]], directory: Path, seconds: float, cpu_seconds: float | None = None
) -> dict[str, float]:
    """Write the outputs (see the module docstring); returns the summary."""
    directory.mkdir(parents=True, exist_ok=True)
    windows = [Window.from_json(w) for w in out["windows"]]
    write_windows(records_to_windows(windows), directory / "windows.csv")
    with open(directory / "detections.csv", "w", newline="", encoding="utf-8") as fh:
        write_detections_csv((Detection.from_mapping(json.loads(d)) for d in out["detections"]), fh)
    for name in ("windows", "malformed", "late"):
        (directory / f"{name}.jsonl").write_text("".join(line + "\n" for line in out[name]), encoding="utf-8")
    late = sum(json.loads(s)["late_clicks"] for s in out["window_stats"])
    summary = {
        "windows": len(windows),
        "clicks": sum(w.clicks for w in windows),
        "detections": len(out["detections"]),
        "malformed_clicks": len(out["malformed"]),
        "late_clicks_counted": late,
        "late_clicks_dropped": len(out["late"]),
        "seconds": round(seconds, 3),
    }
    if cpu_seconds is not None:
        summary["jvm_cpu_seconds"] = round(cpu_seconds, 3)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="clickstream_job.local", description=__doc__.splitlines()[0])
    p.add_argument("input", type=Path, help="clicks as JSON Lines (one clicks-stream record per line)")
    p.add_argument("-o", "--output", type=Path, required=True, help="directory to write")
    p.add_argument("--freq", default=JobSettings.freq)
    p.add_argument("--allowed-lateness", default=JobSettings.allowed_lateness)
    p.add_argument("--out-of-orderness", type=float, default=JobSettings.out_of_orderness, help="seconds")
    p.add_argument(
        "--detectors",
        default=",".join(JobSettings.detectors),
        help="of baseline, baseline-pages and rcf-streaming, comma-separated",
    )
    p.add_argument("--timezone", default=JobSettings.timezone)
    p.add_argument("--parallelism", type=int, default=1)
    p.add_argument("--bundle-size", type=int, default=None, help="python.fn-execution.bundle.size")
    p.add_argument(
        "--execution-mode", choices=EXECUTION_MODES, default=EXECUTION_MODES[0], help="python.execution-mode"
    )
    p.add_argument("--clicks-format", default=JobSettings.clicks_format, help="clicks or cloudfront-realtime")
    p.add_argument("--source-config", type=Path, default=None, help="source settings JSON (fields, salt)")
    p.add_argument("--bundle-records", type=int, default=JobSettings.bundle_records, help="records per bundle")
    p.add_argument("--bundle-ms", type=int, default=JobSettings.bundle_ms, help="ms a record waits for its bundle")
    p.add_argument("--detector-rules", default="", help="the detectors' verdict rules as JSON (DETECTOR_RULES)")
    args = p.parse_args(argv)
    settings = JobSettings(
        freq=args.freq,
        allowed_lateness=args.allowed_lateness,
        out_of_orderness=args.out_of_orderness,
        detectors=tuple(d.strip() for d in args.detectors.split(",") if d.strip()),
        timezone=args.timezone,
        clicks_format=args.clicks_format,
        source=SourceSettings.from_file(args.source_config) if args.source_config is not None else None,
        bundle_records=args.bundle_records,
        bundle_ms=args.bundle_ms,
        detector_rules=args.detector_rules,
    )
    began = time.perf_counter()
    out = run(args.input, settings, args.parallelism, args.bundle_size, args.execution_mode)
    summary = write(out, args.output, time.perf_counter() - began, jvm_cpu_seconds())
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
