"""The execution engine of STRATEGY.md: entries (rule 4, C8-C9), stop and target from
Wilder's ATR (rule 5, C10-C13), costs (rule 6, C14) and the marked equity curve (C15).

Compiled by numba (`trainable.jit.kernel`); every float operation is the spec's, in the
spec's order. The scan over pierce bars skips the bars whose setups could only be
dropped by C8: after a trade exits at bar x, the next setup that can be taken has its
entry at x + 1 or later, i.e. its pierce bar at x - reversal_candles or later. Setups
are independent (C7) and all have the same delay to entry, so nothing else depends on
the skipped bars.
"""

from __future__ import annotations

import math

import numpy as np

from trainable.jit import kernel
from trainable.signals import (
    PIVOT_WING,
    VOLUME_BARS,
    insert_sorted,
    long_confirmed,
    remove_sorted,
    setup_levels,
    short_confirmed,
)

ATR_PERIOD = 14  # C10

# Exit reason codes (trainable.types.EXIT_REASONS names them).
EXIT_STOP, EXIT_TARGET, EXIT_TIME, EXIT_END = 0, 1, 2, 3

# Columns of the integer and float trade tables that `find_trades` returns.
T_SIDE, T_PIERCE, T_ENTRY, T_EXIT, T_REASON = range(5)
T_LEVEL, T_ENTRY_PRICE, T_STOP, T_TARGET, T_EXIT_PRICE, T_ENTRY_FILL, T_EXIT_FILL, T_RET = range(8)


@kernel
def first_bad_row(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> tuple[int, int]:
    """(row, column) of the first price <= 0 or volume < 0, or (-1, -1) when all are fine.

    Columns are numbered open, high, low, close, volume = 0..4.
    """
    for i in range(close.size):
        if not open_[i] > 0.0:
            return i, 0
        if not high[i] > 0.0:
            return i, 1
        if not low[i] > 0.0:
            return i, 2
        if not close[i] > 0.0:
            return i, 3
        if not volume[i] >= 0.0:
            return i, 4
    return -1, -1


@kernel
def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """C10: Wilder's ATR(14) with TA-Lib seeding; NaN before bar 14.

    TR[i] = max(high-low, |high-close[i-1]|, |low-close[i-1]|) for i >= 1;
    ATR[14] = left-to-right sum of TR[1..14] / 14; ATR[i] = (ATR[i-1]*13 + TR[i]) / 14.
    """
    n = close.size
    atr = np.full(n, np.nan)
    if n <= ATR_PERIOD:
        return atr
    total = 0.0
    for i in range(1, ATR_PERIOD + 1):
        total += _true_range(high, low, close, i)
    value = total / ATR_PERIOD
    atr[ATR_PERIOD] = value
    for i in range(ATR_PERIOD + 1, n):
        value = (value * (ATR_PERIOD - 1.0) + _true_range(high, low, close, i)) / ATR_PERIOD
        atr[i] = value
    return atr


@kernel
def _true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray, i: int) -> float:
    previous = close[i - 1]
    return max(high[i] - low[i], abs(high[i] - previous), abs(low[i] - previous))


@kernel
def trade_exit(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    side: int,
    entry_bar: int,
    stop: float,
    target: float,
    max_holding: int,
) -> tuple[int, float, int]:
    """C12: (exit bar, raw exit price, reason code) of a trade entered at `entry_bar`.

    Checked for every bar b >= entry_bar, in order: open beyond the stop, open beyond the
    target (exit at the open), range reaching the stop, range reaching the target (exit
    at the level: stop first, pessimistic), b == entry + max_holding (time), b == n-1
    (end). Raw prices only (C11), so the path does not depend on costs.
    """
    last = close.size - 1
    for b in range(entry_bar, last + 1):
        if side > 0:
            if open_[b] < stop:
                return b, open_[b], EXIT_STOP
            if open_[b] > target:
                return b, open_[b], EXIT_TARGET
            if low[b] <= stop:
                return b, stop, EXIT_STOP
            if high[b] >= target:
                return b, target, EXIT_TARGET
        else:
            if open_[b] > stop:
                return b, open_[b], EXIT_STOP
            if open_[b] < target:
                return b, open_[b], EXIT_TARGET
            if high[b] >= stop:
                return b, stop, EXIT_STOP
            if low[b] <= target:
                return b, target, EXIT_TARGET
        if b == entry_bar + max_holding:
            return b, close[b], EXIT_TIME
    return last, close[last], EXIT_END


@kernel
def _grow(ints: np.ndarray, floats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bigger_ints = np.empty((2 * ints.shape[0], ints.shape[1]), np.int64)
    bigger_floats = np.empty((2 * floats.shape[0], floats.shape[1]), np.float64)
    bigger_ints[: ints.shape[0]] = ints
    bigger_floats[: floats.shape[0]] = floats
    return bigger_ints, bigger_floats


@kernel
def advance_window(
    window: np.ndarray,
    size: int,
    oldest: int,
    known: int,
    pivot_bar: np.ndarray,
    pivot_price: np.ndarray,
    p: int,
    lookback: int,
) -> tuple[int, int, int]:
    """Bring the sorted window of C2 to bar `p` (later than any bar it was at before).

    The window holds the prices of pivots `oldest .. known-1`: pivots enter when known
    (bar + 2 <= p) and leave when their bar drops below p - lookback. A pivot that
    would enter and leave between two calls never enters. Returns (size, oldest, known).
    """
    new_oldest = oldest
    while new_oldest < pivot_bar.size and pivot_bar[new_oldest] < p - lookback:
        new_oldest += 1
    new_known = known
    while new_known < pivot_bar.size and pivot_bar[new_known] + PIVOT_WING <= p:
        new_known += 1
    for leaving in range(oldest, min(new_oldest, known)):
        size = remove_sorted(window, size, pivot_price[leaving])
    for entering in range(max(known, new_oldest), new_known):
        size = insert_sorted(window, size, pivot_price[entering])
    return size, new_oldest, new_known


@kernel
def next_volume_spike(
    volume: np.ndarray, volume_mean: np.ndarray, threshold: float, p: int, last: int
) -> int:
    """The first bar q in [p, last] with volume[q] >= threshold * mean (C6), else last + 1.

    A loop of its own: compiled inside the trade loop, it ran ~30x slower.
    """
    while p <= last and not volume[p] >= threshold * volume_mean[p]:
        p += 1
    return p


@kernel
def confirmed_setup(
    close: np.ndarray, p: int, reversal_candles: int, support: float, resistance: float
) -> tuple[int, float]:
    """(side, level) of the setup taken at pierce bar p, or (0, NaN) when none confirms.

    C9: the long wins when both confirm for the same entry bar.
    """
    if not math.isnan(support) and long_confirmed(close, p, reversal_candles, support):
        return 1, support
    if not math.isnan(resistance) and short_confirmed(close, p, reversal_candles, resistance):
        return -1, resistance
    return 0, math.nan


@kernel
def find_trades(
    candles: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    volume_mean: np.ndarray,
    pivot_bar: np.ndarray,
    pivot_price: np.ndarray,
    atr: np.ndarray,
    levels: tuple[int, int, float, float, int, float],
    exits: tuple[float, float, int],
    costs: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Every trade of the strategy, in entry order: (int table, float table).

    `candles` is (open, high, low, close, volume); `levels` is (lookback, min_touches,
    min_distance, pierce_depth, reversal_candles, volume_threshold); `exits` is
    (atr_multiplier, risk_reward, max_holding); `costs` is (fee, slippage).
    `volume_mean`, the pivots and `atr` come from `volume_means`, `find_pivots` and
    `wilder_atr`. Rows of the int table: side (+1/-1), pierce, entry and exit bar, exit
    reason code; of the float table: level, raw entry price, stop, target, raw exit
    price, entry and exit fill (with slippage), net return (C14).
    """
    _, high, low, close, volume = candles
    lookback, min_touches, min_distance, pierce_depth, reversal_candles, threshold = levels
    n = close.size
    ints = np.empty((64, 5), np.int64)
    floats = np.empty((64, 8), np.float64)
    count = 0
    window = np.empty(min(pivot_price.size, 2 * (lookback // 3 + 2)), np.float64)
    size, oldest, known = 0, 0, 0
    p = VOLUME_BARS  # C6: no setup before bar 20
    last_pierce = n - 2 - reversal_candles  # C7: the entry bar must exist
    while True:
        # Most bars fail the volume filter (C6): find the next that passes first.
        p = next_volume_spike(volume, volume_mean, threshold, p, last_pierce)
        if p > last_pierce:
            break
        size, oldest, known = advance_window(
            window, size, oldest, known, pivot_bar, pivot_price, p, lookback
        )
        support, resistance = setup_levels(
            high, low, close, window[:size], p, min_distance, min_touches, pierce_depth
        )
        side, level = confirmed_setup(close, p, reversal_candles, support, resistance)
        if side == 0:
            p += 1
            continue
        entry_bar = p + reversal_candles + 1
        exit_bar, reason, values = enter_and_exit(candles, atr, side, entry_bar, exits, costs)
        if count == ints.shape[0]:
            ints, floats = _grow(ints, floats)
        ints[count] = (side, p, entry_bar, exit_bar, reason)
        floats[count] = (level, *values)
        count += 1
        # C8: the next trade needs its entry bar after this exit bar.
        p = max(p + 1, exit_bar - reversal_candles)
    return ints[:count].copy(), floats[:count].copy()


@kernel
def enter_and_exit(
    candles: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    atr: np.ndarray,
    side: int,
    entry_bar: int,
    exits: tuple[float, float, int],
    costs: tuple[float, float],
) -> tuple[int, int, tuple[float, float, float, float, float, float, float]]:
    """One trade from its entry bar: (exit bar, reason code, (entry price, stop, target,
    exit price, entry fill, exit fill, net return)) by rule 5 and C10-C14."""
    open_, high, low, close, _ = candles
    atr_multiplier, risk_reward, max_holding = exits
    fee, slippage = costs
    entry = open_[entry_bar]
    distance = atr_multiplier * atr[entry_bar - 1]  # C10: the ATR known at e - 1
    if side > 0:
        stop, target = entry - distance, entry + risk_reward * distance
        entry_fill = entry * (1.0 + slippage)
    else:
        stop, target = entry + distance, entry - risk_reward * distance
        entry_fill = entry * (1.0 - slippage)
    exit_bar, exit_price, reason = trade_exit(
        open_, high, low, close, side, entry_bar, stop, target, max_holding
    )
    exit_fill = exit_price * (1.0 - slippage) if side > 0 else exit_price * (1.0 + slippage)
    gross = exit_fill / entry_fill
    ret = side * (gross - 1.0) - fee * (1.0 + gross)
    return exit_bar, reason, (entry, stop, target, exit_price, entry_fill, exit_fill, ret)


@kernel
def equity_curve(
    close: np.ndarray, ints: np.ndarray, floats: np.ndarray, fee: float
) -> tuple[np.ndarray, int]:
    """C15: equity marked at every close, E_0 = 1.0; and the first bar where it is <= 0.

    Flat: the cash N. In a trade (entry <= t < exit): N * ((1 - fee) + side *
    (close[t] / entry_fill - 1)). On the exit bar: N * (1 + ret), the new cash. Returns
    (equity, -1), or (partial equity, bar) as soon as a marked value is <= 0 (C19).
    """
    n = close.size
    equity = np.empty(n, np.float64)
    cash = 1.0
    kept = 1.0 - fee
    t = 0
    for k in range(ints.shape[0]):
        side = ints[k, T_SIDE]
        entry_bar = ints[k, T_ENTRY]
        exit_bar = ints[k, T_EXIT]
        entry_fill = floats[k, T_ENTRY_FILL]
        while t < entry_bar:
            equity[t] = cash
            t += 1
        while t < exit_bar:
            marked = cash * (kept + side * (close[t] / entry_fill - 1.0))
            equity[t] = marked
            if not marked > 0.0:
                return equity, t
            t += 1
        cash = cash * (1.0 + floats[k, T_RET])
        equity[t] = cash
        if not cash > 0.0:
            return equity, t
        t += 1
    while t < n:
        equity[t] = cash
        t += 1
    return equity, -1
