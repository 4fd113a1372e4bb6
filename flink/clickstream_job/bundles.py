"""Bundles of clicks-stream records: what the JVM's ``RecordBundler`` (flink/pom.xml's jar) sends the job's
Python operator, so that it is called once per bundle instead of once per record. Plain Python, no PyFlink.

A bundle is ``"n"`` and its records joined by :data:`BUNDLE_SEPARATOR`, or ``"1"`` and one record that holds
the separator itself (it comes alone, in order, so nothing is escaped). :func:`bundle` is the Java
operator's rule in Python (for the tests); :func:`unbundle` reads one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

#: Between the records of a bundle (ASCII group separator; RecordBundler.SEPARATOR).
BUNDLE_SEPARATOR = "\x1d"
#: Records per bundle at most, and processing time (ms) a record may wait for its bundle to fill.
BUNDLE_RECORDS, BUNDLE_MS = 2048, 200


def unbundle(value: str) -> list[str]:
    """The records of one bundle, in order."""
    return [value[1:]] if value[:1] == "1" else value[1:].split(BUNDLE_SEPARATOR)


def bundle(records: Iterable[str], tag: str = "", max_records: int = BUNDLE_RECORDS) -> Iterator[str]:
    """``records`` as the JVM bundles them (each prefixed with ``tag``), filled to ``max_records``."""
    pending: list[str] = []
    for record in records:
        if BUNDLE_SEPARATOR in record:
            if pending:
                yield "n" + BUNDLE_SEPARATOR.join(pending)
                pending = []
            yield "1" + tag + record
            continue
        pending.append(tag + record)
        if len(pending) >= max_records:
            yield "n" + BUNDLE_SEPARATOR.join(pending)
            pending = []
    if pending:
        yield "n" + BUNDLE_SEPARATOR.join(pending)
