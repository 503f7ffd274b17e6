"""What the kernel refuses, and how it says so: bad arrays, bad parameters, prices it
cannot trade, equity reaching zero (C19). Also the contracts around the kernel's
inputs: kept features, pickling, array layouts and the Trade objects it builds."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pyarrow.parquet as pq
import pytest

from trainable.backtest import Candles, JobConstants, Trade, backtest, backtest_metrics
from trainable.params import StrategyParams, default_params

FIVE_MINUTES = JobConstants(timeframe_minutes=5)


def arrays(n: int = 40) -> dict[str, np.ndarray]:
    """A valid, gently rising series of n bars (5m grid)."""
    close = 100.0 + 0.1 * np.arange(n)
    return {
        "timestamp": 1_600_000_000_000 + 300_000 * np.arange(n, dtype=np.int64),
        "open": close - 0.05,
        "high": close + 0.5,
        "low": close - 0.5,
        "close": close,
        "volume": np.full(n, 10.0),
    }


@pytest.fixture(scope="module")
def fixture_candles(fixture_candles_path) -> Candles:
    table = pq.read_table(fixture_candles_path)
    return Candles(*(table[name].to_numpy() for name in table.column_names))


@pytest.mark.parametrize(
    ("column", "bad", "message"),
    [
        ("close", np.ones(39), "unequal lengths: timestamp has 40, close has 39"),
        ("volume", np.full(40, 10, dtype=np.int64), "'volume' must be float64"),
        ("high", np.ones((40, 1)), "'high' must be a 1-D numpy array"),
        ("timestamp", np.arange(40, dtype=np.float64), "'timestamp' must be int64"),
    ],
)
def test_malformed_arrays_are_refused(column, bad, message):
    with pytest.raises(ValueError, match=message):
        Candles(**{**arrays(), column: bad})


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused_with_their_row(value):
    columns = arrays()
    columns["low"] = columns["low"].copy()
    columns["low"][7] = value
    with pytest.raises(ValueError, match="'low' has a non-finite value at row 7"):
        Candles(**columns)


def test_timestamps_must_increase():
    columns = arrays()
    columns["timestamp"] = columns["timestamp"].copy()
    columns["timestamp"][12] = columns["timestamp"][11]
    with pytest.raises(ValueError, match="strictly increasing: row 12"):
        Candles(**columns)


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("open", 0.0, "prices must be > 0"),
        ("high", 0.0, "prices must be > 0"),
        ("low", 0.0, "prices must be > 0"),
        ("close", 0.0, "prices must be > 0"),
        ("low", -1.0, "prices must be > 0"),
        ("volume", -0.5, "volume must be >= 0"),
    ],
)
def test_prices_the_kernel_cannot_trade_are_refused(column, value, rule):
    columns = arrays()
    columns[column] = columns[column].copy()
    columns[column][21] = value
    with pytest.raises(ValueError, match=rf"'{column}' has {value!r} at row 21: {rule}"):
        backtest(Candles(**columns), default_params(), FIVE_MINUTES)


def test_a_volume_of_exactly_zero_is_valid():
    # Volumes must be >= 0 (a bar without trades has volume 0); prices must be > 0.
    columns = arrays()
    columns["volume"] = columns["volume"].copy()
    columns["volume"][21] = 0.0
    backtest(Candles(**columns), default_params(), FIVE_MINUTES)  # no ValueError


def test_empty_candles_are_refused():
    empty = Candles(**{name: array[:0] for name, array in arrays().items()})
    with pytest.raises(ValueError, match="candles are empty"):
        backtest(empty, default_params(), FIVE_MINUTES)


def test_arguments_of_the_wrong_type_are_a_type_error():
    candles = Candles(**arrays())
    with pytest.raises(TypeError, match="params must be a StrategyParams, got dict"):
        backtest(candles, default_params().as_dict(), FIVE_MINUTES)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="constants must be a JobConstants"):
        backtest(candles, default_params(), {"timeframe_minutes": 5})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pierce_dept": 0.002}, "unknown parameter 'pierce_dept' .*did you mean 'pierce_depth'"),
        ({"reversal_candles": 2.0}, "reversal_candles must be an int, got float 2.0"),
        ({"risk_reward_ratio": float("nan")}, "risk_reward_ratio must be finite"),
        ({"pierce_depth": 0.0}, "pierce_depth must be > 0"),
        ({"min_level_touches": 0}, "min_level_touches must be >= 1"),
        ({"atr_multiplier_sl": "2"}, "atr_multiplier_sl must be a number"),
    ],
)
def test_bad_parameters_name_the_parameter(change, message):
    with pytest.raises(ValueError, match=message):
        StrategyParams.from_mapping({**default_params().as_dict(), **change})


def test_equity_reaching_zero_is_a_value_error_naming_the_bar():
    # One short, hand-built. Highs are 100.5 except a swing high of 101 at bar 10: the
    # only pivot, so the only key level (min_level_touches = 1). Bar 25 pierces it
    # (high 101.5 <= 101 * 1.01, close[24] = 100 < 101), bar 26 closes back below, so
    # the short enters at open[27] = 100 (fill 100, no slippage). Its stop is 1000 ATRs
    # away and its target below zero, so it stays open while closes rise 10 a bar from
    # bar 27. Marked equity (C15) = 1 * ((1 - 0.001) - (close / 100 - 1)): 0.099 at
    # bar 35 (close 190), then 0.999 - 1.0 < 0 at bar 36 (close 200).
    n = 45
    close = np.full(n, 100.0)
    close[27:] = 100.0 + 10.0 * np.arange(1, n - 26)
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) + 0.5
    low = np.minimum(open_, close) - 0.5
    high[10], high[25] = 101.0, 101.5
    candles = Candles(
        1_600_000_000_000 + 300_000 * np.arange(n, dtype=np.int64),
        open_, high, low, close, np.full(n, 10.0),
    )  # fmt: skip
    params = StrategyParams(
        key_level_lookback=50,
        min_level_touches=1,
        min_distance_from_level=0.0,
        pierce_depth=0.01,
        reversal_candles=1,
        volume_spike_threshold=0.0,
        atr_multiplier_sl=1000.0,
        risk_reward_ratio=1.0,
        max_holding_periods=100,
    )
    with pytest.raises(ValueError, match=r"equity reached .* \(<= 0\) at bar 36 "):
        backtest(candles, params, FIVE_MINUTES)
    # The same series ending at bar 35 keeps equity positive: the trade ends there.
    result = backtest(candles.head(36), params, FIVE_MINUTES)
    summary = [
        (t.side, t.pierce_bar, t.entry_bar, t.exit_bar, t.exit_reason) for t in result.trades
    ]
    assert summary == [(-1, 25, 27, 35, "end")]


def test_kept_features_do_not_travel_and_do_not_change_results(fixture_candles):
    params = default_params()
    first = backtest(fixture_candles, params, FIVE_MINUTES)
    state = pickle.dumps(fixture_candles)
    assert b"_kernel_features" not in state
    again = backtest(pickle.loads(state), params, FIVE_MINUTES)
    assert again == first
    assert backtest_metrics(fixture_candles, params, FIVE_MINUTES) == first.metrics


def test_strided_and_read_only_arrays_give_the_same_result(fixture_candles):
    params = default_params()
    expected = backtest(fixture_candles, params, FIVE_MINUTES)
    doubled = {
        name: np.repeat(getattr(fixture_candles, name), 2)[::2]  # a strided view
        for name in ("timestamp", "open", "high", "low", "close", "volume")
    }
    for array in doubled.values():
        array.flags.writeable = False
    assert backtest(Candles(**doubled), params, FIVE_MINUTES) == expected


def test_trades_behave_like_constructed_ones(fixture_candles):
    trades = backtest(fixture_candles, default_params(), FIVE_MINUTES).trades
    assert trades
    for trade in trades[:5]:
        built = Trade(**dataclasses.asdict(trade))
        assert built == trade and hash(built) == hash(trade) and repr(built) == repr(trade)
        assert pickle.loads(pickle.dumps(trade)) == trade
        assert type(trade.side) is int and type(trade.ret) is float
        with pytest.raises(dataclasses.FrozenInstanceError):
            trade.side = 0  # type: ignore[misc]
