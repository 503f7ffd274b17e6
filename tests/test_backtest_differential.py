"""Differential tests: the fast kernel and the slow reference agree to the last bit.

STRATEGY.md, "What must hold": for random parameters on random and real candles, the
same trades (every field; floats bit for bit) and the same metrics (bit for bit, except
the metrics listed in TOLERANT_METRICS, each with the reason its order of operations
must differ). Each test counts what it exercised and fails unless most examples trade
and every exit reason, both sides, a C8-blocked setup and a C4 multi-level bar occur.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.backtest_compare import assert_same_metrics, assert_same_trades
from tests.backtest_strategies import (
    REPRODUCIBLE,
    SANITY_COVERAGE,
    assert_exercised,
    count_exercised,
    job_constants,
    load_candles,
    random_series,
    real_window,
    strategy_params,
)
from tests.implementations import implementation
from tests.random_candles import random_candles
from tests.reference_backtest import ReferenceResult, reference_backtest
from trainable.backtest import JobConstants
from trainable.declaration import PARAMETERS
from trainable.params import StrategyParams

SHARED_FILES = {  # ../shared/data file -> timeframe minutes
    "binance_BTC-USDT_5m.parquet": 5,
    "binance_ETH-USDT_5m.parquet": 5,
    "binance_BTC-USDT_1h.parquet": 60,
}


def assert_kernel_matches_reference(kernel, candles, params, constants) -> ReferenceResult | None:
    """Run both; the same trades and metrics, or both reject with a ValueError naming
    the same bar (C19). Returns the reference's result (None when both rejected)."""
    try:
        reference = reference_backtest(candles, params, constants)
    except ValueError as error:
        with pytest.raises(ValueError) as kernel_error:
            kernel(candles, params, constants)
        bar = re.search(r"bar (\d+)", str(error))
        assert bar is not None and re.search(rf"\b{bar.group(1)}\b", str(kernel_error.value)), (
            f"reference: {error}; kernel: {kernel_error.value}"
        )
        return None
    result = kernel(candles, params, constants)
    assert_same_trades(result.trades, reference.trades)
    assert_same_metrics(result.metrics, reference.metrics)
    return reference


def test_kernel_matches_reference_on_a_seeded_sweep():
    """The coverage proof: 120 examples drawn i.i.d. by numpy from fixed seeds, so what
    they exercise is a function of the code alone. (Hypothesis' examples shift with the
    constants it harvests from whatever local modules are imported, so the tests below
    explore edge cases but only sanity-check their coverage.)"""
    kernel = implementation("kernel")
    counts: Counter[str] = Counter()
    for example in range(120):
        rng = np.random.default_rng([20261128, example])
        candles = random_candles(
            int(rng.integers(2**32)),
            int(rng.integers(300, 2001)),
            tick=float(rng.choice([0.01, 0.02, 0.05])),
            base_volatility=float(rng.choice([0.001, 0.002, 0.004])),
            reversion=float(rng.uniform(0.01, 0.2)),
            spike_probability=float(rng.uniform(0.0, 0.3)),
            band=float(rng.uniform(1.0, 4.0)),
            stickiness=float(rng.uniform(0.3, 0.9)),
        )
        params = _sweep_params(rng)
        constants = JobConstants(
            timeframe_minutes=int(rng.choice([1, 5, 15, 60, 240, 1440])),
            fee=float(rng.choice([0.0, 0.00075, 0.001, 0.002])),
            slippage=float(rng.choice([0.0, 0.0005])),
            min_trades=int(rng.integers(0, 11)),
        )
        reference = assert_kernel_matches_reference(kernel, candles, params, constants)
        if reference is not None:
            count_exercised(counts, reference)
    assert_exercised(counts, min_trading_share=0.6)


def _sweep_params(rng: np.random.Generator) -> StrategyParams:
    """Uniform over the default search ranges; one parameter in eight is pushed to the
    edge of its valid values (lookback 1, one touch, zero zone width, ...)."""
    values: dict[str, int | float] = {}
    for decl in PARAMETERS:
        lo, hi = decl.search
        if decl.kind == "int":
            values[decl.name] = int(rng.integers(int(lo), int(hi) + 1))
        else:
            values[decl.name] = float(rng.uniform(lo, hi))
        if rng.random() < 1 / 8:
            edge = decl.minimum if not decl.minimum_exclusive else decl.minimum + 1e-6
            values[decl.name] = int(edge) if decl.kind == "int" else float(edge)
    return StrategyParams.from_mapping(values)


def test_kernel_matches_reference_on_random_series():
    kernel = implementation("kernel")
    counts: Counter[str] = Counter()

    @settings(REPRODUCIBLE, max_examples=150)
    @given(candles=random_series(), params=strategy_params(), constants=job_constants())
    def check(candles, params, constants):
        reference = assert_kernel_matches_reference(kernel, candles, params, constants)
        if reference is not None:
            count_exercised(counts, reference)

    check()
    assert_exercised(counts, min_trading_share=0.3, required=SANITY_COVERAGE)


def test_kernel_matches_reference_on_the_real_fixture(fixture_candles_path):
    kernel = implementation("kernel")
    candles = load_candles(fixture_candles_path)
    counts: Counter[str] = Counter()

    @settings(REPRODUCIBLE, max_examples=40)
    @given(
        window=real_window(candles, min_bars=1000, max_bars=5000),
        params=strategy_params(),
        constants=job_constants(timeframe_minutes=5),
    )
    def check(window, params, constants):
        reference = assert_kernel_matches_reference(kernel, window, params, constants)
        if reference is not None:
            count_exercised(counts, reference)

    check()
    assert_exercised(counts, min_trading_share=0.3, required=SANITY_COVERAGE)


def test_kernel_matches_reference_on_shared_data(shared_data):
    kernel = implementation("kernel")
    files = {name: load_candles(shared_data / name) for name in SHARED_FILES}
    counts: Counter[str] = Counter()

    @st.composite
    def shared_window(draw):
        name = draw(st.sampled_from(sorted(files)))
        return draw(real_window(files[name], min_bars=1000, max_bars=3000)), SHARED_FILES[name]

    @settings(REPRODUCIBLE, max_examples=30)
    @given(data=st.data(), window_and_timeframe=shared_window(), params=strategy_params())
    def check(data, window_and_timeframe, params):
        window, timeframe = window_and_timeframe
        constants = data.draw(job_constants(timeframe_minutes=timeframe))
        reference = assert_kernel_matches_reference(kernel, window, params, constants)
        if reference is not None:
            count_exercised(counts, reference)

    check()
    assert_exercised(counts, min_trading_share=0.3, required=SANITY_COVERAGE)
