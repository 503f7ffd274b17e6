"""Benchmark of the backtest kernel (issue 2, part 6). Run from the repository root:

    python bench/backtest.py            # prints a markdown section for bench/RESULTS.md

Measures, in one run:
- per backtest, over 100 parameter sets drawn uniformly from the default search ranges
  (numpy Generator seeded 0; ints uniform over the integers), median and 90th
  percentile of `backtest_metrics` (what a Tune trial runs) and of `backtest` (which
  also builds one Trade object per trade), on the first 10,000 rows of
  ../shared/data/binance_BTC-USDT_5m.parquet, on all its 69,395 rows, and on a
  synthetic 1,000,000-candle series (seed 0) and its first 10,000 rows (growth measured
  like for like). Each set is timed once, after one untimed call per series that
  computes the series' parameter-free features (reported separately);
- the Tune adapter's per-trial cost of preparing the candles, with and without its
  per-worker cache;
- the slow reference (tests/reference_backtest.py) on 10k candles, when present;
- a fresh process's cost before its first backtest: cold (empty numba cache) and
  cached, the cached one from a copy of trainable/ at another path (what a Tune worker
  under `ray job submit --working-dir` sees);
- the ratio to the old system's ~21 s per 10k-candle backtest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trainable.backtest import Candles, JobConstants, backtest, backtest_metrics  # noqa: E402
from trainable.declaration import PARAMETERS  # noqa: E402
from trainable.params import StrategyParams  # noqa: E402

BTC_5M = REPO.parent / "shared" / "data" / "binance_BTC-USDT_5m.parquet"
OLD_SYSTEM_SECONDS = 21.0  # per 10k-candle backtest (DESIGN.md, seeds/000_...)


def parameter_values(count: int, seed: int = 0) -> list[dict[str, int | float]]:
    """`count` sets drawn uniformly from the default search ranges (ints uniform over
    the integers), in declaration order."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(count):
        values: dict[str, int | float] = {}
        for decl in PARAMETERS:
            lo, hi = decl.search
            if decl.kind == "int":
                values[decl.name] = int(rng.integers(int(lo), int(hi) + 1))
            else:
                values[decl.name] = float(rng.uniform(float(lo), float(hi)))
        sets.append(values)
    return sets


def parameter_sets(count: int, seed: int = 0) -> list[StrategyParams]:
    """`parameter_values` as StrategyParams."""
    return [StrategyParams.from_mapping(values) for values in parameter_values(count, seed)]


def synthetic_candles(n: int, seed: int = 0) -> Candles:
    """A 5m-like geometric random walk with wicks and lognormal volume (bench only)."""
    rng = np.random.default_rng(seed)
    close = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0015, n)))
    open_ = np.concatenate(([40_000.0], close[:-1]))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.0008, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.0008, n)))
    volume = rng.lognormal(4.0, 0.8, n)
    timestamp = 1_600_000_000_000 + 300_000 * np.arange(n, dtype=np.int64)
    return Candles(timestamp, open_, high, low, close, volume)


def real_candles(rows: int | None) -> Candles:
    table = pq.read_table(BTC_5M)
    if rows is not None:
        table = table.slice(0, rows)
    return Candles(*(table[name].to_numpy() for name in table.column_names))


def time_series(candles: Candles, sets: list[StrategyParams]) -> dict[str, float]:
    """Per-backtest times over `sets`: `backtest_metrics` (what a Tune trial runs) and
    `backtest` (which also builds a Trade object per trade), each set timed once. Wall
    time, and this thread's CPU time (which other processes on a shared machine do
    not inflate)."""
    constants = JobConstants(timeframe_minutes=5)
    started = time.perf_counter()
    backtest_metrics(candles, sets[0], constants)  # computes and keeps the features
    first = time.perf_counter() - started
    wall, cpu, full, trades = [], [], [], []
    for params in sets:
        started, started_cpu = time.perf_counter(), time.thread_time()
        backtest_metrics(candles, params, constants)
        wall.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
        started = time.perf_counter()
        result = backtest(candles, params, constants)
        full.append(time.perf_counter() - started)
        trades.append(len(result.trades))
    return {
        "candles": len(candles),
        "median_ms": statistics.median(wall) * 1e3,
        "p90_ms": float(np.percentile(wall, 90)) * 1e3,
        "cpu_median_ms": statistics.median(cpu) * 1e3,
        "full_median_ms": statistics.median(full) * 1e3,
        "full_p90_ms": float(np.percentile(full, 90)) * 1e3,
        "features_ms": (first - statistics.median(wall)) * 1e3,
        "median_trades": statistics.median(trades),
        "ns_per_candle": statistics.median(cpu) / len(candles) * 1e9,
    }


def time_adapter_cache(table_rows: dict[str, pa.Table]) -> dict[str, tuple[float, float]]:
    """Per-trial cost of turning the trial's table into kernel input: without the
    adapter's cache (Candles checks + features, every trial) and with it (a hit)."""
    from trainable.candle_table import candles_from_table
    from trainable.features import candle_features
    from trainable.tune_adapter import cached_candles, clear_cache

    costs = {}
    for name, table in table_rows.items():
        uncached = []
        for _ in range(5):
            started = time.perf_counter()
            candle_features(candles_from_table(table))
            uncached.append(time.perf_counter() - started)
        clear_cache()
        cached_candles(table)
        hits = []
        for _ in range(20):
            same_memory = pa.Table.from_arrays(table.columns, names=table.column_names)
            started = time.perf_counter()
            cached_candles(same_memory)
            hits.append(time.perf_counter() - started)
        clear_cache()
        costs[name] = (statistics.median(uncached) * 1e3, statistics.median(hits) * 1e3)
    return costs


def time_reference(candles: Candles, sets: list[StrategyParams]) -> str:
    if not (REPO / "tests" / "reference_backtest.py").exists():
        return "tests/reference_backtest.py is not on this branch: not measured"
    from tests.reference_backtest import reference_backtest

    constants = JobConstants(timeframe_minutes=5)
    seconds = []
    for params in sets:
        started = time.perf_counter()
        reference_backtest(candles, params, constants)
        seconds.append(time.perf_counter() - started)
    return f"median {statistics.median(seconds):.2f} s over {len(sets)} parameter sets"


FRESH_PROCESS = """
import time
started = time.perf_counter()
import sys
sys.path.insert(0, sys.argv[1])
import pyarrow.parquet as pq
from trainable.backtest import Candles, JobConstants, backtest
from trainable.params import default_params
table = pq.read_table(sys.argv[2])
candles = Candles(*(table[name].to_numpy() for name in table.column_names))
loaded = time.perf_counter()
backtest(candles, default_params(), JobConstants(timeframe_minutes=5))
done = time.perf_counter()
print(f"{loaded - started} {done - loaded} {time.time()}")
"""


def fresh_process_costs() -> dict[str, float]:
    """Seconds from interpreter start to the end of a first backtest of the fixture.

    Python's own bytecode cache is on (PYTHONPYCACHEPREFIX in a scratch directory,
    warmed by an untimed run), as it is for an installed package, so the numbers are
    numba's cost rather than recompiling numpy's and numba's sources. The numba cache
    is private: empty for the cold run, then reused from a copy of trainable/ at
    another path (what a worker under `ray job submit --working-dir` sees).
    """
    fixture = REPO / "tests" / "data" / "binance_BTC-USDT_5m_0-4999.parquet"
    with tempfile.TemporaryDirectory(prefix="bench-numba-") as scratch:
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(scratch) / "pycache")
        moved = Path(scratch) / "elsewhere"
        shutil.copytree(REPO / "trainable", moved / "trainable")

        def run(root: Path, cache: str) -> tuple[float, float, float]:
            """(spawn to the end of the first backtest, imports, first backtest) s."""
            spawned = time.time()
            out = subprocess.run(
                [sys.executable, "-c", FRESH_PROCESS, str(root), str(fixture)],
                env={**env, "NUMBA_CACHE_DIR": str(Path(scratch) / cache)},
                check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            return float(out[2]) - spawned, float(out[0]), float(out[1])

        run(REPO, "warm-up")  # fills the bytecode cache; not timed
        cold = run(REPO, "numba")
        cached = run(moved, "numba")
    return {
        "cold_total_s": cold[0],
        "cold_first_backtest_s": cold[2],
        "cached_total_s": cached[0],
        "cached_imports_s": cached[1],
        "cached_first_backtest_s": cached[2],
    }


SERIES_NAMES = ("BTC 5m, first 10k", "BTC 5m, all", "synthetic, first 10k", "synthetic 1M")


def report(
    rows: list[dict[str, float]],
    adapter: dict[str, tuple[float, float]],
    reference: str,
    fresh: dict[str, float],
) -> str:
    lines = [
        "| series | candles | median ms | p90 ms | CPU median ms | CPU ns/candle "
        "| with Trade objects: median / p90 ms | median trades | features ms (once) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in zip(SERIES_NAMES, rows, strict=True):
        lines.append(
            f"| {name} | {row['candles']:,} | {row['median_ms']:.3f} | {row['p90_ms']:.3f} "
            f"| {row['cpu_median_ms']:.3f} | {row['ns_per_candle']:.1f} "
            f"| {row['full_median_ms']:.3f} / {row['full_p90_ms']:.3f} "
            f"| {row['median_trades']:.0f} | {row['features_ms']:.2f} |"
        )
    btc, synthetic_10k, synthetic_1m = rows[0], rows[2], rows[3]
    speedup = OLD_SYSTEM_SECONDS / (btc["median_ms"] / 1e3)
    like_for_like = synthetic_1m["ns_per_candle"] / synthetic_10k["ns_per_candle"]
    from_btc = synthetic_1m["ns_per_candle"] / btc["ns_per_candle"]
    lines += [
        "",
        f"- Old system ~21 s per 10k backtest: {speedup:,.0f}x faster (BTC 10k median).",
        f"- Growth 10k -> 1M, CPU time per candle: x{like_for_like:.2f} on the same "
        f"synthetic series, x{from_btc:.2f} from BTC 10k (1.00 = linear).",
    ]
    for name, (uncached, hit) in adapter.items():
        lines.append(
            f"- Adapter, {name} table: Candles + features {uncached:.2f} ms per trial without "
            f"the per-worker cache, {hit * 1e3:.0f} us with it."
        )
    lines += [
        f"- Slow reference on BTC 10k: {reference}.",
        f"- Fresh process, empty numba cache: {fresh['cold_total_s']:.2f} s from spawn to the "
        f"end of the first backtest ({fresh['cold_first_backtest_s']:.2f} s of it compiling "
        "and running).",
        f"- Fresh process, numba cache from a copy of trainable/ at another path: "
        f"{fresh['cached_total_s']:.2f} s from spawn to the end of the first backtest "
        f"(imports and reading the fixture {fresh['cached_imports_s']:.2f} s, first "
        f"backtest with numba's import and cache load {fresh['cached_first_backtest_s']:.2f} s).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=100)
    parser.add_argument("--reference-sets", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print raw numbers too")
    args = parser.parse_args()
    if not BTC_5M.exists():
        sys.exit(f"{BTC_5M} is missing: the benchmark needs ../shared/data")
    sets = parameter_sets(args.sets)
    synthetic = synthetic_candles(1_000_000)
    series = [real_candles(10_000), real_candles(None), synthetic.head(10_000), synthetic]
    backtest(series[0], sets[0], JobConstants(timeframe_minutes=5))  # compile or load
    rows = [time_series(candles, sets) for candles in series]
    tables = {
        f"{len(candles):,}-row": pa.table(
            {
                name: getattr(candles, name)
                for name in ("timestamp", "open", "high", "low", "close", "volume")
            }
        )
        for candles in (series[0], synthetic)
    }
    adapter = time_adapter_cache(tables)
    reference = time_reference(series[0], sets[: args.reference_sets])
    fresh = fresh_process_costs()
    if args.json:
        print(json.dumps({"series": rows, "adapter": adapter, "fresh": fresh}, indent=2))
    print(report(rows, adapter, reference, fresh))


if __name__ == "__main__":
    main()
