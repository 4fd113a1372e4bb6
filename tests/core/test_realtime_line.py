"""The per-record CloudFront real-time decoder (:mod:`clickstream_anomaly.sources.realtime_line`) gives what
the block reader gives for the same record: the same clicks, the same errors and the same requests filtered
out, on the test log and on hostile records; the records it leaves to the block reader are the only ones
it does not decode."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from clickstream_anomaly.sources import SourceSettings
from clickstream_anomaly.sources.derive import Filtered
from clickstream_anomaly.sources.realtime_line import LineDecoder
from clickstream_anomaly.sources.stream import LINE_BATCH, decode_stream_records, decode_with_block_reader

DATA = Path(__file__).parent / "data" / "sources"
DEFAULT = SourceSettings(salt="property salt")
COOKIE = SourceSettings(
    salt="property salt",
    user_cookie="session-id",
    page_rules=((r"^/product/\d+", "/product/:id"),),
    collapse_ids=True,
    statuses="200-299,404",
)
NO_IP = SourceSettings(salt="s", realtime_fields=("cs-uri-stem", "timestamp(ms)", "cs-user-agent"))
LOOSE = SourceSettings(
    salt="s",
    realtime_fields=("c-ip", "timestamp", "cs-uri-stem", "cs-cookie"),
    methods=(),
    exclude_static=False,
    exclude_good_bots=False,
    user_cookie="sid",
)
ALL = {"default": DEFAULT, "cookie": COOKIE, "no-ip": NO_IP, "loose": LOOSE}
GOOD = b"1594807200.250\t198.51.100.7\t200\tGET\t/product/12?x=1\tMozilla/5.0\tsession-id=abc\n"

hostile_text = st.text(
    st.one_of(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n"),
        st.sampled_from(["\r", "\x00", "\ufeff", "\x1a", "\x0b", "\x85", "\u2028", '"', "%", ";", "="]),
    ),
    max_size=10,
)
values = {
    "timestamp": [
        "1594807200.250",
        "1594807200",
        "1594807200.5",
        "1594807200.2500005",
        "1e9",
        " 1594807200",
        "inf",
        "0",
        "0.000",
        "9999999999.999",
        "7258118400.000",
        "7258118400.001",
        "631152000",
        "-1594807200",
        "0x10",
        "",
    ],
    "timestamp(ms)": ["1594807200250", "1594807200", "1594807200250.5", "7258118400000", "1.5e12", ""],
    "c-ip": ["198.51.100.7", "2001:db8::1", "", "-"],
    "sc-status": ["200", "304", "404", "503", " 200", "2OO", "\u00b9\u00b2\u00b3", "\u0662\u0660\u0660", "20", ""],
    "cs-method": ["GET", "get", "POST", "HEAD", ""],
    "cs-uri-stem": [
        "/a",
        "/product/12?x=1",
        "/img/logo.PNG",
        "https://host:443/x?y=1",
        "?q",
        "",
        "0",
        "/u/123e4567-e89b-12d3-a456-426614174000/",
        "/%7e/1234567890abcdef0",
    ],
    "cs-user-agent": ["Mozilla/5.0", "Googlebot/2.1", "Mozilla%20(compatible;%20bingbot/2.0)", "", "-"],
    "cs-cookie": ["-", "session-id=abc", "session-id=%22q%22;%20x=1", "sid=1; a=b", "a=b", ""],
}


def field_value(name: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(values[name]), hostile_text)


@st.composite
def records(draw: st.DrawFn, config: SourceSettings) -> bytes:
    parts = [draw(field_value(name)) for name in config.realtime_fields]
    extra = draw(st.sampled_from([0, 0, 0, 1, -1]))
    parts = [*parts, "x"] if extra > 0 else parts[:-1] if extra < 0 else parts
    data = "\t".join(parts).encode("utf-8")
    if draw(st.integers(0, 9)) == 0:
        data = data.replace(b"/", b"/\xff", 1)  # not UTF-8
    if draw(st.integers(0, 9)) == 0:
        data = b"\xef\xbb\xbf" + data
    return data + draw(st.sampled_from([b"", b"\n", b"\r\n", b"\n\n"]))


def decoded_alike(fast, block) -> None:
    assert fast[0] == block[0]
    assert [(str(e), e.raw) for e in fast[1]] == [(str(e), e.raw) for e in block[1]]


def check(payload: bytes, config: SourceSettings) -> bool:
    """The per-record decoder equals the block reader on ``payload``; whether it decoded it itself."""
    if not payload.strip() or payload.lstrip()[:1] == b"{":
        return False  # neither reader's: decode_stream_records handles these first
    by_block, by_line = Filtered(), Filtered()
    (block,) = decode_with_block_reader([payload], config, filtered=by_block)
    fast = LineDecoder(config).decode(payload, by_line)
    ((whole, errors),) = decode_stream_records([payload], "cloudfront-realtime", config)
    decoded_alike((whole, errors), block)
    if fast is None:
        return False
    decoded_alike(fast, block)
    assert by_line.by_reason == by_block.by_reason
    return True


@pytest.mark.parametrize("name", sorted(ALL))
def test_hostile_records_decode_as_the_block_reader_decodes_them(name):
    config = ALL[name]
    decoded: list[bool] = []

    @settings(max_examples=250, deadline=None)
    @given(records(config))
    @example(GOOD)
    def run(payload):
        decoded.append(check(payload, config))

    run()
    assert 0.2 < sum(decoded) / len(decoded) < 0.95  # the per-record decoder took most, not all, records


def test_the_test_log_and_the_common_records_are_decoded_by_the_per_record_decoder():
    lines = (DATA / "cloudfront-realtime.log").read_bytes().splitlines(keepends=True)
    assert len(lines) == 4
    for line in lines:
        assert check(line, DEFAULT)
    clicks = [decode_stream_records([line], "cloudfront-realtime", DEFAULT)[0][0] for line in lines]
    assert [len(c) for c in clicks] == [1, 1, 0, 0]  # a 503 and a static asset are not clicks
    common = [
        (DEFAULT, [GOOD, GOOD.replace(b"\t200\t", b"\t404\t"), GOOD.replace(b"GET", b"POST"), b"1\t2\t3\n"]),
        (COOKIE, [GOOD, GOOD.replace(b"session-id=abc", b"-"), GOOD.replace(b"/product/12", b"/app.css")]),
        (NO_IP, [b"/a?b\t1594807200250\tcurl\n", b"/a\t1594807200250\tGooglebot\n"]),
        (LOOSE, [b"198.51.100.7\t1594807200.25\t/a\tsid=1\n", b"198.51.100.7\t1594807200\t\t-\n"]),
    ]
    for config, payloads in common:
        assert all(check(p, config) for p in payloads)


def test_a_status_in_other_digits_is_a_bad_status_not_a_crash():
    """Found by this test: ``int("¹²³")`` raised out of the block reader and failed the whole batch."""
    for status in ("\u00b9\u00b2\u00b3", "\u0662\u0660\u0660"):
        payload = GOOD.replace(b"\t200\t", f"\t{status}\t".encode())
        ((clicks, errors),) = decode_stream_records([payload, GOOD], "cloudfront-realtime", DEFAULT)[:1]
        assert not clicks and str(errors[0]).startswith("cloudfront-realtime record: bad status")
        assert check(payload, DEFAULT)


def test_a_large_batch_goes_to_the_block_reader_and_decodes_the_same():
    batch = [GOOD, GOOD.replace(b"/product", b"/p"), b"x\t\t\n", GOOD.replace(b"200", b"404")] * (LINE_BATCH // 3)
    assert len(batch) > LINE_BATCH
    by_block, by_batch = Filtered(), Filtered()
    block = decode_with_block_reader(batch, DEFAULT, filtered=by_block)
    for fast, want in zip(
        decode_stream_records(batch, "cloudfront-realtime", DEFAULT, filtered=by_batch), block, strict=True
    ):
        decoded_alike(fast, want)
    assert by_batch.by_reason == by_block.by_reason == {"status": LINE_BATCH // 3}
    small = decode_stream_records(batch[:LINE_BATCH], "cloudfront-realtime", DEFAULT)
    for fast, want in zip(small, block[:LINE_BATCH], strict=True):
        decoded_alike(fast, want)


def test_the_pseudonym_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr("clickstream_anomaly.sources.realtime_line.PSEUDONYM_CACHE", 3)
    decoder = LineDecoder(DEFAULT)
    users = []
    for ip in range(10):
        ((click,), _) = decoder.decode(GOOD.replace(b"198.51.100.7", f"10.0.0.{ip}".encode()))  # type: ignore[misc]
        users.append(click.user)
        assert len(decoder.pseudonyms) <= 4
    assert len(set(users)) == 10
    (block,) = decode_with_block_reader([GOOD.replace(b"198.51.100.7", b"10.0.0.9")], DEFAULT)
    assert block[0][0].user == users[-1]
