"""The real ccxt binanceus client against the local replay server: download and cache."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from exchange_replay import ReplayExchange, read_candles, replay_exchange

from cluster.candles.cache import CacheKey, read_cache
from cluster.candles.dataset import Dataset, load_candles, resolve_last_candles
from cluster.candles.download import ConflictingCandles
from cluster.candles.exchange import (
    DownloadSettings,
    ExchangeClient,
    ExchangeFailure,
    ExchangeUnavailable,
)
from cluster.candles.incremental import RevisedCandles, Revision, ensure_cached
from cluster.candles.sources import CcxtSource, ParquetSource
from cluster.candles.table import CANDLE_COLUMNS, CandleColumns
from cluster.candles.times import format_utc, parse_utc
from cluster.errors import Interrupted, InvalidInput

DATA = Path(__file__).resolve().parent / "data"
FIXTURE_5M = DATA / "binance_BTC-USDT_5m_0-4999.parquet"
FIXTURE_1H = DATA / "binance_BTC-USDT_1h_3300-7699.parquet"
FIVE = read_candles(FIXTURE_5M)
HOURLY = read_candles(FIXTURE_1H)
TS = FIVE.timestamp
STEP = 300_000
HOUR = 3_600_000
KEY = CacheKey("binanceus", "BTC/USDT", "5m")


@pytest.fixture
def replay() -> Iterator[ReplayExchange]:
    markets = {"BTC/USDT": {"5m": FIVE, "1h": HOURLY}}
    with replay_exchange(markets, listed_only=("ETH/USDT",)) as server:
        yield server


def fast(server: ReplayExchange, **overrides: object) -> DownloadSettings:
    """Quick retries, but a generous timeout: on a machine loaded by other processes a
    local answer can take a while, and a timeout would add a retry (a request, a sleep)
    that the tests count. Only the timeout test sets a short one."""
    options: dict[str, object] = {
        "api_url": server.url,
        "timeout_s": 30.0,
        "max_retries": 2,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        "progress": False,
    }
    return DownloadSettings(**{**options, **overrides})  # type: ignore[arg-type]


def five(first: int, stop: int) -> CcxtSource:
    """The fixture's rows first..stop-1 as a 5m source (stop may be 5000: one past the end)."""
    end = int(TS[stop]) if stop < len(TS) else int(TS[-1]) + STEP
    return CcxtSource("binanceus", "BTC/USDT", "5m", int(TS[first]), end)


def assert_rows(dataset: Dataset, candles: CandleColumns) -> None:
    for name in CANDLE_COLUMNS:
        assert np.array_equal(dataset.table[name].to_numpy(), getattr(candles, name)), name


def starts(server: ReplayExchange) -> list[int]:
    return [int(params["startTime"]) for params in server.klines_requests()]


def recording_factory(sleeps: list[float], **options: object):  # type: ignore[no-untyped-def]
    def build(exchange_id: str, settings: DownloadSettings) -> ExchangeClient:
        return ExchangeClient(exchange_id, settings, sleep=sleeps.append, **options)  # type: ignore[arg-type]

    return build


# --- pagination --------------------------------------------------------------------------


def test_pagination_across_pages_gives_the_source_row_for_row(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    dataset = load_candles(five(0, 5000), cache_dir=tmp_path, settings=fast(replay))
    assert_rows(dataset, FIVE)
    # Pages of 1,000 (binanceus' maximum), each continuing 1 ms after the newest row
    # received, until the range's last candle has arrived.
    assert starts(replay) == [int(TS[0])] + [int(TS[k]) + 1 for k in (999, 1999, 2999, 3999)]
    assert {params["limit"] for params in replay.klines_requests()} == {"1000"}
    client = ExchangeClient("binanceus", fast(replay, page_limit=5000))
    assert client.page_limit() == 1000  # capped at the exchange's documented maximum


@pytest.mark.reliability("fault-9")
def test_short_pages_mid_range_do_not_end_the_download(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    replay.faults.short_page_rows = 137
    replay.faults.short_page_from, replay.faults.short_page_until = int(TS[1000]), int(TS[3000])
    source = five(0, 5000)
    _, report = ensure_cached(source, tmp_path, fast(replay))
    assert_rows(load_candles(source, cache_dir=tmp_path, settings=fast(replay)), FIVE)
    # Rows 0-1999 in two full pages; pages starting inside rows 1000-2999 hold 137 rows:
    # from row 2000 eight of them (the last, from row 2959, ends at row 3095); then rows
    # 3096-4095 and 4096-4999.
    assert len(starts(replay)) == 2 + 8 + 2
    assert report.stats[0].gap_requests == 0


@pytest.mark.reliability("fault-9")
def test_overlapping_pages_collapse(replay: ReplayExchange, tmp_path: Path) -> None:
    # Pages that also carry the 7 rows before startTime (ccxt drops rows before `since`)
    # and repeat their own first 3 rows (these reach the download and must collapse).
    replay.faults.overlap_rows, replay.faults.repeated_rows = 7, 3
    source = five(0, 5000)
    _, report = ensure_cached(source, tmp_path, fast(replay))
    assert_rows(load_candles(source, cache_dir=tmp_path, settings=fast(replay)), FIVE)
    # ccxt sorts a page and keeps its first `limit` rows: 997 new rows per page of 1,000.
    assert report.stats[0].pages == 6 and report.stats[0].collapsed_duplicates == 6 * 3


@pytest.mark.reliability("fault-9")
def test_a_gap_is_requested_again_before_it_counts(replay: ReplayExchange, tmp_path: Path) -> None:
    replay.faults.omitted_once = {int(TS[1500]), int(TS[1501]), int(TS[3200])}
    dataset = load_candles(five(0, 5000), cache_dir=tmp_path, settings=fast(replay))
    assert_rows(dataset, FIVE)
    # Each right after the page that left it: pages of rows 0-999, 1000-1999, then the
    # re-request of 1500-1501, 2000-2999, 3000-3999, the re-request of 3200, 4000-4999.
    requests = replay.klines_requests()
    assert len(requests) == 7
    assert {"startTime": str(TS[1500]), "limit": "2"}.items() <= requests[2].items()
    assert {"startTime": str(TS[3200]), "limit": "1"}.items() <= requests[5].items()


# The fixture's real gaps, from tests/data/README.md: (first missing open time, count).
REAL_GAPS = [
    ("2018-01-04T04:00", 1),
    ("2018-02-08T01:00", 33),
    ("2018-06-26T02:00", 10),
    ("2018-06-27T13:00", 1),
    ("2018-07-04T01:00", 7),
]


def test_real_gaps_are_confirmed_once_then_follow_the_policy(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    source = CcxtSource(
        "binanceus", "BTC/USDT", "1h", int(HOURLY.timestamp[0]), int(HOURLY.timestamp[-1]) + HOUR
    )
    with pytest.raises(InvalidInput) as caught:
        load_candles(source, cache_dir=tmp_path, settings=fast(replay))
    assert caught.value.problems[0].startswith("5 gaps, 52 of 4452 candles missing")
    gap_requests = [p for p in replay.klines_requests() if int(p["startTime"]) % HOUR == 0][1:]
    expected = [(parse_utc(first, "gap"), count) for first, count in REAL_GAPS]
    assert [(int(p["startTime"]), int(p["limit"])) for p in gap_requests] == expected
    # The re-requests' pages overlap rows already received after each gap: they collapse.
    _, report = ensure_cached(source, tmp_path / "again", fast(replay))
    assert report.stats[0].gap_requests == 5 and report.stats[0].collapsed_duplicates == 52
    replay.clear_log()
    filled = load_candles(
        source, gap_policy="fill", max_fill_share=0.02, cache_dir=tmp_path, settings=fast(replay)
    )
    assert replay.requests == []  # the gaps are known to be real: nothing is asked again
    assert filled.manifest.filled_rows == 52
    from_file = load_candles(
        ParquetSource(str(FIXTURE_1H), "1h"), gap_policy="fill", max_fill_share=0.02
    )
    assert filled.manifest.fingerprint == from_file.manifest.fingerprint


# --- the exchange's clock ------------------------------------------------------------------


def test_an_unfinished_newest_candle_is_never_stored(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    last_open = int(TS[-1])
    replay.server_time_ms = last_open + STEP // 2  # the last candle is half-way through
    source = resolve_last_candles("binanceus", "BTC/USDT", "5m", 100, settings=fast(replay))
    assert (source.start, source.end) == (last_open - 100 * STEP, last_open)
    _, report = ensure_cached(source, tmp_path, fast(replay))
    assert report.stats[0].unfinished_dropped == 1  # the page carried it; it was dropped
    dataset = load_candles(source, cache_dir=tmp_path, settings=fast(replay))
    assert_rows(dataset, FIVE.take(slice(len(TS) - 101, len(TS) - 1)))
    cached = read_cache(KEY.path(tmp_path), KEY)
    assert cached is not None and int(cached.columns.timestamp[-1]) == last_open - STEP
    replay.clear_log()
    late = CcxtSource("binanceus", "BTC/USDT", "5m", last_open - STEP, last_open + STEP)
    with pytest.raises(InvalidInput, match=f"the candle at {format_utc(last_open)} is unfinished"):
        load_candles(late, cache_dir=tmp_path, settings=fast(replay))
    assert replay.klines_requests() == []


def test_the_local_clock_stands_in_when_the_exchange_has_none(
    replay: ReplayExchange, caplog: pytest.LogCaptureFixture
) -> None:
    replay.faults.time_status = 500
    local_now = int(TS[-1]) + 7 * 60_000
    factory = recording_factory([], local_clock=lambda: local_now)
    with caplog.at_level(logging.WARNING, logger="reprotune.candles"):
        source = resolve_last_candles(
            "binanceus", "BTC/USDT", "5m", 10, settings=fast(replay), client_factory=factory
        )
    assert source.end == int(TS[-1]) + STEP  # 7 minutes after the last open: it has finished
    assert "using the local clock" in caplog.text


# --- errors and retries ----------------------------------------------------------------------


@pytest.mark.reliability("fault-9")
def test_a_429_is_retried_after_its_retry_after(replay: ReplayExchange, tmp_path: Path) -> None:
    replay.faults.rate_limited, replay.faults.retry_after = 1, "1"
    sleeps: list[float] = []
    settings = fast(replay, backoff_max_s=0.5)
    dataset = load_candles(
        five(0, 1200),
        cache_dir=tmp_path,
        settings=settings,
        client_factory=recording_factory(sleeps),
    )
    assert_rows(dataset, FIVE.take(slice(0, 1200)))
    assert sleeps == [0.5]  # Retry-After 1 s, capped by backoff_max_s
    assert starts(replay)[:2] == [int(TS[0]), int(TS[0])]


@pytest.mark.reliability("fault-9")
@pytest.mark.parametrize("fault", ["timeout", "server_error"])
def test_a_timeout_or_5xx_is_retried(fault: str, replay: ReplayExchange, tmp_path: Path) -> None:
    settings = fast(replay)
    if fault == "timeout":
        # The first answer takes 2 s and the client gives up at 1 s: always a timeout,
        # however loaded the machine (a slower client only gives up later). A normal
        # answer slower than 1 s would add a retry, which the checks below allow.
        replay.faults.slow, replay.faults.slow_delay_s = 1, 2.0
        settings = fast(replay, timeout_s=1.0, max_retries=4)
    else:
        replay.faults.server_errors, replay.faults.server_error_status = 2, 502
    sleeps: list[float] = []
    dataset = load_candles(
        five(0, 1200),
        cache_dir=tmp_path,
        settings=settings,
        client_factory=recording_factory(sleeps),
    )
    assert_rows(dataset, FIVE.take(slice(0, 1200)))
    expected = [0.01] if fault == "timeout" else [0.01, 0.02]  # 0.01 * 2**attempt
    assert sleeps[: len(expected)] == expected  # a slow answer under load may add more
    assert starts(replay)[: len(expected) + 1] == [int(TS[0])] * (len(expected) + 1)


@pytest.mark.reliability("fault-9")
def test_retries_exhausted_stop_with_a_resumable_error(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    replay.faults.always_status = 503
    with pytest.raises(ExchangeUnavailable, match="still failing after 3 attempts") as caught:
        load_candles(five(0, 1200), cache_dir=tmp_path, settings=fast(replay))
    assert isinstance(caught.value, Interrupted)  # exit 3: run again to resume
    assert len(replay.klines_requests()) == 3
    assert not KEY.path(tmp_path).exists()


def test_an_unknown_symbol_fails_at_once(replay: ReplayExchange, tmp_path: Path) -> None:
    source = CcxtSource("binanceus", "DOGE/USDT", "5m", int(TS[0]), int(TS[10]))
    with pytest.raises(InvalidInput, match="pair 'DOGE/USDT' is not listed on binanceus"):
        load_candles(source, cache_dir=tmp_path, settings=fast(replay))
    assert replay.klines_requests() == []
    listed = CcxtSource("binanceus", "ETH/USDT", "5m", int(TS[0]), int(TS[10]))  # -1121 from klines
    with pytest.raises(InvalidInput, match="BadSymbol"):
        load_candles(listed, cache_dir=tmp_path, settings=fast(replay))
    assert len(replay.klines_requests()) == 1  # not retried
    with pytest.raises(InvalidInput, match="did you mean binanceus"):
        load_candles(
            CcxtSource("binanceuss", "BTC/USDT", "5m", int(TS[0]), int(TS[10])), cache_dir=tmp_path
        )


def test_an_authentication_error_fails_at_once(replay: ReplayExchange, tmp_path: Path) -> None:
    replay.faults.always_status = 401
    replay.faults.always_body = {
        "code": -2015,
        "msg": "Invalid API-key, IP, or permissions for action.",
    }
    with pytest.raises(ExchangeFailure, match="AuthenticationError"):
        load_candles(five(0, 100), cache_dir=tmp_path, settings=fast(replay))
    assert len(replay.klines_requests()) == 1


@pytest.mark.reliability("fault-9")
def test_conflicting_duplicates_stop_the_download(replay: ReplayExchange, tmp_path: Path) -> None:
    replay.faults.conflicting_duplicate_at = int(TS[2500])
    with pytest.raises(ConflictingCandles, match=format_utc(int(TS[2500]))) as caught:
        load_candles(five(0, 5000), cache_dir=tmp_path, settings=fast(replay))
    assert "1 conflicting duplicate candle for" in caught.value.problems[0]
    # Finished pages before the conflicting one may be cached; nothing from that page on.
    cached = read_cache(KEY.path(tmp_path), KEY)
    assert cached is None or cached.covered[-1][1] <= int(TS[2500])


# --- the cache ---------------------------------------------------------------------------


def test_a_cache_hit_makes_no_request(replay: ReplayExchange, tmp_path: Path) -> None:
    first = load_candles(five(0, 3000), cache_dir=tmp_path, settings=fast(replay))
    replay.clear_log()
    again = load_candles(five(0, 3000), cache_dir=tmp_path, settings=fast(replay))
    inner = load_candles(five(100, 200), cache_dir=tmp_path, settings=fast(replay))
    assert replay.requests == []
    assert again.manifest.fingerprint == first.manifest.fingerprint
    assert_rows(inner, FIVE.take(slice(100, 200)))


def test_an_extension_requests_only_the_missing_range(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    load_candles(five(1000, 2000), cache_dir=tmp_path, settings=fast(replay))
    replay.clear_log()
    dataset = load_candles(five(1000, 3500), cache_dir=tmp_path, settings=fast(replay))
    assert_rows(dataset, FIVE.take(slice(1000, 3500)))
    assert starts(replay)[0] == int(TS[2000]) and min(starts(replay)) == int(TS[2000])
    replay.clear_log()
    dataset = load_candles(five(500, 3500), cache_dir=tmp_path, settings=fast(replay))
    assert_rows(dataset, FIVE.take(slice(500, 3500)))
    assert starts(replay) == [int(TS[500])]  # one page covers [500, 1000); the rest is cached
    cached = read_cache(KEY.path(tmp_path), KEY)
    assert cached is not None and cached.covered == ((int(TS[500]), int(TS[3500])),)


@pytest.mark.reliability("fault-9")
def test_a_corrupt_cache_file_is_fetched_again(
    replay: ReplayExchange, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = load_candles(five(0, 2000), cache_dir=tmp_path, settings=fast(replay))
    path = KEY.path(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 32] = bytes(32)
    path.write_bytes(bytes(data))
    replay.clear_log()
    with caplog.at_level(logging.WARNING, logger="reprotune.candles"):
        again = load_candles(five(0, 2000), cache_dir=tmp_path, settings=fast(replay))
    assert "is corrupt" in caplog.text and path.with_name("5m.parquet.corrupt").exists()
    assert starts(replay)[0] == int(TS[0])
    assert again.manifest.fingerprint == first.manifest.fingerprint


def test_a_revised_candle_with_and_without_refresh(replay: ReplayExchange, tmp_path: Path) -> None:
    source = five(0, 2000)
    before = load_candles(source, cache_dir=tmp_path, settings=fast(replay))
    old_volume = float(FIVE.volume[500])
    replay.revise("BTC/USDT", "5m", int(TS[500]), volume=old_volume + 1.0)
    replay.clear_log()
    # Without --refresh the cache is authoritative: same data, no request.
    same = load_candles(source, cache_dir=tmp_path, settings=fast(replay))
    assert replay.requests == [] and same.manifest.fingerprint == before.manifest.fingerprint
    # --refresh re-downloads, reports the revision and takes it.
    _, report = ensure_cached(source, tmp_path, fast(replay), refresh=True)
    row = FIVE.values(500)
    assert report.revisions == [Revision(int(TS[500]), row, (*row[:4], old_volume + 1.0))]
    after = load_candles(source, cache_dir=tmp_path, settings=fast(replay))
    assert after.manifest.fingerprint != before.manifest.fingerprint
    assert after.table["volume"].to_numpy()[500] == old_volume + 1.0


def test_a_revision_seen_while_extending_stops_without_refresh(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    load_candles(five(100, 2000), cache_dir=tmp_path, settings=fast(replay))
    replay.revise("BTC/USDT", "5m", int(TS[105]), volume=float(FIVE.volume[105]) + 1.0)
    # Extending back to row 0: the page from row 0 spills into the cached rows 100-999.
    with pytest.raises(RevisedCandles, match=format_utc(int(TS[105]))) as caught:
        load_candles(five(0, 2000), cache_dir=tmp_path, settings=fast(replay))
    assert "--refresh" in caught.value.problems[0]
    cached = read_cache(KEY.path(tmp_path), KEY)
    assert cached is not None and cached.covered == ((int(TS[100]), int(TS[2000])),)  # unchanged


def test_the_fingerprint_is_the_same_from_cache_parquet_and_download(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    source = five(0, 5000)
    downloaded = load_candles(source, cache_dir=tmp_path / "a", settings=fast(replay))
    from_cache = load_candles(source, cache_dir=tmp_path / "a", settings=fast(replay))
    regrouped = tmp_path / "regrouped.parquet"
    pq.write_table(pq.read_table(FIXTURE_5M), regrouped, row_group_size=333, compression="gzip")
    from_files = [load_candles(ParquetSource(str(path), "5m")) for path in (FIXTURE_5M, regrouped)]
    fresh = load_candles(source, cache_dir=tmp_path / "b", settings=fast(replay))
    prints = {d.manifest.fingerprint for d in (downloaded, from_cache, *from_files, fresh)}
    assert len(prints) == 1
    assert isinstance(downloaded.table, pa.Table) and downloaded.table.column(0).num_chunks == 1
    assert (downloaded.manifest.exchange, downloaded.manifest.pair) == ("binanceus", "BTC/USDT")


@pytest.mark.reliability("fault-9")
def test_with_a_checkpoint_after_every_page_a_failure_resumes_after_the_last_page(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    replay.faults.fail_after_requests = 5  # pages of 500
    settings = fast(replay, checkpoint_s=0, page_limit=500)
    with pytest.raises(ExchangeUnavailable):
        ensure_cached(five(0, 5000), tmp_path, settings)
    cached = read_cache(KEY.path(tmp_path), KEY)
    assert cached is not None and cached.covered == ((int(TS[0]), int(TS[2500])),)
    replay.faults.fail_after_requests = None
    replay.clear_log()
    dataset = load_candles(five(0, 5000), cache_dir=tmp_path, settings=settings)
    assert_rows(dataset, FIVE)
    assert starts(replay)[0] == int(TS[2500])
