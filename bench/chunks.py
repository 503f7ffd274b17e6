"""Benchmarks of chunked trials (issue 10). From the repository root, one command each:

    python bench/chunks.py random     # 8 seeds x 500 random trials vs the bare kernel
    python bench/chunks.py bayesian   # 8 seeds x 100 Bayesian trials (batch 8): where time goes
    python bench/chunks.py long       # 1,000,000 candles: chunked vs one candidate per trial
    python bench/chunks.py            # all three

Every ensemble runs through `run_job` (the CLI's code path: one Tune experiment,
recording on) on a local 2-CPU Ray with an embedded PostgreSQL, each run into a fresh
database (bench/job.py's helpers). "Bare kernel" is the same candidates' backtests
through the trainable's own `chunk_result`, outside Ray and Tune, in as many processes
as Ray has CPUs: the compute bound of the machine for this work. Wall-clock seconds on
whatever else the machine runs; ratios are of one run.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import job as jobbench  # bench/job.py

CPUS = 2


def _job(home: Path, **options) -> Path:
    return jobbench.verification_job(home, **options)


def _candidates(spec, seeds) -> list[dict]:
    """Every seed's chunks as the searchers suggest them (random: no outcome needed)."""
    from cluster.job.driver import new_searcher

    chunks = []
    for seed in seeds:
        searcher = new_searcher(spec, seed)
        suggestions = searcher.ask()
        chunks.append({"seed": seed, "trials": [
            {"trial_index": s.trial_index, "params": s.params} for s in suggestions
        ]})  # fmt: skip
    return chunks


_WORKER: dict = {}


def _init_worker(job_path: str) -> None:
    from cluster.job.data import load_job_data
    from cluster.job.parse import load_job_file

    spec, dataset = load_job_data(load_job_file(job_path))
    _WORKER.update(spec=spec, table=dataset.table)


def _evaluate(chunk: dict) -> int:
    from trainable.tune_adapter import chunk_result

    spec = _WORKER["spec"]
    result = chunk_result(chunk, _WORKER["table"], spec.constants(), spec.strategy_object())
    return len(result["trials"])


def bare_kernel_rate(job_path: Path, chunks: list[dict], processes: int = CPUS) -> float:
    """Backtests/s of `chunks` evaluated by `processes` warm processes (no Ray, no Tune,
    no records)."""
    pieces = [
        {"seed": chunk["seed"], "trials": chunk["trials"][start : start + 50]}
        for chunk in chunks
        for start in range(0, len(chunk["trials"]), 50)
    ]
    with ProcessPoolExecutor(
        processes, initializer=_init_worker, initargs=(str(job_path),)
    ) as pool:
        list(pool.map(_evaluate, pieces[:processes]))  # compile / load the kernel first
        started = time.perf_counter()
        done = sum(pool.map(_evaluate, pieces))
        return done / (time.perf_counter() - started)


def trial_span(database: str) -> float:
    """Seconds from the first recorded trial's start to the last one's end: the run
    without its fixed costs (Ray's and Tune's start-up, the first actor, teardown)."""
    import psycopg

    with psycopg.connect(database) as conn:
        (span,) = conn.execute(
            "SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 FROM trials"
        ).fetchone()
    return span


def bench_random(repeats: int = 3) -> None:
    from cluster.job.parse import load_job_file

    print("## Random search, 8 seeds x 500 trials, 10,000 BTC 5m candles, 2 CPUs, recorded")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    rows: dict[str, list[float]] = {"chunked": [], "single": [], "kernel": [], "steady": []}
    with jobbench.bench_home() as home, jobbench.session(home, CPUS) as database:
        job = _job(home, iterations=500, seeds=range(8), searcher={"kind": "random"})
        small = _job(home, iterations=50, seeds=range(8), searcher={"kind": "random"})
        chunks = _candidates(load_job_file(job), range(8))
        jobbench.timed_run(small, database(), progress=False)  # warm-up
        for _ in range(repeats):
            rows["kernel"].append(bare_kernel_rate(job, chunks))
            url = database()
            rows["chunked"].append(4000 / jobbench.timed_run(job, url, progress=False))
            rows["steady"].append(4000 / trial_span(url))
            rows["single"].append(
                400 / jobbench.timed_run(small, database(), progress=False, chunk_size=1)
            )
    kernel, chunked = statistics.median(rows["kernel"]), statistics.median(rows["chunked"])
    single = statistics.median(rows["single"])
    print(f"- bare kernel, the same 4,000 candidates in {CPUS} processes: {kernel:.0f} "
          f"backtests/s ({_runs(rows['kernel'])})")  # fmt: skip
    print(f"- default chunks: {chunked:.0f} recorded trials/s ({_runs(rows['chunked'])}): "
          f"{chunked / kernel:.0%} of the bare kernel")  # fmt: skip
    steady = statistics.median(rows["steady"])
    print(f"- the same runs from their first trial's start to their last one's end (without "
          f"start-up and teardown): {steady:.0f} trials/s ({_runs(rows['steady'])}): "
          f"{steady / kernel:.0%} of the bare kernel")  # fmt: skip
    print(f"- chunk_size = 1 (one candidate per Tune trial; 8 x 50 trials): {single:.1f} "
          f"recorded trials/s ({_runs(rows['single'])}): chunks are "
          f"{chunked / single:.0f}x faster")  # fmt: skip


def bench_bayesian(repeats: int = 2) -> None:
    """Wall time of the ensemble through Tune against its parts measured alone: the
    suggestions (the same searchers told the same outcomes, in this process, unpinned)
    and the backtests (bare kernel)."""
    from cluster.job.driver import new_searcher
    from cluster.job.parse import load_job_file
    from search.interleave import outcome_from_result
    from trainable.tune_adapter import chunk_result

    print("## Bayesian, 8 seeds x 100 trials, batch_size 8, 10,000 BTC 5m candles, 2 CPUs")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    walls: list[float] = []
    with jobbench.bench_home() as home:
        job = _job(home, iterations=100, seeds=range(8), batch_size=8,
                   searcher={"kind": "bayesian", "n_initial": 10})  # fmt: skip
        with jobbench.session(home, CPUS) as database:
            jobbench.timed_run(_job(home, iterations=20, seeds=range(2), batch_size=8),
                               database(), progress=False)  # fmt: skip
            for _ in range(repeats):
                walls.append(jobbench.timed_run(job, database(), progress=False))
        from cluster.job.data import load_job_data

        spec, dataset = load_job_data(load_job_file(job))
        constants, strategy = spec.constants(), spec.strategy_object()
        suggest_s = backtest_s = 0.0
        for seed in range(8):
            searcher = new_searcher(spec, seed)
            while not searcher.finished:
                started = time.perf_counter()
                batch = searcher.ask()
                suggest_s += time.perf_counter() - started
                chunk = {"seed": seed, "trials": [
                    {"trial_index": s.trial_index, "params": s.params} for s in batch
                ]}  # fmt: skip
                started = time.perf_counter()
                results = chunk_result(chunk, dataset.table, constants, strategy)["trials"]
                backtest_s += time.perf_counter() - started
                started = time.perf_counter()
                for result in results:
                    searcher.tell(result["trial_index"], outcome_from_result(result))
                suggest_s += time.perf_counter() - started
    wall = statistics.median(walls)
    print(f"- the ensemble through Tune, recorded: {wall:.1f} s ({_runs(walls)})")
    print(f"- its 800 suggestions alone, one process, one seed after another: {suggest_s:.1f} s "
          f"({suggest_s / wall:.0%} of the wall; the driver's pool spreads them over "
          f"{CPUS} processes, so at best {suggest_s / CPUS:.1f} s)")  # fmt: skip
    print(f"- its 800 backtests alone, one process: {backtest_s:.1f} s "
          f"({backtest_s / CPUS / wall:.0%} of the wall on {CPUS} CPUs)")  # fmt: skip
    rest = wall - suggest_s / CPUS - backtest_s / CPUS
    print(f"- the rest (Tune's scheduling and reporting, recording, waiting on batches): "
          f"at least {rest:.1f} s ({rest / wall:.0%})")  # fmt: skip


def bench_long(repeats: int = 2) -> None:
    print("## 1,000,000 synthetic 5m candles, random search, 2 seeds x 24 trials, 2 CPUs")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    rows: dict[str, list[float]] = {"chunked": [], "single": []}
    with jobbench.bench_home() as home, jobbench.session(home, CPUS) as database:
        job = home / "long.toml"
        job.write_text(
            'iterations = 24\nseeds = [1, 2]\n[data]\nkind = "synthetic"\n'
            'timeframe = "5m"\nstart = 1600000200000\nbars = 1000000\ndata_seed = 7\n'
            '[searcher]\nkind = "random"\n'
        )
        jobbench.timed_run(job, database(), progress=False)  # warm-up, cached data
        for _ in range(repeats):
            rows["single"].append(jobbench.timed_run(job, database(), progress=False,
                                                     chunk_size=1))  # fmt: skip
            rows["chunked"].append(jobbench.timed_run(job, database(), progress=False))
    chunked, single = statistics.median(rows["chunked"]), statistics.median(rows["single"])
    print(f"- chunk_size = 1: {single:.1f} s ({_runs(rows['single'])})")
    print(f"- default chunks: {chunked:.1f} s ({_runs(rows['chunked'])}): "
          f"{chunked / single - 1:+.0%} against chunk_size = 1")  # fmt: skip


def _runs(values: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values)


if __name__ == "__main__":
    commands = {"random": bench_random, "bayesian": bench_bayesian, "long": bench_long}
    if not jobbench.SHARED.exists():
        sys.exit(f"{jobbench.SHARED} is missing: these benchmarks read the shared BTC 5m candles")
    for name in sys.argv[1:] or list(commands):
        commands[name]()
