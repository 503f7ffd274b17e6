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


HOLD_MARKER = "REPROTUNE_TEST_HOLD_MARKER"
HOLD_AFTER = "REPROTUNE_TEST_HOLD_AFTER"
HOLD_NODE = "REPROTUNE_TEST_HOLD_NODE"
WAIT_LIMIT_S = 300.0


def holding(candles: Any, params: Mapping[str, Any], constants: Any) -> Metrics:
    """`sleepy` with `hold` first (see `hold`)."""
    hold()
    return sleepy(candles, params, constants)


def holding_quickly(candles: Any, params: Mapping[str, Any], constants: Any) -> Metrics:
    """`quadratic` with `hold` first: trials of a few milliseconds, like the kernel's on
    ten thousand candles, so that a node slow to start a worker would get none unless
    the run waits for it (cluster.job.trial_actors)."""
    hold()
    return quadratic(candles, params, constants)


def hold() -> None:
    """A test hook enabled by the environment of the process (a job's runtime_env), so
    that cluster tests meet their faults at deterministic points:
    REPROTUNE_TEST_HOLD_MARKER=PATH: evaluation number REPROTUNE_TEST_HOLD_AFTER (1: the
    first) of a process, on the Ray node REPROTUNE_TEST_HOLD_NODE when that is set,
    creates the file PATH, unless another process already did, and holds until the file
    `PATH.release` exists (at most WAIT_LIMIT_S). Only one evaluation ever holds."""
    import os

    count_key = "REPROTUNE_TEST_EVALUATIONS"  # per process: globals are unpickled per trial
    count = int(os.environ.get(count_key, "0")) + 1
    os.environ[count_key] = str(count)
    marker = os.environ.get(HOLD_MARKER)
    if marker and count == int(os.environ.get(HOLD_AFTER, "1")) and _on_hold_node():
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            _wait_for(lambda: os.path.exists(marker + ".release"))


def _on_hold_node() -> bool:
    import os

    node = os.environ.get(HOLD_NODE)
    if not node:
        return True
    import ray

    return bool(ray.get_runtime_context().get_node_id() == node)


def _wait_for(condition: Any) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def counted(path: str, inner: Evaluate, candles: Any, params: Any, constants: Any) -> Metrics:
    with open(path, "a", encoding="ascii") as file:
        file.write("1\n")
    return inner(candles, params, constants)


QUADRATIC = Strategy("toy_quadratic", TOY_PARAMETERS, quadratic, "a two-parameter bowl")
SLEEPY = Strategy("toy_sleepy", TOY_PARAMETERS, sleepy, "the bowl, with naps")
HOLDING = Strategy("toy_hold", TOY_PARAMETERS, holding, "the bowl, with naps and a hold hook")
HOLDING_QUICKLY = Strategy(
    "toy_hold_quick", TOY_PARAMETERS, holding_quickly, "the bowl, quick, with a hold hook"
)


def instrumented(strategy: Strategy, name: str, wrapper: Any, path: Path, what: str) -> Strategy:
    """`strategy` registered under `name`, its `evaluate` wrapped as `wrapper(str(path),
    evaluate, candles, params, constants)`; its equity curve and trades are the
    strategy's own, unwrapped."""
    wrapped = Strategy(
        name,
        strategy.parameters,
        functools.partial(wrapper, str(path), strategy.evaluate),
        f"{strategy.summary} ({what})",
        strategy.equity,
        strategy.trade_returns,
    )
    register_strategy(wrapped)
    return wrapped


def counting(strategy: Strategy, path: Path, name: str) -> Strategy:
    """`strategy` under another name, counting its executions (of `evaluate`) in `path`."""
    return instrumented(strategy, name, counted, path, "counted")


def spans(path: str, inner: Evaluate, candles: Any, params: Any, constants: Any) -> Metrics:
    """`inner`, after appending the first and last open time and the length of the
    candles it is given to `path` (an instrumented data source: what a trial saw)."""
    with open(path, "a", encoding="ascii") as file:
        file.write(f"{int(candles.timestamp[0])} {int(candles.timestamp[-1])} {len(candles)}\n")
    return inner(candles, params, constants)


def spanning(strategy: Strategy, path: Path, name: str) -> Strategy:
    """`strategy` under another name, writing the span of every candle series it
    evaluates to `path` (`spans`)."""
    return instrumented(strategy, name, spans, path, "spans recorded")


def pid_recorded(path: str, inner: Evaluate, candles: Any, params: Any, constants: Any) -> Metrics:
    """`inner`, after appending the evaluating process's id to `path`."""
    import os

    with open(path, "a", encoding="ascii") as file:
        file.write(f"{os.getpid()}\n")
    return inner(candles, params, constants)


def recording_pids(strategy: Strategy, path: Path, name: str) -> Strategy:
    """`strategy` under another name, writing the id of every process that evaluates it
    to `path` (one line per evaluation): which worker processes the trials ran in."""
    return instrumented(strategy, name, pid_recorded, path, "process ids recorded")


def executions(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def register_toys() -> None:
    for strategy in (QUADRATIC, SLEEPY, HOLDING, HOLDING_QUICKLY):
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
