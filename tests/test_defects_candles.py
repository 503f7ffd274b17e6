"""Known defects of the candle data (issue 13): bad rows not named, temporary files left
by a killed write, a refresh that stores unusable candles, downloads that restart from
zero. Each test failed before its fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_CANDLES, REPO_ROOT
from exchange_replay import ReplayExchange, read_candles, replay_exchange

from cluster.candles.cache import CacheKey, read_cache
from cluster.candles.dataset import load_candles
from cluster.candles.exchange import DownloadSettings, ExchangeUnavailable
from cluster.candles.incremental import ensure_cached
from cluster.candles.sources import CcxtSource, ParquetSource
from cluster.candles.times import format_utc
from cluster.cli import main
from cluster.errors import InvalidInput

FIVE = read_candles(FIXTURE_CANDLES)
TS = FIVE.timestamp
STEP = 300_000
KEY = CacheKey("binanceus", "BTC/USDT", "5m")


def five(first: int, stop: int) -> CcxtSource:
    end = int(TS[stop]) if stop < len(TS) else int(TS[-1]) + STEP
    return CcxtSource("binanceus", "BTC/USDT", "5m", int(TS[first]), end)


@pytest.fixture
def replay() -> Iterator[ReplayExchange]:
    with replay_exchange({"BTC/USDT": {"5m": FIVE}}) as server:
        yield server


def quick(server: ReplayExchange, **overrides: object) -> DownloadSettings:
    """The defaults, except for the server and retries that give up at once."""
    options: dict[str, object] = {
        "api_url": server.url,
        "timeout_s": 1.0,
        "max_retries": 1,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.01,
        "progress": False,
    }
    return DownloadSettings(**{**options, **overrides})  # type: ignore[arg-type]


# --- defect 8: a null or NaN price names its row ------------------------------------------


@pytest.mark.reliability("defect-8")
@pytest.mark.parametrize("writer", ["pandas-nan", "arrow-null", "arrow-nan"])
def test_a_missing_price_names_its_row_time_and_column(writer, tmp_path, capsys):
    path = tmp_path / "candles.parquet"
    frame = pq.read_table(FIXTURE_CANDLES).to_pandas()
    if writer == "pandas-nan":  # pandas stores NaN as a null
        frame.loc[7, "close"] = np.nan
        frame.loc[9, "open"] = np.nan
        frame.to_parquet(path)
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        close = table.column("close").to_pylist()
        close[7] = None if writer == "arrow-null" else float("nan")
        table = table.set_column(table.column_names.index("close"), "close", pa.array(close))
        pq.write_table(table, path)
    with pytest.raises(InvalidInput) as caught:
        load_candles(ParquetSource(str(path), "5m"))
    time = format_utc(int(TS[7]))
    word = "null" if writer != "arrow-nan" else "nan"
    assert any(
        p.startswith(f"row 7 ({time}): close") and word in p for p in caught.value.problems
    ), caught.value.problems
    if writer == "pandas-nan":
        assert any(p.startswith(f"row 9 ({format_utc(int(TS[9]))}): open") for p in
                   caught.value.problems)  # fmt: skip
    assert main(["data", "show", "--parquet", str(path), "--timeframe", "5m"]) == 2
    assert f"row 7 ({time}): close" in capsys.readouterr().err


# --- defect 4: temporary files of a killed cache write ------------------------------------


def fetch_command(server: ReplayExchange, cache: Path, first: int, stop: int) -> list[str]:
    source = five(first, stop)
    return [
        sys.executable, "-m", "cluster", "data", "fetch", "--exchange", "binanceus",
        "--pair", "BTC/USDT", "--timeframe", "5m", "--start", format_utc(source.start),
        "--end", format_utc(source.end), "--api-url", server.url, "--cache-dir", str(cache),
        "--retries", "1", "--timeout", "2", "--no-progress",
    ]  # fmt: skip


def run_fetch(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    return subprocess.run(
        argv, cwd="/tmp", env=environment, capture_output=True, text=True, timeout=300
    )


@pytest.mark.reliability("defect-4")
def test_temporary_files_of_a_killed_cache_write_are_removed_by_the_next_fetch(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    killed = run_fetch(
        fetch_command(replay, tmp_path, 0, 600), REPROTUNE_TEST_KILL_IN_CACHE_WRITE="1"
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    path = KEY.path(tmp_path)
    assert list(path.parent.glob("*.tmp")), "the fault left no temporary file"
    assert not path.exists()
    done = run_fetch(fetch_command(replay, tmp_path, 0, 600))
    assert done.returncode == 0, done.stderr
    assert list(path.parent.glob("*.tmp")) == []
    cached = read_cache(path, KEY)
    assert cached is not None and cached.covered == ((int(TS[0]), int(TS[600])),)


# --- defect 5: a refresh whose candles break the cleaning rules ---------------------------


@pytest.mark.reliability("defect-5")
def test_a_refresh_that_fails_cleaning_leaves_the_cache_as_it_was(
    replay: ReplayExchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = five(0, 2500)
    ensure_cached(source, tmp_path, quick(replay, page_limit=500))
    path = KEY.path(tmp_path)
    before = path.read_bytes()
    # The exchange revises two candles: one so that high < close (breaks a rule), one
    # valid (the refresh must not take it either: all or nothing).
    replay.revise("BTC/USDT", "5m", int(TS[2200]), high=float(FIVE.close[2200]) - 1.0)
    replay.revise("BTC/USDT", "5m", int(TS[100]), volume=float(FIVE.volume[100]) + 1.0)
    argv = [a for a in fetch_command(replay, tmp_path, 0, 2500)[3:] if a != "--no-progress"]
    replay.clear_log()
    assert main([*argv, "--refresh"]) == 2
    err = capsys.readouterr().err
    assert f"({format_utc(int(TS[2200]))}): high" in err and "left as it was" in err
    assert len(replay.klines_requests()) == 3  # it really downloaded the range again
    assert path.read_bytes() == before
    assert list(path.parent.glob("*.tmp")) == []


# --- defect 9: an interrupted download resumes where it stopped --------------------------


def starts(server: ReplayExchange) -> list[int]:
    return [int(params["startTime"]) for params in server.klines_requests()]


@pytest.mark.reliability("defect-9")
def test_an_interrupted_download_of_any_size_resumes_after_its_last_finished_page(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    # Six pages of 500; the exchange fails for good from the fifth request on. Every
    # other setting is the default (the cache used to be written every 50,000 candles).
    replay.faults.fail_after_requests = 4
    with pytest.raises(ExchangeUnavailable):
        ensure_cached(five(0, 3000), tmp_path, quick(replay, page_limit=500))
    cached = read_cache(KEY.path(tmp_path), KEY)
    assert cached is not None and cached.covered == ((int(TS[0]), int(TS[2000])),)
    replay.faults.fail_after_requests = None
    replay.clear_log()
    content, _ = ensure_cached(five(0, 3000), tmp_path, quick(replay, page_limit=500))
    assert starts(replay) == [int(TS[2000]), int(TS[2499]) + 1]
    assert content.covered == ((int(TS[0]), int(TS[3000])),)
    assert np.array_equal(content.columns.close, FIVE.close[:3000])
