"""Monte Carlo of a parameter set: how much of its result is the luck of one history?

Three scenarios, each a number of independent *paths*:
- `trade_order`: the backtest's own trades in a random order (a permutation). The
  final return cannot change (the product of the same factors); the drawdown can:
  how deep it might have been with the same trades in another order.
- `trade_bootstrap`: as many trades as the backtest had, drawn with replacement from
  its trades: other plausible sets of trades of the same kind.
- `candle_bootstrap`: a circular block bootstrap of the candles (blocks of
  `block` consecutive candles, each candle expressed relative to the previous close,
  chained from the first close), backtested with the same parameters: another
  plausible market of the same texture, traded by the same rules.

Trades compound their *return fractions* (the kernel's net return of a trade, C14):
equity after a trade is equity before it times (1 + r), from 1.0. Never absolute
profit and loss: adding up PnL in currency units as if each trade had the same stake
(what some tools do) understates drawdowns after gains and overstates them after
losses. A trade path's Sharpe ratio is per trade, mean / std (ddof 1) of its returns,
annualized by the backtest's trades per year (trades x bars per year / bars); a candle
path's is the kernel's own, per bar, as the trials record it.

Seeding: path p of scenario s for candidate c of seed `seed` draws from its own
generator, `search.core.seeded_generator(seed, MONTE_CARLO_STREAM, c, s, p)` (c: the
candidate's trial_index, s: the scenario's number): a path never depends on how many
paths were drawn or in which order, and the same inputs give the same paths bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cluster.robustness.returns import moments
from search.core import seeded_generator
from trainable.types import Candles

MONTE_CARLO_STREAM = 0x4D43  # "MC": keeps these draws apart from every searcher's
TRADE_ORDER = "trade_order"
TRADE_BOOTSTRAP = "trade_bootstrap"
CANDLE_BOOTSTRAP = "candle_bootstrap"
SCENARIOS = {TRADE_ORDER: 1, TRADE_BOOTSTRAP: 2, CANDLE_BOOTSTRAP: 3}
QUANTILES = ("0.05", "0.25", "0.5", "0.75", "0.95")
FAN_POINTS = 101  # trade counts at which the fan's quantiles are kept


def path_generator(seed: int, candidate: int, scenario: str, path: int) -> np.random.Generator:
    """The generator of one path (module docstring)."""
    return seeded_generator(seed, MONTE_CARLO_STREAM, candidate, SCENARIOS[scenario], path)


def permuted(trade_returns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The trades in a random order."""
    return rng.permutation(np.asarray(trade_returns, dtype=np.float64))


def bootstrapped(trade_returns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As many trades, drawn with replacement."""
    trades = np.asarray(trade_returns, dtype=np.float64)
    return trades[rng.integers(0, trades.size, trades.size)]


def trade_equity(trade_returns: np.ndarray) -> np.ndarray:
    """Equity before the first trade (1.0) and after each one, compounding (1 + r)."""
    factors = np.concatenate(([1.0], 1.0 + np.asarray(trade_returns, dtype=np.float64)))
    return np.multiply.accumulate(factors)


def max_drawdown(equity: np.ndarray) -> float:
    """max over t of (peak_t - E_t) / peak_t, as the kernel defines it (C16)."""
    peaks = np.maximum.accumulate(equity)
    return float(np.max((peaks - equity) / peaks))


@dataclass(frozen=True)
class Distribution:
    """One scenario's paths summarized: quantiles (keys of QUANTILES) of each measure
    over the paths where it is defined, and how many paths had none."""

    scenario: str
    paths: int
    sharpe: dict[str, float] | None
    max_drawdown: dict[str, float] | None
    total_return: dict[str, float] | None
    undefined: int  # paths without a Sharpe ratio (an invalid backtest counts here too)
    actual: dict[str, float | None]  # the unresampled backtest's own measures
    fan: dict[str, list[float]] = field(default_factory=dict)  # quantile -> equity curve


def quantiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    array = np.array(values, dtype=np.float64)
    return {q: float(np.quantile(array, float(q))) for q in QUANTILES}


def trade_scenario(
    trade_returns: np.ndarray,
    scenario: str,
    *,
    seed: int,
    candidate: int,
    paths: int,
    trades_per_year: float,
) -> Distribution:
    """`trade_order` or `trade_bootstrap` over `paths` paths (module docstring)."""
    if scenario not in (TRADE_ORDER, TRADE_BOOTSTRAP):
        raise ValueError(f"not a trade scenario: {scenario!r}")
    trades = np.asarray(trade_returns, dtype=np.float64)
    if trades.size == 0:
        return Distribution(scenario, 0, None, None, None, 0, {})
    resample = permuted if scenario == TRADE_ORDER else bootstrapped
    annual = math.sqrt(trades_per_year) if trades_per_year > 0 else math.nan
    sharpes, drawdowns, totals, curves = [], [], [], []
    for path in range(paths):
        drawn = resample(trades, path_generator(seed, candidate, scenario, path))
        equity = trade_equity(drawn)
        sharpe = moments(drawn).sharpe
        if sharpe is not None and math.isfinite(annual):
            sharpes.append(sharpe * annual)
        drawdowns.append(max_drawdown(equity))
        totals.append(float(equity[-1]) - 1.0)
        curves.append(equity)
    own = trade_equity(trades)
    own_sharpe = moments(trades).sharpe
    if own_sharpe is not None:
        own_sharpe *= annual
    return Distribution(
        scenario=scenario,
        paths=paths,
        sharpe=quantiles(sharpes),
        max_drawdown=quantiles(drawdowns),
        total_return=quantiles(totals),
        undefined=paths - len(sharpes),
        actual={
            "sharpe": own_sharpe if own_sharpe is not None and math.isfinite(own_sharpe) else None,
            "max_drawdown": max_drawdown(own),
            "total_return": float(own[-1]) - 1.0,
        },
        fan=_fan(np.array(curves)) if curves and trades.size else {},
    )


def _fan(curves: np.ndarray) -> dict[str, list[float]]:
    """Quantiles of equity across paths at up to FAN_POINTS trade counts (0..n)."""
    counts = np.unique(np.linspace(0, curves.shape[1] - 1, FAN_POINTS).astype(int))
    fan = {"trades": [float(c) for c in counts]}
    for q in QUANTILES:
        fan[q] = [float(v) for v in np.quantile(curves[:, counts], float(q), axis=0)]
    return fan


def block_bootstrap(candles: Candles, block: int, rng: np.random.Generator) -> Candles:
    """A circular block bootstrap of `candles` (module docstring): bar 0 as it was, then
    blocks of `block` bars' moves relative to the previous close, each block starting
    at a uniformly drawn bar (wrapping around), chained from the first close. The
    timestamps are the original ones; volumes travel with their bars."""
    n = len(candles)
    if n < 2:
        return candles
    previous = candles.close[:-1]
    moves = [candles.open[1:] / previous, candles.high[1:] / previous,
             candles.low[1:] / previous, candles.close[1:] / previous]  # fmt: skip
    m = n - 1
    block = max(1, min(block, m))
    starts = rng.integers(0, m, -(-m // block))
    order = ((starts[:, None] + np.arange(block)[None, :]) % m).ravel()[:m]
    close = np.multiply.accumulate(np.concatenate(([candles.close[0]], moves[3][order])))
    base = close[:-1]
    return Candles(
        timestamp=candles.timestamp,
        open=np.concatenate(([candles.open[0]], base * moves[0][order])),
        high=np.concatenate(([candles.high[0]], base * moves[1][order])),
        low=np.concatenate(([candles.low[0]], base * moves[2][order])),
        close=close,
        volume=np.concatenate(([candles.volume[0]], candles.volume[1:][order])),
    )


Evaluation = Callable[[Candles], tuple[Mapping[str, Any], str | None]]


def candle_scenario(
    candles: Candles,
    evaluate: Evaluation,
    *,
    seed: int,
    candidate: int,
    paths: int,
    block: int,
    actual: Mapping[str, Any],
) -> Distribution:
    """`candle_bootstrap` over `paths` paths: `evaluate(candles)` is the parameter set's
    (metrics, message) outcome on a path's candles (`trainable.strategies.outcome`)."""
    sharpes, drawdowns, totals = [], [], []
    for path in range(paths):
        rng = path_generator(seed, candidate, CANDLE_BOOTSTRAP, path)
        metrics, message = evaluate(block_bootstrap(candles, block, rng))
        if message is not None:
            continue
        if metrics.get("sharpe") is not None:
            sharpes.append(float(metrics["sharpe"]))
        if metrics.get("max_drawdown") is not None:
            drawdowns.append(float(metrics["max_drawdown"]))
        if metrics.get("total_return") is not None:
            totals.append(float(metrics["total_return"]))
    return Distribution(
        scenario=CANDLE_BOOTSTRAP,
        paths=paths,
        sharpe=quantiles(sharpes),
        max_drawdown=quantiles(drawdowns),
        total_return=quantiles(totals),
        undefined=paths - len(sharpes),
        actual={k: actual.get(k) for k in ("sharpe", "max_drawdown", "total_return")},
    )
