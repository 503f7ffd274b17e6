"""The stitched out-of-sample equity of a walk-forward: pure code on arrays.

Each test window is backtested on its own candles (the window's rows alone, starting
flat with equity 1.0 at its first close, as the strategy's backtest always starts; a
trade still open at the window's last candle is closed there). The windows' marked
equity curves are chained: window w's curve is scaled by the equity the windows before
it ended with, so the stitched curve compounds every window's returns, one point per
test candle, in window order. The first candle of each window is flat (no trade can
enter on a backtest's first bar), so the step from one window's last candle to the
next one's first is a return of exactly 0 in the stitched curve, as a flat bar is in
any backtest. With `step > test` candles between test windows were never tested: the
stitched curve skips them (its time axis has gaps).

Its metrics are the kernel's own (`trainable.metrics.equity_metrics`): Sharpe, Sortino,
Calmar, total return and max drawdown with the same definitions and left-to-right sums
as a trial's, annualized by the job's timeframe.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trainable.metrics import equity_metrics
from trainable.types import CANDLE_COLUMNS, Candles


def rows(candles: Candles, start: int, stop: int) -> Candles:
    """The candles of rows `[start, stop)` (views, no copy)."""
    return Candles(*(getattr(candles, name)[start:stop] for name in CANDLE_COLUMNS))


def stitch(curves: Sequence[np.ndarray]) -> np.ndarray:
    """The windows' equity curves (each starting at its own E_0), chained in order: each
    curve multiplied by the product of the previous curves' last values, left to right.
    An empty list gives an empty curve."""
    pieces = []
    level = 1.0
    for curve in curves:
        curve = np.asarray(curve, dtype=np.float64)
        pieces.append(curve * (level / float(curve[0])))
        level = float(pieces[-1][-1])
    if not pieces:
        return np.empty(0, dtype=np.float64)
    return np.concatenate(pieces)


def stitched_metrics(equity: np.ndarray, bars_per_year: float) -> dict[str, float | int | None]:
    """The kernel's equity metrics of a stitched curve, and its number of returns."""
    return {"n_returns": int(equity.size) - 1, **equity_metrics(equity, bars_per_year)}
