"""Records of the clicks stream in either of its formats, decoded a batch at a time.

``clicks`` (the default): the project's own JSON clicks, one per record or several newline-separated
(:func:`~clickstream_anomaly.records.decode_click_record`; what ``produce`` and the S3 producer write).
``cloudfront-realtime``: CloudFront real-time log records, the configured fields tab-separated
(:func:`.cloudfront_realtime.decode_records`, one pandas pass per batch; a small batch, such as the Flink
job's one record, a record at a time by :class:`~.realtime_line.LineDecoder`, which gives the same). On a
stream in that format a record that starts with ``{`` is still read as the project's JSON clicks, so the S3
producer (and ``produce``) can share the stream with CloudFront; a real-time record never starts with ``{``
unless its first configured field's value does (put ``timestamp`` first, as the console does).

Each record's result is ``(clicks, errors)``: a bad record has errors and fails alone; a request that is
not a click (a static asset, a declared-good crawler, a 404...) is a good record with no click, counted
in the ``Filtered`` the caller passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..clicks_csv import BadLines
from ..records import Click, RecordError, decode_click_record
from . import cloudfront_realtime
from .derive import Filtered
from .realtime_line import LineDecoder
from .settings import SourceSettings

CLICKS = "clicks"
#: The formats the clicks stream can carry (``clicks_format`` in cdk.json, ``CLICKS_FORMAT`` in the Lambda).
STREAM_FORMATS: tuple[str, ...] = (CLICKS, cloudfront_realtime.NAME)

Decoded = tuple[list[Click], list[RecordError]]
#: A batch of up to this many records is decoded a record at a time (:class:`~.realtime_line.LineDecoder`,
#: ~10 us each; the records it leaves go to the block reader), a larger one in one pandas pass (~2.4 ms +
#: ~5 us a record). Both give the same clicks and errors.
LINE_BATCH = 256
_DECODERS: dict[int, LineDecoder] = {}  # by id(settings); each decoder holds its settings, so the id stays theirs


@dataclass
class _Collect(BadLines):
    """A :class:`BadLines` that keeps every bad record's reason by its position (1-based)."""

    reasons: dict[int, list[str]] = field(default_factory=dict)

    def add(self, source: str, line: int, reason: str, raw: str) -> None:
        super().add(source, line, reason, raw)
        self.reasons.setdefault(line, []).append(reason)


def _click(ts: int, user: str, page: str) -> Click:
    sec, ns = divmod(int(ts), 1_000_000_000)
    return Click(datetime.fromtimestamp(sec, UTC).replace(microsecond=ns // 1000), user, page)


def decode_stream_records(
    payloads: Sequence[bytes],
    fmt: str = CLICKS,
    settings: SourceSettings | None = None,
    *,
    filtered: Filtered | None = None,
) -> list[Decoded]:
    """``(clicks, errors)`` of each record's data, in the order of ``payloads``.

    Parameters
    ----------
    payloads : sequence of bytes
        The data of the batch's records (base64 already decoded).
    fmt : str
        One of :data:`STREAM_FORMATS`.
    settings : SourceSettings
        For ``cloudfront-realtime``: the fields, user, page and filter settings (its salt must be the one
        every producer and aggregator uses).
    filtered : Filtered, optional
        Counts the requests that are not clicks, by reason.
    """
    if fmt == CLICKS:
        return [decode_click_record(p) for p in payloads]
    if fmt != cloudfront_realtime.NAME:
        raise ValueError(f"unknown clicks stream format {fmt!r}: one of {', '.join(STREAM_FORMATS)}")
    if settings is None:
        raise ValueError("cloudfront-realtime records need the source settings (fields, salt)")
    out: list[Decoded] = [([], []) for _ in payloads]
    tsv: list[int] = []  # positions of the real-time records the block reader decodes
    line = _line_decoder(settings) if len(payloads) <= LINE_BATCH else None
    for i, data in enumerate(payloads):
        if data.lstrip()[:1] == b"{":
            out[i] = decode_click_record(data)
        elif not data.strip():
            out[i] = ([], [RecordError("empty record: no request")])
        elif line is not None and (one := line.decode(data, filtered)) is not None:
            out[i] = one
        else:
            tsv.append(i)
    if tsv:
        decoded = decode_with_block_reader([payloads[i] for i in tsv], settings, filtered=filtered)
        for i, one in zip(tsv, decoded, strict=True):
            out[i] = one
    return out


def decode_with_block_reader(
    payloads: Sequence[bytes], settings: SourceSettings, *, filtered: Filtered | None = None
) -> list[Decoded]:
    """``(clicks, errors)`` of each of these non-blank real-time records, in one pandas pass
    (:func:`.cloudfront_realtime.decode_records`); what :class:`~.realtime_line.LineDecoder` equals."""
    out: list[Decoded] = [([], []) for _ in payloads]
    bad = _Collect()
    frame = cloudfront_realtime.decode_records(
        payloads, settings, skip_bad=True, bad=bad, filtered=filtered, with_lines=True
    )
    for line, ts, user, page in zip(
        frame["line"].tolist(), frame["ts"].tolist(), frame["user"].tolist(), frame["page"].tolist(), strict=True
    ):
        out[line - 1][0].append(_click(ts, user, page))
    for line, reasons in bad.reasons.items():
        raw = payloads[line - 1][:200].decode("utf-8", "replace")
        out[line - 1][1].extend(RecordError(f"cloudfront-realtime record: {r}", raw=raw) for r in reasons)
    return out


def _line_decoder(settings: SourceSettings) -> LineDecoder:
    """The per-record decoder of ``settings``, made once (it compiles the page rules and caches pseudonyms)."""
    decoder = _DECODERS.get(id(settings))
    if decoder is None or decoder.settings is not settings:
        if len(_DECODERS) >= 16:
            _DECODERS.clear()
        decoder = _DECODERS[id(settings)] = LineDecoder(settings)
    return decoder
