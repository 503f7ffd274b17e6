"""The reference's results: marked equity (C15) and every metric (Results, C16-C19).

Plain Python floats, plain left-to-right sums (C19), `math.sqrt`, `**` for the CAGR
power. Squares are `x * x` (see tests/reference_backtest.py for why not `x ** 2`).
"""

from __future__ import annotations

import math

from trainable.backtest import JobConstants, Trade
from trainable.declaration import METRIC_NAMES, SCORE_PENALTY


def marked_equity(trades: list[Trade], close: list[float], fee: float) -> list[float]:
    """C15: equity marked at every close t = 0..n-1; E_0 = 1.0; trades compound.

    Flat: the cash N. In a trade (entry_bar <= t < exit_bar):
    N * ((1 - fee) + side * (close[t] / entry_fill - 1)). On its exit bar: N * (1 + ret),
    which is the cash from then on. C19: a ValueError names the first bar whose marked
    equity is <= 0.
    """
    equity = []
    cash = 1.0
    k = 0  # index of the next trade to reach; trades never overlap (C8)
    for t in range(len(close)):
        trade = trades[k] if k < len(trades) else None
        if trade is None or t < trade.entry_bar:
            value = cash
        elif t < trade.exit_bar:
            value = cash * ((1 - fee) + trade.side * (close[t] / trade.entry_fill - 1))
        else:  # t == trade.exit_bar
            cash = cash * (1 + trade.ret)
            value = cash
            k += 1
        if not value > 0:
            raise ValueError(f"equity reached {value!r} (<= 0) at bar {t}: the backtest is invalid")
        equity.append(value)
    return equity


def compute_metrics(
    trades: list[Trade], equity: list[float], constants: JobConstants
) -> dict[str, int | float | None]:
    """Every metric of METRIC_NAMES, in that order; None where undefined (C18).

    Per-bar returns r_t = E_t / E_{t-1} - 1 for t = 1..n-1 (flat bars count, as 0).
    Sharpe needs >= 2 returns and std > 0; Sortino a downside deviation > 0; Calmar a
    max drawdown > 0 and a finite CAGR; win rate and mean bars held a trade; profit
    factor a losing trade. Any non-finite value becomes None. `score` follows C17.
    """
    n = len(equity)
    returns = [equity[t] / equity[t - 1] - 1 for t in range(1, n)]
    sqrt_bars_per_year = math.sqrt(constants.bars_per_year)
    sharpe = sortino = calmar = None
    if returns:
        mean = left_to_right_sum(returns) / len(returns)
        if len(returns) >= 2:
            squares = [(r - mean) * (r - mean) for r in returns]
            std = math.sqrt(left_to_right_sum(squares) / (len(returns) - 1))  # ddof=1
            sharpe = mean / std * sqrt_bars_per_year if std != 0 else None
        # C16: sqrt(sum(min(r, 0)^2) / (n - 1)), the n - 1 being the number of returns.
        downside = math.sqrt(
            left_to_right_sum([min(r, 0.0) * min(r, 0.0) for r in returns]) / len(returns)
        )
        sortino = mean / downside * sqrt_bars_per_year if downside != 0 else None
    max_drawdown = _max_drawdown(equity)
    cagr = _cagr(equity, constants.bars_per_year)
    if cagr is not None and max_drawdown != 0:
        calmar = cagr / max_drawdown
    rets = [trade.ret for trade in trades]
    n_trades = len(trades)
    metrics: dict[str, int | float | None] = {
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "total_return": equity[-1] / equity[0] - 1,
        "max_drawdown": max_drawdown,
        "n_trades": n_trades,
        "win_rate": sum(1 for r in rets if r > 0) / n_trades if n_trades else None,
        "profit_factor": _profit_factor(rets),
        "exposure": sum(t.exit_bar - t.entry_bar + 1 for t in trades) / n,
        "mean_bars_held": (
            sum(t.exit_bar - t.entry_bar for t in trades) / n_trades if n_trades else None
        ),
    }
    for name, value in metrics.items():  # C18: inf and NaN are undefined
        if isinstance(value, float) and not math.isfinite(value):
            metrics[name] = None
    real_score = metrics["sharpe"] if n_trades >= constants.min_trades else None
    metrics["score"] = real_score if real_score is not None else SCORE_PENALTY  # C17
    return {name: metrics[name] for name in METRIC_NAMES}


def _max_drawdown(equity: list[float]) -> float:
    """C16: the largest (peak - E_t) / peak, a positive fraction; 0.0 if never below a peak."""
    peak = equity[0]
    deepest = 0.0
    for value in equity:
        if value > peak:
            peak = value
        fall = (peak - value) / peak
        if fall > deepest:
            deepest = fall
    return deepest


def _cagr(equity: list[float], bars_per_year: float) -> float | None:
    """C16: (E_{n-1} / E_0) ** (bars_per_year / (n - 1)) - 1; None with one bar or on
    overflow (Python's float power raises OverflowError where numpy gives inf)."""
    n = len(equity)
    if n < 2:
        return None
    try:
        return (equity[-1] / equity[0]) ** (bars_per_year / (n - 1)) - 1
    except OverflowError:
        return None


def _profit_factor(rets: list[float]) -> float | None:
    """C16: sum of winning / |sum of losing| trade returns; None without a loser."""
    gross_win = left_to_right_sum([r for r in rets if r > 0])
    gross_loss = left_to_right_sum([r for r in rets if r < 0])
    if gross_loss == 0:
        return None
    return gross_win / abs(gross_loss)


def left_to_right_sum(values: list[float]) -> float:
    """C19: a plain left-to-right float64 sum (no pairwise or compensated summation)."""
    total = 0.0
    for value in values:
        total += value
    return total
