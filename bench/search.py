"""Searcher benchmarks (issue 3). Run from the repository root, one command each:

    python bench/search.py suggest   # one Bayesian suggestion at 50 / 200 observations,
                                     # a batch of 4 at 50 (+ bayes_opt out of the box)
    python bench/search.py cheap     # random and grid suggestion cost
    python bench/search.py tune      # real Tune run: 4 interleaved Bayesian seeds vs random
    python bench/search.py           # all three
    python bench/search.py options   # search quality of the defaults and of alternatives
                                     # (16 seeds x 60 trials; ~3 minutes)

Everything uses the job defaults (`SEARCHER_OPTIONS`) on `search.toys.MIXED9_SPACE`
(9 parameters, 4 int + 5 float), the configuration of the quality test. Observation
sets come from real Bayesian runs (not random points): the model's cost depends on
how clustered its data are. Numbers are wall-clock on whatever else the machine runs.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.bayesian import BayesianSearcher
from search.core import Outcome, RecordedTrial
from search.registry import SEARCHER_OPTIONS, make_searcher
from search.toys import MIXED9_SPACE, mixed9

DEFAULTS = dict(SEARCHER_OPTIONS["bayesian"])
HISTORY_SEEDS = range(5)


def _history(seed: int, trials: int) -> dict[int, RecordedTrial]:
    """Records of a default Bayesian run on mixed9 (batch_size 4)."""
    searcher = make_searcher(
        "bayesian", space=MIXED9_SPACE, seed=seed, iterations=trials, invalid_score=-100.0
    )
    while not searcher.finished:
        for s in searcher.ask():
            searcher.tell(s.trial_index, Outcome.ok(mixed9(s.params)))
    return {k: RecordedTrial(searcher.suggestion(k), o) for k, o in searcher.outcomes().items()}


def _time_next_batch(
    seed: int, records: dict[int, RecordedTrial], observed: int, batch: int
) -> float:
    """Seconds for the suggestion(s) after `observed` outcomes, batch_size `batch`."""
    prefix = {k: records[k] for k in range(observed)}
    searcher = BayesianSearcher.rebuild(
        MIXED9_SPACE, seed=seed, iterations=observed + batch, invalid_score=-100.0,
        recorded=prefix, **{**DEFAULTS, "batch_size": batch},
    )  # fmt: skip
    started = time.perf_counter()
    suggestions = searcher.ask()
    elapsed = time.perf_counter() - started
    assert len(suggestions) == batch
    return elapsed


def _bayes_opt_out_of_the_box(records: dict[int, RecordedTrial], observed: int) -> float:
    """bayes_opt 3.4's own suggest() on the same data, ints as (lo, hi, int)."""
    import warnings

    from bayes_opt import BayesianOptimization

    pbounds = {
        name: (r.lower, r.upper, int) if isinstance(r.lower, int) else (r.lower, r.upper)
        for name, r in MIXED9_SPACE.items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer = BayesianOptimization(None, pbounds, random_state=0, verbose=0)
        for k in range(observed):
            optimizer.register(records[k].params, records[k].outcome.score)
        started = time.perf_counter()
        optimizer.suggest()
    return time.perf_counter() - started


def bench_suggest() -> None:
    print("## Bayesian suggestion cost (job defaults:", DEFAULTS, ")")
    histories = {seed: _history(seed, 200) for seed in HISTORY_SEEDS}
    _time_next_batch(0, histories[0], 20, 1)  # warm-up: imports, threadpool scan
    for observed, batch in ((50, 1), (200, 1), (50, 4)):
        times = [_time_next_batch(s, histories[s], observed, batch) * 1e3 for s in HISTORY_SEEDS]
        print(
            f"- {batch} suggestion(s) at {observed} observations: median "
            f"{statistics.median(times):.1f} ms, min {min(times):.1f}, max {max(times):.1f} "
            f"(per history seed: {', '.join(f'{t:.1f}' for t in times)})"
        )
    out_of_box = [_bayes_opt_out_of_the_box(histories[s], 50) for s in (0, 1)]
    print(
        f"- for scale, bayes_opt 3.4 suggest() out of the box at 50 observations: "
        f"{', '.join(f'{t:.2f}' for t in out_of_box)} s"
    )


def _per_suggestion(kind: str, count: int, **options) -> float:
    searcher = make_searcher(
        kind, space=MIXED9_SPACE, seed=1, iterations=count, invalid_score=-100.0, **options
    )
    started = time.perf_counter()
    for _ in range(count):
        searcher.ask(limit=1)
    return (time.perf_counter() - started) / count


def bench_cheap() -> None:
    print("## Random and grid suggestion cost (ask(limit=1), mixed9)")
    count = 20_000
    random_cost = min(_per_suggestion("random", count) for _ in range(3))
    print(f"- random: {random_cost * 1e3:.4f} ms per suggestion (best of 3 x {count})")
    started = time.perf_counter()
    make_searcher("grid", space=MIXED9_SPACE, seed=1, iterations=10, invalid_score=0.0, points=4)
    build = time.perf_counter() - started
    grid_cost = min(_per_suggestion("grid", count, points=4) for _ in range(3))
    print(
        f"- grid (4 points per parameter, 4**9 = 262,144 points): {grid_cost * 1e3:.4f} ms "
        f"per suggestion (best of 3 x {count}); building the searcher {build * 1e3:.1f} ms"
    )


def _trivial_trainable(config):
    return {
        "trials": [
            {"trial_index": c["trial_index"], "status": "ok", "score": mixed9(c["params"])}
            for c in config["trials"]
        ]
    }


def _tune_run(kind: str, seeds: int, trials: int) -> tuple[float, float]:
    """(trials per second, seconds inside Bayesian batch computations) of one run."""
    from ray import tune

    from search.interleave import Chunking
    from search.tune_searcher import TuneSearcher

    computing = [0.0]
    original = BayesianSearcher._compute_batch

    def timed(self, batch):
        started = time.perf_counter()
        original(self, batch)
        computing[0] += time.perf_counter() - started

    BayesianSearcher._compute_batch = timed  # type: ignore[method-assign]
    try:
        searchers = {
            seed: make_searcher(kind, space=MIXED9_SPACE, seed=seed, iterations=trials,
                                invalid_score=-100.0)
            for seed in range(seeds)
        }  # fmt: skip
        # One candidate per Tune trial: this measures Tune's per-trial cost.
        searcher = TuneSearcher(searchers, chunking=Chunking(max_chunk=1))
        tuner = tune.Tuner(
            _trivial_trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher, num_samples=-1, max_concurrent_trials=2, reuse_actors=True
            ),
            run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="bench-"), verbose=0),
        )
        started = time.perf_counter()
        tuner.fit()
        elapsed = time.perf_counter() - started
    finally:
        BayesianSearcher._compute_batch = original  # type: ignore[method-assign]
    assert searcher.finished and not searcher.failed
    return seeds * trials / elapsed, computing[0]


def bench_tune(seeds: int = 4, trials: int = 60, repeats: int = 3) -> None:
    import logging

    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    print(
        f"## Tune throughput: trivial trainable, {seeds} interleaved seeds x {trials} "
        f"trials, 2 CPUs, max_concurrent_trials=2, reuse_actors"
    )
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=512 * 1024**2)  # fmt: skip
    try:
        _tune_run("random", 1, 8)  # warm-up: Tune's first experiment pays its imports
        rates: dict[str, list[float]] = {"random": [], "bayesian": []}
        for _ in range(repeats):
            for kind in ("random", "bayesian"):
                rate, computing = _tune_run(kind, seeds, trials)
                rates[kind].append(rate)
                extra = f" ({computing:.2f} s computing batches)" if kind == "bayesian" else ""
                print(f"- {kind}: {rate:.1f} trials/s{extra}", flush=True)
    finally:
        ray.shutdown()
    ratio = statistics.median(rates["bayesian"]) / statistics.median(rates["random"])
    print(
        f"- median: random {statistics.median(rates['random']):.1f} trials/s, Bayesian "
        f"{statistics.median(rates['bayesian']):.1f} trials/s, ratio {ratio:.2f}"
    )


def _best_of_run(kind: str, seed: int, trials: int = 60, **options) -> float:
    searcher = make_searcher(
        kind, space=MIXED9_SPACE, seed=seed, iterations=trials, invalid_score=-100.0, **options
    )
    best = -float("inf")
    while not searcher.finished:
        for s in searcher.ask():
            score = mixed9(s.params)
            best = max(best, score)
            searcher.tell(s.trial_index, Outcome.ok(score))
    return best


def _quartiles(values: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{median:.3f} ({q1:.3f}-{q3:.3f}, min {min(values):.3f})"


def bench_options(seeds: range = range(16)) -> None:
    print(
        f"## Best score after 60 trials on mixed9 (max ~3.322), {len(seeds)} seeds: "
        f"median (quartiles, min)"
    )
    print(f"- random search: {_quartiles([_best_of_run('random', s) for s in seeds])}")
    variants: list[dict] = [{}, {"liar": "mean"}, {"liar": "min"}, {"n_initial": 5},
                            {"n_initial": 20}, {"acquisition": "ucb"}, {"xi": 0.1}]  # fmt: skip
    for variant in variants:
        cells = []
        for batch_size in (1, 4):
            if batch_size == 1 and "liar" in variant:
                continue  # a batch of one has no pending points to lie about
            options = {**DEFAULTS, **variant, "batch_size": batch_size}
            bests = [_best_of_run("bayesian", s, **options) for s in seeds]
            cells.append(f"batch {batch_size}: {_quartiles(bests)}")
        print(f"- Bayesian {variant or 'defaults'}: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    commands = {
        "suggest": bench_suggest,
        "cheap": bench_cheap,
        "tune": bench_tune,
        "options": bench_options,
    }
    for name in sys.argv[1:] or ["suggest", "cheap", "tune"]:
        commands[name]()
