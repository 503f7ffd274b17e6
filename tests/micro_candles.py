"""Tiny hand-made candle series for the hand-computed cases.

Every series is flat filler plus the few bars that matter. The filler bar is
open = close = 100, high = 101, low = 99, volume 1: no filler bar is a pivot (its
neighbours' highs and lows are equal, not strictly lower/higher) and its true range is
2.0 against a previous close of 100. The named bars below also have a true range of
exactly 2.0 after a close of 100 (range 2, no gap beyond it), so ATR(14) stays 2.0 up
to the entry of the first trade unless a case says otherwise. Prices are dyadic
fractions (x.5, x.25, ...) so that the hand arithmetic is exact in binary too.
"""

from __future__ import annotations

import numpy as np

from trainable.backtest import Candles, JobConstants
from trainable.params import StrategyParams

Bar = tuple[float, float, float, float, float]  # open, high, low, close, volume

FILLER: Bar = (100.0, 101.0, 99.0, 100.0, 1.0)
# A swing low at 98.5 (lows of the 2 bars on each side are 99); high 100.5, TR 2.
SWING_LOW: Bar = (100.0, 100.5, 98.5, 100.0, 1.0)
# A swing high at 101.5 (neighbours' highs are 101); low 99.5, TR 2.
SWING_HIGH: Bar = (100.0, 101.5, 99.5, 100.0, 1.0)
# A pierce of the support 98.5: low 98.25 < 98.5 and >= 98.5 * (1 - 0.005) = 98.0075;
# volume 3 >= 2.0 * mean volume (1.0, or 1.1 with one earlier spike in the window).
PIERCE_LOW: Bar = (100.0, 100.25, 98.25, 100.0, 3.0)
# A pierce of the resistance 101.5: high 101.75 > 101.5 and <= 101.5 * 1.005 = 102.0075.
PIERCE_HIGH: Bar = (100.0, 101.75, 99.75, 100.0, 3.0)
# A long's target 104 (entry 100 + 2.0 * ATR 2.0) is reached by the high; the open and
# the low stay between the stop 98 and the target.
HITS_104: Bar = (100.0, 104.5, 99.5, 104.0, 1.0)

# Parameters of most cases: levels need 2 touches within 0.1% of each other, a pierce
# of at most 0.5%, one confirming close, a volume spike of 2x, stop 1 ATR, target 2
# ATR, exit after 10 bars.
BASE_PARAMS = {
    "key_level_lookback": 50,
    "min_level_touches": 2,
    "min_distance_from_level": 0.001,
    "pierce_depth": 0.005,
    "reversal_candles": 1,
    "volume_spike_threshold": 2.0,
    "atr_multiplier_sl": 1.0,
    "risk_reward_ratio": 2.0,
    "max_holding_periods": 10,
}
NO_COSTS = JobConstants(timeframe_minutes=5, fee=0.0, slippage=0.0, min_trades=1)


def params(**overrides: float) -> StrategyParams:
    return StrategyParams.from_mapping({**BASE_PARAMS, **overrides})


def series(n: int, bars: dict[int, Bar]) -> Candles:
    """n bars of FILLER with `bars` (index -> bar) put in place; 5-minute timestamps."""
    rows = [bars.get(i, FILLER) for i in range(n)]
    columns = [np.array([row[j] for row in rows], dtype=np.float64) for j in range(5)]
    return Candles(np.arange(n, dtype=np.int64) * 300_000, *columns)


def support_at_98_5() -> dict[int, Bar]:
    """Swing lows at bars 6 and 12: one key level 98.5 (2 touches), known from bar 14."""
    return {6: SWING_LOW, 12: SWING_LOW}


def resistance_at_101_5() -> dict[int, Bar]:
    """Swing highs at bars 6 and 12: one key level 101.5 (2 touches), known from bar 14."""
    return {6: SWING_HIGH, 12: SWING_HIGH}
