"""Clicks-stream records in either format (:mod:`clickstream_anomaly.sources.stream`): a batch decodes as
its records do one by one, whatever bytes its neighbours hold; a bad record never costs a good one."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from clickstream_anomaly.records import Click
from clickstream_anomaly.sources import SourceSettings
from clickstream_anomaly.sources.stream import decode_stream_records

SETTINGS = SourceSettings(salt="property salt")
GOOD = b"1594807200.250\t198.51.100.7\t200\tGET\t/product/12?x=1\tMozilla/5.0\tsession-id=abc\n"
fields = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"), max_size=12)
tsv = st.lists(fields, min_size=1, max_size=9).map(lambda parts: "\t".join(parts).encode())
record = st.one_of(st.just(GOOD), st.binary(max_size=80), tsv)


@settings(max_examples=200, deadline=None)
@given(st.lists(record, min_size=1, max_size=12))
@example([GOOD, b"0\t\t\t\t\t\t"])  # found by hypothesis: the parser read the stamps as floats ("0.0")
@example([GOOD, b"x\t\t\t\t\t\t", b"0.0\t\t\t\t\t\t", b"Infinity\t\t\t\t\t\t"])
@example([GOOD, b"\t\t0E0"])  # found by hypothesis: the status column read as floats, "200" became "200.0"
@example([GOOD, b"TRUE\t\t\t\t\t\t"])  # found by hypothesis: alone, TRUE was read as a boolean ("True")
def test_a_batch_decodes_as_its_records_alone(batch):
    together = decode_stream_records(batch, "cloudfront-realtime", SETTINGS)
    alone = [decode_stream_records([p], "cloudfront-realtime", SETTINGS)[0] for p in batch]
    assert [c for c, _ in together] == [c for c, _ in alone]
    assert [[str(e) for e in errs] for _, errs in together] == [[str(e) for e in errs] for _, errs in alone]
    for payload, (clicks, errors) in zip(batch, together, strict=True):
        if payload == GOOD:
            assert len(clicks) == 1 and not errors


def test_formats_and_the_json_clicks_beside_realtime_records():
    own = Click.from_mapping({"timestamp": "2020-07-15T10:00:00Z", "user": "u", "page": "/"})
    ((c1, e1), (c2, e2), (c3, e3)) = decode_stream_records(
        [GOOD, own.to_json().encode(), b"   "], "cloudfront-realtime", SETTINGS
    )
    assert [c.page for c in c1] == ["/product/12"] and not e1
    assert c2 == [own] and not e2
    assert not c3 and str(e3[0]) == "empty record: no request"
    assert decode_stream_records([own.to_json().encode()])[0] == ([own], [])
    with pytest.raises(ValueError, match="unknown clicks stream format"):
        decode_stream_records([GOOD], "alb", SETTINGS)
