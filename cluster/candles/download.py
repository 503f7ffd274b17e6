"""Downloading one range of candles from an exchange, completely and consistently.

- Pagination: `fetch_ohlcv(since, limit)` with `limit` = the page size, continuing
  from the newest received open time + 1 ms until a candle at or after the range's
  last grid time has arrived. A short page never ends a download; an empty page does
  (the exchange has nothing at or after `since`).
- A candle whose open time + timeframe is later than the exchange's clock is
  unfinished: it is never kept (the caller caps ranges at the clock anyway).
- Rows repeated across or within pages collapse when identical (bit for bit); two
  different rows for one open time stop the download (`ConflictingCandles`, naming up
  to 20 of them).
- Every gap left after pagination is requested once more on its own (since = the
  gap's start); only what is still missing then is a real gap.
Rows outside `[start, end)` are ignored; rows are kept as sent (cleaning judges them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cluster.candles.cleaning import find_gaps
from cluster.candles.exchange import ExchangeClient, ExchangeFailure
from cluster.candles.table import MAX_LISTED, CandleColumns, Values
from cluster.candles.times import count, format_utc
from cluster.errors import InvalidInput
from cluster.timeframes import timeframe_ms


class ConflictingCandles(InvalidInput):
    """The exchange sent two different candles for one open time."""


def same_values(a: Values, b: Values) -> bool:
    """Equal values, NaN equal to NaN (the exchange sent the same text twice)."""
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


@dataclass
class DownloadStats:
    """What a download did, for reports and tests."""

    pages: int = 0
    gap_requests: int = 0
    collapsed_duplicates: int = 0
    unfinished_dropped: int = 0


@dataclass
class RowMerger:
    """Rows by open time: identical repeats collapse, different ones are conflicts."""

    rows: dict[int, Values] = field(default_factory=dict)
    conflicts: list[tuple[int, Values, Values]] = field(default_factory=list)
    collapsed: int = 0

    def add(self, columns: CandleColumns, keep: np.ndarray) -> None:
        for index in np.flatnonzero(keep):
            timestamp = int(columns.timestamp[index])
            row = columns.values(int(index))
            known = self.rows.get(timestamp)
            if known is None:
                self.rows[timestamp] = row
            elif same_values(known, row):
                self.collapsed += 1
            else:
                self.conflicts.append((timestamp, known, row))

    def raise_conflicts(self, exchange_id: str, pair: str) -> None:
        if not self.conflicts:
            return
        listed = [
            f"{format_utc(ts)}: {list(first)} and {list(second)}"
            for ts, first, second in self.conflicts[:MAX_LISTED]
        ]
        raise ConflictingCandles(
            [
                f"{exchange_id} sent "
                f"{count(len(self.conflicts), 'conflicting duplicate candle')} for {pair} "
                "(two different rows for one open time; [open, high, low, close, volume]); "
                "the download stopped and nothing was stored",
                *listed,
            ]
        )

    def columns(self) -> CandleColumns:
        """The rows sorted by open time."""
        if not self.rows:
            return CandleColumns.empty()
        timestamps = np.array(sorted(self.rows), dtype=np.int64)
        values = np.array([self.rows[int(t)] for t in timestamps], dtype=np.float64)
        return CandleColumns(timestamps, *(np.ascontiguousarray(values[:, i]) for i in range(5)))


@dataclass(frozen=True)
class Downloaded:
    """`rows`: the finished candles in the range, sorted. `extras`: finished candles the
    pages carried from outside the range (for comparison with the cache, never stored
    by the download itself)."""

    rows: CandleColumns
    extras: CandleColumns
    stats: DownloadStats


def download_range(
    client: ExchangeClient,
    pair: str,
    timeframe: str,
    start: int,
    end: int,
    *,
    now_ms: int,
    bar: Any = None,
) -> Downloaded:
    """Every finished candle the exchange has in `[start, end)` (see the module docstring).

    `now_ms` is the exchange's clock; `bar` an optional progress bar (tqdm-like).
    """
    step = timeframe_ms(timeframe)
    limit = client.page_limit()
    merger, extras, stats = RowMerger(), RowMerger(), DownloadStats()
    window = _Window(client, pair, timeframe, start, end, now_ms, merger, extras, stats)
    stats.pages = window.paginate(start, end, limit, bar)
    merger.raise_conflicts(client.exchange_id, pair)
    received = merger.columns().timestamp
    for gap_start, gap_end in find_gaps(received[received % step == 0], start, end, step):
        gap_limit = max(1, min(limit, (gap_end - gap_start) // step))
        stats.gap_requests += window.paginate(gap_start, gap_end, gap_limit, None)
    merger.raise_conflicts(client.exchange_id, pair)
    stats.collapsed_duplicates = merger.collapsed
    return Downloaded(merger.columns(), extras.columns(), stats)


@dataclass
class _Window:
    client: ExchangeClient
    pair: str
    timeframe: str
    start: int
    end: int
    now_ms: int
    merger: RowMerger
    extras: RowMerger
    stats: DownloadStats

    def paginate(self, low: int, high: int, limit: int, bar: Any) -> int:
        """Pages from `low` until `high` is passed or a page is empty; returns the count."""
        step = timeframe_ms(self.timeframe)
        cursor, pages, done = low, 0, low
        while cursor < high:
            page = self.client.page(self.pair, self.timeframe, cursor, limit)
            pages += 1
            if len(page) == 0:
                break
            ts = page.timestamp
            unfinished = ts + step > self.now_ms
            self.stats.unfinished_dropped += int(unfinished.sum())
            inside = (ts >= self.start) & (ts < self.end)
            self.merger.add(page, inside & ~unfinished)
            self.extras.add(page, ~inside & ~unfinished)
            newest = int(ts.max())
            if newest < cursor:
                raise ExchangeFailure(
                    f"{self.client.exchange_id} answered since={cursor} with older candles "
                    f"only (newest {newest}): cannot paginate"
                )
            if bar is not None and min(newest + step, high) > done:
                bar.update((min(newest + step, high) - done) // step)
                done = min(newest + step, high)
            if newest + step >= high:  # the next candle would open at or after `high`
                break
            cursor = newest + 1
        if bar is not None and high > done:
            bar.update((high - done) // step)
        return pages
