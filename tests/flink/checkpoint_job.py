"""The job on the local mini-cluster, checkpointed, for tests/flink/test_checkpoint.py (run by .venv-flink's
interpreter, with ``flink/`` on the path; not a test module).

``python checkpoint_job.py INPUT_DIR CHECKPOINTS OUT [RESTORE]``: a continuous file source on INPUT_DIR
(every new file in it, one clicks-stream record per line), :func:`clickstream_job.job.build` with the default
settings but bundles that wait an hour to fill, a checkpoint every second into CHECKPOINTS (retained when the
job dies), each window and detection appended to ``OUT/windows.jsonl`` / ``OUT/detections.jsonl`` as it comes
out; RESTORE is a checkpoint to start from (``execution.savepoint.path``). It runs until it is killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from clickstream_job.job import build
from clickstream_job.local import environment
from clickstream_job.logic import JobSettings
from pyflink.common import Configuration, Duration, WatermarkStrategy
from pyflink.datastream import MapFunction, RuntimeContext
from pyflink.datastream.connectors.file_system import FileSource, StreamFormat


class Append(MapFunction):
    """Appends each value to a file, flushed at once (the test reads it while the job runs)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def open(self, runtime_context: RuntimeContext) -> None:
        self.fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  (closed in close())

    def map(self, value: str) -> str:
        self.fh.write(value + "\n")
        self.fh.flush()
        return value

    def close(self) -> None:
        self.fh.close()


def main(input_dir: str, checkpoints: str, out: str, restore: str | None = None) -> None:
    env = environment(parallelism=1)
    config = Configuration()
    config.set_string("execution.checkpointing.interval", "1 s")
    config.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    config.set_string("state.checkpoints.dir", Path(checkpoints).resolve().as_uri())
    if restore:
        config.set_string("execution.savepoint.path", Path(restore).resolve().as_uri())
    env.configure(config)
    source = (
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), input_dir)
        .monitor_continuously(Duration.of_millis(500))
        .build()
    )
    records = env.from_source(source, WatermarkStrategy.no_watermarks(), "clicks dir")
    # bundles wait an hour for more records: only a full bundle or a checkpoint barrier lets them through,
    # so the run also shows that the JVM's bundler flushes before each barrier (nothing held across a cut)
    streams = build(records, JobSettings(bundle_ms=3_600_000), split=Path(input_dir).name)
    streams.windows.map(Append(str(Path(out) / "windows.jsonl"))).name("append windows")
    streams.detections.map(Append(str(Path(out) / "detections.jsonl"))).name("append detections")
    env.execute("clickstream-anomaly (checkpointed)")


if __name__ == "__main__":
    main(*sys.argv[1:])
