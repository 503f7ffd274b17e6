"""Hand-computed micro cases: STRATEGY.md's rules on tiny series, worked out by hand.

Every expected trade below is derived in the comments from the spec's text, not taken
from either implementation. Each case runs on the reference and on the fast kernel.
Series are built by tests/micro_candles.py: filler bars (O=C=100, H=101, L=99, V=1,
true range 2) plus the bars that matter. Unless a case says otherwise:
  - swing lows at bars 6 and 12 (low 98.5) make one key level S = 98.5 with 2 touches
    (C3: (98.5 + 98.5) / 2 = 98.5 exactly), known from bar 14 (C2);
  - the pierce bar is p = 25 (PIERCE_LOW: low 98.25, volume 3), close[24] = 100 > S,
    98.25 < 98.5, 98.25 >= 98.5 * 0.995 = 98.0075, 3 >= 2.0 * 1.0 (C5, C6);
  - one confirming close (close[26] = 100 > 98.5) gives the entry e = 27 at open 100;
  - every true range up to bar 26 is 2, so ATR[26] = 2 (C10) and d = 1.0 * 2 = 2:
    a long's stop is 98 and its target 100 + 2.0 * 2 = 104, a short's 102 and 96.
Prices are compared with rel 1e-12 (the hand value is exact arithmetic; the code's
is float64); bars, sides and reasons exactly.
"""

from __future__ import annotations

import math
from fractions import Fraction

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

LONG, SHORT = 1, -1


@pytest.fixture(params=IMPLEMENTATION_NAMES)
def run_backtest(request):
    return implementation(request.param)


def expected(side, p, e, x, level, stop, target, exit_price, reason, ret, **fills):
    """One expected trade; fills default to the raw prices (no slippage)."""
    return {
        "side": side,
        "pierce_bar": p,
        "entry_bar": e,
        "exit_bar": x,
        "level": level,
        "entry_price": 100.0,
        "stop": stop,
        "target": target,
        "exit_price": exit_price,
        "exit_reason": reason,
        "entry_fill": fills.get("entry_fill", 100.0),
        "exit_fill": fills.get("exit_fill", exit_price),
        "ret": ret,
    }


def assert_trades(trades, want):
    summary = [(t.side, t.pierce_bar, t.entry_bar, t.exit_bar, t.exit_reason) for t in trades]
    assert len(trades) == len(want), summary
    for got, expect in zip(trades, want, strict=True):
        for name, value in expect.items():
            actual = getattr(got, name)
            if isinstance(value, float):
                assert actual == pytest.approx(value, rel=1e-12, abs=1e-12), (name, summary)
            else:
                assert actual == value, (name, summary)


def long_trade_at_25(x, exit_price, reason, ret, level=98.5, stop=98.0, target=104.0):
    return expected(LONG, 25, 27, x, level, stop, target, exit_price, reason, ret)


def test_long_false_break_hits_its_target(run_backtest):
    # Bars 27-29 are filler: open 100 inside (98, 104), low 99 > 98, high 101 < 104.
    # Bar 30 (HITS_104): open 100, low 99.5 > 98, high 104.5 >= 104 -> "target" at 104.
    # ret = 104 / 100 - 1 - 0 = 0.04.
    candles = series(35, {**support_at_98_5(), 25: PIERCE_LOW, 30: HITS_104})
    result = run_backtest(candles, params(), NO_COSTS)
    assert_trades(result.trades, [long_trade_at_25(30, 104.0, "target", 0.04)])


def test_short_is_stopped_out(run_backtest):
    # Swing highs at 6 and 12 (high 101.5): R = 101.5. Pierce bar 25 (PIERCE_HIGH):
    # R > close[24] = 100, high 101.75 > 101.5, 101.75 <= 101.5 * 1.005 = 102.0075,
    # volume 3 >= 2. close[26] = 100 < 101.5 confirms; e = 27, entry 100, d = 2:
    # stop 102, target 96. Bar 29 (100, 102.5, 99.5, 101): open inside, high 102.5 >= 102
    # -> "stop" at 102. ret = -(102 / 100 - 1) = -0.02.
    bar_29 = (100.0, 102.5, 99.5, 101.0, 1.0)
    candles = series(35, {**resistance_at_101_5(), 25: PIERCE_HIGH, 29: bar_29})
    result = run_backtest(candles, params(), NO_COSTS)
    want = expected(SHORT, 25, 27, 29, 101.5, 102.0, 96.0, 102.0, "stop", -0.02)
    assert_trades(result.trades, [want])


@pytest.mark.parametrize(
    ("bar_29", "exit_price", "reason", "ret"),
    [
        # Opens at 97 below the stop 98: exit at the open, "stop"; ret = 97/100 - 1.
        pytest.param((97.0, 97.5, 96.0, 97.0, 1.0), 97.0, "stop", -0.03, id="gap-through-stop"),
        # Opens at 105 above the target 104: exit at the open, "target"; ret = 0.05.
        pytest.param((105.0, 106.0, 104.5, 105.5, 1.0), 105.0, "target", 0.05, id="gap-target"),
        # The low touches the stop exactly: "reaches" is inclusive (C12) -> 98.
        pytest.param((100.0, 101.0, 98.0, 99.0, 1.0), 98.0, "stop", -0.02, id="low-equals-stop"),
        # Range 97..105 reaches both: the stop is checked first (pessimistic) -> 98.
        pytest.param((100.0, 105.0, 97.0, 100.0, 1.0), 98.0, "stop", -0.02, id="stop-and-target"),
    ],
)
def test_gaps_and_a_bar_reaching_both_stop_and_target(
    run_backtest, bar_29, exit_price, reason, ret
):
    # The long of the common setup; bars 27 and 28 are filler (no exit), bar 29 decides.
    candles = series(35, {**support_at_98_5(), 25: PIERCE_LOW, 29: bar_29})
    result = run_backtest(candles, params(), NO_COSTS)
    assert_trades(result.trades, [long_trade_at_25(29, exit_price, reason, ret)])


@pytest.mark.parametrize(
    ("n", "reason"),
    [
        # H = 10: nothing is hit on filler bars 27..36, bar e + H = 37 exits at its close
        # 100.5, "time"; bars held 37 - 27 = 10 (C13).
        pytest.param(45, "time", id="time-exit"),
        # The last bar is 37 = e + H as well: C12 checks "time" before "end".
        pytest.param(38, "time", id="time-before-end"),
    ],
)
def test_time_exit_at_entry_plus_max_holding_periods(run_backtest, n, reason):
    bar_37 = (100.0, 101.0, 99.0, 100.5, 1.0)
    candles = series(n, {**support_at_98_5(), 25: PIERCE_LOW, 37: bar_37})
    result = run_backtest(candles, params(max_holding_periods=10), NO_COSTS)
    assert_trades(result.trades, [long_trade_at_25(37, 100.5, reason, 0.005)])
    assert result.metrics["mean_bars_held"] == 10.0


def test_a_trade_open_at_the_last_bar_ends_at_its_close(run_backtest):
    # 33 bars: the long entered at 27 meets no stop/target and e + H = 37 > 32, so it
    # closes at close[32] = 99.5, "end". ret = 99.5 / 100 - 1 = -0.005.
    last = (100.0, 101.0, 99.0, 99.5, 1.0)
    candles = series(33, {**support_at_98_5(), 25: PIERCE_LOW, 32: last})
    result = run_backtest(candles, params(), NO_COSTS)
    assert_trades(result.trades, [long_trade_at_25(32, 99.5, "end", -0.005)])


def test_exit_on_the_entry_bar(run_backtest):
    # The entry bar itself is checked (C12): bar 27 opens at 100 (the entry; not below
    # the stop 98) and its low 97.5 <= 98 -> "stop" at 98 on bar 27; bars held 0, and
    # exposure counts the one bar: 1 / 35.
    bar_27 = (100.0, 101.0, 97.5, 99.0, 1.0)
    candles = series(35, {**support_at_98_5(), 25: PIERCE_LOW, 27: bar_27})
    result = run_backtest(candles, params(), NO_COSTS)
    assert_trades(result.trades, [long_trade_at_25(27, 98.0, "stop", -0.02)])
    assert result.metrics["mean_bars_held"] == 0.0
    assert result.metrics["exposure"] == pytest.approx(1 / 35, rel=1e-15)


@pytest.mark.parametrize(
    ("close_26", "n_trades"),
    [
        # close[26] = 98.5 = S exactly: a close at the level cancels (C5): no trade.
        pytest.param(98.5, 0, id="close-equal-to-level-cancels"),
        # One ulp above S confirms: the comparison is strict, not tolerant.
        pytest.param(math.nextafter(98.5, math.inf), 1, id="one-ulp-above-confirms"),
    ],
)
def test_a_close_exactly_at_the_level_cancels_the_setup(run_backtest, close_26, n_trades):
    # Bar 26 = (100, 100.5, 98.5, close_26): range 2, TR 2, so ATR[26] is still 2 and the
    # confirmed variant is the common long, exiting at 104 on bar 30.
    bar_26 = (100.0, 100.5, 98.5, close_26, 1.0)
    candles = series(35, {**support_at_98_5(), 25: PIERCE_LOW, 26: bar_26, 30: HITS_104})
    result = run_backtest(candles, params(), NO_COSTS)
    want = [long_trade_at_25(30, 104.0, "target", 0.04)] if n_trades else []
    assert_trades(result.trades, want)


# ---------------------------------------------------------------- C8: one position


def test_c8_an_exit_on_the_confirmation_bar_does_not_block(run_backtest):
    # Trade A: the common long (e = 27, stop 98, target 104). Setup B: a second pierce
    # at p = 30 (levels at 30: pivots 6, 12 at 98.5 and 25 at 98.25, known from 27;
    # 98.5 - 98.25 = 0.25 > 0.001 * 98.25, so {98.25} is its own 1-touch group and S is
    # still 98.5; mean volume of bars 10..29 = (19 + 3) / 20 = 1.1, 3 >= 2.2). A is
    # still open at 30 (low 98.25 > 98): pending setups are independent (C7).
    # Bar 31 (HITS_104, close 104 > 98.5) confirms B (e = 32) and exits A at its target.
    # A's exit bar 31 = e - 1 is before e: B is taken (C8).
    # B's ATR[31]: TR[27..30] = 2, TR[31] = max(104.5 - 99.5, 104.5 - 100, 100 - 99.5)
    # = 5, so ATR[31] = (2 * 13 + 5) / 14 = 31/14; stop = 100 - 31/14, target
    # = 100 + 62/14. Bars 32..41 are filler (inside both); bar 42 = e + 10 closes at
    # 100.5: "time", ret = 0.005.
    bar_42 = (100.0, 101.0, 99.0, 100.5, 1.0)
    bars = {**support_at_98_5(), 25: PIERCE_LOW, 30: PIERCE_LOW, 31: HITS_104, 42: bar_42}
    result = run_backtest(series(45, bars), params(), NO_COSTS)
    second = expected(LONG, 30, 32, 42, 98.5, 100 - 31 / 14, 100 + 62 / 14, 100.5, "time", 0.005)
    assert_trades(result.trades, [long_trade_at_25(31, 104.0, "target", 0.04), second])


def test_c8_an_exit_on_the_entry_bar_blocks(run_backtest):
    # As above, but bar 31 is filler (close 100 confirms B, e = 32) and A reaches its
    # target on bar 32 = B's entry bar: A's exit bar is not before e, B is dropped
    # (never queued: no trade follows although nothing else is open afterwards).
    bars = {**support_at_98_5(), 25: PIERCE_LOW, 30: PIERCE_LOW, 32: HITS_104}
    result = run_backtest(series(45, bars), params(), NO_COSTS)
    assert_trades(result.trades, [long_trade_at_25(32, 104.0, "target", 0.04)])


# ---------------------------------------------------------------- C1, C2, C4, C6, C9


def test_c4_several_levels_the_lowest_support_is_the_trades_level(run_backtest):
    # Swing lows at 3 and 9 (98.5) and at 6 and 12 (98.75; bar (100, 100.75, 98.75, 100),
    # TR 2): 98.75 - 98.5 = 0.25 > 0.001 * 98.5, so two key levels, 98.5 and 98.75.
    # With pierce_depth 0.01 the pierce low 98.25 qualifies for both (98.25 >= 98.5 *
    # 0.99 = 97.515 and >= 98.75 * 0.99 = 97.7625). close[26] = 98.625 (bar
    # (100, 100.625, 98.625, 98.625), TR 2) is above 98.5 but not above 98.75: the
    # 98.75 setup is cancelled, the 98.5 one confirms, so the bar signals and the
    # trade's level is the lowest qualifying support, 98.5. e = 27, ATR 2, exit at
    # target 104 on bar 30.
    low_98_75 = (100.0, 100.75, 98.75, 100.0, 1.0)
    bar_26 = (100.0, 100.625, 98.625, 98.625, 1.0)
    bars = {3: SWING_LOW, 9: SWING_LOW, 6: low_98_75, 12: low_98_75}
    bars |= {25: PIERCE_LOW, 26: bar_26, 30: HITS_104}
    result = run_backtest(series(35, bars), params(pierce_depth=0.01), NO_COSTS)
    assert_trades(result.trades, [long_trade_at_25(30, 104.0, "target", 0.04)])


def test_c4_several_levels_the_highest_resistance_is_the_trades_level(run_backtest):
    # The mirror of the case above. Swing highs at 3 and 9 (101.5) and at 6 and 12
    # (101.25; bar (100, 101.25, 99.25, 100), TR 2): two key levels, 101.25 and 101.5
    # (0.25 > 0.001 * 101.25). With pierce_depth 0.01 the pierce high 101.75 qualifies
    # for both (<= 101.25 * 1.01 = 102.2625). close[26] = 101.375 (bar (100, 101.375,
    # 99.375, 101.375), TR 2) is below 101.5 but not below 101.25: that setup is
    # cancelled, the 101.5 one confirms, and the trade's level is the highest qualifying
    # resistance, 101.5. e = 27, ATR 2: stop 102, target 96; bar 29 reaches the stop.
    high_101_25 = (100.0, 101.25, 99.25, 100.0, 1.0)
    bar_26 = (100.0, 101.375, 99.375, 101.375, 1.0)
    bar_29 = (100.0, 102.5, 99.5, 101.0, 1.0)
    bars = {3: SWING_HIGH, 9: SWING_HIGH, 6: high_101_25, 12: high_101_25}
    bars |= {25: PIERCE_HIGH, 26: bar_26, 29: bar_29}
    result = run_backtest(series(35, bars), params(pierce_depth=0.01), NO_COSTS)
    want = expected(SHORT, 25, 27, 29, 101.5, 102.0, 96.0, 102.0, "stop", -0.02)
    assert_trades(result.trades, [want])


def test_c9_long_wins_when_both_sides_confirm_for_one_entry_bar(run_backtest):
    # Support 98.5 (swing lows 6, 12) and resistance 101.5 (swing highs 8, 14). Pierce
    # bar 25 = (100, 101.75, 98.25, 100, 3) pierces both: 98.25 in [98.0075, 98.5) and
    # 101.75 in (101.5, 102.0075]. close[26] = 100 confirms both (> 98.5, < 101.5) for
    # e = 27: the long is taken (C9).
    # TR[25] = 101.75 - 98.25 = 3.5: ATR[25] = (2 * 13 + 3.5) / 14 = 29.5/14,
    # ATR[26] = (29.5/14 * 13 + 2) / 14 = 411.5/196 = 823/392 = d.
    # stop = 100 - 823/392, target = 100 + 823/196; filler until bar 37 = e + 10 closes
    # at 100.5: "time", ret 0.005.
    both = (100.0, 101.75, 98.25, 100.0, 3.0)
    bar_37 = (100.0, 101.0, 99.0, 100.5, 1.0)
    bars = {6: SWING_LOW, 12: SWING_LOW, 8: SWING_HIGH, 14: SWING_HIGH, 25: both, 37: bar_37}
    result = run_backtest(series(40, bars), params(), NO_COSTS)
    want = long_trade_at_25(37, 100.5, "time", 0.005, stop=100 - 823 / 392, target=100 + 823 / 196)
    assert_trades(result.trades, [want])


def test_c2_a_pivot_confirmed_by_the_pierce_bar_itself_counts(run_backtest):
    # Swing lows at 10 (98.5) and 23 (bar (100, 100.375, 98.375, 100), TR 2). With
    # min_distance 0.002: 98.5 - 98.375 = 0.125 <= 0.002 * 98.375 = 0.19675, one group,
    # S = (98.375 + 98.5) / 2 = 98.4375, 2 touches -- but only if the pivot at 23 is
    # known at p = 25: 23 + 2 <= 25 (C2). Pierce bar 25 = (100, 100.40625, 98.40625,
    # 100, 3): low above 98.375 (so 23 stays a pivot), below 98.4375 and >= 98.4375 *
    # 0.995. e = 27, ATR 2, exit at target 104 on bar 30; the trade's level is 98.4375.
    low_23 = (100.0, 100.375, 98.375, 100.0, 1.0)
    pierce = (100.0, 100.40625, 98.40625, 100.0, 3.0)
    bars = {10: SWING_LOW, 23: low_23, 25: pierce, 30: HITS_104}
    result = run_backtest(series(35, bars), params(min_distance_from_level=0.002), NO_COSTS)
    assert_trades(result.trades, [long_trade_at_25(30, 104.0, "target", 0.04, level=98.4375)])


@pytest.mark.parametrize(("p", "n_trades"), [(19, 0), (20, 1)])
def test_c6_no_setup_before_bar_20(run_backtest, p, n_trades):
    # The common setup moved to pierce bar p (mean volume of bars p-20..p-1 is 1). At
    # p = 19 no setup may form (C6); at p = 20: e = 22, ATR[21] = 2, stop 98, target 104,
    # reached on bar 25 (HITS_104). ret 0.04.
    candles = series(30, {**support_at_98_5(), p: PIERCE_LOW, 25: HITS_104})
    result = run_backtest(candles, params(), NO_COSTS)
    want = [expected(LONG, 20, 22, 25, 98.5, 98.0, 104.0, 104.0, "target", 0.04)]
    assert_trades(result.trades, want[:n_trades])


def test_c1_a_bar_that_is_both_a_swing_high_and_low_contributes_two_prices(run_backtest):
    # Bar 12 = (100, 101.5, 98.5, 100) is above its neighbours' highs and below their
    # lows: it adds 101.5 and 98.5 (C1). With the swing low at 6 the support 98.5 has 2
    # touches only thanks to bar 12's low. Its TR is 3, so ATR[14] = (13 * 2 + 3) / 14 =
    # 29/14 and each later TR of 2 halves nothing but shrinks the excess by 13/14:
    # ATR[26] = 2 + (1/14) * (13/14)^12 = d. stop = 100 - d, target = 100 + 2d; bar 30
    # (high 104.5) reaches the target (~104.06): ret = 2d / 100.
    outside = (100.0, 101.5, 98.5, 100.0, 1.0)
    bars = {6: SWING_LOW, 12: outside, 25: PIERCE_LOW, 30: HITS_104}
    result = run_backtest(series(35, bars), params(), NO_COSTS)
    d = float(2 + Fraction(1, 14) * Fraction(13, 14) ** 12)
    want = long_trade_at_25(
        30, 100 + 2 * d, "target", 2 * d / 100, stop=100 - d, target=100 + 2 * d
    )
    assert_trades(result.trades, [want])


@pytest.mark.parametrize(
    ("below", "n_trades"),
    [
        # low[p] == S * (1 - pierce_depth), evaluated as C5 writes it: still a pierce.
        pytest.param(False, 1, id="low-at-the-depth-limit-qualifies"),
        # One ulp deeper: too deep, no setup.
        pytest.param(True, 0, id="one-ulp-deeper-does-not"),
    ],
)
def test_c5_the_pierce_depth_limit_is_inclusive(run_backtest, below, n_trades):
    # The common long with the pierce bar's low put exactly on 98.5 * (1 - 0.005)
    # (~98.0075) and its high 2 above it, so its TR is 2 up to rounding and ATR[26] ~ 2.
    limit = 98.5 * (1 - 0.005)
    low = math.nextafter(limit, -math.inf) if below else limit
    pierce = (100.0, low + 2.0, low, 100.0, 3.0)
    candles = series(35, {**support_at_98_5(), 25: pierce, 30: HITS_104})
    result = run_backtest(candles, params(pierce_depth=0.005), NO_COSTS)
    want = [long_trade_at_25(30, 104.0, "target", 0.04)]
    assert_trades(result.trades, want[:n_trades])


@pytest.mark.parametrize(("q", "n_trades"), [(23, 1), (24, 0)])
def test_c2_a_pivot_that_needs_the_bar_after_the_pierce_bar_is_not_known(run_backtest, q, n_trades):
    # Swing highs at 10 (101.5) and q (bar (100, 101.625, 99.625, 100), TR 2); with
    # min_distance 0.002 (0.125 <= 0.203) they form R = (101.5 + 101.625) / 2 = 101.5625.
    # Pierce bar 25 = (100, 101.59375, 99.59375, 100, 3): high above R, below 101.625
    # (so q stays a pivot) and <= R * 1.005. A pivot at q is known from bar q + 2 (C2):
    # q = 23 is known at 25 -> a short, e = 27, stop 102, target 96, stopped on bar 29
    # (high 102.5): ret -0.02. q = 24 is known only from 26 (it needs bars 25 and 26):
    # at 25 the only pivot is 101.5, a 1-touch group, so no key level and no trade.
    high_q = (100.0, 101.625, 99.625, 100.0, 1.0)
    pierce = (100.0, 101.59375, 99.59375, 100.0, 3.0)
    bar_29 = (100.0, 102.5, 99.5, 101.0, 1.0)
    bars = {10: SWING_HIGH, q: high_q, 25: pierce, 29: bar_29}
    result = run_backtest(series(35, bars), params(min_distance_from_level=0.002), NO_COSTS)
    want = [expected(SHORT, 25, 27, 29, 101.5625, 102.0, 96.0, 102.0, "stop", -0.02)]
    assert_trades(result.trades, want[:n_trades])
