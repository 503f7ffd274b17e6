"""The slow reference backtest: STRATEGY.md read rule by rule, in plain Python loops.

It exists to be obviously correct, not fast (O(n * key_level_lookback)); the fast kernel
in `trainable.backtest` must give the same trades and metrics bit for bit (the
differential tests). Every convention's id (C1..C19) stands beside the code that
implements it. Only Python floats and ints are used: no numpy arithmetic, so no
vectorized sums or fused operations can change an order of operations.

Choices where STRATEGY.md is silent (each a deliberate reading, pinned by a micro case
in tests/test_backtest_cases*.py or, for bits, by the golden values):
- An empty candle series is rejected with a ValueError (there is no E_0 bar to mark).
- A square is `x * x`, the correctly rounded product. Python's `x ** 2` goes through
  libm's pow, which is one ulp off for about 0.1% of doubles; numpy and numba square
  by multiplying.
- Max drawdown at bar t is `(peak - E_t) / peak`, `peak` the highest marked equity up
  to t (E_0 included); 0.0 when equity never falls.
- Equity "reaching 0 or below" (C19) is checked on the marked equity E_t of every bar,
  not only after trades; the ValueError names the first such bar.
- A winning trade has ret > 0, a losing one ret < 0; a trade with ret == 0 is neither
  (win rate counts it in the denominator, profit factor ignores it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.reference_metrics import compute_metrics, left_to_right_sum, marked_equity
from trainable.backtest import Candles, JobConstants, Trade
from trainable.params import StrategyParams

PIVOT_WING = 2  # W of rule 1: bars on each side of a pivot
VOLUME_WINDOW = 20  # C6
ATR_PERIOD = 14  # C10
LONG, SHORT = 1, -1
SIDE_NAMES = {LONG: "long", SHORT: "short"}


@dataclass(frozen=True)
class ReferenceResult:
    """Trades in entry order, metrics (METRIC_NAMES, plain values, None = undefined),
    and counts of what the run exercised (for the tests' coverage checks)."""

    trades: tuple[Trade, ...]
    metrics: dict[str, int | float | None]
    diagnostics: dict[str, int] = field(default_factory=dict)


def reference_backtest(
    candles: Candles, params: StrategyParams, constants: JobConstants
) -> ReferenceResult:
    """Run STRATEGY.md over `candles`; raises ValueError naming the bar when marked
    equity reaches <= 0 (C19), or when there are no candles."""
    n = len(candles)
    if n == 0:
        raise ValueError("candles are empty: a backtest needs at least one bar")
    bars = _Bars(
        open=[float(x) for x in candles.open],
        high=[float(x) for x in candles.high],
        low=[float(x) for x in candles.low],
        close=[float(x) for x in candles.close],
        volume=[float(x) for x in candles.volume],
    )
    diagnostics = dict.fromkeys(DIAGNOSTIC_NAMES, 0)
    trades = _run_strategy(bars, params, constants, diagnostics)
    equity = marked_equity(trades, bars.close, constants.fee)
    metrics = compute_metrics(trades, equity, constants)
    return ReferenceResult(tuple(trades), metrics, diagnostics)


DIAGNOSTIC_NAMES = (
    "pierce_bars_long",  # bars with >= 1 qualifying support (C5, C6)
    "pierce_bars_short",
    "multi_level_bars_c4",  # bars with >= 2 qualifying levels on one side (C4)
    "setups_cancelled",  # a confirmation close at or beyond the level (C5)
    "setups_unresolved",  # the data ends before the setup's entry bar (C7)
    "setups_confirmed_long",
    "setups_confirmed_short",
    "setups_blocked_c8",  # confirmed while a position is open at e (C8)
    "setups_dropped_c9",  # a short confirmed for the same entry bar as a long (C9)
    "multi_level_trades_c4",  # trades from a bar with >= 2 qualifying levels on its side
)


@dataclass(frozen=True)
class _Bars:
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]


# ---------------------------------------------------------------- rules 1-2: levels


def swing_pivots(high: list[float], low: list[float]) -> list[tuple[int, float]]:
    """Rule 1, C1: (bar, price) of every swing high and swing low, in bar order.

    A swing high is strictly above the highs of the 2 bars on each side, a swing low
    strictly below their lows; bars with fewer than 2 neighbours on a side are never
    pivots. A bar that is both contributes two prices (its high, then its low).
    """
    pivots = []
    for i in range(PIVOT_WING, len(high) - PIVOT_WING):
        neighbours = [j for j in range(i - PIVOT_WING, i + PIVOT_WING + 1) if j != i]
        if all(high[i] > high[j] for j in neighbours):
            pivots.append((i, high[i]))
        if all(low[i] < low[j] for j in neighbours):
            pivots.append((i, low[i]))
    return pivots


def key_levels(
    pivots: list[tuple[int, float]], t: int, params: StrategyParams
) -> list[tuple[float, int]]:
    """Rule 2: (level, touches) of the key levels at bar t, levels ascending.

    C2: a pivot at i is known at t iff i + 2 <= t, and only i in
    [max(0, t - lookback), t - 1] count. C3: greedy grouping of the ascending prices,
    x joins iff x - first <= min_distance * first; level = left-to-right sum / count.
    """
    window_start = max(0, t - params.key_level_lookback)
    prices = sorted(
        price for i, price in pivots if window_start <= i <= t - 1 and i + PIVOT_WING <= t
    )
    groups: list[list[float]] = []
    for x in prices:
        if groups and x - groups[-1][0] <= params.min_distance_from_level * groups[-1][0]:
            groups[-1].append(x)
        else:
            groups.append([x])
    levels = []
    for group in groups:
        if len(group) >= params.min_level_touches:
            levels.append((left_to_right_sum(group) / len(group), len(group)))
    return levels


def wilder_atr(high: list[float], low: list[float], close: list[float]) -> list[float | None]:
    """C10: Wilder's ATR(14) with TA-Lib seeding; None where not yet defined (i < 14).

    TR[i] = max(high - low, |high - close[i-1]|, |low - close[i-1]|) for i >= 1;
    ATR[14] = mean(TR[1..14]); ATR[i] = (ATR[i-1] * 13 + TR[i]) / 14.
    """
    n = len(close)
    true_range = [0.0] * n
    for i in range(1, n):
        true_range[i] = max(
            high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])
        )
    atr: list[float | None] = [None] * n
    if n > ATR_PERIOD:
        atr[ATR_PERIOD] = left_to_right_sum(true_range[1 : ATR_PERIOD + 1]) / ATR_PERIOD
        for i in range(ATR_PERIOD + 1, n):
            previous = atr[i - 1]
            assert previous is not None
            atr[i] = (previous * (ATR_PERIOD - 1) + true_range[i]) / ATR_PERIOD
    return atr


# ---------------------------------------------------------------- rules 3-4: setups


def qualifying_levels(
    bars: _Bars, p: int, levels: list[tuple[float, int]], params: StrategyParams, side: int
) -> list[float]:
    """Rule 3, C5, C6: the key levels at pierce bar p that make a `side` setup.

    Long: S < close[p-1], low[p] < S, low[p] >= S * (1 - pierce_depth). Short mirrored.
    Both need volume[p] >= threshold * (left-to-right sum of volume[p-20..p-1]) / 20,
    and p >= 20.
    """
    if p < VOLUME_WINDOW:  # C6: no setup before bar 20
        return []
    mean_volume = left_to_right_sum(bars.volume[p - VOLUME_WINDOW : p]) / VOLUME_WINDOW
    if not bars.volume[p] >= params.volume_spike_threshold * mean_volume:
        return []
    found = []
    for level, _touches in levels:
        if side == LONG:
            pierced = (
                level < bars.close[p - 1]
                and bars.low[p] < level
                and bars.low[p] >= level * (1 - params.pierce_depth)
            )
        else:
            pierced = (
                level > bars.close[p - 1]
                and bars.high[p] > level
                and bars.high[p] <= level * (1 + params.pierce_depth)
            )
        if pierced:
            found.append(level)
    return found


def confirmation(bars: _Bars, p: int, level: float, reversal_candles: int, side: int) -> str:
    """Rule 3, C5, C7: "confirmed", "cancelled" or "unresolved" (data ends first).

    Confirmed when the closes of p+1 .. p+reversal_candles are all strictly on the
    right side of the level (above a support, below a resistance) and the entry bar
    e = p + reversal_candles + 1 exists; a close at or beyond the level cancels.
    """
    n = len(bars.close)
    for j in range(p + 1, p + reversal_candles + 1):
        if j >= n:
            return "unresolved"
        right_side = bars.close[j] > level if side == LONG else bars.close[j] < level
        if not right_side:
            return "cancelled"
    if p + reversal_candles + 1 >= n:  # C7: a setup needs its entry bar to exist
        return "unresolved"
    return "confirmed"


def _run_strategy(
    bars: _Bars, params: StrategyParams, constants: JobConstants, diagnostics: dict[str, int]
) -> list[Trade]:
    """Rules 3-5 over every pierce bar in order (entries come in order of p, e = p + rc + 1)."""
    pivots = swing_pivots(bars.high, bars.low)
    atr = wilder_atr(bars.high, bars.low, bars.close)
    trades: list[Trade] = []
    for p in range(1, len(bars.close)):
        confirmed = _confirmed_setups(bars, pivots, p, params, diagnostics)
        if not confirmed:
            continue
        e = p + params.reversal_candles + 1  # rule 4
        if trades and not trades[-1].exit_bar < e:  # C8: blocked setups are dropped
            diagnostics["setups_blocked_c8"] += len(confirmed)
            continue
        side = LONG if LONG in confirmed else SHORT  # C9: long wins
        diagnostics["setups_dropped_c9"] += len(confirmed) - 1
        level, several_levels = confirmed[side]
        diagnostics["multi_level_trades_c4"] += several_levels
        atr_before_entry = atr[e - 1]
        assert atr_before_entry is not None  # e - 1 >= 21 > 14 because p >= 20 (C6)
        trades.append(simulate_trade(bars, side, p, e, level, atr_before_entry, params, constants))
    return trades


def _confirmed_setups(
    bars: _Bars,
    pivots: list[tuple[int, float]],
    p: int,
    params: StrategyParams,
    diagnostics: dict[str, int],
) -> dict[int, tuple[float, bool]]:
    """C4, C7: side -> (level, whether several levels qualified) for the setups of
    pierce bar p that confirm. At most one long and one short per pierce bar."""
    levels = key_levels(pivots, p, params)
    found = {side: qualifying_levels(bars, p, levels, params, side) for side in (LONG, SHORT)}
    if len(found[LONG]) >= 2 or len(found[SHORT]) >= 2:
        diagnostics["multi_level_bars_c4"] += 1
    confirmed = {}
    for side in (LONG, SHORT):
        if not found[side]:
            continue
        name = SIDE_NAMES[side]
        diagnostics[f"pierce_bars_{name}"] += 1
        # C4: each qualifying level is its own setup and the bar signals if any confirms.
        # Closes above a support are above every lower one, so the lowest support
        # confirms iff any does, and it is the trade's level (shorts: the highest).
        level = min(found[side]) if side == LONG else max(found[side])
        outcome = confirmation(bars, p, level, params.reversal_candles, side)
        if outcome == "confirmed":
            diagnostics[f"setups_confirmed_{name}"] += 1
            confirmed[side] = (level, len(found[side]) >= 2)
        else:
            diagnostics[f"setups_{outcome}"] += 1
    return confirmed


# ---------------------------------------------------------------- rules 5-6: exits, costs


def simulate_trade(
    bars: _Bars,
    side: int,
    p: int,
    e: int,
    level: float,
    atr_before_entry: float,
    params: StrategyParams,
    constants: JobConstants,
) -> Trade:
    """Rule 5, C11-C14: one trade entered at open[e], followed bar by bar to its exit."""
    entry = bars.open[e]  # C11: stop and target from the raw open
    d = params.atr_multiplier_sl * atr_before_entry  # C10; d == 0 is not special (C19)
    if side == LONG:
        stop, target = entry - d, entry + params.risk_reward_ratio * d
    else:
        stop, target = entry + d, entry - params.risk_reward_ratio * d
    n = len(bars.close)
    for b in range(e, n):  # C12: from the entry bar itself on
        found = _exit_at(bars, b, side, stop, target)
        if found is None and b == e + params.max_holding_periods:  # C13: exit at e + H
            found = (bars.close[b], "time")
        if found is None and b == n - 1:
            found = (bars.close[b], "end")
        if found is not None:
            exit_bar, (exit_price, reason) = b, found
            break
    # C14: slippage is adverse on every fill; the fee is a fraction of each fill's notional.
    s = constants.slippage
    if side == LONG:
        entry_fill, exit_fill = entry * (1 + s), exit_price * (1 - s)
    else:
        entry_fill, exit_fill = entry * (1 - s), exit_price * (1 + s)
    g = exit_fill / entry_fill
    ret = side * (g - 1) - constants.fee * (1 + g)
    return Trade(
        side=side,
        pierce_bar=p,
        entry_bar=e,
        exit_bar=exit_bar,
        level=level,
        entry_price=entry,
        stop=stop,
        target=target,
        exit_price=exit_price,
        exit_reason=reason,  # type: ignore[arg-type]
        entry_fill=entry_fill,
        exit_fill=exit_fill,
        ret=ret,
    )


def _exit_at(
    bars: _Bars, b: int, side: int, stop: float, target: float
) -> tuple[float, str] | None:
    """C12's price checks at bar b, in order: (exit price, reason) or None.

    A bar opening beyond the stop or the target exits at its open; else a range
    reaching the stop exits at the stop, before a range reaching the target (pessimistic:
    a bar that reaches both is a stop). Triggered by raw prices (C11).
    """
    if side == LONG:
        if bars.open[b] < stop:
            return bars.open[b], "stop"
        if bars.open[b] > target:
            return bars.open[b], "target"
        if bars.low[b] <= stop:
            return stop, "stop"
        if bars.high[b] >= target:
            return target, "target"
        return None
    if bars.open[b] > stop:
        return bars.open[b], "stop"
    if bars.open[b] < target:
        return bars.open[b], "target"
    if bars.high[b] >= stop:
        return stop, "stop"
    if bars.low[b] <= target:
        return target, "target"
    return None
