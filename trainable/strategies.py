"""The strategies a job can optimize, by name: each one's parameters and how a trial runs.

A `Strategy` is plain data plus one function: `parameters` (the declaration a search
space and a job's validation are built from) and `evaluate(candles, params, constants)`,
which returns every metric of `trainable.declaration.METRICS` (score included) and
raises ValueError when it deterministically rejects its input (the trial's `invalid`
outcome). `evaluate` must be a pure function of its arguments: no global state, no
randomness that is not derived from them.

A strategy may also give its marked equity curve (`equity`, same arguments, one float
per bar), which the report plots and its robustness figures derive per-bar returns from,
and the net return fraction of each of its trades in order (`trade_returns`), which the
report's Monte Carlo resamples; strategies without them (toys) go without those figures.

`outcome(...)` is the one place that turns an evaluation into a trial's outcome: the
metrics, or the `invalid` outcome of a ValueError. Tune trials and the report's extra
backtests both use it, so an extra backtest means exactly what a trial does.

`key_level_reversal` (the default) is the only production strategy. Tests register
small objectives of their own with `register_strategy`; the object (not its name)
travels to the workers with the trainable, so a strategy registered in the driver's
process needs no registration on the workers (its module must be importable there, or
pickled by value).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainable.backtest import backtest, backtest_equity, backtest_metrics
from trainable.declaration import METRIC_NAMES, PARAMETERS, SCORE_PENALTY, ParamDecl
from trainable.params import StrategyParams
from trainable.types import Candles, JobConstants

Metrics = dict[str, int | float | None]
# params arrive as the trial config carries them; `evaluate` checks them itself.
Evaluate = Callable[[Candles, Mapping[str, Any], JobConstants], Metrics]
EquityCurve = Callable[[Candles, Mapping[str, Any], JobConstants], np.ndarray]

DEFAULT_STRATEGY = "key_level_reversal"


@dataclass(frozen=True)
class Strategy:
    """A named strategy: its parameter declaration, its trial function and, optionally,
    its equity curve (for pictures only: never part of a record)."""

    name: str
    parameters: tuple[ParamDecl, ...]
    evaluate: Evaluate
    summary: str
    equity: EquityCurve | None = None
    trade_returns: EquityCurve | None = None

    def parameter(self, name: str) -> ParamDecl:
        for declared in self.parameters:
            if declared.name == name:
                return declared
        raise KeyError(name)


def key_level_reversal(
    candles: Candles, params: Mapping[str, Any], constants: JobConstants
) -> Metrics:
    """The key-level reversal backtest's metrics (ValueError for rejected input)."""
    return backtest_metrics(candles, StrategyParams.from_mapping(params), constants)


def key_level_reversal_equity(
    candles: Candles, params: Mapping[str, Any], constants: JobConstants
) -> np.ndarray:
    """The key-level reversal backtest's marked equity at every close (E_0 = 1.0)."""
    return backtest_equity(candles, StrategyParams.from_mapping(params), constants)


def key_level_reversal_trade_returns(
    candles: Candles, params: Mapping[str, Any], constants: JobConstants
) -> np.ndarray:
    """The key-level reversal backtest's net return of each trade (C14), in entry order."""
    result = backtest(candles, StrategyParams.from_mapping(params), constants)
    return np.array([trade.ret for trade in result.trades], dtype=np.float64)


def outcome(
    strategy: Strategy, candles: Candles, params: Mapping[str, Any], constants: JobConstants
) -> tuple[Metrics, str | None]:
    """(metrics, None) for an `ok` evaluation; for an `invalid` one (the strategy raised
    ValueError: it rejects the input deterministically) every metric None but `score`,
    which is SCORE_PENALTY, and the message "ExceptionClass: text". Any other exception
    propagates: it is not an outcome of the trial.
    """
    try:
        return strategy.evaluate(candles, params, constants), None
    except ValueError as error:
        metrics: Metrics = dict.fromkeys(METRIC_NAMES)
        metrics["score"] = SCORE_PENALTY
        return metrics, f"{type(error).__name__}: {error}"


def metrics_with_score(score: float) -> Metrics:
    """Every metric undefined but `score`, and no trades: for objectives that are not
    backtests (toy strategies in tests)."""
    metrics: Metrics = dict.fromkeys(METRIC_NAMES)
    metrics["score"] = score
    metrics["n_trades"] = 0
    return metrics


_STRATEGIES: dict[str, Strategy] = {
    DEFAULT_STRATEGY: Strategy(
        DEFAULT_STRATEGY,
        PARAMETERS,
        key_level_reversal,
        "false breaks of key support/resistance levels, confirmed by closes back inside",
        key_level_reversal_equity,
        key_level_reversal_trade_returns,
    )
}


def strategy_names() -> list[str]:
    return sorted(_STRATEGIES)


def get_strategy(name: str) -> Strategy:
    """The strategy registered as `name`; KeyError with a did-you-mean hint otherwise."""
    try:
        return _STRATEGIES[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_STRATEGIES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(
            f"unknown strategy {name!r}{hint}; registered: {', '.join(strategy_names())}"
        ) from None


def register_strategy(strategy: Strategy) -> None:
    """Make `strategy` available by its name (tests register toy objectives).

    Registering the same object again is a no-op; another object under a taken name is
    refused, so a name always means one trial function within a process.
    """
    if not isinstance(strategy, Strategy):
        raise TypeError(f"expected a Strategy, got {type(strategy).__name__}")
    known = _STRATEGIES.get(strategy.name)
    if known is not None and known is not strategy:
        raise ValueError(f"a different strategy is already registered as {strategy.name!r}")
    names = [p.name for p in strategy.parameters]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"strategy {strategy.name!r} needs distinct parameter names: {names}")
    _STRATEGIES[strategy.name] = strategy
