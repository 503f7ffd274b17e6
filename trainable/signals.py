"""Signals of STRATEGY.md: pivots (rule 1, C1), key levels (rule 2, C2-C3) and the
false-break setups at a pierce bar (rule 3, C4-C7).

Everything here is compiled by numba (`trainable.jit.kernel`) and works on float64 /
int64 arrays. Every float operation is the one the spec writes, in the spec's order, so
that the slow reference and this code agree to the last bit.

Speed without changing a result: the key levels of rule 2 are computed only at bars
where a setup is possible. The engine tests the volume filter of C6 first and keeps the
window's pivot prices sorted as the bar advances (`insert_sorted`, `remove_sorted`);
`setup_levels` then asks a second necessary condition ("enough pivots lie in the price
band where a qualifying level's zone must lie", `zone_band`) and groups the sorted
prices (C3) only when it holds, and only up to the band. The band is widened by a
relative 1e-9, so it can never reject a bar that the full rule would accept; the
grouping itself always starts from the lowest price, as C3 says.
"""

from __future__ import annotations

import math

import numpy as np

from trainable.jit import kernel

PIVOT_WING = 2  # W of rule 1: bars on each side of a swing high or low
VOLUME_BARS = 20  # C6: bars in the volume mean
BAND_SLACK = 1e-9  # relative widening of the necessary-condition band (see module doc)


@kernel
def find_pivots(high: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled pivots of C1, in bar order: (bar index int64, price float64).

    A swing high at `i` contributes `high[i]`, a swing low `low[i]`; a bar that is both
    contributes twice (high first). Only `2 <= i <= n-3` can be pivots (C1).
    """
    n = high.size
    # Two swing highs are at least 3 bars apart (the bars next to one are lower), so
    # are two swing lows: at most 2 * (n // 3 + 1) pivots.
    capacity = 2 * (n // 3 + 1)
    index = np.empty(capacity, np.int64)
    price = np.empty(capacity, np.float64)
    count = 0
    for i in range(PIVOT_WING, n - PIVOT_WING):
        h = high[i]
        if h > high[i - 1] and h > high[i - 2] and h > high[i + 1] and h > high[i + 2]:
            index[count] = i
            price[count] = h
            count += 1
        lo = low[i]
        if lo < low[i - 1] and lo < low[i - 2] and lo < low[i + 1] and lo < low[i + 2]:
            index[count] = i
            price[count] = lo
            count += 1
    return index[:count], price[:count]


@kernel
def volume_means(volume: np.ndarray) -> np.ndarray:
    """C6 for every bar: mean[p] = (left-to-right sum of volume[p-20 .. p-1]) / 20.

    NaN for p < 20 (no setup there). Each bar's sum is its own 20 additions in order,
    never a rolling sum (which would round differently); the loops run over blocks of
    bars with the term index outside, so that the additions of neighbouring bars are
    independent and vectorize, while each bar still adds its terms left to right.
    """
    n = volume.size
    mean = np.full(n, np.nan)
    block = 256
    total = np.empty(block, np.float64)
    for start in range(VOLUME_BARS, n, block):
        stop = min(start + block, n)
        width = stop - start
        total[:width] = 0.0
        for j in range(VOLUME_BARS):
            offset = start - VOLUME_BARS + j
            for q in range(width):
                total[q] += volume[offset + q]
        for q in range(width):
            mean[start + q] = total[q] / VOLUME_BARS
    return mean


@kernel
def insert_sorted(window: np.ndarray, size: int, price: float) -> int:
    """Insert `price` into the ascending `window[:size]`; returns the new size."""
    i = size
    while i > 0 and window[i - 1] > price:
        window[i] = window[i - 1]
        i -= 1
    window[i] = price
    return size + 1


@kernel
def remove_sorted(window: np.ndarray, size: int, price: float) -> int:
    """Remove one copy of `price` (which must be present) from the ascending
    `window[:size]`; returns the new size. Equal prices are interchangeable."""
    i = np.searchsorted(window[:size], price)
    for j in range(i, size - 1):
        window[j] = window[j + 1]
    return size - 1


@kernel
def count_in_band(sorted_prices: np.ndarray, lower: float, upper: float) -> int:
    """How many of the ascending `sorted_prices` lie in the band (lower, upper]."""
    above_lower = np.searchsorted(sorted_prices, lower, "right")
    return int(np.searchsorted(sorted_prices, upper, "right") - above_lower)


@kernel
def qualifying_levels(
    sorted_prices: np.ndarray,
    min_distance: float,
    min_touches: int,
    low_p: float,
    high_p: float,
    close_prev: float,
    pierce_depth: float,
    highest_start: float,
) -> tuple[float, float]:
    """Key levels of rule 2 (C3 grouping) that qualify at the pierce bar (C4, C5).

    Returns (lowest qualifying support, highest qualifying resistance), NaN where none.
    Groups are formed over the ascending prices from the lowest one: `x` joins the current
    group iff `x - first <= min_distance * first`; a group's level is its left-to-right
    sum / count. Group levels ascend, so the first qualifying support is the lowest and
    the last qualifying resistance the highest. Groups whose first price is above
    `highest_start` are known not to qualify and are not formed.
    """
    support = math.nan
    resistance = math.nan
    below = 1.0 - pierce_depth
    above = 1.0 + pierce_depth
    k = sorted_prices.size
    i = 0
    while i < k and sorted_prices[i] <= highest_start:
        first = sorted_prices[i]
        limit = min_distance * first
        total = first
        j = i + 1
        while j < k and sorted_prices[j] - first <= limit:
            total += sorted_prices[j]
            j += 1
        if j - i >= min_touches:
            level = total / (j - i)
            if (
                math.isnan(support)
                and level < close_prev
                and low_p < level
                and low_p >= level * below
            ):
                support = level
            if level > close_prev and high_p > level and high_p <= level * above:
                resistance = level
        i = j
    return support, resistance


@kernel
def zone_band(lower: float, upper: float, min_distance: float) -> tuple[float, float]:
    """Where every price of a zone whose level lies in [lower, upper] must lie.

    A group spans [g1, gm] with gm <= g1 * (1 + min_distance) and its level (a mean)
    lies in [g1, gm]; so level >= lower gives g1 >= gm / (1 + d) >= lower / (1 + d), and
    level <= upper gives gm <= g1 * (1 + d) <= upper * (1 + d). Widened by BAND_SLACK
    against rounding (a mean of m prices is off by at most m * 2**-53 relative, far
    below 1e-9 for any window that fits in memory).
    """
    spread = 1.0 + min_distance
    return lower / spread * (1.0 - BAND_SLACK), upper * spread * (1.0 + BAND_SLACK)


@kernel
def setup_levels(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    window: np.ndarray,
    p: int,
    min_distance: float,
    min_touches: int,
    pierce_depth: float,
) -> tuple[float, float]:
    """The levels of the long and the short setup at pierce bar `p` (rule 3, C4, C5).

    `window` holds, ascending, the prices of the pivots known at `p` whose bar lies in
    `[max(0, p - lookback), p - 1]` (C2). Returns (support, resistance): the lowest
    qualifying support below `close[p-1]` pierced by `low[p]`, and the highest
    qualifying resistance, NaN where there is none. The volume filter (C6) is the
    caller's. Needs `p >= 1`.
    """
    nan = math.nan
    close_prev = close[p - 1]
    low_p = low[p]
    high_p = high[p]
    # A support S needs low_p < S < close_prev; a resistance R close_prev < R < high_p.
    long_possible = low_p < close_prev
    short_possible = high_p > close_prev
    highest_start = -math.inf
    if long_possible:
        # low_p >= S * (1 - depth) bounds S above when the depth is below 1.
        upper = close_prev
        if pierce_depth < 1.0:
            upper = min(upper, low_p / ((1.0 - pierce_depth) * (1.0 - BAND_SLACK)))
        band_lo, band_hi = zone_band(low_p, upper, min_distance)
        long_possible = count_in_band(window, band_lo, band_hi) >= min_touches
        if long_possible:
            highest_start = band_hi
    if short_possible:
        lower = max(close_prev, high_p / ((1.0 + pierce_depth) * (1.0 + BAND_SLACK)))
        band_lo, band_hi = zone_band(lower, high_p, min_distance)
        short_possible = count_in_band(window, band_lo, band_hi) >= min_touches
        if short_possible:
            highest_start = max(highest_start, band_hi)
    if not (long_possible or short_possible):
        return nan, nan
    return qualifying_levels(
        window, min_distance, min_touches, low_p, high_p, close_prev, pierce_depth,
        highest_start,
    )  # fmt: skip


@kernel
def long_confirmed(close: np.ndarray, p: int, reversal_candles: int, level: float) -> bool:
    """Rule 3 / C5: closes of bars p+1 .. p+reversal_candles all strictly above `level`."""
    for b in range(p + 1, p + reversal_candles + 1):  # noqa: SIM110 (a loop numba compiles)
        if not close[b] > level:
            return False
    return True


@kernel
def short_confirmed(close: np.ndarray, p: int, reversal_candles: int, level: float) -> bool:
    """Rule 3 / C5 mirrored: closes of bars p+1 .. p+reversal_candles all strictly below."""
    for b in range(p + 1, p + reversal_candles + 1):  # noqa: SIM110 (a loop numba compiles)
        if not close[b] < level:
            return False
    return True
