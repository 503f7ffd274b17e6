"""The candle cache: one Parquet file per (exchange, pair, timeframe), checked on read.

Location: `cache_dir` if given, else `$REPROTUNE_HOME/candles`, else platformdirs' user
cache dir + `/reprotune/candles`; the file is `<exchange>/<pair>/<timeframe>.parquet`
with `/` and `:` in the pair replaced by `-` and `_`.

A file holds the candle columns (sorted, unique open times) and, in the Parquet key
`reprotune.candle_cache`, JSON with the format version, the key, `covered` (the
half-open ranges downloaded completely: the cache is authoritative there, and a
missing candle inside one is a real gap), the row count and the content fingerprint.

Writes are atomic: a temporary file `<file>.<random>.tmp` in the same directory,
fsynced, then renamed over the old one (readers see the old file or the new one, never a
torn one); updates hold an exclusive lock on `<file>.lock`, and whoever takes it first
removes the temporary files a killed writer left (no one else can be writing them).
Reads check everything (Parquet decodes, schema, key, row count, fingerprint, order,
rows inside `covered`); a file failing any check is moved to `<file>.corrupt`, logged,
and treated as absent, so it is re-fetched and never silently used.

Test hook (never set outside tests): `REPROTUNE_TEST_KILL_IN_CACHE_WRITE=1` SIGKILLs the
process inside `write_cache`, after the temporary file is written and before the rename.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cluster.candles.fingerprint import fingerprint
from cluster.candles.table import CandleColumns, concat
from cluster.candles.times import Range, union_ranges
from cluster.errors import InvalidInput

log = logging.getLogger("reprotune.candles")
CACHE_FORMAT = 1
METADATA_KEY = b"reprotune.candle_cache"
KILL_IN_WRITE = "REPROTUNE_TEST_KILL_IN_CACHE_WRITE"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache root, by the precedence of the module docstring."""
    if cache_dir is not None:
        return Path(cache_dir)
    home = os.environ.get("REPROTUNE_HOME")
    if home:
        return Path(home) / "candles"
    import platformdirs

    return Path(platformdirs.user_cache_dir()) / "reprotune" / "candles"


@dataclass(frozen=True)
class CacheKey:
    exchange: str
    pair: str
    timeframe: str

    def path(self, root: Path) -> Path:
        pair = self.pair.replace("/", "-").replace(":", "_")
        return root / self.exchange / pair / f"{self.timeframe}.parquet"


@dataclass(frozen=True)
class CacheContent:
    """Rows (sorted, unique open times) and the ranges downloaded completely."""

    columns: CandleColumns
    covered: tuple[Range, ...]

    @classmethod
    def empty(cls) -> CacheContent:
        return cls(CandleColumns.empty(), ())

    def rows_in(self, start: int, end: int) -> tuple[slice, CandleColumns]:
        """The rows with open time in `[start, end)` (views) and their slice."""
        ts = self.columns.timestamp
        span = slice(int(np.searchsorted(ts, start)), int(np.searchsorted(ts, end)))
        return span, self.columns.take(span)

    def replace_range(self, start: int, end: int, rows: CandleColumns) -> CacheContent:
        """Rows in `[start, end)` replaced by `rows` (all inside it); the range covered."""
        span, _ = self.rows_in(start, end)
        before = self.columns.take(slice(0, span.start))
        after = self.columns.take(slice(span.stop, len(self.columns)))
        covered = tuple(union_ranges([*self.covered, (start, end)]))
        return CacheContent(concat([before, rows, after]), covered)


class CorruptCache(Exception):
    """A cache file failed a check on read."""


def read_cache(path: Path, key: CacheKey) -> CacheContent | None:
    """The file's content; None if there is none or it was corrupt (then moved aside)."""
    if not path.exists():
        return None
    try:
        return _read_checked(path, key)
    except CorruptCache as problem:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        log.warning(
            "candle cache %s is corrupt (%s): moved to %s, re-fetching", path, problem, aside
        )
        return None


def _read_checked(path: Path, key: CacheKey) -> CacheContent:
    try:
        parquet = pq.ParquetFile(path)
        raw_meta = (parquet.schema_arrow.metadata or {}).get(METADATA_KEY)
        table = parquet.read()
    except (OSError, pa.ArrowException) as error:
        raise CorruptCache(f"unreadable: {type(error).__name__}: {error}") from None
    if raw_meta is None:
        raise CorruptCache("no reprotune metadata")
    try:
        meta = json.loads(raw_meta)
        covered = tuple((int(a), int(b)) for a, b in meta["covered"])
        expected = {"format": CACHE_FORMAT, **_key_fields(key)}
        if any(meta.get(name) != value for name, value in expected.items()):
            raise CorruptCache(f"metadata {meta} does not describe {expected}")
        rows, digest = int(meta["rows"]), meta["fingerprint"]
    except (KeyError, TypeError, ValueError) as error:
        raise CorruptCache(f"bad metadata: {type(error).__name__}: {error}") from None
    try:
        columns = CandleColumns.from_table(table, str(path))
    except InvalidInput as error:
        raise CorruptCache(str(error)) from None
    table = columns.to_table()
    if table.num_rows != rows:
        raise CorruptCache(f"{table.num_rows} rows, metadata says {rows}")
    if fingerprint(table) != digest:
        raise CorruptCache("content does not match its fingerprint")
    _check_rows_covered(columns.timestamp, covered)
    return CacheContent(columns, covered)


def _check_rows_covered(ts: np.ndarray, covered: tuple[Range, ...]) -> None:
    if len(ts) > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        raise CorruptCache("open times are not strictly increasing")
    inside = np.zeros(len(ts), dtype=bool)
    for low, high in covered:
        inside[int(np.searchsorted(ts, low)) : int(np.searchsorted(ts, high))] = True
    if not inside.all():
        raise CorruptCache(f"{int((~inside).sum())} rows lie outside the covered ranges")


def _key_fields(key: CacheKey) -> dict[str, str]:
    return {"exchange": key.exchange, "pair": key.pair, "timeframe": key.timeframe}


def write_cache(path: Path, key: CacheKey, content: CacheContent) -> None:
    """Replace the file atomically with `content` (see the module docstring)."""
    table = content.columns.to_table()
    meta = {
        "format": CACHE_FORMAT,
        **_key_fields(key),
        "covered": [list(span) for span in content.covered],
        "rows": table.num_rows,
        "fingerprint": fingerprint(table),
    }
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as sink:
            pq.write_table(table, sink, row_group_size=max(1, table.num_rows))
            sink.flush()
            os.fsync(sink.fileno())
        if os.environ.get(KILL_IN_WRITE):
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@contextlib.contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """An exclusive lock for one cache file's read-modify-write (other processes wait).

    Every write of the file happens under it, so a temporary file found once it is taken
    was left by a writer that died (SIGKILL): it is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        for stale in path.parent.glob(f"{glob.escape(path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
                log.info("removed %s, left by a killed cache write", stale)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
