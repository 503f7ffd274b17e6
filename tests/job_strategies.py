"""Toy strategies that run through the real pipeline (spec, driver, Tune, records).

Their scores are known functions of their params, so a test can recompute every
recorded score; `sleepy` naps so that trials overlap and finish out of order; a
`counting` wrapper appends one line per execution to a file, so a test can prove how
many times the trainable really ran (across worker processes and retries).

Ray workers cannot import tests/: `ship_by_value()` makes Ray pickle this module's
functions by value.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainable.declaration import ParamDecl
from trainable.strategies import (
    Evaluate,
    Metrics,
    Strategy,
    get_strategy,
    metrics_with_score,
    register_strategy,
)

TOY_PARAMETERS = (
    ParamDecl("x", "float", 0.0, False, (0.0, 1.0), "a real coordinate"),
    ParamDecl("k", "int", 1, False, (1, 5), "an integer coordinate"),
)


def toy_score(params: Mapping[str, Any]) -> float:
    """The toy objective, maximal (0.0) at x = 0.3, k = 2."""
    return -((params["x"] - 0.3) ** 2) - 0.1 * (params["k"] - 2) ** 2


def quadratic(candles: Any, params: Mapping[str, Any], constants: Any) -> Metrics:
    """`toy_score`, rejecting (an `invalid` outcome) k = 5 with x > 0.9."""
    if params["k"] == 5 and params["x"] > 0.9:
        raise ValueError(f"the toy rejects k=5 with x={params['x']!r} > 0.9")
    return metrics_with_score(toy_score(params))


def sleepy(candles: Any, params: Mapping[str, Any], constants: Any) -> Metrics:
    """`quadratic` after a nap of 0.05-0.3 s chosen by the params (not by the seed)."""
    time.sleep(random.Random(repr(sorted(params.items()))).uniform(0.05, 0.3))
    return quadratic(candles, params, constants)


def counted(path: str, inner: Evaluate, candles: Any, params: Any, constants: Any) -> Metrics:
    with open(path, "a", encoding="ascii") as file:
        file.write("1\n")
    return inner(candles, params, constants)


QUADRATIC = Strategy("toy_quadratic", TOY_PARAMETERS, quadratic, "a two-parameter bowl")
SLEEPY = Strategy("toy_sleepy", TOY_PARAMETERS, sleepy, "the bowl, with naps")


def counting(strategy: Strategy, path: Path, name: str) -> Strategy:
    """`strategy` under another name, counting its executions in `path`."""
    counted_strategy = Strategy(
        name,
        strategy.parameters,
        functools.partial(counted, str(path), strategy.evaluate),
        f"{strategy.summary} (counted)",
    )
    register_strategy(counted_strategy)
    return counted_strategy


def spans(path: str, inner: Evaluate, candles: Any, params: Any, constants: Any) -> Metrics:
    """`inner`, after appending the first and last open time and the length of the
    candles it is given to `path` (an instrumented data source: what a trial saw)."""
    with open(path, "a", encoding="ascii") as file:
        file.write(f"{int(candles.timestamp[0])} {int(candles.timestamp[-1])} {len(candles)}\n")
    return inner(candles, params, constants)


def spanning(strategy: Strategy, path: Path, name: str) -> Strategy:
    """`strategy` under another name, writing the span of every candle series it
    evaluates to `path` (`spans`); its equity curve and trades are the strategy's own."""
    spanned = Strategy(
        name,
        strategy.parameters,
        functools.partial(spans, str(path), strategy.evaluate),
        f"{strategy.summary} (spans recorded)",
        strategy.equity,
        strategy.trade_returns,
    )
    register_strategy(spanned)
    return spanned


def executions(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def register_toys() -> None:
    for strategy in (QUADRATIC, SLEEPY):
        register_strategy(strategy)


def counting_reversal(path: Path) -> Strategy:
    """The production strategy, counted, as `counted_reversal`."""
    return counting(get_strategy("key_level_reversal"), path, "counted_reversal")


def counting_toy(path: Path) -> Strategy:
    """The toy bowl (`toy_quadratic`), counted, as `counted_toy`."""
    return counting(QUADRATIC, path, "counted_toy")


def ship_by_value() -> None:
    import sys

    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def crashing(marker: str, candles: Any, params: Mapping[str, Any], constants: Any) -> Metrics:
    """`quadratic`, except that while the file `marker` exists, a trial with k = 3 kills
    its worker process: an infrastructure failure, not a kernel outcome."""
    import os

    if params["k"] == 3 and os.path.exists(marker):
        os._exit(17)
    return quadratic(candles, params, constants)


def crashing_toy(marker: Path, name: str) -> Strategy:
    strategy = Strategy(name, TOY_PARAMETERS, functools.partial(crashing, str(marker)), "crashy")
    register_strategy(strategy)
    return strategy


def crashing_once(marker: str, candles: Any, params: Mapping[str, Any], constants: Any) -> Metrics:
    """`quadratic`; the first trial with k = 3 while the file `marker` exists removes it
    and kills its worker process (one infrastructure failure, then none)."""
    import os

    if params["k"] == 3:
        try:
            os.remove(marker)
        except FileNotFoundError:
            pass
        else:
            os._exit(17)
    return quadratic(candles, params, constants)


def crashing_once_toy(marker: Path, name: str) -> Strategy:
    strategy = Strategy(
        name, TOY_PARAMETERS, functools.partial(crashing_once, str(marker)), "crashes once"
    )
    register_strategy(strategy)
    return strategy
