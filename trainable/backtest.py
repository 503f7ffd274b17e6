"""The backtest's inputs and outputs, and its entry point `backtest(...)`.

Conventions are STRATEGY.md's (rules 1-6, C1-C19). The types that the fast kernel,
the slow reference in tests/ and the Tune adapter share live in `trainable.types`. The
work is done by numba-compiled code: `trainable.signals` (pivots, key levels, setups),
`trainable.engine` (entries, exits, costs, equity) and `trainable.metrics` (a pure
function of the trades and the equity curve); `trainable.jit` explains how compiled
code is cached.

Where STRATEGY.md is silent, this kernel settles it as follows (the metrics' own
choices are listed in `trainable.metrics`):
- Prices must be > 0 and volumes >= 0 (relative zones, fills and returns assume it):
  anything else is a ValueError naming the row and column; so are empty candles.
- Equity is checked at every marked close (C15), in a trade as well as at its exit:
  the first bar whose marked equity is <= 0 is the one the ValueError names (C19).
- C4 needs no choice between "qualifying" and "confirming" levels: a long confirms at a
  support S iff every confirmation close is > S, so the lowest qualifying support
  confirms whenever any qualifying support does (mirrored for shorts).
- The pierce bar needs p >= 20 (C6) and p >= 1 (close[p-1]); the ATR of C10 exists from
  bar 14, so every entry (e >= 22) has one.
- Formulas are evaluated as written: `volume[p] >= threshold * (sum / 20)` (the mean
  first), `low[p] >= S * (1 - pierce_depth)`. Valid pierce depths have no upper limit:
  from 1 on, that bound never binds (S * (1 - depth) <= 0 < low).
"""

from __future__ import annotations

import time

import numpy as np

from trainable.params import StrategyParams
from trainable.types import (
    CANDLE_COLUMNS,
    EXIT_REASONS,
    BacktestResult,
    Candles,
    ExitReason,
    JobConstants,
    Trade,
)

__all__ = [
    "CANDLE_COLUMNS",
    "BacktestResult",
    "Candles",
    "ExitReason",
    "JobConstants",
    "Trade",
    "backtest",
    "backtest_equity",
    "backtest_metrics",
    "warm_up",
]


def backtest(candles: Candles, params: StrategyParams, constants: JobConstants) -> BacktestResult:
    """Run the strategy of STRATEGY.md over `candles`: its trades and metrics.

    Deterministic: the same inputs give bit-identical results in any process, on any
    x86-64 CPU (no fastmath, no parallel code, left-to-right sums). Raises ValueError
    when the input is rejected (empty candles, a price <= 0 or a volume < 0, equity
    reaching 0, C19) and TypeError when an argument is not of the declared type. The
    first call on a `Candles` also computes its parameter-free features
    (`trainable.features`), which later calls reuse.
    """
    ints, floats, values, _ = _run(candles, params, constants)
    return BacktestResult(trades=_trades(ints, floats), metrics=values)


def backtest_metrics(
    candles: Candles, params: StrategyParams, constants: JobConstants
) -> dict[str, int | float | None]:
    """`backtest(...).metrics` without building the Trade objects (what a trial needs).

    The same computation and the same bits as `backtest`; it skips only the Python
    objects, ~1-2 us per trade (~10,000 trades in a 1M-candle backtest).
    """
    return _run(candles, params, constants)[2]


def backtest_equity(
    candles: Candles, params: StrategyParams, constants: JobConstants
) -> np.ndarray:
    """The marked equity at every close (C15, `E_0 = 1.0`), one float64 per bar: the curve
    the metrics of `backtest` are computed from, with the same bits. Raises as `backtest`.
    """
    return _run(candles, params, constants)[3]


def warm_up() -> float:
    """Compile, or load from the on-disk cache, everything a backtest runs; returns the
    seconds it took.

    A process pays this once, at its first backtest (bench/RESULTS.md: ~0.5 s from the
    cache, several seconds cold). A driver can run it once per node before its trials,
    so that no trial pays a cold compile and concurrent workers do not all compile.
    """
    started = time.perf_counter()
    n = 64
    wave = 100.0 + np.sin(np.arange(n) * 0.7) * 2.0
    candles = Candles(
        timestamp=np.arange(n, dtype=np.int64) * 60_000,
        open=wave,
        high=wave + 1.0,
        low=wave - 1.0,
        close=wave + 0.5,
        volume=np.ones(n),
    )
    params = StrategyParams(
        key_level_lookback=30, min_level_touches=1, min_distance_from_level=0.01,
        pierce_depth=0.05, reversal_candles=1, volume_spike_threshold=0.0,
        atr_multiplier_sl=1.0, risk_reward_ratio=1.0, max_holding_periods=5,
    )  # fmt: skip
    backtest(candles, params, JobConstants(timeframe_minutes=1))
    return time.perf_counter() - started


def _run(
    candles: Candles, params: StrategyParams, constants: JobConstants
) -> tuple[np.ndarray, np.ndarray, dict[str, int | float | None], np.ndarray]:
    for name, value, expected in (
        ("candles", candles, Candles),
        ("params", params, StrategyParams),
        ("constants", constants, JobConstants),
    ):
        if not isinstance(value, expected):
            raise TypeError(f"{name} must be a {expected.__name__}, got {type(value).__name__}")
    if len(candles) == 0:
        raise ValueError("candles are empty: a backtest needs at least one bar")
    from trainable import engine, metrics  # compiled code: imported on first use
    from trainable.features import candle_features

    features = candle_features(candles)
    ints, floats = engine.find_trades(
        features.columns,
        features.volume_mean,
        features.pivot_bar,
        features.pivot_price,
        features.atr,
        (
            params.key_level_lookback,
            params.min_level_touches,
            params.min_distance_from_level,
            params.pierce_depth,
            params.reversal_candles,
            params.volume_spike_threshold,
        ),
        (params.atr_multiplier_sl, params.risk_reward_ratio, params.max_holding_periods),
        (constants.fee, constants.slippage),
    )
    close = features.columns[3]
    equity, bad_bar = engine.equity_curve(close, ints, floats, constants.fee)
    if bad_bar >= 0:
        raise ValueError(
            f"equity reached {float(equity[bad_bar])!r} (<= 0) at bar {bad_bar} "
            f"(timestamp {int(candles.timestamp[bad_bar])})"
        )
    values = metrics.compute_metrics(
        floats[:, engine.T_RET],
        ints[:, engine.T_EXIT] - ints[:, engine.T_ENTRY],
        equity,
        constants.bars_per_year,
        constants.min_trades,
    )
    return ints, floats, values, equity


def _trades(ints: np.ndarray, floats: np.ndarray) -> tuple[Trade, ...]:
    """Trade objects from the kernel's tables (see `trainable.engine.find_trades`).

    Not on a trial's path: trials call `backtest_metrics`, which skips these objects.
    """
    trades = []
    for int_row, float_row in zip(ints.tolist(), floats.tolist(), strict=True):
        side, pierce, entry, exit_bar, reason = int_row
        level, entry_price, stop, target, exit_price, entry_fill, exit_fill, ret = float_row
        trades.append(
            Trade(
                side=side,
                pierce_bar=pierce,
                entry_bar=entry,
                exit_bar=exit_bar,
                level=level,
                entry_price=entry_price,
                stop=stop,
                target=target,
                exit_price=exit_price,
                exit_reason=EXIT_REASONS[reason],
                entry_fill=entry_fill,
                exit_fill=exit_fill,
                ret=ret,
            )
        )
    return tuple(trades)
