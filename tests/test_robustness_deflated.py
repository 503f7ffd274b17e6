"""The Probabilistic and the Deflated Sharpe Ratio against independent sources: the
published numerical example, and simulated ensembles whose truth is known.

Simulations draw returns with zero mean (or a known mean) and known skewness and
kurtosis, many times over, and count how often the statistic passes at 95%. With M
independent repetitions, a rate p is estimated with standard deviation
sqrt(p (1 - p) / M): 0.34% for p = 5% and M = 4,000. Tolerances are three of those.

What to expect, and why the DSR is not exactly 5%. The PSR of *one* strategy chosen
before looking (an unskilled one: true Sharpe 0) is a calibrated test: it passes 5%
of the time. The DSR of the *best* of N unskilled trials compares its Sharpe ratio
with SR0, the expected maximum, in units of one Sharpe estimate's standard error; the
maximum of N estimates varies less than one estimate does (the spread of the largest of
N normal draws shrinks as N grows), so the DSR passes unskilled bests *less* often than
5%: it is conservative (about 2% for N = 2, well under 1% from N = 5 on). The tests
check that bound, the formula for SR0 against simulated maxima, and that a real edge
passes nearly always.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster.robustness.deflated import (
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    sample_variance,
)
from cluster.robustness.returns import bar_returns, left_sum, moments

Z95_TOLERANCE = 3 * math.sqrt(0.05 * 0.95 / 4000)  # three standard deviations at M = 4,000


def test_the_published_example():
    """Bailey and Lopez de Prado (2014), section 5: 100 trials whose annualized Sharpe
    ratios have variance 1/2, five years of daily returns (T = 1250, 250 a year), the
    best annualized Sharpe 2.5, skewness -3, kurtosis 10: SR0 = 0.1132 a day, DSR =
    0.9004. The digits below are the paper's, rounded as it prints them."""
    result = deflated_sharpe(
        trials=100,
        sharpe_variance=0.5 / 250,
        sharpe=2.5 / math.sqrt(250),
        n_returns=1250,
        skewness=-3.0,
        kurtosis=10.0,
    )
    assert round(result.expected_max, 4) == 0.1132
    assert round(result.dsr, 4) == 0.9004
    assert not result.passes  # 0.90 < 0.95: not significant at 95%


def test_a_hand_computed_psr():
    """SR 0.1 per bar over 101 returns, normal moments, against 0: z = 0.1 * sqrt(100) /
    sqrt(1 + 0.5 * 0.01) = 1 / sqrt(1.005) = 0.997509..., and Z(z) = Z(1) - 0.002491 *
    phi(1) (to first order) = 0.841345 - 0.002491 * 0.241971 = 0.840742."""
    value = probabilistic_sharpe(0.1, 0.0, 101, 0.0, 3.0)
    assert value == pytest.approx(0.840742, abs=2e-6)
    assert probabilistic_sharpe(0.1, 0.0, 1, 0.0, 3.0) is None  # too few returns
    assert probabilistic_sharpe(2.0, 0.0, 100, 5.0, 3.0) is None  # 1 - 10 + 2 < 0


def test_one_trial_means_no_selection():
    assert expected_max_sharpe(1, 0.3) == 0.0
    result = deflated_sharpe(trials=1, sharpe_variance=0.0, sharpe=0.1, n_returns=101,
                             skewness=0.0, kurtosis=3.0)  # fmt: skip
    assert result.dsr == result.psr


@pytest.mark.parametrize("trials", [10, 100, 1000])
def test_the_expected_maximum_against_simulated_maxima(trials):
    """SR0 for variance 1 is the expected maximum of `trials` standard normal draws;
    the paper calls its formula an approximation for large N: about 3% high at N = 10, within 2%
    from N = 100."""
    draws = np.random.default_rng(trials).standard_normal((2000, trials))
    simulated = float(draws.max(axis=1).mean())
    assert expected_max_sharpe(trials, 1.0) == pytest.approx(
        simulated, rel=0.04 if trials < 100 else 0.02
    )


def _sharpes(returns: np.ndarray) -> np.ndarray:
    return returns.mean(axis=1) / returns.std(axis=1, ddof=1)


def test_psr_of_one_unskilled_strategy_passes_five_percent_of_the_time():
    """Skewed returns (exponential draws minus their mean: skewness 2, kurtosis 9)."""
    rng = np.random.default_rng(11)
    returns = rng.exponential(1.0, (4000, 400)) - 1.0
    passed = 0
    for series in returns:
        m = moments(series)
        passed += probabilistic_sharpe(m.sharpe, 0.0, m.n, m.skewness, m.kurtosis) > 0.95
    assert abs(passed / 4000 - 0.05) <= Z95_TOLERANCE


def test_psr_corrects_for_skewness_and_kurtosis():
    """Against its true Sharpe ratio (0.1 per bar), a strategy with negative skewness
    (-2) and fat tails (kurtosis 9) passes 5% of the time only with the correction:
    assuming normal returns understates the estimate's error and passes ~8%."""
    rng = np.random.default_rng(12)
    returns = 0.1 - (rng.exponential(1.0, (4000, 400)) - 1.0)
    corrected = assumed_normal = 0
    for series in returns:
        m = moments(series)
        corrected += probabilistic_sharpe(m.sharpe, 0.1, m.n, m.skewness, m.kurtosis) > 0.95
        assumed_normal += probabilistic_sharpe(m.sharpe, 0.1, m.n, 0.0, 3.0) > 0.95
    assert abs(corrected / 4000 - 0.05) <= Z95_TOLERANCE
    assert assumed_normal / 4000 > 0.05 + Z95_TOLERANCE


def _dsr_of_best(returns: np.ndarray):
    sharpes = _sharpes(returns)
    best = int(np.argmax(sharpes))
    m = moments(returns[best])
    return deflated_sharpe(
        trials=len(returns),
        sharpe_variance=sample_variance([float(s) for s in sharpes]),
        sharpe=m.sharpe,
        n_returns=m.n,
        skewness=m.skewness,
        kurtosis=m.kurtosis,
    )


@pytest.mark.parametrize(("trials", "skewed"), [(2, False), (5, True), (50, True)])
def test_dsr_of_the_best_unskilled_trial_passes_at_most_five_percent(trials, skewed):
    rng = np.random.default_rng(trials)
    passed = 0
    for _ in range(4000):
        if skewed:
            returns = rng.exponential(1.0, (trials, 300)) - 1.0
        else:
            returns = rng.standard_normal((trials, 300))
        passed += _dsr_of_best(returns).passes
    assert passed / 4000 <= 0.05 + Z95_TOLERANCE


def test_dsr_passes_a_real_edge_nearly_always():
    """One of 50 trials has a true Sharpe ratio of 0.25 per bar (about 4 standard
    errors above SR0 at T = 500); the others none."""
    rng = np.random.default_rng(13)
    passed = 0
    for _ in range(500):
        returns = rng.exponential(1.0, (50, 500)) - 1.0
        returns[17] += 0.25
        result = _dsr_of_best(returns)
        passed += result.passes
    assert passed / 500 >= 0.95


def test_moments_are_summed_left_to_right_and_match_the_kernels_sharpe(fixture_candles_path):
    """The best trial's per-bar returns are recomputed from its equity curve: their
    Sharpe ratio, annualized, is the kernel's recorded one, bit for bit."""
    import pyarrow.parquet as pq

    from trainable.backtest import backtest_equity, backtest_metrics
    from trainable.candle_table import candles_from_table
    from trainable.params import StrategyParams
    from trainable.types import JobConstants

    table = pq.read_table(fixture_candles_path).select(
        ["timestamp", "open", "high", "low", "close", "volume"]
    )
    candles = candles_from_table(table.combine_chunks())
    params = StrategyParams(
        key_level_lookback=100, min_level_touches=2, min_distance_from_level=0.002,
        pierce_depth=0.003, reversal_candles=1, volume_spike_threshold=1.0,
        atr_multiplier_sl=2.0, risk_reward_ratio=2.0, max_holding_periods=50,
    )  # fmt: skip
    constants = JobConstants(timeframe_minutes=5)
    m = moments(bar_returns(backtest_equity(candles, params, constants)))
    assert backtest_metrics(candles, params, constants)["n_trades"] > 5
    assert (
        m.sharpe * math.sqrt(constants.bars_per_year)
        == backtest_metrics(candles, params, constants)["sharpe"]
    )
    values = np.array([1e16, 1.0, -1e16, 1.0])
    assert left_sum(values) == ((1e16 + 1.0) - 1e16) + 1.0  # the order is the written one
