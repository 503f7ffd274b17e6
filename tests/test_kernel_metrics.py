"""`trainable.metrics.compute_metrics` against hand calculations (STRATEGY.md, Results,
C13, C16-C18). Expected values are worked out in the comments with exact fractions;
the code computes them in float64, hence the relative tolerances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainable.declaration import METRIC_NAMES, SCORE_PENALTY
from trainable.metrics import compute_metrics

DAILY = 365.0  # bars per year of a 1d timeframe: sqrt(365) annualizes
NO_TRADES = (np.empty(0), np.empty(0, np.int64))


def test_return_metrics_of_a_small_equity_curve():
    # E = 1, 1.1, 0.99, 1.089 -> r = +0.1, -0.1, +0.1 (0.99/1.1 = 0.9, 1.089/0.99 = 1.1).
    # mean = 0.1/3 = 1/30; deviations 1/15, -2/15, 1/15; sum of squares 6/225;
    # std (ddof=1) = sqrt(3/225) = 1/sqrt(75); Sharpe = sqrt(75)/30 * sqrt(365).
    # Sortino: downside = sqrt(0.01 / 3); (1/30) / sqrt(1/300) = sqrt(300)/30.
    # Max drawdown: peak 1.1, trough 0.99 -> 0.11/1.1 = 0.1.
    # CAGR = 1.089 ** (365 / 3) - 1; Calmar = CAGR / 0.1.
    equity = np.array([1.0, 1.1, 0.99, 1.089])
    metrics = compute_metrics(*NO_TRADES, equity, DAILY, min_trades=0)
    assert metrics["sharpe"] == pytest.approx(math.sqrt(75) / 30 * math.sqrt(365), rel=1e-12)
    assert metrics["sortino"] == pytest.approx(math.sqrt(300) / 30 * math.sqrt(365), rel=1e-12)
    assert metrics["max_drawdown"] == pytest.approx(0.1, rel=1e-12)
    assert metrics["total_return"] == pytest.approx(0.089, rel=1e-12)
    cagr = math.exp(365 / 3 * math.log(1.089)) - 1
    assert metrics["calmar"] == pytest.approx(cagr / 0.1, rel=1e-9)
    # n_trades = 0 >= min_trades = 0 and Sharpe is defined: the score is the Sharpe.
    assert metrics["score"] == metrics["sharpe"]


def test_exactly_one_return_defines_sortino_and_calmar_but_not_sharpe():
    # E = 1, 0.5: one return r = -0.5. Sharpe needs 2 returns: undefined. Sortino: mean
    # -0.5 / sqrt(0.25 / 1) = -1, times sqrt(365). Max drawdown 0.5; CAGR = 0.5 ** 365
    # - 1 = -1 + 2**-365, which is -1.0 in float64: Calmar = -1 / 0.5 = -2.
    metrics = compute_metrics(*NO_TRADES, np.array([1.0, 0.5]), DAILY, min_trades=0)
    assert metrics["sharpe"] is None
    assert metrics["sortino"] == pytest.approx(-math.sqrt(365), rel=1e-12)
    assert metrics["max_drawdown"] == 0.5
    assert metrics["calmar"] == -2.0
    assert metrics["total_return"] == -0.5
    assert metrics["score"] == SCORE_PENALTY


def test_exactly_two_returns_define_sharpe():
    # E = 1, 2, 1: r = +1, -0.5; mean 0.25, deviations +-0.75, std (ddof=1) =
    # sqrt(1.125) = 3 / sqrt(8); Sharpe = 0.25 * sqrt(8) / 3 * sqrt(365) = sqrt(2) / 6
    # * sqrt(365).
    metrics = compute_metrics(*NO_TRADES, np.array([1.0, 2.0, 1.0]), DAILY, min_trades=0)
    assert metrics["sharpe"] == pytest.approx(math.sqrt(2) / 6 * math.sqrt(365), rel=1e-12)
    assert metrics["score"] == metrics["sharpe"]


def test_trade_metrics_and_the_penalty_when_sharpe_is_undefined():
    # Five trades, returns +0.02, -0.01, 0, +0.03, -0.02, held 3, 1, 0, 4, 2 bars, over
    # 20 bars. Win rate: 2 of 5 (the 0 is no win). Profit factor: 0.05 / 0.03 = 5/3.
    # Exposure: (4 + 2 + 1 + 5 + 3) / 20 = 0.75. Mean bars held: 10 / 5 = 2.
    returns = np.array([0.02, -0.01, 0.0, 0.03, -0.02])
    held = np.array([3, 1, 0, 4, 2])
    flat = np.ones(20)  # every per-bar return is 0: std = 0, Sharpe undefined
    metrics = compute_metrics(returns, held, flat, DAILY, min_trades=5)
    assert metrics["n_trades"] == 5 and type(metrics["n_trades"]) is int
    assert metrics["win_rate"] == pytest.approx(0.4, rel=1e-15)
    assert metrics["profit_factor"] == pytest.approx(5 / 3, rel=1e-12)
    assert metrics["exposure"] == 0.75
    assert metrics["mean_bars_held"] == 2.0
    assert metrics["sharpe"] is None  # C18: std = 0
    assert metrics["sortino"] is None  # no negative return: 0 / 0
    assert metrics["calmar"] is None  # no drawdown
    assert metrics["max_drawdown"] == 0.0
    assert metrics["total_return"] == 0.0
    assert metrics["score"] == SCORE_PENALTY  # C17: Sharpe undefined


def test_profit_factor_without_losers_is_undefined_and_without_winners_zero():
    flat = np.ones(10)
    winners_only = compute_metrics(np.array([0.01, 0.0]), np.array([1, 1]), flat, DAILY, 0)
    assert winners_only["profit_factor"] is None
    losers_only = compute_metrics(np.array([-0.01, 0.0]), np.array([1, 1]), flat, DAILY, 0)
    assert losers_only["profit_factor"] == 0.0
    assert losers_only["win_rate"] == 0.0


def test_no_trades_leaves_trade_metrics_undefined():
    metrics = compute_metrics(*NO_TRADES, np.ones(50), DAILY, min_trades=0)
    assert metrics["n_trades"] == 0
    assert metrics["win_rate"] is None
    assert metrics["profit_factor"] is None
    assert metrics["mean_bars_held"] is None
    assert metrics["exposure"] == 0.0
    assert metrics["score"] == SCORE_PENALTY


def test_score_needs_min_trades():
    # Sharpe is defined (see the first test), but 1 trade < min_trades = 2.
    equity = np.array([1.0, 1.1, 0.99, 1.089])
    metrics = compute_metrics(np.array([0.089]), np.array([2]), equity, DAILY, min_trades=2)
    assert metrics["sharpe"] is not None
    assert metrics["score"] == SCORE_PENALTY


def test_calmar_overflow_is_undefined_not_an_error():
    # 5m bars: CAGR = 1.5 ** (105120 / 2) - 1 overflows a float (C18: Calmar is NULL).
    equity = np.array([1.0, 2.0, 1.5])
    metrics = compute_metrics(*NO_TRADES, equity, 105_120.0, min_trades=0)
    assert metrics["calmar"] is None
    assert metrics["max_drawdown"] == pytest.approx(0.25, rel=1e-15)
    assert metrics["sharpe"] is not None


def test_one_bar_has_no_returns():
    metrics = compute_metrics(*NO_TRADES, np.ones(1), DAILY, min_trades=0)
    assert metrics["sharpe"] is None
    assert metrics["sortino"] is None
    assert metrics["calmar"] is None
    assert metrics["total_return"] == 0.0
    assert metrics["score"] == SCORE_PENALTY


def test_keys_and_types_are_the_declared_ones():
    metrics = compute_metrics(np.array([0.01]), np.array([2]), np.ones(5), DAILY, 0)
    assert tuple(metrics) == METRIC_NAMES
    for name, value in metrics.items():
        expected = int if name == "n_trades" else float
        assert value is None or type(value) is expected, name
