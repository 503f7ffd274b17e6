"""Synthetic candles that look like a crypto market, from a data seed alone.

Model (one bar = one candle; sigma scales with sqrt(bar length / 5 min)):
- regimes of 200-2,500 bars, each with a drift (down, flat or up trend) and a
  volatility level;
- volatility clustering: log-volatility is an AR(1) process (stochastic volatility);
- log-returns = drift + volatility * (normal shock + rare jumps); the log price is a
  slowly mean-reverting AR(1) of them, so that long series stay in a realistic band;
- wicks above and below the body scaled by the bar's volatility;
- volume that rises with volatility and the bar's shock, with random spikes;
- false breaks: now and then a bar's wick pierces the lowest low (highest high) of the
  previous 48 bars by up to 0.3% while its body stays on the other side, on a volume
  spike: the pattern the key-level strategy trades.
Prices are rounded to cents and volumes to 1e-5, so open equals the previous close and
every candle passes the cleaning rules by construction.

Determinism: one `numpy.random.Generator(PCG64(data_seed))`, drawn from in a fixed
order. Only IEEE arithmetic (+ - * /, sqrt, rounding, min/max, sequential cumulative
sums) touches the values: `exp` is a fixed polynomial here rather than numpy's,
whose SIMD variant depends on the CPU, and nothing is compiled for the host (numba's
FMA contraction would be). So the bits depend on the seed, the timeframe and the numpy
version, not on the machine; the fingerprint catches any change.
"""

from __future__ import annotations

import math

import numpy as np

from cluster.candles.sources import SyntheticSource
from cluster.candles.table import CandleColumns
from cluster.timeframes import timeframe_minutes, timeframe_ms

START_PRICE = 20_000.0
VOLUME_5M = 100.0
SIGMA_5M = 0.0022  # log-return std per 5-minute bar, as BTC/USDT's
VOL_PERSISTENCE = 0.995  # AR(1) coefficient of log-volatility per bar
VOL_OF_VOL = 0.35  # stationary std of log-volatility
MEAN_REVERSION_5M = 2e-5  # per 5-minute bar: the log price's band is about +-0.35
REGIME_BARS = (200, 2_500)
REGIME_DRIFTS = (-0.06, -0.03, 0.0, 0.0, 0.03, 0.06)  # per bar, in units of sigma
REGIME_LEVELS = (0.6, 1.0, 1.0, 1.7)  # volatility multipliers
JUMP_PROBABILITY, JUMP_SIZE = 0.001, 4.0
WICK_SIZE = 0.6
SPIKE_PROBABILITY = 0.01
FALSE_BREAK_PROBABILITY, FALSE_BREAK_WINDOW, FALSE_BREAK_DEPTH = 0.004, 48, 0.003


def generate(source: SyntheticSource) -> CandleColumns:
    """The candles of a synthetic source (see the module docstring)."""
    rng = np.random.Generator(np.random.PCG64(source.data_seed))
    n = source.bars
    bar_scale = timeframe_minutes(source.timeframe) / 5
    sigma_bar = SIGMA_5M * math.sqrt(bar_scale)
    drift, level = _regimes(rng, n)
    innovation = VOL_OF_VOL * math.sqrt(1 - VOL_PERSISTENCE**2)
    log_vol = ar1(rng.standard_normal(n) * innovation, VOL_PERSISTENCE)
    sigma = sigma_bar * level * exp(log_vol)
    shock = rng.standard_normal(n) + (rng.random(n) < JUMP_PROBABILITY) * (
        JUMP_SIZE * rng.standard_normal(n)
    )
    log_return = drift * sigma_bar + sigma * shock
    log_price = ar1(log_return, 1.0 - min(MEAN_REVERSION_5M * bar_scale, 0.01))
    close = START_PRICE * exp(log_price)
    open_ = np.concatenate([[START_PRICE], close[:-1]])
    high = np.maximum(open_, close) * exp(sigma * WICK_SIZE * np.abs(rng.standard_normal(n)))
    low = np.minimum(open_, close) * exp(-sigma * WICK_SIZE * np.abs(rng.standard_normal(n)))
    volume = VOLUME_5M * bar_scale * level * (0.4 + np.abs(shock))
    volume = volume * exp(0.35 * rng.standard_normal(n))
    spikes = rng.random(n) < SPIKE_PROBABILITY
    volume = np.where(spikes, volume * (2.0 + 6.0 * rng.random(n)), volume)
    low, high, volume = _false_breaks(rng, open_, high, low, close, volume)
    # Rounding is monotone, so high >= max(open, close) >= ... survive it.
    timestamp = source.start + np.arange(n, dtype=np.int64) * timeframe_ms(source.timeframe)
    return CandleColumns(
        timestamp,
        np.round(open_, 2),
        np.round(high, 2),
        np.round(low, 2),
        np.round(close, 2),
        np.round(volume, 5),
    )


def _regimes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar drift (units of sigma) and volatility level of consecutive regimes."""
    count = n // REGIME_BARS[0] + 1
    lengths = rng.integers(REGIME_BARS[0], REGIME_BARS[1], size=count, endpoint=True)
    drifts = np.array(REGIME_DRIFTS)[rng.integers(0, len(REGIME_DRIFTS), size=count)]
    levels = np.array(REGIME_LEVELS)[rng.integers(0, len(REGIME_LEVELS), size=count)]
    return np.repeat(drifts, lengths)[:n], np.repeat(levels, lengths)[:n]


def _false_breaks(
    rng: np.random.Generator,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wicks through the previous window's extreme, body back inside, volume spiking."""
    n, window = len(close), FALSE_BREAK_WINDOW
    event = rng.random(n) < FALSE_BREAK_PROBABILITY
    downward = rng.random(n) < 0.5
    depth = FALSE_BREAK_DEPTH * rng.random(n)
    boost = 2.0 + 2.0 * rng.random(n)
    if n <= window:
        return low, high, volume
    windows_low = np.lib.stride_tricks.sliding_window_view(low, window)
    windows_high = np.lib.stride_tricks.sliding_window_view(high, window)
    support = np.full(n, np.nan)
    resistance = np.full(n, np.nan)
    support[window:] = windows_low.min(axis=1)[:-1]  # bar p sees low[p - window : p]
    resistance[window:] = windows_high.max(axis=1)[:-1]
    body_low, body_high = np.minimum(open_, close), np.maximum(open_, close)
    pierce_low = support * (1.0 - depth)
    pierce_high = resistance * (1.0 + depth)
    breaks_support = event & downward & (support < body_low) & (pierce_low < low)
    breaks_resistance = event & ~downward & (resistance > body_high) & (pierce_high > high)
    low = np.where(breaks_support, pierce_low, low)
    high = np.where(breaks_resistance, pierce_high, high)
    volume = np.where(breaks_support | breaks_resistance, volume * boost, volume)
    return low, high, volume


def ar1(innovations: np.ndarray, phi: float, block: int = 512) -> np.ndarray:
    """y[t] = phi * y[t-1] + e[t] with y[-1] = 0, vectorized by blocks.

    Within a block, y[k] = phi^k * cumsum(e[j] * phi^-j)[k] + phi^(k+1) * carry; the
    carries between blocks run in a short Python loop. `phi` must be in (0.9, 1) so
    that phi^-block stays small. Sequential sums only: the result does not depend on
    SIMD width. It agrees with the plain recursion to ~1e-12 relative, not bitwise.
    """
    if not 0.9 < phi < 1.0:
        raise ValueError(f"phi must be in (0.9, 1), got {phi}")
    n = len(innovations)
    padded = np.zeros(-(-n // block) * block)
    padded[:n] = innovations
    blocks = padded.reshape(-1, block)
    powers = np.cumprod(np.concatenate([[1.0], np.full(block, phi)]))  # phi^0 .. phi^block
    local = powers[:block] * np.cumsum(blocks / powers[:block], axis=1)
    carry = np.zeros(len(blocks))  # y just before each block
    phi_block = powers[block]
    for b in range(1, len(blocks)):
        carry[b] = local[b - 1, -1] + phi_block * carry[b - 1]
    return (local + carry[:, None] * powers[1:]).ravel()[:n]


_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(14))


def exp(x: np.ndarray) -> np.ndarray:
    """e**x from IEEE arithmetic alone (|x| < 700), within ~2 ulp of the true value.

    Range reduction x = k ln2 + r, |r| <= ln2/2, then a degree-13 Taylor polynomial in
    Horner form and an exact scaling by 2**k.
    """
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    result = np.full_like(r, _EXP_TAYLOR[-1])
    for coefficient in _EXP_TAYLOR[-2::-1]:
        result *= r  # in place: the same two roundings as `result * r + coefficient`
        result += coefficient
    return np.ldexp(result, k.astype(np.int64))
