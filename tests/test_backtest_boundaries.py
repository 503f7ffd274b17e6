"""Boundary hand cases: every comparison of STRATEGY.md's rules met with equality.

Random float data never produces an exact tie, so the differential tests cannot tell
`<` from `<=`; these cases can. Each puts one compared value exactly on its bound (and,
where the rule is strict, a partner case one ulp past it), works out the outcome from
the rule's text, and runs on both the slow reference and the fast kernel. Every value
is a dyadic fraction, so the tie really happens in float64, and each case checks the
equality it relies on: directly before it runs, or through the exact stop, target or
level of the trade it expects (a case whose "equal" values differ in the last bit would
prove nothing).

The series are those of tests/test_backtest_cases.py (read its docstring first): filler
bars O=C=100, H=101, L=99, V=1 (true range 2); swing lows at bars 6 and 12 (low 98.5)
make the support S = 98.5, swing highs there (high 101.5) the resistance R = 101.5; the
pierce bar is p = 25, one confirming close gives the entry e = 27 at open 100, and
ATR[26] = 2 makes a long's stop 98 and target 104, a short's stop 102 and target 96.
Where a case's own bars keep every true range at 2, stop and target are exact and are
compared exactly; returns are compared to the hand value with rel 1e-12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from tests.implementations import IMPLEMENTATION_NAMES, implementation
from tests.micro_candles import (
    FILLER,
    HITS_104,
    NO_COSTS,
    PIERCE_HIGH,
    PIERCE_LOW,
    SWING_HIGH,
    SWING_LOW,
    Bar,
    params,
    resistance_at_101_5,
    series,
    support_at_98_5,
)
from trainable.backtest import JobConstants
from trainable.declaration import SCORE_PENALTY

LONG, SHORT = 1, -1
UP, DOWN = math.inf, -math.inf
# A short's bar that reaches its stop 102 (high 102.5) and nothing else.
SHORT_STOPPED: Bar = (100.0, 102.5, 99.5, 101.0, 1.0)


@pytest.fixture(params=IMPLEMENTATION_NAMES)
def run_backtest(request):
    return implementation(request.param)


@dataclass(frozen=True)
class Want:
    """An expected trade. Floats left None are not compared (a case whose true ranges
    are not all 2 has a stop and target a few ulps off 98/104)."""

    side: int
    pierce_bar: int
    entry_bar: int
    exit_bar: int
    exit_reason: str
    exit_price: float | None
    ret: float
    level: float | None = None
    stop: float | None = None
    target: float | None = None


def long_at_25(exit_bar, reason, exit_price, ret, level=98.5, entry_bar=27) -> Want:
    return Want(LONG, 25, entry_bar, exit_bar, reason, exit_price, ret, level, 98.0, 104.0)


def short_at_25(exit_bar, reason, exit_price, ret, level=101.5) -> Want:
    return Want(SHORT, 25, 27, exit_bar, reason, exit_price, ret, level, 102.0, 96.0)


def assert_trades(trades, want: list[Want]) -> None:
    got = [(t.side, t.pierce_bar, t.entry_bar, t.exit_bar, t.exit_reason) for t in trades]
    assert got == [(w.side, w.pierce_bar, w.entry_bar, w.exit_bar, w.exit_reason) for w in want]
    for trade, expect in zip(trades, want, strict=True):
        assert trade.entry_price == 100.0
        for name in ("level", "stop", "target", "exit_price"):
            value = getattr(expect, name)
            if value is not None:
                assert getattr(trade, name) == value, (name, getattr(trade, name), value)
        assert trade.ret == pytest.approx(expect.ret, rel=1e-12, abs=1e-15)


def ulp(x: float, direction: float) -> float:
    return math.nextafter(x, direction)


def common_long(bars: dict[int, Bar] | None = None) -> dict[int, Bar]:
    """Support 98.5 and the pierce at 25 (low 98.25, volume 3), then `bars` over them."""
    return {**support_at_98_5(), 25: PIERCE_LOW, **(bars or {})}


def common_short(bars: dict[int, Bar] | None = None) -> dict[int, Bar]:
    """Resistance 101.5 and the pierce at 25 (high 101.75, volume 3), then `bars`."""
    return {**resistance_at_101_5(), 25: PIERCE_HIGH, **(bars or {})}


# ---------------------------------------------------------------- C12: levels hit exactly

# Bar 29 decides; bars 27 and 28 are filler (inside both levels). When bar 29 reaches
# nothing, the trade runs to e + 10 = 37, a filler bar: "time" at its close 100, ret 0.
TIME_LONG = long_at_25(37, "time", 100.0, 0.0)
TIME_SHORT = short_at_25(37, "time", 100.0, 0.0)
LONG_STOPPED = long_at_25(29, "stop", 98.0, -0.02)
LONG_TARGET = long_at_25(29, "target", 104.0, 0.04)
SHORT_STOPPED_AT_29 = short_at_25(29, "stop", 102.0, -0.02)
SHORT_TARGET = short_at_25(29, "target", 96.0, 0.04)
LEVEL_HITS = {
    # Long: "low[b] <= stop" -> at the stop; "high[b] >= target" -> at the target.
    "long-low-equals-stop": (LONG, (100.0, 101.0, 98.0, 99.0, 1.0), LONG_STOPPED),
    "long-low-one-ulp-above-stop": (LONG, (100.0, 101.0, ulp(98.0, UP), 99.0, 1.0), TIME_LONG),
    "long-high-equals-target": (LONG, (100.0, 104.0, 99.5, 103.0, 1.0), LONG_TARGET),
    "long-high-one-ulp-below-target": (
        LONG,
        (100.0, ulp(104.0, DOWN), 99.5, 103.0, 1.0),
        TIME_LONG,
    ),
    # Short mirrored: "high[b] >= stop", "low[b] <= target".
    "short-high-equals-stop": (SHORT, (100.0, 102.0, 99.5, 101.0, 1.0), SHORT_STOPPED_AT_29),
    "short-high-one-ulp-below-stop": (
        SHORT,
        (100.0, ulp(102.0, DOWN), 99.5, 101.0, 1.0),
        TIME_SHORT,
    ),
    "short-low-equals-target": (SHORT, (100.0, 100.5, 96.0, 97.0, 1.0), SHORT_TARGET),
    "short-low-one-ulp-above-target": (SHORT, (100.0, 100.5, ulp(96.0, UP), 97.0, 1.0), TIME_SHORT),
}


@pytest.mark.parametrize("case", list(LEVEL_HITS))
def test_c12_a_range_that_reaches_a_level_exactly_exits_there(run_backtest, case):
    side, bar_29, want = LEVEL_HITS[case]
    bars = common_long({29: bar_29}) if side == LONG else common_short({29: bar_29})
    result = run_backtest(series(40, bars), params(), NO_COSTS)
    assert_trades(result.trades, [want])


# ---------------------------------------------------------------- C12: gaps at a level

# "open[b] < stop" and "open[b] > target" are strict: a bar that opens exactly at a level
# has not gapped beyond it, so the range checks decide, stop first.
GAPS = {
    # Opens exactly at the target 104 and then falls through the stop 98: not a gap
    # beyond the target, and the range reaches the stop: "stop" at 98 (pessimistic).
    "long-opens-at-target-then-falls-to-stop": (
        LONG,
        (104.0, 105.0, 97.5, 100.0, 1.0),
        LONG_STOPPED,
    ),
    # One ulp above the target it is a gap: "target" at the open.
    "long-opens-one-ulp-above-target": (
        LONG,
        (ulp(104.0, UP), 105.0, 97.5, 100.0, 1.0),
        long_at_25(29, "target", ulp(104.0, UP), 0.04),
    ),
    # Short mirrored: opens at the target 96, rises through the stop 102: "stop" at 102.
    "short-opens-at-target-then-rises-to-stop": (
        SHORT,
        (96.0, 102.5, 95.5, 100.0, 1.0),
        SHORT_STOPPED_AT_29,
    ),
    "short-opens-one-ulp-below-target": (
        SHORT,
        (ulp(96.0, DOWN), 102.5, 95.5, 100.0, 1.0),
        short_at_25(29, "target", ulp(96.0, DOWN), 0.04),
    ),
    # Opens exactly at the stop: not a gap beyond it, but the range (low <= open)
    # reaches it: "stop" at the stop, the same price as a gap exit would give.
    "long-opens-at-stop": (LONG, (98.0, 99.0, 97.0, 98.5, 1.0), LONG_STOPPED),
    "short-opens-at-stop": (SHORT, (102.0, 103.0, 101.0, 102.0, 1.0), SHORT_STOPPED_AT_29),
}


@pytest.mark.parametrize("case", list(GAPS))
def test_c12_an_open_exactly_at_a_level_is_not_a_gap_beyond_it(run_backtest, case):
    side, bar_29, want = GAPS[case]
    bars = common_long({29: bar_29}) if side == LONG else common_short({29: bar_29})
    result = run_backtest(series(40, bars), params(), NO_COSTS)
    assert_trades(result.trades, [want])


# ---------------------------------------------------------------- C5, C6: the volume filter


@pytest.mark.parametrize(
    ("spike_bar", "pierce_volume", "n_trades"),
    [
        # Volume 6 at bar 5 = p - 20, the window's first bar: mean = (6 + 19) / 20 = 1.25,
        # threshold 2 * 1.25 = 2.5; a pierce volume of exactly 2.5 passes (>=).
        pytest.param(5, 2.5, 1, id="exactly-threshold-times-mean"),
        pytest.param(5, ulp(2.5, DOWN), 0, id="one-ulp-below"),
        # Bar 5 is inside the window: 2.0 is below 2.5.
        pytest.param(5, 2.0, 0, id="first-bar-of-the-window-counts"),
        # Bar 24 = p - 1 is its last bar: the same.
        pytest.param(24, 2.5, 1, id="last-bar-of-the-window-exactly"),
        pytest.param(24, 2.0, 0, id="last-bar-of-the-window-counts"),
        # Bar 4 = p - 21 is outside: mean 1.0, and 2.0 passes exactly.
        pytest.param(4, 2.0, 1, id="bar-before-the-window-does-not-count"),
    ],
)
def test_c6_volume_exactly_at_threshold_times_the_20_bar_mean(
    run_backtest, spike_bar, pierce_volume, n_trades
):
    in_window = 20 - 1 + 6.0 if spike_bar in range(5, 25) else 20 * 1.0
    mean = in_window / 20
    assert 2.0 * mean == (2.5 if spike_bar in range(5, 25) else 2.0)  # exact in float64
    spike: Bar = (*FILLER[:4], 6.0)
    pierce: Bar = (*PIERCE_LOW[:4], pierce_volume)
    bars = {**support_at_98_5(), spike_bar: spike, 25: pierce, 30: HITS_104}
    result = run_backtest(series(35, bars), params(volume_spike_threshold=2.0), NO_COSTS)
    assert_trades(result.trades, [long_at_25(30, "target", 104.0, 0.04)][:n_trades])


# ---------------------------------------------------------------- C3: the grouping distance

DISTANCE = 2.0**-9  # 0.001953125: min_distance * price is exact for dyadic prices


@pytest.mark.parametrize(("beyond", "n_trades"), [(False, 1), (True, 0)], ids=["exact", "ulp"])
def test_c3_a_pivot_exactly_at_the_grouping_distance_joins_the_group(
    run_backtest, beyond, n_trades
):
    # Swing lows 98.5 (bar 6) and x = 98.5 + 98.5 * 2**-9 = 98.6923828125 (bar 12):
    # x - first <= min_distance * first holds with equality, so one group of 2 touches,
    # level (98.5 + x) / 2 = 98.59619140625. The pierce low 98.25 is below it and
    # >= 98.5962 * 0.995 = 98.103: the common long, target 104 on bar 30. One ulp
    # farther, x starts its own group: two 1-touch groups, no key level, no trade.
    x = 98.5 + 98.5 * DISTANCE
    assert x == 98.6923828125 and x - 98.5 == DISTANCE * 98.5
    if beyond:
        x = ulp(x, UP)
    swing_low_x: Bar = (100.0, x + 2.0, x, 100.0, 1.0)  # true range 2
    bars = {6: SWING_LOW, 12: swing_low_x, 25: PIERCE_LOW, 30: HITS_104}
    result = run_backtest(series(35, bars), params(min_distance_from_level=DISTANCE), NO_COSTS)
    level = (98.5 + x) / 2
    assert level == 98.59619140625 or beyond
    want = long_at_25(30, "target", 104.0, 0.04, level=98.59619140625)
    assert_trades(result.trades, [want][:n_trades])


@pytest.mark.parametrize(("beyond", "n_trades"), [(False, 1), (True, 0)], ids=["exact", "ulp"])
def test_c3_a_resistance_exactly_at_the_grouping_distance(run_backtest, beyond, n_trades):
    # Swing highs 101.5 (bar 6) and x = 101.5 * (1 + 2**-9) = 101.6982421875 (bar 12):
    # one group, R = 101.59912109375. PIERCE_HIGH's high 101.75 is above R and below
    # R * 1.005 = 102.107; close[24] = 100 < R. The short (stop 102, target 96) stops
    # out on bar 29. One ulp farther: no key level, no trade.
    x = 101.5 + 101.5 * DISTANCE
    assert x == 101.6982421875 and x - 101.5 == DISTANCE * 101.5
    if beyond:
        x = ulp(x, UP)
    swing_high_x: Bar = (100.0, x, x - 2.0, 100.0, 1.0)  # true range 2
    bars = {6: SWING_HIGH, 12: swing_high_x, 25: PIERCE_HIGH, 29: SHORT_STOPPED}
    result = run_backtest(series(35, bars), params(min_distance_from_level=DISTANCE), NO_COSTS)
    want = short_at_25(29, "stop", 102.0, -0.02, level=101.59912109375)
    assert_trades(result.trades, [want][:n_trades])


# ---------------------------------------------------------------- C2: the lookback window


@pytest.mark.parametrize(("lookback", "n_trades"), [(19, 1), (18, 0)])
def test_c2_a_pivot_exactly_at_the_lookback_edge_counts(run_backtest, lookback, n_trades):
    # The window at p = 25 is [25 - lookback, 24]. lookback 19: [6, 24] holds the swing
    # low of bar 6 (its first bar) and of bar 12: S = 98.5, the common long. lookback
    # 18: [7, 24] holds bar 12 only, a 1-touch group: no key level, no trade.
    assert 25 - 19 == 6
    bars = common_long({30: HITS_104})
    result = run_backtest(series(35, bars), params(key_level_lookback=lookback), NO_COSTS)
    assert_trades(result.trades, [long_at_25(30, "target", 104.0, 0.04)][:n_trades])


# ---------------------------------------------------------------- rule 1: strict pivots


@pytest.mark.parametrize("offset", [-2, -1, 1, 2])
@pytest.mark.parametrize("side", [LONG, SHORT], ids=["swing-low", "swing-high"])
def test_rule1_a_neighbour_with_an_equal_extreme_unmakes_a_pivot(run_backtest, side, offset):
    # Bar 12 would be the second touch of the level, but bar 12 + offset has the same
    # low 98.5 (or high 101.5): "strictly below/above the 2 bars on each side" fails for
    # both bars, so only bar 6 is a pivot, a 1-touch group: no key level, no trade.
    # (Without the twin, tests/test_backtest_cases.py trades on this very series.)
    twin = SWING_LOW if side == LONG else SWING_HIGH
    bars = common_long({30: HITS_104}) if side == LONG else common_short({29: SHORT_STOPPED})
    bars[12 + offset] = twin
    result = run_backtest(series(35, bars), params(), NO_COSTS)
    assert_trades(result.trades, [])


@pytest.mark.parametrize("side", [LONG, SHORT], ids=["long", "short"])
def test_rule1_the_same_series_without_a_twin_trades(run_backtest, side):
    # The control for the test above (its series minus the twin bar).
    if side == LONG:
        bars, want = common_long({30: HITS_104}), long_at_25(30, "target", 104.0, 0.04)
    else:
        bars, want = common_short({29: SHORT_STOPPED}), short_at_25(29, "stop", 102.0, -0.02)
    assert_trades(run_backtest(series(35, bars), params(), NO_COSTS).trades, [want])


# ---------------------------------------------------------------- C5: the pierce bar


PIERCE_CASES = {
    # "low[p] < S" is strict: a low exactly at S = 98.5 is no pierce. One ulp below is.
    # (Its range is then 2 + 1 ulp, so ATR[26] and the stop are a few ulps off 2 and 98.)
    "long-low-equals-level": (LONG, {25: (100.0, 100.5, 98.5, 100.0, 3.0)}, 0),
    "long-low-one-ulp-below-level": (LONG, {25: (100.0, 100.5, ulp(98.5, DOWN), 100.0, 3.0)}, 1),
    # "S < close[p-1]" is strict: the bar before the pierce closing exactly at S gives no
    # long; one ulp above it does. (Bar 24 has range 2 and bar 25's true range stays 2.)
    "long-previous-close-equals-level": (LONG, {24: (100.0, 100.5, 98.5, 98.5, 1.0)}, 0),
    "long-previous-close-one-ulp-above": (
        LONG, {24: (100.0, 100.5, 98.5, ulp(98.5, UP), 1.0)}, 1),
    # Shorts mirrored: "high[p] > R", "R > close[p-1]".
    "short-high-equals-level": (SHORT, {25: (100.0, 101.5, 99.5, 100.0, 3.0)}, 0),
    "short-high-one-ulp-above-level": (
        SHORT, {25: (100.0, ulp(101.5, UP), 99.5, 100.0, 3.0)}, 1),
    "short-previous-close-equals-level": (SHORT, {24: (100.0, 101.5, 99.5, 101.5, 1.0)}, 0),
    "short-previous-close-one-ulp-below": (
        SHORT, {24: (100.0, 101.5, 99.5, ulp(101.5, DOWN), 1.0)}, 1),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PIERCE_CASES))
def test_c5_the_pierce_bar_comparisons_are_strict_as_written(run_backtest, case):
    side, changed, n_trades = PIERCE_CASES[case]
    if side == LONG:
        bars = {**common_long({30: HITS_104}), **changed}
        want = Want(LONG, 25, 27, 30, "target", None, 0.04, 98.5)
    else:
        bars = {**common_short({29: SHORT_STOPPED}), **changed}
        want = Want(SHORT, 25, 27, 29, "stop", None, -0.02, 101.5)
    result = run_backtest(series(35, bars), params(), NO_COSTS)
    assert_trades(result.trades, [want][:n_trades])


PIERCE_DEPTH = 2.0**-8  # 0.00390625: R * (1 + depth) is exact for dyadic R


@pytest.mark.parametrize("min_distance", [0.001, 0.0])
@pytest.mark.parametrize(("beyond", "n_trades"), [(False, 1), (True, 0)], ids=["exact", "ulp"])
def test_c5_a_short_pierce_exactly_at_the_depth_limit_qualifies(
    run_backtest, beyond, n_trades, min_distance
):
    # "high[p] <= R * (1 + pierce_depth)": with depth 2**-8 the limit is 101.5 * 1.00390625
    # = 101.896484375 exactly. A pierce bar with that high (and low 2 below it: true
    # range 2) makes the short: stop 102, target 96, stopped on bar 29. One ulp higher
    # is too deep: no setup. (tests/test_backtest_cases.py has the long's limit.) The
    # level is the same with a zone width of 0 (its two pivots are equal), where the
    # level sits exactly on the edge of the band of prices the kernel searches first.
    limit = 101.5 * (1 + PIERCE_DEPTH)
    assert limit == 101.896484375
    high = ulp(limit, UP) if beyond else limit
    bars = common_short({25: (100.0, high, high - 2.0, 100.0, 3.0), 29: SHORT_STOPPED})
    setting = params(pierce_depth=PIERCE_DEPTH, min_distance_from_level=min_distance)
    result = run_backtest(series(35, bars), setting, NO_COSTS)
    assert_trades(result.trades, [short_at_25(29, "stop", 102.0, -0.02)][:n_trades])


# ---------------------------------------------------------------- C5: confirmation closes


@pytest.mark.parametrize(
    ("close_26", "n_trades"),
    [(101.5, 0), (ulp(101.5, DOWN), 1)],
    ids=["close-equal-to-level-cancels", "one-ulp-below-confirms"],
)
def test_c5_a_short_confirmation_close_exactly_at_the_level_cancels(
    run_backtest, close_26, n_trades
):
    # close[26] must be strictly below R = 101.5; equal cancels. Bar 26 = (100, 101.5,
    # 99.5, close_26): range 2, true range 2, so the confirmed short is the common one.
    bars = common_short({26: (100.0, 101.5, 99.5, close_26, 1.0), 29: SHORT_STOPPED})
    result = run_backtest(series(35, bars), params(), NO_COSTS)
    assert_trades(result.trades, [short_at_25(29, "stop", 102.0, -0.02)][:n_trades])


@pytest.mark.parametrize(
    ("close_27", "n_trades"),
    [(98.5, 0), (ulp(98.5, UP), 1)],
    ids=["second-close-equal-to-level-cancels", "one-ulp-above-confirms"],
)
def test_c5_the_last_of_several_confirmation_closes_counts_too(run_backtest, close_27, n_trades):
    # reversal_candles = 2: closes of bars 26 and 27 must both be above S = 98.5. close[26]
    # = 100 is; close[27] exactly 98.5 cancels. One ulp above confirms: e = 28 at open
    # 100, ATR[27] = 2 (bar 27 = (100, 100.5, 98.5, close_27) has true range 2), stop 98,
    # target 104, reached on bar 30.
    bars = common_long({27: (100.0, 100.5, 98.5, close_27, 1.0), 30: HITS_104})
    result = run_backtest(series(35, bars), params(reversal_candles=2), NO_COSTS)
    want = long_at_25(30, "target", 104.0, 0.04, entry_bar=28)
    assert_trades(result.trades, [want][:n_trades])


# ---------------------------------------------------------------- C7: the entry bar


@pytest.mark.parametrize(("n", "n_trades"), [(28, 1), (27, 0)])
def test_c7_a_setup_whose_entry_is_the_last_bar_is_taken(run_backtest, n, n_trades):
    # e = 27. With 28 bars it is the last bar: entered at its open 100, nothing reached,
    # and C12's "b == n - 1" closes it at its close 100: "end", ret 0. With 27 bars the
    # entry bar does not exist: no trade.
    result = run_backtest(series(n, common_long()), params(), NO_COSTS)
    assert_trades(result.trades, [long_at_25(27, "end", 100.0, 0.0)][:n_trades])


def test_c6_the_last_possible_pierce_bar_still_needs_its_volume(run_backtest):
    # n = 28: bar 25 is the last bar whose setup can have an entry bar (e = 27 = n - 1).
    # With volume 1 it fails the filter (1 < 2 * 1.0): no setup, although its prices
    # make one (the case above trades with volume 3).
    pierce: Bar = (*PIERCE_LOW[:4], 1.0)
    result = run_backtest(series(28, common_long({25: pierce})), params(), NO_COSTS)
    assert_trades(result.trades, [])


# ---------------------------------------------------------------- C19: equity exactly 0


def test_c19_marked_equity_exactly_zero_is_an_error(run_backtest):
    # The common short with atr_multiplier_sl 60: d = 120, stop 220, target -140. Bar 29
    # closes at 200 without reaching either: it marks at 1 * ((1 - 0) - (200 / 100 - 1))
    # = 0.0 exactly, which C19 rejects ("reaches 0 or below"), naming bar 29.
    assert (1.0 - 0.0) + -1 * (200.0 / 100.0 - 1.0) == 0.0
    bars = common_short({29: (100.0, 200.5, 99.5, 200.0, 1.0)})
    with pytest.raises(ValueError, match=r"bar\D{0,3}29\b"):
        run_backtest(series(35, bars), params(atr_multiplier_sl=60.0), NO_COSTS)


def test_c19_an_exit_to_equity_exactly_zero_is_an_error(run_backtest):
    # atr_multiplier_sl 50: d = 100, stop 200. Bar 29's high 200 reaches it exactly:
    # "stop" at 200, ret = -(200 / 100 - 1) - 0 = -1, equity 1 * (1 - 1) = 0.0 at bar 29.
    bars = common_short({29: (100.0, 200.0, 99.5, 150.0, 1.0)})
    with pytest.raises(ValueError, match=r"bar\D{0,3}29\b"):
        run_backtest(series(35, bars), params(atr_multiplier_sl=50.0), NO_COSTS)


def test_c19_equity_just_above_zero_is_fine(run_backtest):
    # The marked case with close 199.5: 1 - 0.995 = 0.005 > 0. The trade then runs to
    # e + 10 = 37: "time" at 100, ret 0 (stop 220 and target -140 never reached).
    bars = common_short({29: (100.0, 200.5, 99.5, 199.5, 1.0)})
    result = run_backtest(series(40, bars), params(atr_multiplier_sl=60.0), NO_COSTS)
    assert [(t.exit_bar, t.exit_reason, t.ret) for t in result.trades] == [(37, "time", 0.0)]


# ---------------------------------------------------------------- C16, C17: metrics


def test_c16_a_trade_returning_exactly_zero_neither_wins_nor_loses(run_backtest):
    # The common long with nothing reached: "time" at close[37] = 100, ret = 100/100 - 1
    # - 0 = 0.0 exactly. Win rate counts r > 0: 0 / 1 = 0.0; profit factor needs a
    # loser (r < 0): undefined.
    result = run_backtest(series(40, common_long()), params(), NO_COSTS)
    assert [(t.exit_reason, t.ret) for t in result.trades] == [("time", 0.0)]
    assert result.metrics["win_rate"] == 0.0
    assert result.metrics["profit_factor"] is None


@pytest.mark.parametrize(("min_trades", "is_sharpe"), [(1, True), (2, False)])
def test_c17_exactly_min_trades_scores_the_sharpe(run_backtest, min_trades, is_sharpe):
    # One trade (the common long, target on bar 30): n_trades >= min_trades holds with
    # equality at min_trades 1, so the score is the Sharpe; at 2 it is the penalty.
    constants = JobConstants(timeframe_minutes=5, fee=0.0, slippage=0.0, min_trades=min_trades)
    result = run_backtest(series(35, common_long({30: HITS_104})), params(), constants)
    assert result.metrics["n_trades"] == 1
    sharpe = result.metrics["sharpe"]
    assert sharpe is not None and sharpe != SCORE_PENALTY
    assert result.metrics["score"] == (sharpe if is_sharpe else SCORE_PENALTY)
