"""Benchmark of the backtest kernel (issue 2, part 6). Run from the repository root:

    python bench/backtest.py            # prints a markdown section for bench/RESULTS.md

Measures, in one run:
- `backtest()` over 100 parameter sets drawn uniformly from the default search ranges
  (numpy Generator seeded 0; ints uniform over the integers): median and 90th
  percentile on the first 10,000 rows of ../shared/data/binance_BTC-USDT_5m.parquet,
  on all its 69,395 rows and on a synthetic 1,000,000-candle series (seed 0). Each set
  is timed once, after one untimed call per series that computes its parameter-free
  features (timed separately: `trainable.features`);
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
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trainable.backtest import Candles, JobConstants, backtest  # noqa: E402
from trainable.declaration import PARAMETERS  # noqa: E402
from trainable.params import StrategyParams  # noqa: E402

BTC_5M = REPO.parent / "shared" / "data" / "binance_BTC-USDT_5m.parquet"
OLD_SYSTEM_SECONDS = 21.0  # per 10k-candle backtest (DESIGN.md, seeds/000_...)


def parameter_sets(count: int, seed: int = 0) -> list[StrategyParams]:
    """`count` sets drawn uniformly from the default search ranges, in declaration order."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(count):
        values: dict[str, int | float] = {}
        for decl in PARAMETERS:
            lo, hi = decl.search
            if decl.kind == "int":
                values[decl.name] = int(rng.integers(int(lo), int(hi) + 1))
            else:
                values[decl.name] = float(rng.uniform(lo, hi))
        sets.append(StrategyParams.from_mapping(values))
    return sets


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
    constants = JobConstants(timeframe_minutes=5)
    started = time.perf_counter()
    backtest(candles, sets[0], constants)  # computes and keeps the features
    first = time.perf_counter() - started
    seconds = []
    trades = []
    for params in sets:
        started = time.perf_counter()
        result = backtest(candles, params, constants)
        seconds.append(time.perf_counter() - started)
        trades.append(len(result.trades))
    median = statistics.median(seconds)
    return {
        "candles": len(candles),
        "median_ms": median * 1e3,
        "p90_ms": float(np.percentile(seconds, 90)) * 1e3,
        "max_ms": max(seconds) * 1e3,
        "first_call_ms": first * 1e3,
        "median_trades": statistics.median(trades),
        "ns_per_candle": median / len(candles) * 1e9,
    }


def time_reference(candles: Candles, sets: list[StrategyParams]) -> str:
    if not (REPO / "tests" / "reference_backtest.py").exists():
        return "tests/reference_backtest.py is not on this branch: not measured"
    sys.path.insert(0, str(REPO / "tests"))
    import reference_backtest  # type: ignore[import-not-found]

    constants = JobConstants(timeframe_minutes=5)
    seconds = []
    for params in sets:
        started = time.perf_counter()
        reference_backtest.backtest(candles, params, constants)
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
imported = time.perf_counter()
table = pq.read_table(sys.argv[2])
candles = Candles(*(table[name].to_numpy() for name in table.column_names))
backtest(candles, default_params(), JobConstants(timeframe_minutes=5))
done = time.perf_counter()
print(f"{imported - started} {done - imported}")
"""


def fresh_process_costs() -> dict[str, float]:
    """Import + first backtest of the fixture in new interpreters, with a private cache."""
    fixture = REPO / "tests" / "data" / "binance_BTC-USDT_5m_0-4999.parquet"
    with tempfile.TemporaryDirectory(prefix="bench-numba-") as scratch:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(scratch) / "cache")}
        moved = Path(scratch) / "elsewhere"
        moved.mkdir()
        shutil.copytree(REPO / "trainable", moved / "trainable")

        def run(root: Path) -> tuple[float, float]:
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", FRESH_PROCESS, str(root), str(fixture)],
                env=env, check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            return time.perf_counter() - started, float(out[1])

        cold_total, cold_first = run(REPO)
        cached_total, cached_first = run(moved)
    return {
        "cold_process_s": cold_total,
        "cold_first_backtest_s": cold_first,
        "cached_process_s": cached_total,
        "cached_first_backtest_s": cached_first,
    }


def report(rows: list[dict[str, float]], reference: str, fresh: dict[str, float]) -> str:
    lines = [
        "| series | candles | median ms | p90 ms | max ms | ns/candle | median trades "
        "| first call ms (features) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in zip(("BTC 5m first 10k", "BTC 5m all", "synthetic 1M"), rows, strict=True):
        lines.append(
            f"| {name} | {row['candles']:,} | {row['median_ms']:.3f} | {row['p90_ms']:.3f} "
            f"| {row['max_ms']:.3f} | {row['ns_per_candle']:.1f} | {row['median_trades']:.0f} "
            f"| {row['first_call_ms']:.2f} |"
        )
    small, large = rows[0], rows[-1]
    growth = large["ns_per_candle"] / small["ns_per_candle"]
    speedup = OLD_SYSTEM_SECONDS / (small["median_ms"] / 1e3)
    lines += [
        "",
        f"- Old system ~21 s per 10k backtest: this kernel's median is {speedup:,.0f}x faster.",
        f"- Growth 10k -> 1M: time per candle x{growth:.2f} (1.00 = linear).",
        f"- Slow reference on 10k: {reference}.",
        f"- Fresh process, empty numba cache: {fresh['cold_process_s']:.2f} s to the end of the "
        f"first backtest, of which {fresh['cold_first_backtest_s']:.2f} s compile + run.",
        f"- Fresh process, cached, trainable/ copied to another path: "
        f"{fresh['cached_process_s']:.2f} s in all, {fresh['cached_first_backtest_s']:.2f} s "
        "for the first backtest (cache load + run).",
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
    series = [real_candles(10_000), real_candles(None), synthetic_candles(1_000_000)]
    backtest(series[0], sets[0], JobConstants(timeframe_minutes=5))  # compile or load
    rows = [time_series(candles, sets) for candles in series]
    reference = time_reference(series[0], sets[: args.reference_sets])
    fresh = fresh_process_costs()
    if args.json:
        print(json.dumps({"series": rows, "fresh": fresh}, indent=2))
    print(report(rows, reference, fresh))


if __name__ == "__main__":
    main()
