"""Where candles come from: frozen, validated descriptions that a job spec embeds.

A source is plain data: `kind`, `timeframe`, its own fields, `to_dict()` (canonical,
JSON-able: times as int ms UTC) and `from_dict()` (also accepts ISO 8601 text for
times, and rejects unknown or missing fields by name). Building one checks every field
and raises `InvalidInput` naming each bad field. Loading a source is
`cluster.candles.dataset.load_candles`'s job, not the source's.

- `CcxtSource`: a fixed `[start, end)` of one market on one exchange, through ccxt and
  the local cache. "The last N candles" is resolved to one of these *before* it is
  recorded (`dataset.resolve_last_candles`).
- `ParquetSource`: a file with the six candle columns (timestamp int64 ms, the rest
  float64; other columns are ignored); `start`/`end` select a range
  (None: from the first row / to the candle after the last row). A relative `path` is
  read relative to the working directory; the fingerprint, not the path, says what
  data a job saw.
- `SyntheticSource`: `bars` generated candles from `start`, from their own
  `data_seed` (never a search seed).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from cluster.candles.times import check_aligned, time_value
from cluster.errors import InvalidInput
from cluster.timeframes import TIMEFRAME_MINUTES, timeframe_minutes

EXCHANGE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
# ccxt's unified symbols: BASE/QUOTE, optionally :SETTLE and a contract suffix.
PAIR = re.compile(r"^[A-Za-z0-9._]+/[A-Za-z0-9._]+(:[A-Za-z0-9._-]+)?$")
MAX_SYNTHETIC_BARS = 50_000_000


def _problem(problems: list[str], check: Callable[[], None]) -> None:
    try:
        check()
    except InvalidInput as error:
        problems.extend(error.problems)


def _check_int(value: object, field: str, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field}: expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise InvalidInput(f"{field}: must be {bound}, got {value}")


def _check_timeframe(value: object) -> None:
    if not isinstance(value, str) or value not in TIMEFRAME_MINUTES:
        timeframe_minutes(str(value))  # raises, naming the choices


def _check_time(value: object, field: str, timeframe: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    _check_int(value, field, 0)
    if isinstance(value, int) and isinstance(timeframe, str) and timeframe in TIMEFRAME_MINUTES:
        check_aligned(value, timeframe, field)


def _check_order(start: object, end: object) -> None:
    if isinstance(start, int) and isinstance(end, int) and start >= end:
        raise InvalidInput(f"start ({start}) must be before end ({end})")


def _raise_if(problems: list[str], kind: str) -> None:
    if problems:
        raise InvalidInput([f"{kind} source: {problem}" for problem in problems])


class _SourceDict:
    """`to_dict`/`from_dict` shared by the sources (fields in declaration order)."""

    kind: ClassVar[str]
    time_fields: ClassVar[tuple[str, ...]] = ()
    optional_fields: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        for field in fields(self):  # type: ignore[arg-type]
            data[field.name] = getattr(self, field.name)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        names = [field.name for field in fields(cls)]  # type: ignore[arg-type]
        problems = []
        for key in data:
            if key != "kind" and key not in names:
                hint = difflib.get_close_matches(str(key), names, n=1)
                suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
                problems.append(f"unknown field {key!r}{suffix}")
        if data.get("kind", cls.kind) != cls.kind:
            problems.append(f"kind is {data['kind']!r}, expected {cls.kind!r}")
        values = {}
        for name in names:
            if name not in data:
                if name not in cls.optional_fields:
                    problems.append(f"missing field {name!r}")
                continue
            value = data[name]
            if name in cls.time_fields and value is not None:
                try:
                    value = time_value(value, name)
                except InvalidInput as error:
                    problems.extend(error.problems)
                    continue
            values[name] = value
        _raise_if(problems, cls.kind)
        return cls(**values)


@dataclass(frozen=True)
class CcxtSource(_SourceDict):
    """Candles of `pair` on ccxt exchange `exchange`, open times in `[start, end)` ms UTC."""

    exchange: str
    pair: str
    timeframe: str
    start: int
    end: int

    kind: ClassVar[str] = "ccxt"
    time_fields: ClassVar[tuple[str, ...]] = ("start", "end")

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.exchange, str) or not EXCHANGE_ID.match(self.exchange):
            problems.append(
                f"exchange: expected a ccxt exchange id like 'binanceus', got {self.exchange!r}"
            )
        if not isinstance(self.pair, str) or not PAIR.match(self.pair):
            problems.append(f"pair: expected a symbol like 'BTC/USDT', got {self.pair!r}")
        _problem(problems, lambda: _check_timeframe(self.timeframe))
        _problem(problems, lambda: _check_time(self.start, "start", self.timeframe, optional=False))
        _problem(problems, lambda: _check_time(self.end, "end", self.timeframe, optional=False))
        _problem(problems, lambda: _check_order(self.start, self.end))
        _raise_if(problems, self.kind)


@dataclass(frozen=True)
class ParquetSource(_SourceDict):
    """The six candle columns of a Parquet file, optionally cut to `[start, end)`."""

    path: str
    timeframe: str
    start: int | None = None
    end: int | None = None

    kind: ClassVar[str] = "parquet"
    time_fields: ClassVar[tuple[str, ...]] = ("start", "end")
    optional_fields: ClassVar[tuple[str, ...]] = ("start", "end")

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.path, str) or not self.path.strip():
            problems.append(f"path: expected a file path, got {self.path!r}")
        _problem(problems, lambda: _check_timeframe(self.timeframe))
        _problem(problems, lambda: _check_time(self.start, "start", self.timeframe, optional=True))
        _problem(problems, lambda: _check_time(self.end, "end", self.timeframe, optional=True))
        _problem(problems, lambda: _check_order(self.start, self.end))
        _raise_if(problems, self.kind)


@dataclass(frozen=True)
class SyntheticSource(_SourceDict):
    """`bars` synthetic candles from open time `start`, generated from `data_seed`."""

    timeframe: str
    start: int
    bars: int
    data_seed: int

    kind: ClassVar[str] = "synthetic"
    time_fields: ClassVar[tuple[str, ...]] = ("start",)

    def __post_init__(self) -> None:
        problems: list[str] = []
        _problem(problems, lambda: _check_timeframe(self.timeframe))
        _problem(problems, lambda: _check_time(self.start, "start", self.timeframe, optional=False))
        _problem(problems, lambda: _check_int(self.bars, "bars", 1, MAX_SYNTHETIC_BARS))
        _problem(problems, lambda: _check_int(self.data_seed, "data_seed", 0, 2**63 - 1))
        _raise_if(problems, self.kind)

    @property
    def end(self) -> int:
        """The open time after the last bar (exclusive end of the range)."""
        return self.start + self.bars * timeframe_minutes(self.timeframe) * 60_000


Source = CcxtSource | ParquetSource | SyntheticSource
SOURCE_KINDS: dict[str, type[CcxtSource] | type[ParquetSource] | type[SyntheticSource]] = {
    cls.kind: cls for cls in (CcxtSource, ParquetSource, SyntheticSource)
}


def source_from_dict(data: Mapping[str, Any]) -> Source:
    """The source a `to_dict()` (or a job file) describes; `kind` picks the class."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"source: expected a mapping, got {data!r}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in SOURCE_KINDS:
        choices = ", ".join(SOURCE_KINDS)
        raise InvalidInput(f"source: kind {kind!r} is not one of {choices}")
    source: Source = SOURCE_KINDS[kind].from_dict(data)
    return source
