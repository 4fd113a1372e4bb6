"""Bundles of clicks-stream records (flink/clickstream_job/bundles.py): the JVM's RecordBundler's rule,
and how the job reads them. The Java operator itself runs in every job test (tests/flink/test_job.py)."""

import pytest

from flink.clickstream_job.bundles import BUNDLE_SEPARATOR, bundle, unbundle


@pytest.mark.parametrize("max_records", [1, 3, 2048])
def test_records_come_back_in_order_whatever_they_hold(max_records):
    records = ['{"user":"a"}', "", "x" + BUNDLE_SEPARATOR + "y", BUNDLE_SEPARATOR, "1", "n", "é\U0001f600", "z"] * 3
    bundles = list(bundle(records, "shard\x1f", max_records))
    assert [r for b in bundles for r in unbundle(b)] == ["shard\x1f" + r for r in records]
    assert all(len(unbundle(b)) <= max_records for b in bundles)
    # a record that holds the separator comes alone; the others fill bundles up to max_records
    alone = [b for b in bundles if b.startswith("1")]
    assert len(alone) == 6 and all(BUNDLE_SEPARATOR in b for b in alone)
    if max_records == 2048:
        assert len(bundles) == 6 + 4  # the six lone ones split the rest into four


def test_no_records_no_bundle():
    assert list(bundle([])) == []
    assert unbundle("n") == [""]  # one empty record (a blank line is a record, and a malformed click)
