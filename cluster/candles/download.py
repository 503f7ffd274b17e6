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
- Every gap a page leaves is requested once more on its own (since = the gap's start)
  before the next page; only what is still missing then is a real gap.
Rows outside `[start, end)` are ignored; rows are kept as sent (cleaning judges them).

`RangeDownload.pages()` yields after every page the end of the part that is final (all
its pages and gap re-requests done, no conflict), so that a caller can store finished
pages as they come and an interrupted download resumes where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
                "the download stopped and stored none of them",
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
    download = RangeDownload(client, pair, timeframe, start, end, now_ms)
    for _ in download.pages(bar):
        pass
    return download.result()


class RangeDownload:
    """One range's download, page by page (see the module docstring)."""

    def __init__(
        self, client: ExchangeClient, pair: str, timeframe: str, start: int, end: int, now_ms: int
    ) -> None:
        self.client, self.pair, self.timeframe = client, pair, timeframe
        self.start, self.end, self.now_ms = start, end, now_ms
        self.step = timeframe_ms(timeframe)
        self.merger, self.extras, self.stats = RowMerger(), RowMerger(), DownloadStats()
        # Rows in [start, final_end) are final: every page and gap request done.
        self.final_end = start

    def pages(self, bar: Any = None) -> Iterator[int]:
        """Download page by page; after each, yield the new `final_end`. The last value
        yielded is `end`."""
        limit = self.client.page_limit()
        cursor, done = self.start, self.start
        while cursor < self.end:
            page = self._page(cursor, limit)
            self.stats.pages += 1
            if page is None:
                break
            newest = page
            reached = min(newest + self.step, self.end)
            if bar is not None and reached > done:
                bar.update((reached - done) // self.step)
                done = reached
            self._finish(reached, limit)
            yield self.final_end
            if newest + self.step >= self.end:  # the next candle would open at or after end
                break
            cursor = newest + 1
        if bar is not None and self.end > done:
            bar.update((self.end - done) // self.step)
        if self.final_end < self.end:  # an empty page: what is left is requested as a gap
            self._finish(self.end, limit)
            yield self.final_end

    def rows(self, until: int | None = None) -> CandleColumns:
        """The rows received in `[start, until)` (default: all), sorted."""
        columns = self.merger.columns()
        if until is None:
            return columns
        return columns.take(slice(0, int(np.searchsorted(columns.timestamp, until))))

    def result(self) -> Downloaded:
        self.stats.collapsed_duplicates = self.merger.collapsed
        return Downloaded(self.merger.columns(), self.extras.columns(), self.stats)

    def _finish(self, reached: int, limit: int) -> None:
        """Request every gap in [final_end, reached) once more, then make it final."""
        for gap_start, gap_end in self._gaps(self.final_end, reached):
            gap_limit = max(1, min(limit, (gap_end - gap_start) // self.step))
            self.stats.gap_requests += self._paginate(gap_start, gap_end, gap_limit)
        self.merger.raise_conflicts(self.client.exchange_id, self.pair)
        self.final_end = reached

    def _gaps(self, low: int, high: int) -> list[tuple[int, int]]:
        """Runs of grid times in [low, high) without a row (O(high - low), not O(rows))."""
        gaps: list[tuple[int, int]] = []
        first = -(-low // self.step) * self.step
        gap_start = None
        for moment in range(first, high, self.step):
            if moment in self.merger.rows:
                if gap_start is not None:
                    gaps.append((gap_start, moment))
                    gap_start = None
            elif gap_start is None:
                gap_start = moment
        if gap_start is not None:
            gaps.append((gap_start, high))
        return gaps

    def _page(self, since: int, limit: int) -> int | None:
        """One page into the mergers; its newest open time, or None when it is empty."""
        page = self.client.page(self.pair, self.timeframe, since, limit)
        if len(page) == 0:
            return None
        ts = page.timestamp
        unfinished = ts + self.step > self.now_ms
        self.stats.unfinished_dropped += int(unfinished.sum())
        inside = (ts >= self.start) & (ts < self.end)
        self.merger.add(page, inside & ~unfinished)
        self.extras.add(page, ~inside & ~unfinished)
        newest = int(ts.max())
        if newest < since:
            raise ExchangeFailure(
                f"{self.client.exchange_id} answered since={since} with older candles "
                f"only (newest {newest}): cannot paginate"
            )
        return newest

    def _paginate(self, low: int, high: int, limit: int) -> int:
        """Pages from `low` until `high` is passed or a page is empty; the count."""
        cursor, pages = low, 0
        while cursor < high:
            newest = self._page(cursor, limit)
            pages += 1
            if newest is None or newest + self.step >= high:
                break
            cursor = newest + 1
        return pages
