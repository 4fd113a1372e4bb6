"""Kinesis Data Analytics (SQL) ``RANDOM_CUT_FOREST`` / ``RANDOM_CUT_FOREST_WITH_EXPLANATION``: a local
emulation, row by row, and the SQL application text, both from one :class:`KdaRcfParameters`.

Mapping onto the AWS streaming forest (:class:`clickstream_anomaly.rcf.StreamingRCF`):

* ``numberOfTrees`` -> ``num_trees``; ``subSampleSize`` -> each tree's ``sample_size``;
  ``shingleSize`` -> internal shingling of the numeric columns.
* ``timeDecay`` is a record count ("only the latest timeDecay records are used, weighted exponentially
  toward the newest"). It becomes the sampler's decay rate ``λ = 1 / timeDecay``: a record arriving as
  number ``t`` gets the weight ``-λ·t + log(-log u)`` and each tree keeps its ``subSampleSize`` smallest
  weights, so a record stays in a sample about ``timeDecay`` records on average and older records are
  evicted first. With the default 100000 and a few thousand records the sample is close to a uniform
  reservoir of everything seen; small values track fast-changing data.
* Learning phase: ``ANOMALY_SCORE`` is 0 until ``subSampleSize`` records (shingles, when
  ``shingleSize > 1``: the first ``subSampleSize + shingleSize - 1`` records) have been inserted.
* ``ATTRIBUTION_SCORE`` of a column is its share of the score, ``high + low`` of the forest's DiVector
  summed over the column's shingle positions, so the attribution scores add up to ``ANOMALY_SCORE``.
  ``DIRECTION`` is ``HIGH`` when ``high > low`` (the record lies above the sampled data along that column
  more than below it), else ``LOW``; ``STRENGTH = |high - low|``, the net directional attribution (0 and
  ``LOW`` during learning, as the service documented). AWS never published its exact strength formula;
  this is our definition.
* Values in ``ANOMALY_EXPLANATION`` are strings with 4 decimals, as the service printed them.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import persist
from .rcf import StreamingRCF
from .rcf import state as rcf_state

MAX_NUMERIC_COLUMNS = 30
MAX_TIME_DECAY = 2147483647
NUMERIC_SQL_TYPES = ("DOUBLE", "INTEGER", "FLOAT", "TINYINT", "SMALLINT", "REAL", "BIGINT")
SCORE_COLUMN = "ANOMALY_SCORE"
EXPLANATION_COLUMN = "ANOMALY_EXPLANATION"
STATE_KIND = "kda.KdaRcfStream"
STATE_VERSION = 2


def _int_in(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi} inclusive, got {value}")


@dataclass(frozen=True)
class KdaRcfParameters:
    """The function's parameters, validated as the KDA SQL reference documents them:
    ``numberOfTrees`` 1-1000, ``subSampleSize`` 10-1000 and < ``timeDecay``, ``timeDecay`` 1-2147483647,
    ``shingleSize`` 1-30; ``withDirectionality`` a boolean."""

    number_of_trees: int = 100
    sub_sample_size: int = 256
    time_decay: int = 100000
    shingle_size: int = 1
    with_directionality: bool = False

    def __post_init__(self) -> None:
        _int_in("numberOfTrees", self.number_of_trees, 1, 1000)
        _int_in("subSampleSize", self.sub_sample_size, 10, 1000)
        _int_in("timeDecay", self.time_decay, 1, MAX_TIME_DECAY)
        if self.sub_sample_size >= self.time_decay:
            raise ValueError(f"subSampleSize ({self.sub_sample_size}) must be less than timeDecay ({self.time_decay})")
        _int_in("shingleSize", self.shingle_size, 1, 30)
        if not isinstance(self.with_directionality, bool | np.bool_):
            raise ValueError(f"withDirectionality must be a boolean, got {self.with_directionality!r}")

    @property
    def decay_rate(self) -> float:
        """The forest's per-record decay rate λ = 1 / timeDecay."""
        return 1.0 / self.time_decay

    def sql_arguments(self, with_explanation: bool = True) -> str:
        """The positional SQL arguments after the cursor, e.g. ``100, 256, 100000, 1, false``."""
        args = [self.number_of_trees, self.sub_sample_size, self.time_decay, self.shingle_size]
        text = ", ".join(str(int(a)) for a in args)
        if with_explanation:
            text += ", " + ("true" if self.with_directionality else "false")
        return text


def check_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """Validate the numeric column names (1-30, unique, non-empty, no double quote)."""
    if isinstance(columns, str):
        raise ValueError("columns must be a sequence of column names, not one string")
    cols = tuple(columns)
    if not cols:
        raise ValueError("at least one numeric column is required")
    if len(cols) > MAX_NUMERIC_COLUMNS:
        raise ValueError(f"at most {MAX_NUMERIC_COLUMNS} numeric columns are allowed, got {len(cols)}")
    for c in cols:
        if not isinstance(c, str) or not c or '"' in c:
            raise ValueError(f"bad column name {c!r}: non-empty text without double quotes required")
    if len(set(cols)) != len(cols):
        raise ValueError(f"duplicate column names in {cols}")
    return cols


def _fmt(x: float) -> str:
    return f"{x:.4f}"


class KdaRcfStream:
    """Stateful emulation of ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` over ``columns``, one record at a time.

    ``process_row(values)`` returns ``(ANOMALY_SCORE, ANOMALY_EXPLANATION)`` with the explanation exactly
    as :func:`random_cut_forest_with_explanation` prints it. ``to_bytes``/``from_bytes`` persist the
    whole state (trees, samplers, RNG, shingle) so a restored stream continues identically.
    """

    _MAGIC = b"KDARCF1\n"  # the version-1 layout, still read

    def __init__(
        self, columns: Sequence[str], params: KdaRcfParameters | None = None, random_state: int | None = None
    ) -> None:
        self.columns = check_columns(columns)
        self.params = params if params is not None else KdaRcfParameters()
        if not isinstance(self.params, KdaRcfParameters):
            raise ValueError(f"params must be a KdaRcfParameters, got {type(self.params).__name__}")
        p = self.params
        self.forest = StreamingRCF(
            dimensions=len(self.columns),
            num_trees=p.number_of_trees,
            sample_size=p.sub_sample_size,
            time_decay=p.decay_rate,
            shingle_size=p.shingle_size,
            output_after=p.sub_sample_size,
            random_state=random_state,
        )

    @property
    def records_seen(self) -> int:
        return self.forest.inputs_seen

    def explain(self, high: np.ndarray, low: np.ndarray) -> dict[str, dict[str, str]]:
        """Per-column explanation from a (shingled) DiVector; see the module docstring."""
        hi = self.forest.per_column(high)
        lo = self.forest.per_column(low)
        out: dict[str, dict[str, str]] = {}
        for c, h, lw in zip(self.columns, hi.tolist(), lo.tolist(), strict=True):
            entry: dict[str, str] = {}
            if self.params.with_directionality:
                entry["DIRECTION"] = "HIGH" if h > lw else "LOW"
                entry["STRENGTH"] = _fmt(abs(h - lw))
            entry["ATTRIBUTION_SCORE"] = _fmt(h + lw)
            out[c] = entry
        return out

    def process_row(self, values: Sequence[float]) -> tuple[float, str]:
        """Score-then-update one record (its numeric values in ``columns`` order).

        Returns ``(score, explanation_json)``. Bad values raise ``ValueError`` and change nothing.
        """
        vals = list(values) if not isinstance(values, np.ndarray) else values
        if len(vals) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} values ({', '.join(self.columns)}), got {len(vals)}")
        for c, v in zip(self.columns, vals, strict=True):
            if isinstance(v, bool | str | bytes) or v is None:
                raise ValueError(f"column {c!r} is not numeric: {v!r}")
        if not _all_numbers(vals):
            _raise_bad(self.columns, vals)
        scores, high, low = self.forest.process(np.asarray(vals, dtype=np.float64).reshape(1, -1))
        expl = json.dumps(self.explain(high[0], low[0]), separators=(",", ":"))
        return float(scores[0]), expl

    def to_bytes(self) -> bytes:
        """The stream's state (a :mod:`clickstream_anomaly.persist` state of kind ``kda.KdaRcfStream``,
        version 2): the columns, the parameters and the whole forest (trees, samplers, RNG, shingle)."""
        meta, arrays = rcf_state.encode(*self.forest.state_parts())
        header = {"columns": list(self.columns), "params": asdict(self.params), "forest": meta}
        return persist.dumps(
            STATE_KIND, STATE_VERSION, header, {f"forest.{k}": v for k, v in arrays.items()}, compress=True
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> KdaRcfStream:
        """A stream written by :meth:`to_bytes`, or in the version-1 layout (``KDARCF1`` magic, JSON header,
        then the forest's own state); it continues exactly where the original was."""
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        if isinstance(data, bytes) and data.startswith(cls._MAGIC):
            off = len(cls._MAGIC)
            (n,) = struct.unpack("<I", data[off : off + 4])
            header = json.loads(data[off + 4 : off + 4 + n].decode())
            forest = StreamingRCF.from_bytes(data[off + 4 + n :])
        else:
            state = persist.loads(data, STATE_KIND, versions=(STATE_VERSION,))
            header = state.meta
            arrays = {k.removeprefix("forest."): v for k, v in state.arrays.items()}
            forest = StreamingRCF.from_state(rcf_state.decode(header["forest"], arrays))
        obj = cls(header["columns"], KdaRcfParameters(**header["params"]))
        if forest.n_features_in_ != len(obj.columns) or forest.num_trees != obj.params.number_of_trees:
            raise ValueError("saved KdaRcfStream forest does not match its header")
        obj.forest = forest
        return obj


def _all_numbers(vals: Sequence[Any]) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in vals)
    except (TypeError, ValueError):
        return False


def _raise_bad(columns: Sequence[str], vals: Sequence[Any]) -> None:
    for c, v in zip(columns, vals, strict=True):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"column {c!r} is not numeric: {v!r}") from None
        if not math.isfinite(f):
            raise ValueError(f"column {c!r} is not finite: {v!r}")
    raise ValueError(f"bad values {vals!r}")  # pragma: no cover


def _rows(rows: Iterable[Mapping[str, Any]] | Any) -> Iterable[Mapping[str, Any]]:
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a pandas DataFrame
        return rows.to_dict(orient="records")
    return rows


def _run(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    params: KdaRcfParameters,
    explanation: bool,
    random_state: int | None,
) -> list[dict[str, Any]]:
    stream = KdaRcfStream(columns, params, random_state=random_state)
    out = []
    for i, row in enumerate(_rows(rows)):
        if not isinstance(row, Mapping):
            raise ValueError(f"row {i} is not a mapping of column name to value: {row!r}")
        missing = [c for c in stream.columns if c not in row]
        if missing:
            raise ValueError(f"row {i} lacks numeric column(s) {missing}")
        try:
            score, expl = stream.process_row([row[c] for c in stream.columns])
        except ValueError as exc:
            raise ValueError(f"row {i}: {exc}") from None
        new = dict(row)
        new[SCORE_COLUMN] = score
        if explanation:
            new[EXPLANATION_COLUMN] = expl
        out.append(new)
    return out


def random_cut_forest(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    number_of_trees: int = 100,
    sub_sample_size: int = 256,
    time_decay: int = 100000,
    shingle_size: int = 1,
    *,
    random_state: int | None = None,
) -> list[dict[str, Any]]:
    """Emulate ``RANDOM_CUT_FOREST``: each input row (a mapping) comes back with ``ANOMALY_SCORE`` added.

    ``columns`` are the numeric columns fed to the model (at most 30); other keys pass through unscored.
    """
    params = KdaRcfParameters(number_of_trees, sub_sample_size, time_decay, shingle_size)
    return _run(rows, columns, params, False, random_state)


def random_cut_forest_with_explanation(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    number_of_trees: int = 100,
    sub_sample_size: int = 256,
    time_decay: int = 100000,
    shingle_size: int = 1,
    with_directionality: bool = False,
    *,
    random_state: int | None = None,
) -> list[dict[str, Any]]:
    """Emulate ``RANDOM_CUT_FOREST_WITH_EXPLANATION``: rows with ``ANOMALY_SCORE`` and
    ``ANOMALY_EXPLANATION`` (JSON text ``{column: {"DIRECTION", "STRENGTH", "ATTRIBUTION_SCORE"}}``, the
    first two only ``with_directionality``; values as 4-decimal strings)."""
    params = KdaRcfParameters(number_of_trees, sub_sample_size, time_decay, shingle_size, with_directionality)
    return _run(rows, columns, params, True, random_state)


# ---------------------------------------------------------------------------------------------- SQL


def _q(name: str) -> str:
    return f'"{name}"'


def application_sql(
    columns: Sequence[str],
    params: KdaRcfParameters,
    *,
    input_stream: str = "SOURCE_SQL_STREAM_001",
    output_stream: str = "DESTINATION_SQL_STREAM",
    passthrough: Sequence[tuple[str, str]] = (),
    pump: str = "RCF_PUMP",
) -> str:
    """The KDA SQL application code running ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` over ``columns``.

    It creates ``output_stream`` (the columns as DOUBLE, ``passthrough`` ``(name, sql_type)`` non-numeric
    columns, ``ANOMALY_SCORE DOUBLE``, ``ANOMALY_EXPLANATION VARCHAR``) and a pump that inserts into it
    from ``TABLE(RANDOM_CUT_FOREST_WITH_EXPLANATION(CURSOR(SELECT STREAM ... FROM input_stream), ...))``
    with the parameters of ``params``. :func:`parse_application_sql` reads them back.
    """
    cols = check_columns(columns)
    if not isinstance(params, KdaRcfParameters):
        raise ValueError(f"params must be a KdaRcfParameters, got {type(params).__name__}")
    extra = []
    for name, sql_type in passthrough:
        check_columns([name])
        base = str(sql_type).split("(")[0].strip().upper()
        if base in NUMERIC_SQL_TYPES:
            raise ValueError(f"pass-through column {name!r} has numeric type {sql_type}: it would be scored")
        if name in cols:
            raise ValueError(f"pass-through column {name!r} is also a numeric column")
        extra.append((name, str(sql_type)))
    for s in (input_stream, output_stream, pump):
        check_columns([s])
    per_col = 80 if params.with_directionality else 40
    varchar = min(20480, max(512, sum(per_col + len(c) for c in cols) + 64))
    ddl_cols = [f"    {_q(c)} DOUBLE" for c in cols] + [f"    {_q(n)} {t}" for n, t in extra]
    ddl_cols += [f'    "{SCORE_COLUMN}" DOUBLE', f'    "{EXPLANATION_COLUMN}" VARCHAR({varchar})']
    selected = ", ".join(_q(c) for c in [*cols, *(n for n, _ in extra)])
    return "\n".join(
        [
            f"-- Generated by clickstream_anomaly.kda.application_sql from {params!r}",
            f"CREATE OR REPLACE STREAM {_q(output_stream)} (",
            ",\n".join(ddl_cols) + ");",
            f"CREATE OR REPLACE PUMP {_q(pump)} AS INSERT INTO {_q(output_stream)}",
            f'SELECT STREAM {selected}, "{SCORE_COLUMN}", "{EXPLANATION_COLUMN}"',
            "FROM TABLE(RANDOM_CUT_FOREST_WITH_EXPLANATION(",
            f"    CURSOR(SELECT STREAM {selected} FROM {_q(input_stream)}),",
            f"    {params.sql_arguments(True)}));",
            "",
        ]
    )


#: the integer arguments of the SQL call, in order (the fields of :class:`KdaRcfParameters` before the flag)
_COUNT_ARGUMENTS = ("number_of_trees", "sub_sample_size", "time_decay", "shingle_size")
_CALL = re.compile(
    r"RANDOM_CUT_FOREST(?:_WITH_EXPLANATION)?\(\s*CURSOR\(SELECT STREAM (?P<cols>.*?) FROM \"[^\"]+\"\),\s*"
    r"(?P<args>[^)]*)\)",
    re.S,
)


def parse_application_sql(sql: str) -> tuple[tuple[str, ...], KdaRcfParameters]:
    """Read back ``(cursor columns, parameters)`` from SQL written by :func:`application_sql`."""
    m = _CALL.search(sql)
    if m is None:
        raise ValueError("no RANDOM_CUT_FOREST call over a CURSOR found in the SQL")
    cols = tuple(re.findall(r'"([^"]+)"', m.group("cols")))
    args = [a.strip() for a in m.group("args").split(",") if a.strip()]
    counts = {name: int(a) for name, a in zip(_COUNT_ARGUMENTS, args[:4], strict=False)}
    flag = args[4].lower() == "true" if len(args) > 4 else False
    return cols, KdaRcfParameters(**counts, with_directionality=flag)
