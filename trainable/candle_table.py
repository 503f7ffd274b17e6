"""Candles from an Arrow table: the one place that checks a candle table's shape.

The table must have exactly the six columns of `CANDLE_COLUMNS` (timestamp int64, the
rest float64), one chunk per column and no nulls (DESIGN.md, "Interfaces"). A column
of several chunks is refused, never silently cut to `chunk(0)`. Columns are viewed
zero-copy (read-only when the table lives in shared memory).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from trainable.types import CANDLE_COLUMNS, Candles

COLUMN_TYPES = {
    name: pa.int64() if name == "timestamp" else pa.float64() for name in CANDLE_COLUMNS
}


def table_problems(table: pa.Table) -> list[str]:
    """Every way in which `table` is not a candle table (empty when it is one)."""
    names = table.column_names
    if sorted(names) != sorted(CANDLE_COLUMNS):
        return [f"columns must be exactly {list(CANDLE_COLUMNS)}, got {names}"]
    problems = []
    for name in CANDLE_COLUMNS:
        column = table.column(name)
        if column.type != COLUMN_TYPES[name]:
            problems.append(f"column {name!r} must be {COLUMN_TYPES[name]}, got {column.type}")
        if column.num_chunks != 1:
            problems.append(
                f"column {name!r} has {column.num_chunks} chunks, needs exactly 1 "
                "(combine_chunks() before ray.put)"
            )
        if column.null_count:
            problems.append(f"column {name!r} has {column.null_count} nulls")
    return problems


def table_columns(table: pa.Table) -> list[np.ndarray]:
    """The checked columns of `table` in CANDLE_COLUMNS order, as zero-copy arrays.

    Raises TypeError when `table` is not a pyarrow.Table and ValueError naming every
    problem of its shape.
    """
    if not isinstance(table, pa.Table):
        raise TypeError(f"candles must be a pyarrow.Table, got {type(table).__name__}")
    problems = table_problems(table)
    if problems:
        raise ValueError("candle table rejected: " + "; ".join(problems))
    return [table.column(name).chunk(0).to_numpy(zero_copy_only=True) for name in CANDLE_COLUMNS]


def candles_from_table(table: pa.Table) -> Candles:
    """`Candles` over the columns of `table` (see `table_columns`; Candles checks values)."""
    return Candles(*table_columns(table))
