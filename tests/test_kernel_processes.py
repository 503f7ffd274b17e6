"""The kernel in fresh interpreters: pure (no ray, psycopg, ccxt), the same bits in any
process and on a generic x86-64 target, and its compile cache found from another path.

Each child process runs FINGERPRINT (below) on the committed fixture and prints every
trade field and metric exactly (floats as float.hex); this process runs the same code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE = REPO_ROOT / "tests" / "data" / "binance_BTC-USDT_5m_0-4999.parquet"

# Parameter sets and costs that, on the fixture, give longs and shorts and every exit
# reason (checked below, so that agreement is not agreement on nothing).
RUNS = [
    (
        {
            "key_level_lookback": 200,
            "min_level_touches": 4,
            "min_distance_from_level": 0.0016,
            "pierce_depth": 0.0032,
            "reversal_candles": 2,
            "volume_spike_threshold": 1.4,
            "atr_multiplier_sl": 3.0,
            "risk_reward_ratio": 3.2,
            "max_holding_periods": 138,
        },
        0.001,
        0.0005,
    ),
    (
        {
            "key_level_lookback": 98,
            "min_level_touches": 3,
            "min_distance_from_level": 0.004,
            "pierce_depth": 0.0025,
            "reversal_candles": 1,
            "volume_spike_threshold": 2.2,
            "atr_multiplier_sl": 2.9,
            "risk_reward_ratio": 4.0,
            "max_holding_periods": 146,
        },
        0.00075,
        0.0,
    ),
]

# A child's whole program: argv = source root, fixture, runs as JSON. It warms the
# kernel up, then prints the fingerprint, the kernel modules' file, forbidden modules
# loaded, compile stats and the CPU numba compiles for.
FINGERPRINT = """
import json, sys
from dataclasses import astuple

def exact(value):
    return value.hex() if isinstance(value, float) else value

def fingerprint(fixture, runs):
    import pyarrow.parquet as pq
    from trainable.backtest import Candles, JobConstants, backtest
    from trainable.params import StrategyParams
    table = pq.read_table(fixture)
    candles = Candles(*(table[name].to_numpy() for name in table.column_names))
    out = []
    for values, fee, slippage in runs:
        constants = JobConstants(5, fee=fee, slippage=slippage)
        result = backtest(candles, StrategyParams.from_mapping(values), constants)
        out.append({
            "trades": [[exact(v) for v in astuple(trade)] for trade in result.trades],
            "metrics": {name: exact(v) for name, v in result.metrics.items()},
        })
    return out

ENTRY_POINTS = {  # the compiled functions that Python calls
    "engine": ("first_bad_row", "wilder_atr", "find_trades", "equity_curve"),
    "signals": ("find_pivots", "volume_means"),
    "metrics": ("return_sums", "trade_sums"),
}

def compile_stats():
    import importlib
    from numba.core.registry import CPUDispatcher
    hits = misses = 0
    signatures = {}
    for name in ENTRY_POINTS:
        module = importlib.import_module("trainable." + name)
        for attribute, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher):
                hits += sum(obj.stats.cache_hits.values())
                misses += sum(obj.stats.cache_misses.values())
                if attribute in ENTRY_POINTS[name]:
                    signatures[attribute] = len(obj.signatures)
    return {"hits": hits, "misses": misses, "entry_signatures": signatures}

def target_cpu():
    from numba.core.registry import cpu_target
    return cpu_target.target_context.codegen().magic_tuple()[1]

if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    from trainable.backtest import warm_up
    warm_up()
    result = fingerprint(sys.argv[2], json.loads(sys.argv[3]))
    import trainable.backtest
    print(json.dumps({
        "fingerprint": result,
        "kernel_file": trainable.backtest.__file__,
        "forbidden": sorted(m for m in ("ray", "psycopg", "ccxt") if m in sys.modules),
        "compile": compile_stats(),
        "cpu": target_cpu(),
    }))
"""


def run_child(source_root: Path, env_overrides: dict[str, str] | None = None) -> dict:
    env = {**os.environ, **(env_overrides or {})}
    completed = subprocess.run(
        [sys.executable, "-c", FINGERPRINT, str(source_root), str(FIXTURE), json.dumps(RUNS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def here() -> list[dict]:
    """The fingerprint computed in this process (host CPU, the default cache)."""
    namespace: dict = {}
    exec(FINGERPRINT, namespace)
    return namespace["fingerprint"](str(FIXTURE), json.loads(json.dumps(RUNS)))


def test_fingerprint_covers_both_sides_and_every_exit_reason(here):
    trades = [trade for run in here for trade in run["trades"]]
    assert {trade[0] for trade in trades} == {1, -1}
    assert {trade[9] for trade in trades} == {"stop", "target", "time", "end"}
    assert all(run["metrics"]["sharpe"] is not None for run in here)


def test_fresh_interpreter_is_pure_and_gives_the_same_bits(here):
    child = run_child(REPO_ROOT)
    assert child["cpu"] != "generic"
    assert child["forbidden"] == [], "the kernel must not import ray, psycopg or ccxt"
    assert child["fingerprint"] == here


@pytest.mark.slow
def test_generic_cpu_gives_the_same_bits_and_the_cache_follows_content(here, tmp_path):
    """A cold compile for NUMBA_CPU_NAME=generic from one copy of trainable/, then a
    fresh process from a copy at another path: it must load everything from the cache
    (as a Tune worker does under `ray job submit --working-dir`), with the same bits."""
    env = {"NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    copies = []
    for name in ("first", "second"):
        root = tmp_path / name
        shutil.copytree(
            REPO_ROOT / "trainable",
            root / "trainable",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        copies.append(root)

    cold = run_child(copies[0], env)
    assert cold["cpu"] == "generic"
    assert Path(cold["kernel_file"]).is_relative_to(copies[0])
    assert cold["compile"]["misses"] > 0, "the private cache should have started empty"
    # warm_up() compiled every entry point with the one signature that real runs use.
    signatures = cold["compile"]["entry_signatures"]
    assert len(signatures) == 8 and set(signatures.values()) == {1}, signatures
    assert cold["fingerprint"] == here

    warm = run_child(copies[1], env)
    assert Path(warm["kernel_file"]).is_relative_to(copies[1])
    # Only the functions called from Python are loaded; their callees are inside them.
    assert warm["compile"]["misses"] == 0
    assert warm["compile"]["hits"] > 0
    assert warm["fingerprint"] == here
