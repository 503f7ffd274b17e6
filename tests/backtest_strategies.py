"""Hypothesis strategies and helpers shared by the differential and no-lookahead tests.

Parameters are drawn mostly from the default search ranges (where a search spends its
time) and, for about one parameter in six, from the rest of the valid values (lookback
1, one touch, zero zone width, huge stops...). Candle series are random range-bound
walks (tests/random_candles.py) or windows of real Binance data.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.random_candles import random_candles
from trainable.backtest import CANDLE_COLUMNS, Candles, JobConstants
from trainable.declaration import PARAMETERS_BY_NAME
from trainable.params import StrategyParams

# Reproducible in CI: the examples are a fixed function of the code. Note that
# Hypothesis also draws (with p = 0.05) constants found in every local module imported
# so far, so running one file alone may give other examples than the whole suite; a
# failure prints a @reproduce_failure blob.
REPRODUCIBLE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Values outside the default search range but valid (STRATEGY.md's "valid values").
BEYOND_DEFAULT_RANGE = {
    "key_level_lookback": st.integers(1, 600),
    "min_level_touches": st.integers(1, 8),
    "min_distance_from_level": st.sampled_from([0.0, 0.0001]) | st.floats(0.0, 0.03),
    "pierce_depth": st.floats(1e-6, 0.05),
    "reversal_candles": st.integers(1, 10),
    "volume_spike_threshold": st.sampled_from([0.0, 0.5]) | st.floats(0.0, 6.0),
    "atr_multiplier_sl": st.floats(0.01, 8.0),
    "risk_reward_ratio": st.floats(0.05, 10.0),
    "max_holding_periods": st.integers(1, 500),
}


def _default_range(name: str) -> st.SearchStrategy[int | float]:
    decl = PARAMETERS_BY_NAME[name]
    lo, hi = decl.search
    if decl.kind == "int":
        return st.integers(int(lo), int(hi))
    return st.floats(lo, hi)


@st.composite
def strategy_params(draw: st.DrawFn) -> StrategyParams:
    values = {}
    for name, beyond in BEYOND_DEFAULT_RANGE.items():
        outside = draw(st.integers(0, 5)) == 0
        values[name] = draw(beyond if outside else _default_range(name))
    return StrategyParams.from_mapping(values)


@st.composite
def job_constants(draw: st.DrawFn, timeframe_minutes: int | None = None) -> JobConstants:
    timeframe = timeframe_minutes or draw(st.sampled_from([1, 5, 15, 60, 240, 1440]))
    return JobConstants(
        timeframe_minutes=timeframe,
        fee=draw(st.sampled_from([0.001, 0.0, 0.00075]) | st.floats(0.0, 0.01)),
        slippage=draw(st.sampled_from([0.0, 0.0005]) | st.floats(0.0, 0.005)),
        min_trades=draw(st.integers(0, 10)),
    )


@st.composite
def random_series(draw: st.DrawFn, max_bars: int = 2000) -> Candles:
    """Mostly a few hundred to `max_bars` bars; sometimes tiny (1-40 bars: before C6's
    bar 20, before ATR exists, shorter than the pivot wings)."""
    tiny = draw(st.integers(0, 19)) == 0
    n = draw(st.integers(1, 40) if tiny else st.integers(300, max_bars))
    return random_candles(
        draw(st.integers(0, 2**32 - 1)),
        n,
        tick=draw(st.sampled_from([0.01, 0.02, 0.05])),
        base_volatility=draw(st.sampled_from([0.001, 0.002, 0.004])),
        reversion=draw(st.floats(0.01, 0.2)),
        spike_probability=draw(st.floats(0.0, 0.3)),
        band=draw(st.floats(1.0, 4.0)),
        stickiness=draw(st.floats(0.3, 0.9)),
    )


@functools.cache
def load_candles(path: Path) -> Candles:
    """A candle file of tests/data or ../shared/data (the shared schema)."""
    table = pq.read_table(path, columns=list(CANDLE_COLUMNS))
    return Candles(*(table.column(name).to_numpy() for name in CANDLE_COLUMNS))


def window(candles: Candles, start: int, length: int) -> Candles:
    """Bars start .. start + length - 1 (views)."""
    stop = start + length
    return Candles(*(getattr(candles, name)[start:stop] for name in CANDLE_COLUMNS))


@st.composite
def real_window(
    draw: st.DrawFn, candles: Candles, min_bars: int = 300, max_bars: int = 2000
) -> Candles:
    """A window of `min_bars` .. `max_bars` consecutive bars of real data."""
    length = draw(st.integers(min(min_bars, len(candles)), min(max_bars, len(candles))))
    start = draw(st.integers(0, len(candles) - length))
    return window(candles, start, length)


def count_exercised(counts: Counter[str], result: object) -> None:
    """Add what a reference result exercised to `counts` (see assert_exercised)."""
    trades = result.trades  # type: ignore[attr-defined]
    counts["examples"] += 1
    counts["examples_with_trades"] += bool(trades)
    for trade in trades:
        counts[f"exit_{trade.exit_reason}"] += 1
        counts["side_long" if trade.side == 1 else "side_short"] += 1
    for name, value in result.diagnostics.items():  # type: ignore[attr-defined]
        counts[name] += value


REQUIRED_COVERAGE = (
    "exit_stop",
    "exit_target",
    "exit_time",
    "exit_end",
    "side_long",
    "side_short",
    "setups_blocked_c8",
    "multi_level_bars_c4",
    "multi_level_trades_c4",
)


# What every Hypothesis run must still show, however its examples shift: trades on both
# sides ending at a stop and at a target. The full REQUIRED_COVERAGE is proven by the
# seeded sweep in tests/test_backtest_differential.py.
SANITY_COVERAGE = ("exit_stop", "exit_target", "side_long", "side_short")


def assert_exercised(
    counts: Counter[str],
    min_trading_share: float = 0.5,
    required: tuple[str, ...] = REQUIRED_COVERAGE,
) -> None:
    """Agreement on runs with no trades proves nothing: most examples must trade, and
    across the run every exit reason, both sides, a C8-blocked setup and a C4 bar (one
    that led to a trade, too) must occur."""
    summary = dict(sorted(counts.items()))
    print(f"exercised: {summary}")  # shown with -s or on failure
    assert counts["examples"] > 0, summary
    share = counts["examples_with_trades"] / counts["examples"]
    assert share >= min_trading_share, f"only {share:.0%} of examples traded: {summary}"
    missing = [name for name in required if counts[name] == 0]
    assert not missing, f"never exercised: {missing}; counts: {summary}"
