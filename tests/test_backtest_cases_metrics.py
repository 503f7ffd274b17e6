"""Hand-computed micro cases for costs (C14), marked equity and metrics (C15-C19).

Same series builder and conventions as tests/test_backtest_cases.py (read its docstring
first). Expected metrics come from an equity curve written out by hand below; Sharpe
and the standard deviation are then taken with Python's `statistics` module, an
implementation independent of both backtests.
"""

from __future__ import annotations

import math
import statistics

import pytest

from tests.implementations import IMPLEMENTATION_NAMES, implementation
from tests.micro_candles import (
    HITS_104,
    NO_COSTS,
    PIERCE_HIGH,
    PIERCE_LOW,
    SWING_HIGH,
    SWING_LOW,
    params,
    resistance_at_101_5,
    series,
    support_at_98_5,
)
from trainable.backtest import JobConstants
from trainable.declaration import METRIC_NAMES, SCORE_PENALTY


@pytest.fixture(params=IMPLEMENTATION_NAMES)
def run_backtest(request):
    return implementation(request.param)


def approx(value):
    return pytest.approx(value, rel=1e-12, abs=1e-15)


def test_c14_fee_and_slippage_on_a_long(run_backtest):
    # The common long (tests/test_backtest_cases.py) reaching its target 104 on bar 30,
    # with fee 0.001 and slippage 0.001. Stop 98 and target 104 stay on raw prices (C11).
    # entry fill = 100 * 1.001 = 100.1; exit fill = 104 * 0.999 = 103.896;
    # g = 103.896 / 100.1 = 25974/25025; ret = (g - 1) - 0.001 * (1 + g)
    # = 949/25025 - 50999/25025000 = 898001/25025000 = 0.0358841558441558...
    candles = series(35, {**support_at_98_5(), 25: PIERCE_LOW, 30: HITS_104})
    costs = JobConstants(timeframe_minutes=5, fee=0.001, slippage=0.001, min_trades=1)
    (trade,) = run_backtest(candles, params(), costs).trades
    assert (trade.stop, trade.target, trade.exit_price) == (98.0, 104.0, 104.0)
    assert trade.entry_fill == approx(100.1)
    assert trade.exit_fill == approx(103.896)
    assert trade.ret == approx(898001 / 25025000)


def test_c14_fee_and_slippage_on_a_short(run_backtest):
    # The short of test_short_is_stopped_out (entry 100, stop 102 hit on bar 29) with fee
    # and slippage 0.001: entry fill = 100 * 0.999 = 99.9 (a short sells lower), exit
    # fill = 102 * 1.001 = 102.102 (buys back higher); g = 102.102 / 99.9;
    # ret = -(g - 1) - 0.001 * (1 + g) = -(2.202 + 0.202002) / 99.9 = -2.404002 / 99.9
    # = -0.0240640840840...
    bar_29 = (100.0, 102.5, 99.5, 101.0, 1.0)
    candles = series(35, {**resistance_at_101_5(), 25: PIERCE_HIGH, 29: bar_29})
    costs = JobConstants(timeframe_minutes=5, fee=0.001, slippage=0.001, min_trades=1)
    (trade,) = run_backtest(candles, params(), costs).trades
    assert (trade.side, trade.stop, trade.exit_price) == (-1, 102.0, 102.0)
    assert trade.entry_fill == approx(99.9)
    assert trade.exit_fill == approx(102.102)
    assert trade.ret == approx(-2.404002 / 99.9)


# Two trades on a daily timeframe (bars_per_year = 365), fee 0.001, no slippage.
# Levels: support 98.5 (swing lows 6, 12), resistance 101.5 (swing highs 8, 14).
# A, long: pierce 25, e = 27 at 100, stop 98, target 104. Marked equity (C15), N = 1:
#   bar 27 close 100:   (1 - 0.001) + (100/100 - 1)   = 0.999
#   bar 28 close 101:   0.999 + 0.01                  = 1.009
#   bar 29 close 99.5:  0.999 - 0.005                 = 0.994   (open 101, range 99.5..101.5)
#   bar 30 HITS_104: target 104, ret = 0.04 - 0.001 * 2.04 = 0.03796 -> E = N = 1.03796
# B, short: pierce 34 (PIERCE_HIGH; levels then also hold the swing high 104.5 of bar 30,
#   a 1-touch group; mean volume of 14..33 is 1.1), close[35] = 100 confirms, e = 36 at
#   100. Its stop is 100 + ATR[35] (~102.31; the TRs of bars 30 and 31 are 5), never
#   reached by bar 37's high 101.5; bar 38 opens at 110 beyond it -> "stop" at the open.
#   bar 36 close 100:   N * (0.999 - (100/100 - 1))   = N * 0.999
#   bar 37 close 101:   N * (0.999 - 0.01)            = N * 0.989
#   bar 38 exit 110:    ret = -(1.1 - 1) - 0.001 * 2.1 = -0.1021 -> E = N * 0.8979
TWO_TRADES = {
    6: SWING_LOW,
    12: SWING_LOW,
    8: SWING_HIGH,
    14: SWING_HIGH,
    25: PIERCE_LOW,
    28: (100.0, 101.0, 99.0, 101.0, 1.0),
    29: (101.0, 101.5, 99.5, 99.5, 1.0),
    30: HITS_104,
    34: PIERCE_HIGH,
    37: (100.0, 101.5, 99.5, 101.0, 1.0),
    38: (110.0, 111.0, 109.0, 110.0, 1.0),
}
N_A = 1.03796
EQUITY_40 = [1.0] * 27 + [0.999, 1.009, 0.994] + [N_A] * 6 + [N_A * 0.999, N_A * 0.989]
EQUITY_40 += [N_A * 0.8979] * 2
DAILY = JobConstants(timeframe_minutes=1440, fee=0.001, slippage=0.0, min_trades=1)


def metrics_from_equity(equity, trade_rets, bars_in_trades, bars_held):
    """STRATEGY.md's Results on a hand-written equity curve (statistics for mean/std)."""
    returns = [equity[t] / equity[t - 1] - 1 for t in range(1, len(equity))]
    mean = statistics.fmean(returns)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    peak, max_drawdown = equity[0], 0.0
    for value in equity:
        peak = max(peak, value)
        max_drawdown = max(max_drawdown, 1 - value / peak)
    cagr = (equity[-1] / equity[0]) ** (365 / (len(equity) - 1)) - 1
    losses = [r for r in trade_rets if r < 0]
    return {
        "sharpe": mean / statistics.stdev(returns) * math.sqrt(365),
        "sortino": mean / downside * math.sqrt(365),
        "calmar": cagr / max_drawdown,
        "total_return": equity[-1] - 1,
        "max_drawdown": max_drawdown,
        "n_trades": len(trade_rets),
        "win_rate": sum(r > 0 for r in trade_rets) / len(trade_rets),
        "profit_factor": sum(r for r in trade_rets if r > 0) / -sum(losses) if losses else None,
        "exposure": bars_in_trades / len(equity),
        "mean_bars_held": bars_held / len(trade_rets),
    }


def assert_metrics(got, want):
    assert set(got) == set(METRIC_NAMES)
    for name, value in want.items():
        if value is None:
            assert got[name] is None, name
        else:
            assert got[name] == pytest.approx(value, rel=1e-9), name


def test_metrics_of_two_trades_by_hand(run_backtest):
    result = run_backtest(series(40, TWO_TRADES), params(), DAILY)
    assert [(t.side, t.entry_bar, t.exit_bar, t.exit_reason) for t in result.trades] == [
        (1, 27, 30, "target"),
        (-1, 36, 38, "stop"),
    ]
    assert [t.ret for t in result.trades] == [approx(0.03796), approx(-0.1021)]
    # Exposure (4 + 3) / 40 = 0.175; bars held (3 + 2) / 2 = 2.5; win rate 1/2; profit
    # factor 0.03796 / 0.1021; max drawdown from the peak N_A to N_A * 0.8979 = 0.1021
    # (the earlier fall 1.009 -> 0.994 is only 0.0149); total return N_A * 0.8979 - 1
    # = -0.068015716; CAGR = 0.931984284^(365/39) - 1 ~ -0.483.
    want = metrics_from_equity(EQUITY_40, [0.03796, -0.1021], 7, 5)
    assert want["max_drawdown"] == pytest.approx(0.1021)
    assert want["total_return"] == pytest.approx(-0.068015716)
    assert_metrics(result.metrics, want)
    assert result.metrics["score"] == result.metrics["sharpe"]  # 2 trades >= min_trades 1


def test_metrics_of_one_winning_trade_by_hand(run_backtest):
    # The first 32 bars: only trade A. No loser, so profit factor is undefined (C16).
    # Max drawdown 1.009 -> 0.994: 0.015 / 1.009; exposure 4 / 32; win rate 1.
    result = run_backtest(series(32, TWO_TRADES), params(), DAILY)
    want = metrics_from_equity(EQUITY_40[:32], [0.03796], 4, 3)
    assert want["profit_factor"] is None
    assert want["max_drawdown"] == pytest.approx(0.015 / 1.009)
    assert_metrics(result.metrics, want)


def test_c17_score_is_the_penalty_below_min_trades(run_backtest):
    constants = JobConstants(timeframe_minutes=1440, fee=0.001, slippage=0.0, min_trades=3)
    result = run_backtest(series(40, TWO_TRADES), params(), constants)
    assert result.metrics["n_trades"] == 2
    assert result.metrics["sharpe"] is not None
    assert result.metrics["score"] == SCORE_PENALTY


def test_c18_no_trades_leaves_ratios_undefined(run_backtest):
    # Only filler after the levels: equity is 1.0 throughout, every return 0, so std = 0
    # (Sharpe undefined), no downside (Sortino undefined), no drawdown (Calmar = 0/0
    # undefined); no trade: win rate, profit factor, mean bars held undefined.
    result = run_backtest(series(30, support_at_98_5()), params(), NO_COSTS)
    assert result.metrics == {
        "score": SCORE_PENALTY,
        "sharpe": None,
        "sortino": None,
        "calmar": None,
        "total_return": 0.0,
        "max_drawdown": 0.0,
        "n_trades": 0,
        "win_rate": None,
        "profit_factor": None,
        "exposure": 0.0,
        "mean_bars_held": None,
    }
    assert all(type(v) in (int, float) or v is None for v in result.metrics.values())


def test_c18_calmar_that_overflows_is_undefined(run_backtest):
    # One +8% trade (rr = 4: target 100 + 4 * 2 = 108, reached on bar 30) on 35 one-minute
    # bars. Bar 28 closes at 99: marked equity 0.99, a drawdown of 0.01. CAGR =
    # 1.08^(525600 / 34) - 1 = 10^(15458.8 * 0.0334) ~ 10^517: beyond float64 (1.8e308),
    # so Calmar is undefined (C18), while total return 0.08 and max drawdown 0.01 are not.
    bar_28 = (100.0, 101.0, 99.0, 99.0, 1.0)
    bar_30 = (100.0, 108.5, 99.5, 108.0, 1.0)
    candles = series(35, {**support_at_98_5(), 25: PIERCE_LOW, 28: bar_28, 30: bar_30})
    constants = JobConstants(timeframe_minutes=1, fee=0.0, slippage=0.0, min_trades=1)
    result = run_backtest(candles, params(risk_reward_ratio=4.0), constants)
    assert [(t.exit_bar, t.exit_price) for t in result.trades] == [(30, 108.0)]
    assert result.metrics["total_return"] == approx(0.08)
    assert result.metrics["max_drawdown"] == approx(0.01)
    assert result.metrics["calmar"] is None


def test_c19_equity_at_or_below_zero_is_an_error_naming_the_bar(run_backtest):
    # The short of test_short_is_stopped_out, but bar 29 opens at 300, beyond the stop
    # 102: exit at the open, g = 3, ret = -(3 - 1) - 0 = -2, equity 1 * (1 - 2) = -1 at
    # bar 29 (bars 27 and 28 mark at 1.0).
    bar_29 = (300.0, 301.0, 299.0, 300.0, 1.0)
    candles = series(35, {**resistance_at_101_5(), 25: PIERCE_HIGH, 29: bar_29})
    with pytest.raises(ValueError, match=r"bar\D{0,3}29\b"):
        run_backtest(candles, params(), NO_COSTS)


def test_empty_candles_are_rejected(run_backtest):
    # STRATEGY.md is silent; with no bar there is no E_0 to mark, so both reject it.
    empty = series(0, {})
    with pytest.raises(ValueError, match="empty"):
        run_backtest(empty, params(), NO_COSTS)


def test_a_single_bar_has_no_returns(run_backtest):
    # n = 1: E_0 = 1.0 and no return, so Sharpe, Sortino and Calmar (CAGR needs n >= 2)
    # are undefined; total return 0, no drawdown, no trade, exposure 0 / 1.
    result = run_backtest(series(1, {}), params(), NO_COSTS)
    assert result.trades == ()
    assert result.metrics["total_return"] == 0.0
    assert result.metrics["max_drawdown"] == 0.0
    assert result.metrics["exposure"] == 0.0
    assert [result.metrics[name] for name in ("sharpe", "sortino", "calmar")] == [None] * 3


def test_c19_marked_equity_at_or_below_zero_is_an_error_too(run_backtest):
    # Equity is marked at every close (Results, C15), so C19 applies to marks, not only
    # to exits. The short of test_short_is_stopped_out with atr_multiplier_sl = 60:
    # d = 120, stop 220, target 100 - 240 = -140. Bar 29 = (100, 206, 99.5, 205) reaches
    # neither, and marks at 1 * ((1 - 0) - (205 / 100 - 1)) = -0.05 <= 0.
    bar_29 = (100.0, 206.0, 99.5, 205.0, 1.0)
    candles = series(35, {**resistance_at_101_5(), 25: PIERCE_HIGH, 29: bar_29})
    with pytest.raises(ValueError, match=r"bar\D{0,3}29\b"):
        run_backtest(candles, params(atr_multiplier_sl=60.0), NO_COSTS)
