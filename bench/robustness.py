"""Benchmark of the report's robustness figures (issue 14). Run from the repository root:

    python bench/robustness.py            # prints a markdown section for bench/RESULTS.md

Measures, in one run, the target "PBO with S = 16 over 1,000 trials of 10,000 candles,
per-bar returns recomputed: <= 10 s on this 2-core machine":
- 10,000 synthetic 5m candles (data seed 0; the generator of `cluster.candles`);
- 1,000 parameter sets drawn uniformly from the default search ranges (numpy Generator
  seeded 0; ints uniform over the integers);
- each set's equity curve recomputed with the kernel (`strategy.equity`), its per-bar
  returns summed into 16 blocks (`BlockSums.add`), then CSCV over the 12,870 splits
  (`cscv`): wall time of each phase and the total, the first call of the compiled CSCV
  loop timed apart (numba compiles it once per machine, then loads it from its cache);
- for scale, the rest of a report's robustness work on these candles for one seed's
  best: the deflated Sharpe inputs, Monte Carlo (1,000 trade paths per trade scenario,
  100 candle paths) and the sensitivity neighbourhood.

Walk-forward overhead is measured by bench/walk_forward.py.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backtest import parameter_values as parameter_sets  # noqa: E402  (bench/backtest.py)

from cluster.candles.sources import SyntheticSource  # noqa: E402
from cluster.candles.synthetic import generate  # noqa: E402
from cluster.robustness import montecarlo, pbo, returns, sensitivity  # noqa: E402
from search.space import Space  # noqa: E402
from trainable.declaration import PARAMETERS  # noqa: E402
from trainable.strategies import get_strategy, outcome  # noqa: E402
from trainable.types import Candles, JobConstants  # noqa: E402

TARGET_SECONDS = 10.0


def candles_of(bars: int) -> Candles:
    columns = generate(SyntheticSource(timeframe="5m", start=1_704_067_200_000, bars=bars,
                                       data_seed=0))  # fmt: skip
    return Candles(timestamp=columns.timestamp, open=columns.open, high=columns.high,
                   low=columns.low, close=columns.close, volume=columns.volume)  # fmt: skip


def measure(bars: int, trials: int, blocks: int) -> dict[str, float | int]:
    """One PBO from scratch: wall and CPU seconds of each phase (module docstring)."""
    strategy = get_strategy("key_level_reversal")
    constants = JobConstants(timeframe_minutes=5)
    candles = candles_of(bars)
    sets = parameter_sets(trials)
    assert strategy.equity is not None
    strategy.equity(candles, sets[0], constants)  # the kernel's compile and the features
    small = pbo.BlockSums(4 * blocks, blocks)  # the compiled CSCV loop's first call, apart
    for k in range(3):
        small.add(np.sin(np.arange(4 * blocks) + k) * 0.01)
    t0 = time.perf_counter()
    pbo.cscv(small)
    first_call = time.perf_counter() - t0
    started, cpu_started = time.perf_counter(), time.process_time()
    sums = pbo.BlockSums(bars - 1, blocks)
    equity_seconds = 0.0
    invalid = 0
    for params in sets:
        t0 = time.perf_counter()
        try:
            curve = strategy.equity(candles, params, constants)
        except ValueError:
            invalid += 1
            continue
        equity_seconds += time.perf_counter() - t0
        sums.add(returns.bar_returns(curve))
    blocked = time.perf_counter()
    found = pbo.cscv(sums, annualize=math.sqrt(constants.bars_per_year))
    ended, cpu_ended = time.perf_counter(), time.process_time()
    return {
        "bars": bars,
        "trials": sums.trials,
        "invalid": invalid,
        "splits": found.splits,
        "equity_s": equity_seconds,
        "block_sums_s": blocked - started - equity_seconds,
        "cscv_first_call_s": first_call,
        "cscv_s": ended - blocked,
        "total_s": ended - started,
        "cpu_s": cpu_ended - cpu_started,
        "pbo": found.pbo,
    }


def report_extras(bars: int) -> dict[str, float]:
    """One seed's Monte Carlo and sensitivity on the same candles, for scale."""
    strategy = get_strategy("key_level_reversal")
    constants = JobConstants(timeframe_minutes=5)
    candles = candles_of(bars)
    params = parameter_sets(1, seed=1)[0]
    metrics, _ = outcome(strategy, candles, params, constants)
    assert strategy.trade_returns is not None
    t0 = time.perf_counter()
    trades = strategy.trade_returns(candles, params, constants)
    for scenario in (montecarlo.TRADE_ORDER, montecarlo.TRADE_BOOTSTRAP):
        montecarlo.trade_scenario(trades, scenario, seed=1, candidate=0, paths=1000,
                                  trades_per_year=float(trades.size) * 105_120 / bars)  # fmt: skip
    trade_paths = time.perf_counter() - t0
    t0 = time.perf_counter()
    montecarlo.candle_scenario(
        candles, lambda c: outcome(strategy, c, params, constants), seed=1, candidate=0,
        paths=100, block=48, actual=metrics,
    )  # fmt: skip
    candle_paths = time.perf_counter() - t0
    space = Space.from_dict({d.name: {"type": d.kind, "lower": d.search[0],
                                      "upper": d.search[1]} for d in PARAMETERS})  # fmt: skip
    t0 = time.perf_counter()
    for neighbour in sensitivity.neighbours(params, space):
        outcome(strategy, candles, neighbour.params, constants)
    return {"trade_paths_s": trade_paths, "candle_paths_s": candle_paths,
            "sensitivity_s": time.perf_counter() - t0, "trades": float(trades.size)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=1_000)
    parser.add_argument("--blocks", type=int, default=pbo.DEFAULT_BLOCKS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [measure(args.bars, args.trials, args.blocks) for _ in range(args.repeat)]
    extras = report_extras(args.bars)
    load = os.getloadavg()[0]
    best = min(runs, key=lambda r: r["total_s"])
    print("## Robustness figures (issue 14)\n")
    print("Command (from the repository root; ~1 min):\n\n    python bench/robustness.py\n")
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, load average {load:.1f} on {os.cpu_count()} "
          f"cores, Python {platform.python_version()}. {args.trials:,} parameter sets drawn "
          f"uniformly from the default ranges (seed 0) on {args.bars:,} synthetic 5m candles "
          f"(data seed 0); S = {args.blocks} blocks, {best['splits']:,} splits; "
          f"{args.repeat} runs.\n")  # fmt: skip
    print("| run | trials with a curve | equity curves s | block sums s | CSCV s | total s "
          "(wall) | total CPU s | PBO |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for k, r in enumerate(runs, 1):
        print(f"| {k} | {r['trials']:,} | {r['equity_s']:.2f} | {r['block_sums_s']:.2f} | "
              f"{r['cscv_s']:.2f} | {r['total_s']:.2f} | {r['cpu_s']:.2f} | "
              f"{r['pbo']:.3f} |")  # fmt: skip
    worst = max(r["total_s"] for r in runs)
    worst_cpu = max(r["cpu_s"] for r in runs)
    verdict = "met" if worst <= TARGET_SECONDS else "NOT met in wall time"
    print(f"\n- Target (<= {TARGET_SECONDS:.0f} s, returns recomputed): {verdict}; slowest run "
          f"{worst:.2f} s wall, {worst_cpu:.2f} s of CPU (one core: the computation is "
          "sequential, so on an otherwise idle core wall time is about the CPU time). The "
          "compiled CSCV loop's first call in a process (loading it from numba's cache, or "
          f"compiling it once per machine): {best['cscv_first_call_s']:.2f} s, not counted "
          "above.")  # fmt: skip
    print(f"- One seed's best, for scale ({extras['trades']:.0f} trades): Monte Carlo of "
          f"trades, 2 x 1,000 paths {extras['trade_paths_s']:.2f} s; 100 block-bootstrapped "
          f"markets {extras['candle_paths_s']:.2f} s; sensitivity (up to 18 neighbours) "
          f"{extras['sensitivity_s']:.3f} s.")  # fmt: skip
    print("- Walk-forward overhead: `python bench/walk_forward.py` (its own section).")


if __name__ == "__main__":
    main()
