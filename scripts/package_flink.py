#!/usr/bin/env python3
"""Build the Flink engine's application zip for Managed Service for Apache Flink (``make flink-zip``).

Layout (the zip's root, as the ``kinesis.analytics.flink.run.options`` group names it): ``main.py`` (calls
``clickstream_job.msf.main()``), ``clickstream_job/`` (the job), ``clickstream_anomaly/`` (the core's code
and package data, no caches) and ``lib/clickstream-flink-connectors.jar`` (``make flink-jar``). No
``lib/python/``: the job imports nothing beyond the standard library, numpy and pandas, which the MSF
runtime's PyFlink brings (tests/flink/test_msf_kinesis.py checks it on the built zip).

The zip is reproducible: entries sorted, fixed timestamps and modes, so an unchanged tree gives the same
bytes and the CDK asset hash does not change. Standard library only.

Usage: ``python3 scripts/package_flink.py [--jar JAR] [-o ZIP]``.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JAR = ROOT / "build" / "flink" / "lib" / "clickstream-flink-connectors.jar"
ZIP = ROOT / "build" / "flink" / "clickstream-flink.zip"
JAR_ENTRY = "lib/clickstream-flink-connectors.jar"
PACKAGES = {"clickstream_job": ROOT / "flink" / "clickstream_job", "clickstream_anomaly": ROOT / "clickstream_anomaly"}
SKIPPED_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo", ".so", ".orig", ".rej"}
MAIN_PY = '''"""Entry point of the clickstream-anomaly Flink application (the `python` run option)."""

from clickstream_job.msf import main

if __name__ == "__main__":
    main()
'''
EPOCH = (1980, 1, 1, 0, 0, 0)


def package_files(name: str, directory: Path) -> Iterator[tuple[str, Path]]:
    """``(entry, file)`` for each file of a package: code and data, no caches or compiled files."""
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if path.is_file() and not SKIPPED_DIRS.intersection(rel.parts) and path.suffix not in SKIPPED_SUFFIXES:
            yield f"{name}/{rel.as_posix()}", path


def entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED if name.endswith(".jar") else zipfile.ZIP_DEFLATED
    return info


def build_zip(jar: Path, out: Path) -> list[str]:
    """Write the application zip to ``out``; returns its entry names."""
    if not jar.is_file():
        raise FileNotFoundError(f"{jar} is missing: `make flink-jar` builds it")
    files = [f for name, directory in sorted(PACKAGES.items()) for f in package_files(name, directory)]
    files.append((JAR_ENTRY, jar))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        zf.writestr(entry("main.py"), MAIN_PY)
        for name, path in files:
            with open(path, "rb") as src, zf.open(entry(name), "w") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    tmp.replace(out)
    return ["main.py", *(name for name, _ in files)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jar", type=Path, default=JAR, help=f"connector jar (default {JAR.relative_to(ROOT)})")
    p.add_argument("-o", "--output", type=Path, default=ZIP, help=f"zip to write (default {ZIP.relative_to(ROOT)})")
    args = p.parse_args(argv)
    names = build_zip(args.jar, args.output)
    print(f"{args.output}: {len(names)} files, {args.output.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
