"""The Tune function trainable around the kernel: the only module of trainable/ that
imports ray.

Use it as
    tune.with_parameters(backtest_trainable, candles=table, constants=JobConstants(...),
                         strategy=get_strategy(name))
with trial configs that carry a chunk of one seed's candidates, `{"seed": int, "trials":
[{"trial_index": int, "params": {name: int | float}}, ...]}` (search.interleave; any
other key is refused). `with_parameters` puts the table in the object store once (or
uses the ObjectRef it is given) and hands each trial the table; the result functions
also accept an ObjectRef. A trial runs the strategy's `evaluate` (the key-level
reversal backtest when no strategy is given) on each candidate in order and reports
once, with `ray.tune.report`, the dict of `chunk_result`: every candidate's result
under "trials", and the chunk's best score as "score" (what Tune's own tables show).
One report per chunk: a chunk whose worker dies reported nothing, so Tune's retry
recomputes all of it and no candidate is ever delivered twice.

Two kinds of failure (DESIGN.md, contract 3): a ValueError from the parameters'
validation or from the kernel is the trial's deterministic `invalid` outcome, reported
like any result; anything else (a malformed config, a bad candle table, a bug) raises
and fails the trial as an infrastructure error.

A walk-forward window's search sees only its training rows: `rows` (bound like the
candles) maps a chunk's seed to the half-open row range `[start, stop)` its candidates
are evaluated on; seeds not in it see the whole table. The strategy then runs on those
rows alone, as if the table ended there: nothing after `stop` (the window's test
candles) can reach it.

Candles are cached per worker process: with actor reuse, every trial of a job gets the
same table, and each `ray.get` returns a new Table over the same shared memory. The
cache is keyed by the columns' buffer addresses and lengths and holds the Candles it
made (so their memory, and the object store entry behind it, stays pinned: no other
data can appear at those addresses while the entry lives). A hit skips the Candles
checks and the kernel's parameter-free features: 25 us instead of 0.3 ms per trial at
10k candles, 43 ms at 1M (bench/RESULTS.md).

Test hook (never set outside tests): `REPROTUNE_TEST_KILL_WORKER="S:K[,S:K...]@DIR"` in
the workers' environment SIGKILLs the worker process right before it evaluates seed
S's trial K, once per (S, K): it first creates the marker file `DIR/killed-S-K`, and
the retry finds it and goes on (fault scenario 1 of issue 13).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import ray
from ray import tune

from trainable.candle_table import table_columns
from trainable.features import candle_features
from trainable.strategies import DEFAULT_STRATEGY, Strategy, get_strategy, outcome
from trainable.types import Candles, JobConstants

CACHED_TABLES = 2  # a worker serves one job's table; 2 covers a switch without thrashing
KILL_WORKER = "REPROTUNE_TEST_KILL_WORKER"

_cache: OrderedDict[tuple[tuple[int, int], ...], Candles] = OrderedDict()
_cache_lock = threading.Lock()


def backtest_trainable(
    config: Mapping[str, Any],
    *,
    candles: pa.Table | ray.ObjectRef,
    constants: JobConstants,
    strategy: Strategy | None = None,
    rows: Mapping[int, tuple[int, int]] | None = None,
) -> None:
    """Tune function trainable: a chunk of evaluations, one report (`chunk_result`)."""
    tune.report(chunk_result(config, candles, constants, strategy, rows))


def chunk_result(
    config: Mapping[str, Any],
    candles: pa.Table | ray.ObjectRef,
    constants: JobConstants,
    strategy: Strategy | None = None,
    rows: Mapping[int, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Every candidate's `trial_result`, in order, under "trials"; "score" is the best
    of them and "candidates" their number (for Tune's tables and the dashboard).
    `rows` restricts a seed's candidates to a range of rows (module docstring).

    Raises, for the whole chunk, what `trial_result` raises for one candidate.
    """
    seed, candidates = _parse_chunk(config)
    if isinstance(candles, ray.ObjectRef):
        candles = ray.get(candles)
    window = None if rows is None else rows.get(seed)
    results = []
    for trial_index, params in candidates:
        _kill_hook(seed, trial_index)
        single = {"seed": seed, "trial_index": trial_index, "params": params}
        results.append(trial_result(single, candles, constants, strategy, window))
    return {
        "seed": seed,
        "trials": results,
        "candidates": len(results),
        "score": max(result["score"] for result in results),
    }


def trial_result(
    config: Mapping[str, Any],
    candles: pa.Table | ray.ObjectRef,
    constants: JobConstants,
    strategy: Strategy | None = None,
    rows: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The trial's result: seed, trial_index, status, message, every metric, and where
    and when it ran. With `rows`, on the table's rows `[start, stop)` only.

    `status` is "ok" (message None, metrics as the strategy's `evaluate` returns them)
    or "invalid" (message "ExceptionClass: text", score SCORE_PENALTY, every other
    metric None). Raises on a malformed config, a bad candle table or wrong constants.
    `node` (the Ray node id, None outside Ray), `started_at` / `finished_at` (epoch
    seconds) and `duration_s` describe this execution only: they are never compared.
    """
    seed, trial_index, values = _parse_config(config)
    if not isinstance(constants, JobConstants):
        raise TypeError(f"constants must be a JobConstants, got {type(constants).__name__}")
    strategy = get_strategy(DEFAULT_STRATEGY) if strategy is None else strategy
    if not isinstance(strategy, Strategy):
        raise TypeError(f"strategy must be a Strategy, got {type(strategy).__name__}")
    if isinstance(candles, ray.ObjectRef):
        candles = ray.get(candles)
    prepared = cached_candles(candles, rows)
    result: dict[str, Any] = {"seed": seed, "trial_index": trial_index}
    started_at, started = time.time(), time.perf_counter()
    metrics, message = outcome(strategy, prepared, values, constants)
    result.update(status="ok" if message is None else "invalid", message=message)
    result.update(metrics)
    result.update(
        node=_node_id(),
        started_at=started_at,
        finished_at=time.time(),
        duration_s=time.perf_counter() - started,
    )
    return result


def _kill_hook(seed: object, trial_index: object) -> None:
    """The test hook of the module docstring (a no-op unless KILL_WORKER is set)."""
    hook = os.environ.get(KILL_WORKER)
    if not hook:
        return
    points, _, markers = hook.partition("@")
    if f"{seed}:{trial_index}" not in points.split(","):
        return
    try:
        with open(os.path.join(markers, f"killed-{seed}-{trial_index}"), "x"):
            pass
    except FileExistsError:
        return  # killed once already: this is a retry
    os.kill(os.getpid(), signal.SIGKILL)


def _node_id() -> str | None:
    """The Ray node this process runs on (None outside a Ray worker or driver)."""
    if not ray.is_initialized():
        return None
    return str(ray.get_runtime_context().get_node_id())


def cached_candles(table: pa.Table, rows: tuple[int, int] | None = None) -> Candles:
    """Candles over `table`'s columns (or their rows `[start, stop)`), zero-copy, cached
    per worker (see module doc).

    Raises what `trainable.candle_table.table_columns`, `Candles` and the kernel's
    features raise for a bad table (a multi-chunk column, nulls, NaN, prices <= 0), and
    ValueError for rows outside the table.
    """
    arrays = table_columns(table)
    if rows is not None:
        start, stop = rows
        if not 0 <= start < stop <= table.num_rows:
            raise ValueError(f"rows [{start}, {stop}) are not rows of a {table.num_rows}-row table")
        arrays = [array[start:stop] for array in arrays]
    key = tuple((array.__array_interface__["data"][0], len(array)) for array in arrays)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    prepared = Candles(*arrays)
    candle_features(prepared)  # bad values raise here, before any trial reports
    with _cache_lock:
        _cache[key] = prepared
        while len(_cache) > CACHED_TABLES:
            _cache.popitem(last=False)
    return prepared


def clear_cache() -> None:
    """Forget the cached Candles (tests; a worker never needs to)."""
    with _cache_lock:
        _cache.clear()


def _parse_chunk(config: Mapping[str, Any]) -> tuple[int, list[tuple[int, Mapping[str, Any]]]]:
    if not isinstance(config, Mapping):
        raise TypeError(f"trial config must be a mapping, got {type(config).__name__}")
    if set(config) != {"seed", "trials"}:
        raise ValueError(f"trial config must have exactly ['seed', 'trials'], got {sorted(config)}")
    trials = config["trials"]
    if not isinstance(trials, list) or not trials:
        raise ValueError(f"trial config trials must be a non-empty list, got {trials!r}")
    candidates = []
    for entry in trials:
        if not isinstance(entry, Mapping) or set(entry) != {"trial_index", "params"}:
            raise ValueError(f"a chunk's trial must have exactly trial_index and params: {entry!r}")
        candidates.append((entry["trial_index"], entry["params"]))
    return config["seed"], candidates


def _parse_config(config: Mapping[str, Any]) -> tuple[int, int, Mapping[str, object]]:
    if not isinstance(config, Mapping):
        raise TypeError(f"trial config must be a mapping, got {type(config).__name__}")
    expected = {"seed", "trial_index", "params"}
    if set(config) != expected:
        raise ValueError(f"trial config must have exactly {sorted(expected)}, got {sorted(config)}")
    seed, trial_index, values = config["seed"], config["trial_index"], config["params"]
    for name, number in (("seed", seed), ("trial_index", trial_index)):
        if isinstance(number, bool) or not isinstance(number, int | np.integer):
            raise TypeError(f"trial config {name} must be an int, got {number!r}")
    if not isinstance(values, Mapping):
        raise TypeError(f"trial config params must be a mapping, got {type(values).__name__}")
    return int(seed), int(trial_index), values
