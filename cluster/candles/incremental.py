"""Bringing the cache up to date for one range: fetch only what is missing, or refresh.

- Without refresh, only the parts of `[start, end)` outside the file's covered ranges
  are downloaded: a range already covered makes no request at all (not even for the
  clock). Pages that spill into covered ranges are compared with the cached rows; a
  candle the exchange now reports differently stops with `RevisedCandles` (naming up
  to 20, and suggesting `--refresh`), so a cache never mixes two versions of history.
- With refresh, the whole range is downloaded again, then checked by the cleaning rules
  (`RefreshRejected` names the rows that break one, and the cache stays as it was: a
  cache no job could use helps no one); the cache takes the new rows at once, all or
  nothing, and the report lists every revised, added or removed candle.
- The end of the range must not be later than the exchange's clock allows: a candle is
  finished when open time + timeframe <= the clock (`InvalidInput` otherwise, before
  any candle is requested).
- Without refresh, finished pages are stored as they come (a checkpoint: see
  `DownloadSettings.checkpoint_s`) and, when the download stops on an error that is not
  bad input (the exchange down, Ctrl-C), once more before the error is raised: an
  interrupted download of any size resumes where it stopped. After a SIGKILL it
  resumes at the last checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from cluster.candles.cache import CacheContent, CacheKey, cache_lock, read_cache, write_cache
from cluster.candles.cleaning import check_rules
from cluster.candles.download import DownloadStats, RangeDownload, same_values
from cluster.candles.exchange import DownloadSettings, ExchangeClient, progress_bar
from cluster.candles.sources import CcxtSource
from cluster.candles.table import MAX_LISTED, CandleColumns, Values
from cluster.candles.times import Range, count, format_range, format_utc, subtract_ranges
from cluster.errors import InvalidInput
from cluster.timeframes import timeframe_ms

log = logging.getLogger("reprotune.candles")


class RevisedCandles(InvalidInput):
    """The exchange now reports candles differently from what the cache holds."""


@dataclass(frozen=True)
class Revision:
    """One candle that changed between the cache and the exchange (None: absent)."""

    timestamp: int
    cached: Values | None
    fetched: Values | None

    def describe(self) -> str:
        def text(values: Values | None) -> str:
            return "absent" if values is None else str(list(values))

        return f"{format_utc(self.timestamp)}: cached {text(self.cached)}, now {text(self.fetched)}"


@dataclass
class FetchReport:
    """What bringing one range up to date did."""

    path: Path
    fetched: list[Range] = field(default_factory=list)
    requests: int = 0
    revisions: list[Revision] = field(default_factory=list)
    stats: list[DownloadStats] = field(default_factory=list)

    @property
    def cache_hit(self) -> bool:
        return not self.fetched


ClientFactory = Callable[[str, DownloadSettings], ExchangeClient]


def ensure_cached(
    source: CcxtSource,
    cache_root: Path,
    settings: DownloadSettings,
    *,
    refresh: bool = False,
    client_factory: ClientFactory = ExchangeClient,
) -> tuple[CacheContent, FetchReport]:
    """The cache content after making `[source.start, source.end)` covered."""
    key = CacheKey(source.exchange, source.pair, source.timeframe)
    path = key.path(cache_root)
    report = FetchReport(path)
    client: ExchangeClient | None = None
    if not path.exists():  # a new market: check it before anything is created for it
        client = client_factory(source.exchange, settings)
        try:
            client.check_market(source.pair, source.timeframe)
        finally:
            report.requests = client.requests
    with cache_lock(path):
        content = read_cache(path, key) or CacheContent.empty()
        span = (source.start, source.end)
        missing = [span] if refresh else subtract_ranges(span, list(content.covered))
        if not missing:
            return content, report
        client = client or client_factory(source.exchange, settings)
        try:
            content = _fetch(client, source, content, missing, path, key, report, refresh)
        finally:
            report.requests = client.requests
    return content, report


def _fetch(
    client: ExchangeClient,
    source: CcxtSource,
    content: CacheContent,
    missing: list[Range],
    path: Path,
    key: CacheKey,
    report: FetchReport,
    refresh: bool,
) -> CacheContent:
    step = timeframe_ms(source.timeframe)
    client.check_market(source.pair, source.timeframe)
    now = client.server_time()
    newest_end = now // step * step  # candles opening before this are finished
    if source.end > newest_end:
        raise InvalidInput(
            f"end {format_utc(source.end)} is too late: by the exchange's clock "
            f"({format_utc(now)}) the candle at {format_utc(newest_end)} is unfinished; "
            f"choose end <= {format_utc(newest_end)}"
        )
    total = sum(high - low for low, high in missing) // step
    description = f"{source.exchange} {source.pair} {source.timeframe}"
    store = _Checkpoints(path, key, client.settings.checkpoint_s, enabled=not refresh)
    with progress_bar(total, description, client.settings.progress) as bar:
        for low, high in missing:
            download = RangeDownload(client, source.pair, source.timeframe, low, high, now)
            try:
                for final_end in download.pages(bar):
                    if final_end < high and store.due():
                        content = store.write(
                            partial(_taken, content, download, low, final_end, source)
                        )
            except BaseException as error:
                # Keep the finished pages, unless the exchange's data itself is wrong.
                if not isinstance(error, InvalidInput) and download.final_end > low:
                    with contextlib.suppress(Exception):
                        end = download.final_end
                        store.write(partial(_taken, content, download, low, end, source))
                raise
            got = download.result()
            report.stats.append(got.stats)
            if refresh:
                _, old_rows = content.rows_in(low, high)
                report.revisions.extend(_compare_rows(old_rows, got.rows))
            content = store.write(
                partial(_taken, content, download, low, high, source, refresh=refresh)
            )
            report.fetched.append((low, high))
    if refresh:
        _check_refreshed(content, missing, source)
        write_cache(path, key, content)
    return content


class _Checkpoints:
    """Writes of the cache during a download: `due()` once `checkpoint_s` passed since
    the last write (None: once ten times the last write's duration passed, so that
    writes take at most ~10% of a download of any size)."""

    def __init__(self, path: Path, key: CacheKey, every_s: float | None, enabled: bool):
        self._path, self._key, self._every_s, self._enabled = path, key, every_s, enabled
        self._last = time.monotonic()
        self._cost = 0.0

    def due(self) -> bool:
        if not self._enabled:
            return False
        wait = 10 * self._cost if self._every_s is None else self._every_s
        return time.monotonic() - self._last >= wait

    def write(self, make: Callable[[], CacheContent]) -> CacheContent:
        """`make()`'s content, written when enabled (its making counts in the cost)."""
        began = time.monotonic()
        content = make()
        if self._enabled:
            write_cache(self._path, self._key, content)
            self._last = time.monotonic()
            self._cost = self._last - began
        return content


def _taken(
    content: CacheContent,
    download: RangeDownload,
    low: int,
    until: int,
    source: CcxtSource,
    *,
    refresh: bool = False,
) -> CacheContent:
    """`content` with the download's final rows in `[low, until)`; pages that spilled
    into covered ranges must agree with the cache unless refreshing."""
    spill = _compare(content, download.extras.columns())
    if spill and not refresh:
        _raise_revised(spill, source)
    if spill:
        log.warning("%d revised candles outside the refreshed range", len(spill))
    return content.replace_range(low, until, download.rows(until))


class RefreshRejected(InvalidInput):
    """The refreshed candles break the cleaning rules; the cache was left as it was."""


def _check_refreshed(content: CacheContent, ranges: list[Range], source: CcxtSource) -> None:
    for low, high in ranges:
        _, rows = content.rows_in(low, high)
        try:
            check_rules(rows, start=low, end=high, timeframe=source.timeframe)
        except InvalidInput as error:
            raise RefreshRejected(
                [
                    f"the refreshed candles of {source.exchange} {source.pair} "
                    f"{source.timeframe} {format_range((low, high))} break the cleaning "
                    "rules, so no job could use them: the cache was left as it was "
                    "(rows counted from the range's start)",
                    *error.problems[1:],
                ]
            ) from None


def _compare(content: CacheContent, rows: CandleColumns) -> list[Revision]:
    """Rows that differ from (or are absent in) the cache where the cache is covered."""
    revisions = []
    cached_ts = content.columns.timestamp
    for i in range(len(rows)):
        ts = int(rows.timestamp[i])
        if not any(low <= ts < high for low, high in content.covered):
            continue
        j = int(np.searchsorted(cached_ts, ts))
        fetched = rows.values(i)
        if j < len(cached_ts) and cached_ts[j] == ts:
            cached = content.columns.values(j)
            if not same_values(cached, fetched):
                revisions.append(Revision(ts, cached, fetched))
        else:
            revisions.append(Revision(ts, None, fetched))
    return revisions


def _compare_rows(old: CandleColumns, new: CandleColumns) -> list[Revision]:
    """Every candle changed, added or removed between two sorted row sets."""
    old_rows = {int(old.timestamp[i]): old.values(i) for i in range(len(old))}
    new_rows = {int(new.timestamp[i]): new.values(i) for i in range(len(new))}
    revisions = []
    for ts in sorted(old_rows.keys() | new_rows.keys()):
        before, after = old_rows.get(ts), new_rows.get(ts)
        if before is None or after is None or not same_values(before, after):
            revisions.append(Revision(ts, before, after))
    return revisions


def _raise_revised(revisions: list[Revision], source: CcxtSource) -> None:
    span = format_range((source.start, source.end))
    raise RevisedCandles(
        [
            f"{source.exchange} now reports {count(len(revisions), 'candle')} of {source.pair} "
            f"{source.timeframe} differently from the cache; nothing was stored. To re-download "
            f"and accept the exchange's revisions, run `data fetch --refresh` over {span} "
            "(or a range covering the candles below)",
            *(revision.describe() for revision in revisions[:MAX_LISTED]),
        ]
    )
