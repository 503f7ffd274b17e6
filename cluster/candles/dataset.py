"""The one entry point for the driver: a source in, a cleaned table and its manifest out.

`load_candles(source, gap_policy=..., max_fill_share=...)` reads the source (ccxt
through the cache, a Parquet file, or the synthetic generator), applies the cleaning
rules and the gap policy, and returns a `Dataset`: the Arrow table the trials see (six
columns, one chunk each, no nulls) and its `Manifest` (with the content fingerprint).
Bad input raises `InvalidInput` before anything is written to the cache.

`resolve_last_candles` turns "the last N candles" into a fixed `CcxtSource` once, by
the exchange's clock (this machine's clock when the exchange has none); that fixed
range is what a job records.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cluster.candles.cache import resolve_cache_dir
from cluster.candles.cleaning import GapPolicy, check_gap_policy, clean
from cluster.candles.exchange import DownloadSettings, ExchangeClient
from cluster.candles.fingerprint import fingerprint
from cluster.candles.incremental import ClientFactory, ensure_cached
from cluster.candles.manifest import DATA_LIBRARIES, Manifest
from cluster.candles.sources import CcxtSource, ParquetSource, Source, SyntheticSource
from cluster.candles.synthetic import generate
from cluster.candles.table import CANDLE_COLUMNS, MAX_LISTED, CandleColumns
from cluster.errors import InvalidInput
from cluster.timeframes import timeframe_ms
from cluster.versions import installed_versions


@dataclass(frozen=True)
class Dataset:
    """A cleaned candle table and the manifest that describes it."""

    table: pa.Table
    manifest: Manifest


@dataclass(frozen=True)
class _Raw:
    columns: CandleColumns
    start: int
    end: int
    row_offset: int = 0
    exchange: str | None = None
    pair: str | None = None


def load_candles(
    source: Source,
    *,
    gap_policy: GapPolicy = "reject",
    max_fill_share: float = 0.0,
    cache_dir: str | os.PathLike[str] | None = None,
    settings: DownloadSettings | None = None,
    client_factory: ClientFactory = ExchangeClient,
) -> Dataset:
    """The cleaned dataset of `source` (see the module docstring).

    `cache_dir` and `settings` matter only for a `CcxtSource`; a range the cache
    already covers is read without contacting the exchange.
    """
    check_gap_policy(gap_policy, max_fill_share)
    if isinstance(source, CcxtSource):
        content, _ = ensure_cached(
            source,
            resolve_cache_dir(cache_dir),
            settings or DownloadSettings(),
            client_factory=client_factory,
        )
        _, rows = content.rows_in(source.start, source.end)
        raw = _Raw(rows, source.start, source.end, 0, source.exchange, source.pair)
    elif isinstance(source, ParquetSource):
        raw = _read_parquet(source)
    elif isinstance(source, SyntheticSource):
        raw = _Raw(generate(source), source.start, source.end)
    else:
        raise TypeError(f"not a candle source: {source!r}")
    cleaned = clean(
        raw.columns,
        start=raw.start,
        end=raw.end,
        timeframe=source.timeframe,
        gap_policy=gap_policy,
        max_fill_share=max_fill_share,
        row_offset=raw.row_offset,
    )
    table = cleaned.columns.to_table()
    manifest = Manifest(
        source=source,
        exchange=raw.exchange,
        pair=raw.pair,
        timeframe=source.timeframe,
        start=raw.start,
        end=raw.end,
        rows=table.num_rows,
        filled_ranges=cleaned.filled_ranges,
        gap_policy=gap_policy,
        max_fill_share=float(max_fill_share),
        library_versions=tuple(sorted(installed_versions(DATA_LIBRARIES).items())),
        fingerprint=fingerprint(table),
    )
    return Dataset(table, manifest)


class DataChanged(InvalidInput):
    """The data a source gives now is not the data a job recorded (contract 4)."""


def check_fingerprint(dataset: Dataset, recorded: str) -> None:
    """Raise `DataChanged` naming both fingerprints unless the dataset is `recorded`'s.

    For re-runs and resumes: never quietly produce numbers from different data.
    """
    if dataset.manifest.fingerprint != recorded:
        manifest = dataset.manifest
        where = {
            "ccxt": "a ccxt source reads the local cache, which changes only by "
            "`data fetch --refresh` or a re-fetch of a corrupt file",
            "parquet": f"the file {getattr(manifest.source, 'path', '')} is not what it was",
            "synthetic": "the generator's code changed",
        }[manifest.source.kind]
        raise DataChanged(
            f"the candle data changed: recorded fingerprint {recorded}, now "
            f"{manifest.fingerprint} ({manifest.source.kind} {manifest.pair or ''} "
            f"{manifest.timeframe}, {manifest.rows} rows); {where}"
        )


def _read_parquet(source: ParquetSource) -> _Raw:
    path = Path(source.path)
    what = f"parquet source {source.path}"
    if not path.is_file():
        raise InvalidInput(f"{what}: no such file")
    try:
        parquet = pq.ParquetFile(path)
        missing = [name for name in CANDLE_COLUMNS if name not in parquet.schema_arrow.names]
        if missing:
            raise InvalidInput(f"{what}: columns {missing} are missing")
        table = parquet.read(columns=list(CANDLE_COLUMNS))
    except (OSError, pa.ArrowException) as error:
        raise InvalidInput(f"{what}: unreadable ({type(error).__name__}: {error})") from None
    columns = CandleColumns.from_table(table, what)
    ts = columns.timestamp
    unordered = np.flatnonzero(ts[1:] <= ts[:-1]) + 1
    if unordered.size:
        rows = ", ".join(
            f"row {int(i)} ({int(ts[i])} <= {int(ts[i - 1])})" for i in unordered[:MAX_LISTED]
        )
        raise InvalidInput(
            f"{what}: open times must strictly increase; {unordered.size} rows break it: {rows}"
        )
    if len(ts) == 0 and (source.start is None or source.end is None):
        raise InvalidInput(f"{what}: no rows, so start and end must be given")
    start = int(ts[0]) if source.start is None else source.start
    end = int(ts[-1]) + timeframe_ms(source.timeframe) if source.end is None else source.end
    if start >= end:
        raise InvalidInput(f"{what}: start {start} must be before end {end}")
    first, stop = int(np.searchsorted(ts, start)), int(np.searchsorted(ts, end))
    exchange, pair = _provenance(parquet)
    return _Raw(columns.take(slice(first, stop)), start, end, first, exchange, pair)


def _provenance(parquet: pq.ParquetFile) -> tuple[str | None, str | None]:
    """Exchange and pair from a `provenance` JSON key (as ../shared/data's files have)."""
    raw = (parquet.schema_arrow.metadata or {}).get(b"provenance")
    try:
        provenance = json.loads(raw) if raw else {}
    except ValueError:
        return None, None
    if not isinstance(provenance, dict):
        return None, None
    exchange, pair = provenance.get("exchange"), provenance.get("pair")
    return (
        exchange if isinstance(exchange, str) else None,
        pair if isinstance(pair, str) else None,
    )


def last_candles_range(now_ms: int, timeframe: str, count: int) -> tuple[int, int]:
    """`[start, end)` of the `count` newest candles finished at `now_ms`."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInput(f"last: expected a number of candles >= 1, got {count!r}")
    step = timeframe_ms(timeframe)
    end = now_ms // step * step
    return end - count * step, end


def resolve_last_candles(
    exchange: str,
    pair: str,
    timeframe: str,
    count: int,
    *,
    settings: DownloadSettings | None = None,
    client_factory: ClientFactory = ExchangeClient,
) -> CcxtSource:
    """ "The last `count` candles" as a fixed source, by the exchange's clock, once."""
    CcxtSource(exchange, pair, timeframe, 0, timeframe_ms(timeframe))  # check the fields
    client = client_factory(exchange, settings or DownloadSettings())
    client.check_market(pair, timeframe)
    start, end = last_candles_range(client.server_time(), timeframe, count)
    return CcxtSource(exchange, pair, timeframe, start, end)
