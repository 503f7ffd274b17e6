"""The metrics of STRATEGY.md ("Results", C13, C16-C19): a pure function of the trades
and the marked equity curve, computed after the run.

Sums over bars or trades are plain left-to-right float64 sums (C19), done by numba
(`return_sums`, `trade_sums`); the few scalar steps after them run in Python. Squares
are `x * x` (a correctly rounded product), not `pow(x, 2)`.

Conventions this module settles (STRATEGY.md leaves them open):
- `mean(r)` is the left-to-right sum / count; `std(r, ddof=1)` is two-pass:
  sqrt(left-to-right sum of (r - mean)^2 / (count - 1)).
- Sharpe and Sortino are `mean / deviation * sqrt(bars_per_year)`, evaluated left to
  right as written.
- max drawdown = max over t of (peak_t - E_t) / peak_t, peak_t the running maximum of
  E_0..E_t: 0.0 when equity never falls below its peak (defined, unlike Calmar then).
- CAGR is `(E_{n-1} / E_0) ** (bars_per_year / (n - 1)) - 1` in Python floats; an
  overflow of the power makes Calmar undefined (C18), like a zero drawdown.
- A trade with return exactly 0 is neither a winner (win rate, r > 0) nor a loser
  (profit factor, r < 0); the profit factor of trades without a loser is undefined,
  that of losers only is 0.0.
- With no trades: win rate, profit factor and mean bars held are undefined; exposure
  is 0.0; Sharpe is undefined (all returns are 0, std = 0).
"""

from __future__ import annotations

import math

import numpy as np

from trainable.declaration import METRIC_NAMES, SCORE_PENALTY
from trainable.jit import kernel


@kernel
def return_sums(equity: np.ndarray) -> tuple[float, float, float, float]:
    """Per-bar returns r_t = E_t / E_{t-1} - 1 for t = 1..n-1, summarized.

    Returns (sum of r, sum of (r - mean)^2, sum of min(r, 0)^2, max drawdown), each sum
    left to right; mean = sum / (n - 1) (NaN for n < 2, and the sums 0).
    """
    n = equity.size
    total = 0.0
    downside = 0.0
    for t in range(1, n):
        r = equity[t] / equity[t - 1] - 1.0
        total += r
        if r < 0.0:
            downside += r * r
    mean = total / (n - 1) if n >= 2 else math.nan
    squares = 0.0
    for t in range(1, n):
        deviation = (equity[t] / equity[t - 1] - 1.0) - mean
        squares += deviation * deviation
    peak = equity[0] if n > 0 else math.nan
    drawdown = 0.0
    for t in range(n):
        if equity[t] > peak:
            peak = equity[t]
        fall = (peak - equity[t]) / peak
        if fall > drawdown:
            drawdown = fall
    return total, squares, downside, drawdown


@kernel
def trade_sums(returns: np.ndarray) -> tuple[int, float, int, float]:
    """(count of r > 0, their left-to-right sum, count of r < 0, their sum)."""
    wins = 0
    won = 0.0
    losses = 0
    lost = 0.0
    for r in returns:
        if r > 0.0:
            wins += 1
            won += r
        elif r < 0.0:
            losses += 1
            lost += r
    return wins, won, losses, lost


def compute_metrics(
    trade_returns: np.ndarray,
    bars_held: np.ndarray,
    equity: np.ndarray,
    bars_per_year: float,
    min_trades: int,
) -> dict[str, int | float | None]:
    """Every metric of `trainable.declaration.METRICS` (keys in that order).

    `trade_returns` are the trades' net returns (C14) in entry order, `bars_held` their
    exit_bar - entry_bar (int), `equity` the marked equity E_0..E_{n-1} (C15, all > 0).
    Values are plain Python: n_trades an int, the others floats or None where undefined
    or not finite (C18); `score` is Sharpe or SCORE_PENALTY (C17), never None. Needs
    at least one bar.
    """
    values = {
        **_return_metrics(equity, bars_per_year),
        **_trade_metrics(trade_returns, bars_held, equity.size),
    }
    sharpe = values["sharpe"]
    enough_trades = trade_returns.size >= min_trades
    values["score"] = sharpe if enough_trades and sharpe is not None else SCORE_PENALTY
    return {name: values[name] for name in METRIC_NAMES}


def equity_metrics(equity: np.ndarray, bars_per_year: float) -> dict[str, float | None]:
    """Sharpe, Sortino, Calmar, total return and max drawdown of any marked equity
    curve (E_0 first, all > 0), as a backtest's own: the report's stitched walk-forward
    equity is measured with the same definitions and sums."""
    return _return_metrics(np.ascontiguousarray(equity, dtype=np.float64), bars_per_year)


def _return_metrics(equity: np.ndarray, bars_per_year: float) -> dict[str, float | None]:
    """Sharpe, Sortino, Calmar, total return and max drawdown of the marked equity."""
    n_returns = equity.size - 1
    total, squares, downside, drawdown = return_sums(equity)
    annual = math.sqrt(bars_per_year)
    mean = total / n_returns if n_returns >= 1 else math.nan
    sharpe = math.nan
    if n_returns >= 2:
        std = math.sqrt(squares / (n_returns - 1))
        if std > 0.0:
            sharpe = mean / std * annual
    sortino = math.nan
    if n_returns >= 1 and downside > 0.0:
        sortino = mean / math.sqrt(downside / n_returns) * annual
    growth = float(equity[-1] / equity[0])
    calmar = math.nan
    if n_returns >= 1 and drawdown > 0.0:
        try:
            calmar = (growth ** (bars_per_year / n_returns) - 1.0) / drawdown
        except OverflowError:
            calmar = math.nan
    return {
        "sharpe": _defined(sharpe),
        "sortino": _defined(sortino),
        "calmar": _defined(calmar),
        "total_return": _defined(growth - 1.0),
        "max_drawdown": _defined(drawdown),
    }


def _trade_metrics(
    trade_returns: np.ndarray, bars_held: np.ndarray, n_bars: int
) -> dict[str, int | float | None]:
    """Trade count, win rate, profit factor, exposure and mean bars held (C13, C16)."""
    n_trades = int(trade_returns.size)
    # One compiled signature: a column of the kernel's trade table is not contiguous.
    wins, won, losses, lost = trade_sums(np.ascontiguousarray(trade_returns, np.float64))
    held = int(bars_held.sum())  # exact: an integer sum
    return {
        "n_trades": n_trades,
        "win_rate": _defined(wins / n_trades) if n_trades else None,
        "profit_factor": _defined(won / abs(lost)) if losses else None,
        "exposure": _defined((held + n_trades) / n_bars),
        "mean_bars_held": _defined(held / n_trades) if n_trades else None,
    }


def _defined(value: float) -> float | None:
    """C18: a plain float when finite, else None."""
    value = float(value)
    return value if math.isfinite(value) else None
