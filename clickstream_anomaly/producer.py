"""Sending click records to a Kinesis data stream with ``PutRecords``: batching, retries, pacing.

Used by ``clickstream-anomaly produce`` and by the S3-log producer Lambda (one sender, two callers).

* **Batching**: a ``PutRecords`` call holds at most 500 entries and 5 MiB (data + partition keys); one
  entry is at most 1 MiB (:data:`MAX_BATCH_RECORDS`, :data:`MAX_BATCH_BYTES`, :data:`MAX_RECORD_BYTES`).
* **Partition key = user**: a user's clicks land on one shard in order (sessions stay readable) while
  thousands of users spread the load evenly over the shards. The aggregator merges per-shard partial
  windows with exact distinct counts, so the key does not change any feature value.
* **Order per partition key**: a batch never holds two entries of the same key, and failed entries go back
  to the front of the queue; so a user's clicks are written in input order even when entries fail. An
  entry held back because its key is already in the batch can be overtaken by other keys' entries only
  within ``max_skew`` seconds of event time (default 300 s, half the aggregator's default allowed
  lateness), so the stream stays in time order within that skew. The price: a single hot key (the
  miscount bug's one user id) is written one entry per call.
* **Retries**: entries a ``PutRecords`` response marks failed (``ProvisionedThroughputExceededException``,
  ``InternalFailure``) are re-sent, and only those. Whole-call errors (throttled API, 5xx, connection) are
  retried by botocore's ``standard`` or ``adaptive`` retry mode. How long to wait depends on progress:

  - a call that wrote *some* entries is progress: the failed ones are retried after at most
    ``base`` (50 ms) times the failed share of the call (full jitter), so 10 % failed entries cost a few
    milliseconds a call, not an exponential wait;
  - a call that wrote *nothing* backs off exponentially with full jitter (``uniform(0, min(cap, base *
    2**k))`` seconds for the k-th such call in a row).

  **Give-up rule** (bounded, whatever the failure rate): the send stops when ``max_attempts`` calls in a
  row wrote nothing (a stream refusing everything: at most 11.35 s of backoff at the defaults), or when one
  record has been tried ``RECORD_TRIES_FACTOR * max_attempts`` times (32 at the default 8; reached in
  practice only when most entries keep failing, above about 70 %). :class:`ProducerError` is raised and
  every record not yet written can be saved as JSON Lines (:meth:`SendResult.write_unsent`) for a later
  ``produce --input unsent.jsonl``.
* **Stopping**: ``send(stop=...)`` is asked before each call and during every wait; when it gives a reason
  (SIGTERM, a Lambda about to time out) the send stops the same way, with every unsent record reported.
* **Pacing**: by default as fast as the stream takes it; :class:`Pacer` replays the clicks' own timing
  ``speedup`` times faster or at a fixed ``rate`` of records per second.

The client is passed in (:func:`clickstream_anomaly.aws.clients.kinesis_client` makes one); this module
never imports boto3.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clicks_csv import BadLines, iter_click_chunks, printable_raw, utf8_problem
from .progress import Progress
from .records import CLICK_SEPARATOR, Click, RecordError, join_click_payloads
from .retry import Backoff

if TYPE_CHECKING:
    from .sources import SourceSettings

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
MAX_PARTITION_KEY_CHARS = 256
RETRYABLE_CODES = ("ProvisionedThroughputExceededException", "InternalFailure")
LOOKAHEAD = 5_000  # entries scanned when filling a batch (bounds the work a hot key can cause)
MAX_SKEW_SECONDS = 300.0  # event time an entry may overtake a held-back entry of a repeated key
AGGREGATE_BYTES = 25 * 1024  # an aggregated record's size limit: one 25 KiB PUT payload unit
LINGER_SECONDS = 0.1  # paced sends: how long a due record may wait for others to share its call (KPL: 100 ms)
RECORD_TRIES_FACTOR = 4  # a record gives up after this many times max_attempts tries (see the module docstring)
STOP_POLL_SECONDS = 0.2  # how often a wait asks ``stop`` whether to end the send


class ProducerError(RuntimeError):
    """Records could not be written after the bounded retries; ``result`` holds what was and was not sent.

    ``stopped`` is the reason when the send was asked to stop (``send(stop=...)``), else ``None``."""

    def __init__(self, message: str, result: SendResult, *, stopped: str | None = None) -> None:
        super().__init__(message)
        self.result = result
        self.stopped = stopped


class BadInputError(ProducerError):
    """The input had a bad line and bad lines stop the send (no ``skip_bad``): ``error`` is that line's
    :class:`RecordError`; ``result.unsent`` holds every *good* click not sent, those after the bad line too."""

    def __init__(self, error: RecordError, result: SendResult) -> None:
        super().__init__(str(error), result)
        self.error = error


@dataclass(slots=True)
class Entry:
    """One Kinesis record to send: ``data`` bytes, ``key`` partition key, ``ts`` event time (s since epoch)
    of its first click; ``count`` clicks in it (aggregated records hold several)."""

    data: bytes
    key: str
    ts: float = 0.0
    attempts: int = 0
    count: int = 1  # records (clicks) inside: more than 1 for an aggregated record
    due: float = 0.0  # when it was due to be sent (s after the start; set by the sender)

    @property
    def size(self) -> int:
        """Bytes this entry counts against the record and request limits (data + partition key)."""
        return len(self.data) + len(self.key.encode("utf-8"))


def partition_key(user: str) -> str:
    """The partition key of a user's clicks: the user id (hashed when longer than Kinesis' 256 chars)."""
    if 0 < len(user) <= MAX_PARTITION_KEY_CHARS:
        return user
    return hashlib.sha256(user.encode("utf-8")).hexdigest()


def click_entry(click: Click) -> Entry:
    """A click as a stream entry (its JSON from :meth:`Click.to_json`, keyed by user)."""
    entry = Entry(click.to_json().encode("utf-8"), partition_key(click.user), click.timestamp.timestamp())
    if entry.size > MAX_RECORD_BYTES:
        raise RecordError(f"record of {entry.size} bytes is over the 1 MiB Kinesis limit")
    return entry


def take_batch(
    pending: deque[Entry],
    *,
    max_records: int = MAX_BATCH_RECORDS,
    max_bytes: int = MAX_BATCH_BYTES,
    lookahead: int = LOOKAHEAD,
    max_skew: float = MAX_SKEW_SECONDS,
    preserve_order: bool = True,
    aggregate_bytes: int = 0,
) -> list[Entry]:
    """Remove and return the next batch from ``pending``: within the limits, one entry per key.

    Entries are taken in queue order; an entry whose key is already in the batch stays queued, and so do
    all later entries of that key (order per key is kept). Entries may overtake a held-back one by at most
    ``max_skew`` seconds of event time, so the stream stays in time order within that skew (the
    aggregator's allowed lateness must cover it). At most ``lookahead`` entries are scanned.
    ``preserve_order=False`` takes entries strictly in queue order, repeated keys included (full batches;
    a retried entry may then land after a later entry of its key).

    ``aggregate_bytes > 0`` (aggregation): an entry whose key is already in the batch is appended to that
    key's record instead (:func:`~clickstream_anomaly.records.join_click_payloads`, in queue order) while
    the record stays within ``aggregate_bytes`` (data + key) and the entry is at most ``max_skew`` seconds
    of event time after the record's first one (so the stream's time order still holds within the skew).
    An entry that does not fit is held back like a repeated key, with every later entry of its key.
    """
    groups: list[list[Entry]] = []
    group_bytes: list[int] = []
    slot: dict[str, int] = {}  # key -> its group in this batch
    blocked: set[str] = set()  # keys with a held-back entry: the rest of the key waits too
    kept: list[Entry] = []
    size = 0
    scanned = 0
    held_since: float | None = None
    while pending and scanned < lookahead:
        entry = pending.popleft()
        scanned += 1
        if held_since is not None and entry.ts - held_since > max_skew:
            kept.append(entry)
            break
        key = entry.key
        i = slot.get(key)
        if i is not None and aggregate_bytes > 0 and key not in blocked:
            add = len(entry.data) + len(CLICK_SEPARATOR)
            if (
                group_bytes[i] + add <= aggregate_bytes
                and size + add <= max_bytes
                and entry.ts - groups[i][0].ts <= max_skew
            ):
                groups[i].append(entry)
                group_bytes[i] += add
                size += add
                continue
        if key in blocked or (i is not None and preserve_order):
            kept.append(entry)
            blocked.add(key)
            held_since = entry.ts if held_since is None else held_since
            continue
        if len(groups) >= max_records or size + entry.size > max_bytes:
            kept.append(entry)
            break
        slot[key] = len(groups)
        groups.append([entry])
        group_bytes.append(entry.size)
        size += entry.size
    pending.extendleft(reversed(kept))
    return [group[0] if len(group) == 1 else merge_entries(group) for group in groups]


def merge_entries(group: list[Entry]) -> Entry:
    """One aggregated record of entries sharing a key (the clicks-stream wire format, in order)."""
    first = group[0]
    return Entry(
        join_click_payloads(e.data for e in group),
        first.key,
        first.ts,
        attempts=max(e.attempts for e in group),
        count=sum(e.count for e in group),
        due=first.due,
    )


@dataclass
class Pacer:
    """When each record is due, in seconds after the start: ``speedup`` (event time / X) or ``rate`` (N/s).

    Neither set: everything is due at once (as fast as the stream allows).
    """

    speedup: float | None = None
    rate: float | None = None
    _t0: float | None = field(default=None, init=False)
    _n: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.speedup is not None and self.rate is not None:
            raise ValueError("use either --speedup or --rate, not both")
        if self.speedup is not None and self.speedup <= 0:
            raise ValueError("--speedup must be positive")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("--rate must be positive")

    def due(self, entry: Entry) -> float:
        n = self._n
        self._n += 1
        if self.rate is not None:
            return n / self.rate
        if self.speedup is not None:
            if self._t0 is None:
                self._t0 = entry.ts
            return max(0.0, (entry.ts - self._t0) / self.speedup)
        return 0.0


@dataclass
class SendResult:
    """What a send did. ``sent`` counts records (clicks) written, ``records`` the Kinesis records that held
    them (fewer when aggregated); ``retried`` counts Kinesis-record re-sends; ``unsent`` holds entries never
    written."""

    sent: int = 0
    records: int = 0
    retried: int = 0
    calls: int = 0
    throttled: int = 0
    seconds: float = 0.0
    shards: dict[str, int] = field(default_factory=dict)
    unsent: list[Entry] = field(default_factory=list)
    error: str | None = None
    last_error: str = ""

    @property
    def failed(self) -> int:
        """Records (clicks) not written."""
        return sum(e.count for e in self.unsent)

    @property
    def rate(self) -> float:
        """Records written per second of wall time."""
        return self.sent / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        packed = f" (as {self.records:,} aggregated Kinesis records)" if self.records != self.sent else ""
        text = (
            f"sent {self.sent:,} records{packed} in {self.calls:,} PutRecords calls, {self.seconds:.1f} s "
            f"({self.rate:,.0f} records/s); retried {self.retried:,} entries "
            f"({self.throttled:,} throttled); failed {self.failed:,}"
        )
        return text

    def write_unsent(self, path: str | Path) -> Path:
        """Write the unsent records as JSON Lines (the stream's click JSON, one a line: an aggregated
        record's clicks are already newline-separated), re-sendable with ``produce``."""
        path = Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "wb") as fh:
            for entry in self.unsent:
                fh.write(entry.data + b"\n")
        return path


@dataclass
class _Feed:
    """The entries of one :meth:`KinesisSender.send` not queued yet: ``source``, and ``held``, the entry
    already read from it that is not due yet (due at ``held_due`` seconds after the start).

    ``halt()`` is asked after each entry read; a reason (a bad line in the input) stops the queueing."""

    source: Iterator[Entry]
    pacer: Pacer | None
    halt: Callable[[], str | None] | None = None
    held: Entry | None = None
    held_due: float = 0.0
    exhausted: bool = False
    halted: str | None = None
    read_error: str | None = None

    def fill(self, pending: deque[Entry], now: float) -> None:
        """Move the entries due at ``now`` (seconds after the start) into ``pending``, up to the look-ahead."""
        while not self.exhausted and self.halted is None and len(pending) < LOOKAHEAD:
            if self.held is None:
                try:
                    self.held = next(self.source)
                except StopIteration:
                    self.exhausted = True
                    break
                self.held_due = self.pacer.due(self.held) if self.pacer is not None else 0.0
                self.halted = self.halt() if self.halt is not None else None
                if self.halted is not None:
                    break
            if self.held_due - now > 1e-6:  # (a tolerance: clock - start is rounded)
                break
            self.held.due = self.held_due
            pending.append(self.held)
            self.held = None

    def rest(self) -> list[Entry]:
        """Every entry not queued, in order (the held one first); drains ``source``. An error while reading
        the rest ends the list there and is kept in ``read_error``."""
        out = [self.held] if self.held is not None else []
        try:
            out.extend(self.source)
        except Exception as exc:  # an unreadable rest of the input: what was read is still reported
            self.read_error = str(exc)
        return out


class _Stop(RuntimeError):
    """``stop()`` gave a reason."""


class _Halt(RuntimeError):
    """The input's bad-line policy stopped the send."""


@dataclass
class KinesisSender:
    """Writes entries to one stream with ``PutRecords`` (see the module docstring for the rules).

    ``client`` is a boto3 Kinesis client (for example from :func:`clickstream_anomaly.aws.clients.kinesis_client`).
    ``max_attempts`` bounds the tries per entry. ``aggregate_bytes > 0`` packs entries that share a key into
    aggregated records of at most that many bytes (:func:`take_batch`; only for streams whose consumers read the
    clicks-stream wire format, so off by default: the click producers turn it on with :data:`AGGREGATE_BYTES`). With
    a pacer, a due record waits at most ``linger`` seconds for others to share its call. ``sleep`` and ``clock`` are
    injectable for tests.
    """

    client: Any
    stream_name: str
    max_attempts: int = 8
    backoff: Backoff = field(default_factory=Backoff)
    max_records: int = MAX_BATCH_RECORDS
    max_bytes: int = MAX_BATCH_BYTES
    max_skew: float = MAX_SKEW_SECONDS
    preserve_order: bool = True
    aggregate_bytes: int = 0
    linger: float = LINGER_SECONDS
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if not 0 <= self.aggregate_bytes <= MAX_RECORD_BYTES:
            raise ValueError(
                f"aggregate bytes must be between 0 (off) and {MAX_RECORD_BYTES} (1 MiB), got {self.aggregate_bytes}"
            )
        if self.linger < 0:
            raise ValueError("linger must be 0 or more seconds")
        if self.max_skew < 0:
            raise ValueError("max skew must be 0 or more seconds")

    def send(
        self,
        entries: Iterable[Entry],
        *,
        pacer: Pacer | None = None,
        progress: Progress | None = None,
        stop: Callable[[], str | None] | None = None,
        halt: Callable[[], str | None] | None = None,
    ) -> SendResult:
        """Send every entry; returns a :class:`SendResult` or raises :class:`ProducerError` (with it).

        ``stop()`` is asked before each call and during waits: a reason ends the send (``ProducerError.stopped``).
        ``halt()`` is asked after each entry read from ``entries``: a reason (a bad input line) ends the send
        before anything more is sent; the entries not sent, the rest of ``entries`` included, are reported.
        """
        result = SendResult()
        feed = _Feed(iter(entries), pacer, halt)
        pending: deque[Entry] = deque()
        start = self.clock()
        try:
            self._loop(feed, pending, result, start, progress, stop)
        except (Exception, KeyboardInterrupt) as exc:  # whole-call error after botocore retries, give-up, ^C
            result.unsent = [*pending, *feed.rest()]
            result.seconds = self.clock() - start
            result.error = str(exc)
            stopped = str(exc) if isinstance(exc, _Stop) else None
            what = f"stopped ({exc})" if stopped else str(exc)
            raise ProducerError(
                f"could not write {len(result.unsent):,} record(s) to {self.stream_name}: {what}",
                result,
                stopped=stopped,
            ) from exc
        result.seconds = self.clock() - start
        return result

    def _loop(
        self,
        feed: _Feed,
        pending: deque[Entry],
        result: SendResult,
        start: float,
        progress: Progress | None,
        stop: Callable[[], str | None] | None,
    ) -> None:
        """The send loop: queue due entries, put batches, wait as the module docstring says."""
        idle_calls = 0  # calls in a row that wrote nothing
        while True:
            reason = stop() if stop is not None else None
            if reason:
                raise _Stop(reason)
            now = self.clock() - start
            feed.fill(pending, now)
            if feed.halted is not None:
                raise _Halt(feed.halted)
            if not pending:
                if feed.exhausted:
                    return
                self._wait(feed.held_due - (self.clock() - start), stop)
                continue
            send_at = pending[0].due + self.linger
            if not feed.exhausted and len(pending) < LOOKAHEAD and send_at - now > 1e-6:
                # Paced: let the oldest due record wait up to `linger` for more to share the call.
                self._wait(min(feed.held_due, send_at) - (self.clock() - start), stop)
                continue
            batch_size, failed = self._send_batch(pending, result, progress)
            if not failed:
                idle_calls = 0
                continue
            result.retried += len(failed)
            if len(failed) < batch_size:  # progress: a short, proportional wait
                idle_calls = 0
                self._check_tries(failed, result)
                self._wait(self.backoff.delay(0) * len(failed) / batch_size, stop)
                continue
            idle_calls += 1
            if idle_calls >= self.max_attempts:
                raise _GiveUp(
                    f"{idle_calls} PutRecords calls in a row wrote nothing (e.g. {describe_entry(failed[0])}: "
                    f"{result.last_error}); the stream may need more shards or a lower --rate"
                )
            self._check_tries(failed, result)
            self._wait(self.backoff.delay(idle_calls - 1), stop)

    def _wait(self, seconds: float, stop: Callable[[], str | None] | None) -> None:
        """Sleep ``seconds`` (at least 0); with ``stop``, in slices that ask it, ending early with its reason."""
        seconds = max(0.0, seconds)
        if stop is None:
            self.sleep(seconds)
            return
        end = self.clock() + seconds
        while True:
            reason = stop()
            if reason:
                raise _Stop(reason)
            left = end - self.clock()
            if left <= 0:
                return
            self.sleep(min(left, STOP_POLL_SECONDS))

    def _send_batch(
        self, pending: deque[Entry], result: SendResult, progress: Progress | None
    ) -> tuple[int, list[Entry]]:
        """Take one batch from ``pending`` and put it; its failed entries go back to the front of ``pending``
        (in order). Returns the call's record count and its failed entries. On an exception the whole batch
        goes back (reported unsent)."""
        batch = take_batch(
            pending,
            max_records=self.max_records,
            max_bytes=self.max_bytes,
            max_skew=self.max_skew,
            preserve_order=self.preserve_order,
            aggregate_bytes=self.aggregate_bytes,
        )
        try:
            failed = self._put(batch, result)
        except Exception:
            pending.extendleft(reversed(batch))  # reported unsent, in order
            raise
        if progress is not None:
            progress.update(sum(e.count for e in batch) - sum(e.count for e in failed))
        pending.extendleft(reversed(failed))
        return len(batch), failed

    def _check_tries(self, failed: list[Entry], result: SendResult) -> None:
        """Raise :class:`_GiveUp` when a record of ``failed`` has had its ``RECORD_TRIES_FACTOR * max_attempts``
        tries (the per-record bound of the give-up rule)."""
        worst = max(failed, key=lambda e: e.attempts)
        limit = RECORD_TRIES_FACTOR * self.max_attempts
        if worst.attempts >= limit:
            raise _GiveUp(
                f"a record still failing after {worst.attempts} tries ({limit} = {RECORD_TRIES_FACTOR} x "
                f"--max-attempts; e.g. {describe_entry(worst)}: {result.last_error}); the stream may need more "
                "shards or a lower --rate"
            )

    def _put(self, batch: list[Entry], result: SendResult) -> list[Entry]:
        """One ``PutRecords`` call; returns the entries the response marks failed."""
        for entry in batch:
            entry.attempts += 1
        result.calls += 1
        response = self.client.put_records(
            StreamName=self.stream_name, Records=[{"Data": e.data, "PartitionKey": e.key} for e in batch]
        )
        failed: list[Entry] = []
        for entry, rec in zip(batch, response["Records"], strict=True):
            code = rec.get("ErrorCode")
            if code:
                failed.append(entry)
                result.last_error = f"{code}: {rec.get('ErrorMessage', '')}"
                result.throttled += code == "ProvisionedThroughputExceededException"
            else:
                shard = rec.get("ShardId", "")
                result.shards[shard] = result.shards.get(shard, 0) + 1
                result.sent += entry.count
                result.records += 1
        return failed


class _GiveUp(RuntimeError):
    pass


# ---- reading click logs into entries ---------------------------------------------------------------


def _open_binary(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def is_jsonlines(path: str | Path) -> bool:
    """True for ``.jsonl``/``.json``/``.ndjson`` (optionally ``.gz``) click logs, False for CSV."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in (".jsonl", ".json", ".ndjson")


def _jsonl_clicks(path: Path, skip_bad: bool, bad: BadLines) -> Iterator[tuple[int, Click]]:
    """``(line, click)`` of a JSON Lines log; each line is decoded on its own, so a line that is not UTF-8
    is a bad line with its number (a text reader would fail a whole block, with no line)."""
    source = str(path)
    with _open_binary(path) as fh:
        for line_no, raw in enumerate(fh, 1):
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                text = raw.decode("utf-8", "surrogateescape").strip()
                reason = utf8_problem(text) or "not UTF-8"
            else:
                if not text:
                    continue
                try:
                    yield line_no, Click.from_json(text)
                    continue
                except RecordError as exc:
                    reason = exc.reason
            if not skip_bad:
                raise RecordError(reason, source=source, line=line_no, raw=printable_raw(text)) from None
            bad.add(source, line_no, reason, text)


def _csv_clicks(path: Path, skip_bad: bool, bad: BadLines) -> Iterator[tuple[int, Click]]:
    """``(line, click)`` of a CSV log (``timestamp,user,page``), validated by :mod:`clickstream_anomaly.clicks_csv`."""
    from datetime import UTC, datetime

    for chunk in iter_click_chunks(path, chunk_rows=100_000, skip_bad=skip_bad, bad=bad):
        columns = (chunk[c].tolist() for c in ("line", "ts", "user", "page"))
        for line, ts, user, page in zip(*columns, strict=True):
            sec, ns = divmod(int(ts), 1_000_000_000)
            yield int(line), Click(datetime.fromtimestamp(sec, UTC).replace(microsecond=ns // 1000), user, page)


def _located_clicks(path: str | Path, skip_bad: bool, bad: BadLines | None) -> Iterator[tuple[int, Click]]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    bad = bad if bad is not None else BadLines()
    return _jsonl_clicks(path, skip_bad, bad) if is_jsonlines(path) else _csv_clicks(path, skip_bad, bad)


def iter_jsonl_clicks(path: str | Path, *, skip_bad: bool = False, bad: BadLines | None = None) -> Iterator[Click]:
    """Clicks of a JSON Lines log (one ``{"timestamp","user","page"}`` object a line; blank lines skipped)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return (click for _, click in _jsonl_clicks(path, skip_bad, bad if bad is not None else BadLines()))


def iter_csv_clicks(path: str | Path, *, skip_bad: bool = False, bad: BadLines | None = None) -> Iterator[Click]:
    """Clicks of a CSV log (``timestamp,user,page``), validated by :mod:`clickstream_anomaly.clicks_csv`."""
    return (click for _, click in _csv_clicks(Path(path), skip_bad, bad if bad is not None else BadLines()))


def iter_clicks(path: str | Path, *, skip_bad: bool = False, bad: BadLines | None = None) -> Iterator[Click]:
    """Clicks of a log file: JSON Lines when the name says so (``.jsonl``/``.json``), CSV otherwise."""
    return (click for _, click in _located_clicks(path, skip_bad, bad))


def entries_from_file(path: str | Path, *, skip_bad: bool = False, bad: BadLines | None = None) -> Iterator[Entry]:
    """Stream entries (click JSON keyed by user) of a click log, in file order.

    A click whose record would be over the 1 MiB Kinesis limit is a bad line like any other: an error
    naming its file and line, or with ``skip_bad`` counted and skipped (written to the rejects file).
    """
    bad = bad if bad is not None else BadLines()
    source = str(path)
    for line, click in _located_clicks(path, skip_bad, bad):
        try:
            yield click_entry(click)
        except RecordError as exc:
            if not skip_bad:
                raise RecordError(exc.reason, source=source, line=line) from None
            bad.add(source, line, exc.reason, click.to_json())


def source_entries(
    path: str | Path, fmt: str = "clicks", settings: SourceSettings | None = None
) -> Callable[[BadLines], Iterator[Entry]]:
    """The reader of a log in any source format for :func:`send_file`'s ``entries``: the project's clicks
    through :func:`entries_from_file`, any other format (``auto``: detected from the first line, gzip or
    not) through :func:`clickstream_anomaly.sources.iter_clicks` and :func:`click_entry`. Bad lines are
    skipped into ``bad``; a click over the record limit is one of them."""
    from .sources import AUTO, detect_format
    from .sources import iter_clicks as iter_source_clicks

    resolved = detect_format(path, settings) if fmt == AUTO else fmt

    def read(bad: BadLines) -> Iterator[Entry]:
        if resolved == "clicks":
            yield from entries_from_file(path, skip_bad=True, bad=bad)
            return
        for click in iter_source_clicks(path, resolved, settings, skip_bad=True, bad=bad):
            try:
                yield click_entry(click)
            except RecordError as exc:
                bad.add(str(path), 0, exc.reason, click.to_json()[:200])

    return read


def send_file(
    sender: KinesisSender,
    path: str | Path,
    *,
    skip_bad: bool = False,
    bad: BadLines | None = None,
    pacer: Pacer | None = None,
    progress: Progress | None = None,
    stop: Callable[[], str | None] | None = None,
    entries: Callable[[BadLines], Iterator[Entry]] | None = None,
) -> SendResult:
    """Send a click log with the bad-line policy; nothing good is ever left out of the report.

    ``entries(bad)`` reads the log, skipping and counting its bad lines in ``bad`` (default: the
    project's clicks CSV or JSON Lines, :func:`entries_from_file`; the CLI passes the reader of a
    source format).

    With ``skip_bad`` bad lines (malformed, not UTF-8, a click over 1 MiB) are counted in ``bad`` and
    skipped. Without it the first bad line stops the send: :class:`BadInputError` names it, and its
    ``result.unsent`` holds every good click not sent, the ones after the bad line included (the file is
    read to its end), so re-sending them and the corrected line sends every click once. Other failures
    raise :class:`ProducerError` as :meth:`KinesisSender.send` does.
    """
    bad = bad if bad is not None else BadLines()
    before = bad.count

    def halt() -> str | None:
        return None if skip_bad or bad.count == before else "a bad input line"

    def bad_input(result: SendResult) -> BadInputError:
        first = bad.first or RecordError("bad input line", source=str(path))
        return BadInputError(first, result)

    try:
        source = entries(bad) if entries is not None else entries_from_file(path, skip_bad=True, bad=bad)
        result = sender.send(source, pacer=pacer, progress=progress, stop=stop, halt=halt)
    except ProducerError as exc:
        if isinstance(exc.__cause__, _Halt):
            raise bad_input(exc.result) from None
        raise
    if halt() is not None:  # the bad line was the last one: everything good was sent
        raise bad_input(result)
    return result


def describe_entry(entry: Entry) -> str:
    """A short human description of an entry, for error messages."""
    try:
        data = json.loads(entry.data.split(CLICK_SEPARATOR, 1)[0])  # an aggregated record: its first click
        more = f" and {entry.count - 1} more click(s) in the record" if entry.count > 1 else ""
        return f"{data.get('user')} at {data.get('timestamp')}{more}"
    except (ValueError, AttributeError):
        return f"key {entry.key}"


__all__ = [
    "AGGREGATE_BYTES",
    "LINGER_SECONDS",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_RECORD_BYTES",
    "RECORD_TRIES_FACTOR",
    "Backoff",
    "BadInputError",
    "Entry",
    "KinesisSender",
    "Pacer",
    "ProducerError",
    "SendResult",
    "click_entry",
    "entries_from_file",
    "iter_clicks",
    "merge_entries",
    "partition_key",
    "send_file",
    "source_entries",
    "take_batch",
]
