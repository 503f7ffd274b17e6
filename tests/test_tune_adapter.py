"""The Tune adapter with a real local Ray: a small Tune run reports what direct calls
compute, an invalid config is an `invalid` outcome (not a crash), and bad tables and
configs are refused."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainable.backtest import JobConstants, backtest_metrics
from trainable.candle_table import candles_from_table
from trainable.declaration import METRIC_NAMES, SCORE_PENALTY
from trainable.params import StrategyParams, default_params
from trainable.tune_adapter import (
    CACHED_TABLES,
    backtest_trainable,
    cached_candles,
    chunk_result,
    clear_cache,
    trial_result,
)

RAY_INIT = {"num_cpus": 2}
CONSTANTS = JobConstants(timeframe_minutes=5, fee=0.001, slippage=0.0002, min_trades=5)
DEFAULT = default_params().as_dict()
PARAMS = [
    DEFAULT,
    {**DEFAULT, "reversal_candles": 1, "min_level_touches": 2, "key_level_lookback": 80},
    {**DEFAULT, "min_distance_from_level": 0.0045, "volume_spike_threshold": 1.2},
    {**DEFAULT, "min_level_touches": 0},  # below the valid values: an invalid outcome
]


@pytest.fixture(scope="module")
def table(fixture_candles_path) -> pa.Table:
    return pq.read_table(fixture_candles_path).combine_chunks()


def direct(table: pa.Table, params: dict) -> dict:
    return backtest_metrics(
        candles_from_table(table), StrategyParams.from_mapping(params), CONSTANTS
    )


@pytest.mark.ray
def test_a_tune_run_reports_direct_metrics_and_invalid_outcomes(ray_local, table, tmp_path):
    from ray import tune

    chunks = [
        [{"trial_index": k, "params": PARAMS[k]} for k in (0, 1)],
        [{"trial_index": k, "params": PARAMS[k]} for k in (2, 3)],
    ]
    tuner = tune.Tuner(
        tune.with_parameters(backtest_trainable, candles=table, constants=CONSTANTS),
        param_space={"seed": 7, "trials": tune.grid_search(chunks)},
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="adapter", verbose=0),
    )
    grid = tuner.fit()
    assert grid.num_errors == 0
    reports = [result.metrics for result in grid]
    assert sorted(r["candidates"] for r in reports) == [2, 2]
    # Each chunk's "score" (what Tune's tables show) is the best of its candidates.
    for report in reports:
        assert report["score"] == max(t["score"] for t in report["trials"])
    reported = sorted((t for r in reports for t in r["trials"]), key=lambda t: t["trial_index"])
    assert [t["trial_index"] for t in reported] == list(range(len(PARAMS)))
    assert all(t["seed"] == 7 for t in reported)
    for metrics, params in zip(reported[:3], PARAMS[:3], strict=True):
        assert metrics["status"] == "ok" and metrics["message"] is None
        assert {name: metrics[name] for name in METRIC_NAMES} == direct(table, params)
    assert reported[0]["n_trades"] > 0
    invalid = reported[3]
    assert invalid["status"] == "invalid"
    assert invalid["message"].startswith("ValueError: invalid strategy parameters: ")
    assert "min_level_touches must be >= 1" in invalid["message"]
    assert invalid["score"] == SCORE_PENALTY
    assert all(invalid[name] is None for name in METRIC_NAMES if name != "score")


def test_a_chunk_config_is_checked():
    for config, problem in (
        ({"seed": 1, "trial_index": 0, "params": DEFAULT}, "exactly \\['seed', 'trials'\\]"),
        ({"seed": 1, "trials": []}, "non-empty list"),
        ({"seed": 1, "trials": [{"trial_index": 0}]}, "exactly trial_index and params"),
    ):
        with pytest.raises(ValueError, match=problem):
            chunk_result(config, pa.table({"x": [1]}), CONSTANTS)


@pytest.mark.ray
def test_an_object_ref_to_the_table_gives_the_same_result(ray_local, table):
    config = {"seed": 1, "trial_index": 0, "params": PARAMS[1]}
    by_ref = trial_result(config, ray_local.put(table), CONSTANTS)
    by_value = trial_result(config, table, CONSTANTS)
    assert _deterministic(by_ref) == _deterministic(by_value)
    assert {name: by_ref[name] for name in METRIC_NAMES} == direct(table, PARAMS[1])
    # Where and when it ran: this execution's, never compared.
    assert by_ref["node"] == ray_local.get_runtime_context().get_node_id()
    assert by_ref["started_at"] <= by_ref["finished_at"] and by_ref["duration_s"] >= 0


EXECUTION_KEYS = ("node", "started_at", "finished_at", "duration_s")


def _deterministic(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in EXECUTION_KEYS}


def test_a_kernel_rejection_is_an_invalid_outcome(table):
    # Prices that double while a short is open drive marked equity below zero (C19):
    # the kernel raises ValueError, which the trial reports instead of crashing.
    n = 60
    close = np.full(n, 100.0)
    close[27:] = 100.0 + 10.0 * np.arange(1, n - 26)
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) + 0.5
    low = np.minimum(open_, close) - 0.5
    high[10], high[25] = 101.0, 101.5
    crafted = pa.table(
        {
            "timestamp": 1_600_000_000_000 + 300_000 * np.arange(n, dtype=np.int64),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.full(n, 10.0),
        }
    )
    params = {
        **DEFAULT,
        "key_level_lookback": 50,
        "min_level_touches": 1,
        "min_distance_from_level": 0.0,
        "pierce_depth": 0.01,
        "reversal_candles": 1,
        "volume_spike_threshold": 0.0,
        "atr_multiplier_sl": 1000.0,
    }
    result = trial_result({"seed": 0, "trial_index": 5, "params": params}, crafted, CONSTANTS)
    assert result["status"] == "invalid"
    assert result["message"].startswith("ValueError: equity reached ")
    assert result["score"] == SCORE_PENALTY and result["sharpe"] is None


def test_a_multi_chunk_table_is_refused(table):
    chunked = pa.concat_tables([table.slice(0, 1000), table.slice(1000)])
    assert chunked.column("close").num_chunks == 2
    config = {"seed": 0, "trial_index": 0, "params": DEFAULT}
    with pytest.raises(ValueError, match="column 'timestamp' has 2 chunks, needs exactly 1"):
        trial_result(config, chunked, CONSTANTS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["volume"]), "columns must be exactly"),
        (lambda t: t.append_column("extra", t.column("close")), "columns must be exactly"),
        (
            lambda t: t.set_column(5, "volume", pa.array([None] + [1.0] * (t.num_rows - 1))),
            "column 'volume' has 1 nulls",
        ),
        (
            lambda t: t.set_column(4, "close", t.column("close").cast(pa.float32())),
            "column 'close' must be double, got float",
        ),
    ],
)
def test_malformed_tables_are_refused(table, change, message):
    config = {"seed": 0, "trial_index": 0, "params": DEFAULT}
    with pytest.raises(ValueError, match=message):
        trial_result(config, change(table), CONSTANTS)


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"seed": 0, "params": DEFAULT}, ValueError, "must have exactly"),
        ({"seed": True, "trial_index": 0, "params": DEFAULT}, TypeError, "seed must be an int"),
        ({"seed": 0, "trial_index": 0.0, "params": DEFAULT}, TypeError, "trial_index must be"),
        ({"seed": 0, "trial_index": 0, "params": [1, 2]}, TypeError, "params must be a mapping"),
    ],
)
def test_malformed_configs_raise(table, config, error, message):
    with pytest.raises(error, match=message):
        trial_result(config, table, CONSTANTS)


def test_candles_are_cached_per_table_memory(table):
    clear_cache()
    first = cached_candles(table)
    # A new Table over the same buffers (what each ray.get returns) hits the cache...
    same_memory = pa.Table.from_arrays(table.columns, names=table.column_names)
    assert cached_candles(same_memory) is first
    # ...a copy of the data in other memory does not, and gives equal results.
    copied = pa.table({name: table.column(name).to_numpy().copy() for name in table.column_names})
    assert cached_candles(copied) is not first
    assert direct(copied, DEFAULT) == direct(table, DEFAULT)
    # The cache holds CACHED_TABLES entries, the least recently used leaves first.
    others = [table.slice(0, 1000 + k).combine_chunks() for k in range(CACHED_TABLES)]
    for other in others:
        cached_candles(other)
    assert cached_candles(same_memory) is not first
    clear_cache()


def test_a_seeds_rows_limit_its_candidates_to_those_candles(table):
    """Walk-forward groundwork: with `rows`, a seed's candidates see only rows
    [start, stop) of the table, as if it had only those; other seeds see all of it."""
    trials = [{"trial_index": k, "params": PARAMS[k]} for k in (0, 1, 2)]
    limited = chunk_result({"seed": 7, "trials": trials}, table, CONSTANTS, rows={7: (300, 2300)})
    whole = chunk_result({"seed": 8, "trials": trials}, table, CONSTANTS, rows={7: (300, 2300)})
    part = table.slice(300, 2000).combine_chunks()
    for k, result in enumerate(limited["trials"]):
        assert {name: result[name] for name in METRIC_NAMES} == direct(part, PARAMS[k])
    for k, result in enumerate(whole["trials"]):
        assert {name: result[name] for name in METRIC_NAMES} == direct(table, PARAMS[k])
    with pytest.raises(ValueError, match="are not rows of a 5000-row table"):
        chunk_result({"seed": 7, "trials": trials}, table, CONSTANTS, rows={7: (4000, 5001)})
