"""A sha256 fingerprint of a candle table's content, whatever its storage.

The hash covers exactly these bytes, in this order (format version 1):

1. the ASCII header `reprotune-candles-fingerprint` and the format version as a
   uint32 little-endian (`01 00 00 00`);
2. the number of columns as uint32 LE; then for each column, in table order: the
   length of its UTF-8 name as uint32 LE and the name, then the length of its dtype
   name (`int64` or `float64`) as uint32 LE and the dtype name;
3. the number of rows as uint64 LE;
4. each column in table order: every value as 8 little-endian bytes (int64 two's
   complement; float64 IEEE 754 binary64 bits exactly, so -0.0 and 0.0 differ and
   NaN payloads count).

Nothing of Parquet (encoding, compression, row groups), Arrow chunking or the pyarrow
version enters, so the same candles give the same fingerprint from the cache, from
any Parquet file or from a fresh download. Nulls have no bytes here: a column with
nulls is refused.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pyarrow as pa

FORMAT_VERSION = 1
HEADER = b"reprotune-candles-fingerprint"
DTYPES = {pa.int64(): ("int64", np.dtype("<i8")), pa.float64(): ("float64", np.dtype("<f8"))}


def fingerprint(table: pa.Table) -> str:
    """The sha256 hex digest of `table` under the byte layout above."""
    digest = hashlib.sha256()
    digest.update(HEADER + struct.pack("<I", FORMAT_VERSION))
    digest.update(struct.pack("<I", table.num_columns))
    for field in table.schema:
        if field.type not in DTYPES:
            raise TypeError(f"column {field.name!r} is {field.type}: only int64/float64 hash")
        dtype_name = DTYPES[field.type][0].encode("ascii")
        name = field.name.encode("utf-8")
        digest.update(struct.pack("<I", len(name)) + name)
        digest.update(struct.pack("<I", len(dtype_name)) + dtype_name)
    digest.update(struct.pack("<Q", table.num_rows))
    for field, column in zip(table.schema, table.columns, strict=True):
        if column.null_count:
            raise ValueError(f"column {field.name!r} has nulls: no fingerprint is defined")
        little_endian = DTYPES[field.type][1]
        for chunk in column.chunks:
            values = chunk.to_numpy(zero_copy_only=True).astype(little_endian, copy=False)
            digest.update(np.ascontiguousarray(values).data)
    return digest.hexdigest()
