"""Fault scenario 9: the exchange misbehaving during a download, through the real ccxt
client and the local replay server (tests/exchange_replay.py). Rate limits, 5xx,
timeouts, short pages and a conflicting duplicate are in tests/test_candles_exchange.py
(marked with this scenario); here: an answer that stalls mid-response, and a fetch
SIGKILLed while one stalls. After each, the cache is a complete, checked file or none:
never a partial or temporary one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURE_CANDLES, REPO_ROOT
from exchange_replay import ReplayExchange, read_candles, replay_exchange

from cluster.candles.cache import CacheKey, read_cache
from cluster.candles.exchange import DownloadSettings
from cluster.candles.incremental import ensure_cached
from cluster.candles.sources import CcxtSource

FIVE = read_candles(FIXTURE_CANDLES)
TS = FIVE.timestamp
KEY = CacheKey("binanceus", "BTC/USDT", "5m")
SOURCE = CcxtSource("binanceus", "BTC/USDT", "5m", int(TS[0]), int(TS[3000]))


@pytest.fixture
def replay() -> Iterator[ReplayExchange]:
    with replay_exchange({"BTC/USDT": {"5m": FIVE}}) as server:
        yield server


def settings(server: ReplayExchange, **overrides: object) -> DownloadSettings:
    options: dict[str, object] = {
        "api_url": server.url, "timeout_s": 1.0, "max_retries": 2, "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05, "progress": False, "page_limit": 500, "checkpoint_s": 0,
    }  # fmt: skip
    return DownloadSettings(**{**options, **overrides})  # type: ignore[arg-type]


def assert_cache_is_whole(root: Path, covered_until: int) -> None:
    """One checked file covering [TS[0], covered_until), with the fixture's rows."""
    path = KEY.path(root)
    assert sorted(p.name for p in path.parent.iterdir()) == ["5m.parquet", "5m.parquet.lock"]
    cached = read_cache(path, KEY)  # every check: decodes, fingerprint, rows inside covered
    assert cached is not None and cached.covered == ((int(TS[0]), covered_until),)
    rows = int(np.searchsorted(TS, covered_until))
    assert np.array_equal(cached.columns.timestamp, TS[:rows])
    assert np.array_equal(cached.columns.close, FIVE.close[:rows])


def starts(server: ReplayExchange) -> list[int]:
    return [int(params["startTime"]) for params in server.klines_requests()]


@pytest.mark.reliability("fault-9")
def test_an_answer_stalling_mid_response_times_out_and_is_retried(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    replay.faults.stall_after_requests, replay.faults.stalls = 2, 1  # the 3rd page stalls
    _, report = ensure_cached(SOURCE, tmp_path, settings(replay, timeout_s=0.5))
    assert replay.stalling.is_set()  # the fault happened
    assert starts(replay)[2] == starts(replay)[3] == int(TS[999]) + 1  # the page, again
    assert report.requests == len(replay.klines_requests()) + 2  # + markets, clock
    assert_cache_is_whole(tmp_path, int(TS[3000]))


FETCH = """
import sys
from pathlib import Path
from cluster.candles.exchange import DownloadSettings
from cluster.candles.incremental import ensure_cached
from cluster.candles.sources import CcxtSource
url, root, start, end = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
settings = DownloadSettings(api_url=url, timeout_s=120, page_limit=500, checkpoint_s=0,
                            progress=False)
ensure_cached(CcxtSource("binanceus", "BTC/USDT", "5m", start, end), root, settings)
"""


@pytest.mark.reliability("fault-9")
def test_a_fetch_sigkilled_while_an_answer_stalls_resumes_from_its_last_page(
    replay: ReplayExchange, tmp_path: Path
) -> None:
    replay.faults.stall_after_requests, replay.faults.stalls = 4, 1  # the 5th page stalls
    fetch = subprocess.Popen(
        [sys.executable, "-c", FETCH, replay.url, str(tmp_path), str(SOURCE.start),
         str(SOURCE.end)],
        cwd="/tmp", env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert replay.stalling.wait(300), "the answer never stalled"  # a bound, not a timing
        fetch.send_signal(signal.SIGKILL)
        _, err = fetch.communicate(timeout=60)
    finally:
        if fetch.poll() is None:
            fetch.kill()
            fetch.communicate()
    assert fetch.returncode == -signal.SIGKILL, err
    replay.release_stalls()
    assert_cache_is_whole(tmp_path, int(TS[2000]))  # four pages, each written when it came
    replay.clear_log()
    ensure_cached(SOURCE, tmp_path, settings(replay))
    assert starts(replay) == [int(TS[2000]), int(TS[2499]) + 1]  # only what was missing
    assert_cache_is_whole(tmp_path, int(TS[3000]))
