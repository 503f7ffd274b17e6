"""Suggestion pool benchmarks (issue 9). Run from the repository root:

    python bench/pool.py one        # one Bayesian suggestion: in-process vs through a pool
    python bench/pool.py many       # 16 seeds' batches due at once: pool of N vs N = 1
    python bench/pool.py            # both

Job defaults (`SEARCHER_OPTIONS["bayesian"]`) on `search.toys.MIXED9_SPACE`, with
observation sets from real default Bayesian runs on mixed9 (one history per seed), as
in bench/search.py. A measurement times exactly one batch's `BatchRequest`:
`request.compute()` in this process (its own, unpinned numerics: what the driver cost
before the pool) against `pool.submit(request).result()` (pickling, the pipes, the
computation under pinned numerics in a warm pool process). Wall-clock, on whatever else
the machine runs; both sides alternate so that load hits them alike.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.bayesian import BatchRequest, BayesianSearcher
from search.core import Outcome, RecordedTrial
from search.pool import SuggestionPool
from search.pool_worker import Ping
from search.registry import SEARCHER_OPTIONS, make_searcher
from search.toys import MIXED9_SPACE, mixed9

DEFAULTS = dict(SEARCHER_OPTIONS["bayesian"])


def _history(seed: int, trials: int) -> dict[int, RecordedTrial]:
    """Records of a default Bayesian run on mixed9 (batch_size 4), computed here."""
    searcher = make_searcher(
        "bayesian", space=MIXED9_SPACE, seed=seed, iterations=trials, invalid_score=-100.0
    )
    while not searcher.finished:
        for s in searcher.ask():
            searcher.tell(s.trial_index, Outcome.ok(mixed9(s.params)))
    return {k: RecordedTrial(searcher.suggestion(k), o) for k, o in searcher.outcomes().items()}


def _request(seed: int, records: dict[int, RecordedTrial], observed: int, batch: int):
    """The request of the batch after `observed` outcomes (batch_size `batch`)."""
    searcher = BayesianSearcher.rebuild(
        MIXED9_SPACE, seed=seed, iterations=observed + batch, invalid_score=-100.0,
        recorded={k: records[k] for k in range(observed)}, **{**DEFAULTS, "batch_size": batch},
    )  # fmt: skip
    request = searcher._request(searcher.batch_of(observed))
    assert isinstance(request, BatchRequest) and len(request.trials) == batch
    return request


def _warm(pool: SuggestionPool, request: BatchRequest) -> None:
    """One computation per process (first calls pay one-time set-up in each)."""
    for future in [pool.submit(request) for _ in range(pool.size)]:
        future.result()


def _worker_cpu(pool: SuggestionPool) -> float:
    (pid,) = pool.pids()
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def bench_one(histories: int = 5, repeats: int = 7) -> None:
    print("## One Bayesian suggestion (batch_size 1): in-process vs through a pool of 1")
    records = {seed: _history(seed, 200) for seed in range(histories)}
    with SuggestionPool(1) as pool:
        _warm(pool, _request(0, records[0], 20, 1))
        _request(0, records[0], 20, 1).compute()  # warm this process too
        pings = []
        for _ in range(200):
            started = time.perf_counter()
            pool.submit(Ping()).result()
            pings.append(time.perf_counter() - started)
        print(
            f"- round trip of an empty request (the pool's own overhead): median "
            f"{statistics.median(pings) * 1e3:.2f} ms, min {min(pings) * 1e3:.2f} ms (200)"
        )
        for observed in (50, 200):
            # Wall time as the driver waits, per call; the best of the repeats per history
            # (the least disturbed by other load); CPU of this process or of the pool
            # process, summed over all calls (psutil's resolution is 10 ms).
            wall: dict[str, list[float]] = {"here": [], "pool": []}
            best = {"here": 0.0, "pool": 0.0}
            cpu = {"here": 0.0, "pool": 0.0}
            for seed in range(histories):
                request = _request(seed, records[seed], observed, 1)
                mine: dict[str, list[float]] = {"here": [], "pool": []}
                for _ in range(repeats):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    request.compute()
                    mine["here"].append(time.perf_counter() - started)
                    cpu["here"] += time.process_time() - cpu_started
                    started, cpu_started = time.perf_counter(), _worker_cpu(pool)
                    pool.submit(request).result()
                    mine["pool"].append(time.perf_counter() - started)
                    cpu["pool"] += _worker_cpu(pool) - cpu_started
                for side in ("here", "pool"):
                    wall[side] += mine[side]
                    best[side] += min(mine[side]) / histories
            here, pooled = statistics.median(wall["here"]), statistics.median(wall["pool"])
            calls = histories * repeats
            print(
                f"- {observed} observations ({histories} histories x {repeats}):\n"
                f"  - wall, median of all calls: in-process {here * 1e3:.1f} ms, pool "
                f"{pooled * 1e3:.1f} ms: pool / in-process {pooled / here:.3f}\n"
                f"  - wall, mean of each history's best: in-process {best['here'] * 1e3:.1f} "
                f"ms, pool {best['pool'] * 1e3:.1f} ms: {best['pool'] / best['here']:.3f}\n"
                f"  - CPU per call: in-process {cpu['here'] / calls * 1e3:.1f} ms, pool "
                f"process {cpu['pool'] / calls * 1e3:.1f} ms: {cpu['pool'] / cpu['here']:.3f}",
                flush=True,
            )


def bench_many(seeds: int = 16, observed: int = 100, repeats: int = 3) -> None:
    cores = len(os.sched_getaffinity(0))
    sizes = sorted({1, 2, cores})
    print(
        f"## {seeds} seeds' batches due at once (batch_size 4, {observed} observations each),"
        f" pool sizes {sizes} ({cores} cores)"
    )
    requests = [_request(seed, _history(seed, observed), observed, 4) for seed in range(seeds)]
    started = time.perf_counter()
    for request in requests:
        request.compute()
    print(f"- in-process, one after another (for scale): {time.perf_counter() - started:.2f} s")
    pools = {size: SuggestionPool(size) for size in sizes}
    try:
        for pool in pools.values():
            pool.start()
            _warm(pool, requests[0])
        walls: dict[int, list[float]] = {size: [] for size in sizes}
        for _ in range(repeats):
            for size, pool in pools.items():
                started = time.perf_counter()
                for future in [pool.submit(request) for request in requests]:
                    future.result()
                walls[size].append(time.perf_counter() - started)
    finally:
        for pool in pools.values():
            pool.close()
    base = statistics.median(walls[1])
    for size in sizes:
        median = statistics.median(walls[size])
        print(
            f"- pool of {size}: median {median:.2f} s (runs: "
            f"{', '.join(f'{w:.2f}' for w in walls[size])}); speed-up vs 1: {base / median:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    commands = {"one": bench_one, "many": bench_many}
    for name in sys.argv[1:] or ["one", "many"]:
        commands[name]()
    print(f"load average after: {os.getloadavg()[0]:.1f}")
