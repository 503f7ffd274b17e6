"""Random candle series that make the strategy trade, for the differential tests.

A range-bound random walk: the log price reverts towards an anchor that jumps now and
then, with GARCH(1,1)-like volatility clustering and occasional gaps. The range has
"sticky" edges a band away from the anchor: a wick that crosses an edge usually stops
a little beyond it and the close usually comes back inside, as at a price where resting
orders sit. So swing highs and lows repeat near the same prices (key levels with
several touches) and shallow false breaks are common. Volume spikes favour bars with
long wicks (the pierce bars). Prices are rounded to a tick, which makes exact ties (a
close equal to a level, equal pivots) common enough to test strictness.

Deterministic: a function of its arguments only (numpy's seeded PCG64 Generator).
"""

from __future__ import annotations

import math

import numpy as np

from trainable.backtest import Candles


def random_candles(
    seed: int,
    n: int,
    *,
    tick: float = 0.01,
    base_volatility: float = 0.002,
    reversion: float = 0.05,
    spike_probability: float = 0.1,
    gap_probability: float = 0.02,
    band: float = 2.0,
    stickiness: float = 0.7,
) -> Candles:
    """`n` 5-minute bars around a price of 100, rounded to `tick` (high >= max(open,
    close) >= min(open, close) >= low > 0 always holds).

    `base_volatility` is the typical per-bar log return; the range's edges lie `band`
    base volatilities from the anchor; `stickiness` is the chance that an edge holds.
    """
    rng = np.random.default_rng(seed)
    log_anchor = log_close = previous_shock = 0.0
    variance = base_volatility**2
    rows = []
    for _ in range(n):
        if rng.random() < 0.01:  # a new range: the anchor moves by a few volatilities
            log_anchor += rng.normal(0.0, 8 * base_volatility)
        variance = 0.1 * base_volatility**2 + 0.15 * previous_shock**2 + 0.75 * variance
        sigma = math.sqrt(variance)
        log_open = log_close
        if rng.random() < gap_probability:
            log_open += rng.normal(0.0, 3 * sigma)
        previous_shock = rng.normal(0.0, sigma)
        log_close = log_open + reversion * (log_anchor - log_open) + previous_shock
        log_high = max(log_open, log_close) + abs(rng.normal(0.0, sigma))
        log_low = min(log_open, log_close) - abs(rng.normal(0.0, sigma))
        bar = [log_open, log_high, log_low, log_close]
        edge_held = _hold_edges(rng, bar, log_anchor, band * base_volatility, stickiness, sigma)
        volume = rng.lognormal(0.0, 0.3)
        long_wicks = (bar[1] - bar[2]) - abs(bar[3] - bar[0]) > 3 * sigma
        if rng.random() < spike_probability or long_wicks or (edge_held and rng.random() < 0.8):
            volume *= rng.uniform(1.5, 5.0)
        rows.append((*bar, volume))
    return _rounded_candles(rows, tick)


def _hold_edges(
    rng: np.random.Generator,
    bar: list[float],
    anchor: float,
    half_width: float,
    stickiness: float,
    sigma: float,
) -> bool:
    """With probability `stickiness`, a wick crossing an edge of [anchor - half_width,
    anchor + half_width] stops just beyond it and a close beyond it comes back inside.
    Edits `bar` (log open, high, low, close) in place; True if an edge held."""
    log_open, _, _, _ = bar
    support, resistance = anchor - half_width, anchor + half_width
    held = False
    if bar[2] < support < log_open and rng.random() < stickiness:
        bar[2] = support - rng.exponential(sigma / 8)
        if bar[3] < support:
            bar[3] = support + rng.exponential(sigma / 2)
        held = True
    if bar[1] > resistance > log_open and rng.random() < stickiness:
        bar[1] = resistance + rng.exponential(sigma / 8)
        if bar[3] > resistance:
            bar[3] = resistance - rng.exponential(sigma / 2)
        held = True
    bar[1] = max(bar[1], log_open, bar[3])
    bar[2] = min(bar[2], log_open, bar[3])
    return held


def _rounded_candles(rows: list[tuple[float, ...]], tick: float) -> Candles:
    def price(log_price: float) -> float:
        return max(tick, round(100.0 * math.exp(log_price) / tick) * tick)

    opens, highs, lows, closes, volumes = [], [], [], [], []
    for log_open, log_high, log_low, log_close, volume in rows:
        o, c = price(log_open), price(log_close)
        opens.append(o)
        closes.append(c)
        highs.append(max(o, c, price(log_high)))
        lows.append(min(o, c, price(log_low)))
        volumes.append(round(volume, 6))
    n = len(rows)
    return Candles(
        np.arange(n, dtype=np.int64) * 300_000 + 1_600_000_000_000,
        np.array(opens),
        np.array(highs),
        np.array(lows),
        np.array(closes),
        np.array(volumes),
    )
