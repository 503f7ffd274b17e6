"""Known defects of the candle data (issue 13): bad rows not named, temporary files left
by a killed write, a refresh that stores unusable candles, downloads that restart from
zero. Each test failed before its fix."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_CANDLES
from exchange_replay import ReplayExchange, read_candles, replay_exchange

from cluster.candles.cache import CacheKey
from cluster.candles.dataset import load_candles
from cluster.candles.exchange import DownloadSettings
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
