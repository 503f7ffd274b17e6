"""The candle table: six columns, `timestamp` int64 ms UTC (open time), the rest float64.

`CandleColumns` holds the rows as numpy arrays while they are checked and filled;
`to_table()` gives the Arrow table the driver shares with the trials: exactly these
columns in this order, one chunk per column, no nulls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cluster.errors import InvalidInput

CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
VALUE_COLUMNS = CANDLE_COLUMNS[1:]
PRICE_COLUMNS = ("open", "high", "low", "close")
CANDLE_SCHEMA = pa.schema(
    [pa.field("timestamp", pa.int64(), nullable=False)]
    + [pa.field(name, pa.float64(), nullable=False) for name in VALUE_COLUMNS]
)
MAX_LISTED = 20
Values = tuple[float, float, float, float, float]  # open, high, low, close, volume


@dataclass(frozen=True)
class CandleColumns:
    """Candle rows as equal-length numpy arrays (int64 timestamps, float64 values).

    Values are taken as they are: NaN, infinities, unsorted or duplicate timestamps are
    possible here and are what `cleaning.check_rules` rejects.
    """

    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.timestamp)
        for name in CANDLE_COLUMNS:
            array = getattr(self, name)
            expected = np.int64 if name == "timestamp" else np.float64
            if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype != expected:
                raise TypeError(f"column {name!r} must be a 1-D {np.dtype(expected)} array")
            if len(array) != n:
                raise ValueError(f"column {name!r} has {len(array)} rows, timestamp has {n}")

    def __len__(self) -> int:
        return len(self.timestamp)

    @classmethod
    def empty(cls) -> CandleColumns:
        return cls(np.empty(0, np.int64), *(np.empty(0, np.float64) for _ in VALUE_COLUMNS))

    @classmethod
    def from_rows(cls, rows: list[list[object]]) -> CandleColumns:
        """From `[timestamp, open, high, low, close, volume]` lists; None becomes NaN."""
        if not rows:
            return cls.empty()
        timestamp = np.array([row[0] for row in rows], dtype=np.int64)
        values = np.array(
            [[np.nan if v is None else v for v in row[1:6]] for row in rows], dtype=np.float64
        )
        return cls(timestamp, *(np.ascontiguousarray(values[:, i]) for i in range(5)))

    @classmethod
    def from_table(cls, table: pa.Table, what: str) -> CandleColumns:
        """The six columns of an Arrow table with exactly the candle schema's types.

        Raises InvalidInput naming a missing or mistyped column, or up to 20 rows with
        nulls (a null is not a value; cleaning never invents one).
        """
        problems = []
        for field in CANDLE_SCHEMA:
            if field.name not in table.column_names:
                problems.append(f"{what}: column {field.name!r} is missing")
            elif not table.schema.field(field.name).type.equals(field.type):
                actual = table.schema.field(field.name).type
                problems.append(f"{what}: column {field.name!r} is {actual}, expected {field.type}")
        if problems:
            raise InvalidInput(problems)
        null_rows = np.zeros(table.num_rows, dtype=bool)
        for name in CANDLE_COLUMNS:
            column = table.column(name)
            if column.null_count:
                null_rows |= np.asarray(column.is_null().to_numpy(zero_copy_only=False))
        if null_rows.any():
            raise InvalidInput(_null_problems(table, np.flatnonzero(null_rows), what))
        arrays = [_column_numpy(table.column(name)) for name in CANDLE_COLUMNS]
        return cls(*arrays)

    def to_table(self) -> pa.Table:
        """The Arrow table: candle schema, one chunk per column (numpy buffers shared)."""
        arrays = [pa.array(getattr(self, name)) for name in CANDLE_COLUMNS]
        return pa.Table.from_arrays(arrays, schema=CANDLE_SCHEMA)

    def take(self, selector: slice | np.ndarray) -> CandleColumns:
        """Rows by slice (views) or by index/boolean array (copies)."""
        return CandleColumns(*(getattr(self, name)[selector] for name in CANDLE_COLUMNS))

    def values(self, index: int) -> Values:
        """Row `index`'s open, high, low, close and volume as Python floats."""
        return (
            float(self.open[index]),
            float(self.high[index]),
            float(self.low[index]),
            float(self.close[index]),
            float(self.volume[index]),
        )


def _null_problems(table: pa.Table, rows: np.ndarray, what: str) -> list[str]:
    """The rows with nulls, named as the cleaning rules name a bad row: `row 7
    (2021-09-29T09:35Z): close is null` (pandas writes a NaN as a null)."""
    from cluster.candles.times import count, format_utc

    shown = min(rows.size, MAX_LISTED)
    problems = [
        f"{what}: {count(int(rows.size), 'row')} with missing (null) values; cleaning never "
        f"invents a value, so the dataset is rejected (first {shown} shown)"
    ]
    for row in (int(r) for r in rows[:MAX_LISTED]):
        names = [name for name in CANDLE_COLUMNS if not table.column(name)[row].is_valid]
        stamp = table.column("timestamp")[row].as_py()
        try:
            when = "" if stamp is None else f" ({format_utc(int(stamp))})"
        except (OverflowError, ValueError):
            when = f" (timestamp {stamp})"
        verb = "is" if len(names) == 1 else "are"
        problems.append(f"row {row}{when}: {', '.join(names)} {verb} null")
    return problems


def _column_numpy(column: pa.ChunkedArray) -> np.ndarray:
    if column.num_chunks == 1:
        return np.asarray(column.chunk(0).to_numpy(zero_copy_only=True))
    return np.asarray(column.to_numpy())


def concat(parts: list[CandleColumns]) -> CandleColumns:
    """Rows of several parts, in the order given."""
    if not parts:
        return CandleColumns.empty()
    return CandleColumns(
        *(np.concatenate([getattr(part, name) for part in parts]) for name in CANDLE_COLUMNS)
    )
