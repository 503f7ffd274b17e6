"""Benchmarks of the main job (issue 8). From the repository root, one command each:

    python bench/job.py verification  # the old system's verification job, cold and warm
    python bench/job.py search50      # a 50-trial Bayesian search on a running Ray
    python bench/job.py ensembles     # 8 seeds: random vs a no-op trainable; Bayesian vs random
    python bench/job.py               # all three

The old system's verification job: BTC/USDT 5m, the first 10,000 candles of
../shared/data/binance_BTC-USDT_5m.parquet, Bayesian, 10 iterations, one seed. Every
run records into a database of its own on one embedded PostgreSQL started here (in a
fresh /tmp/rt-bench-* home, so "cold" includes its initdb), except where stated.
Numbers are wall-clock seconds on whatever else the machine is doing; ratios are
measured within one run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data" / "binance_BTC-USDT_5m.parquet"
FIRST_OPEN = 1632906000000  # 2021-09-29T09:00Z, the file's first candle
FIVE_MINUTES = 300_000
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


def verification_job(home: Path, *, iterations: int = 10, seeds=(42,), searcher=None,
                     batch_size: int | None = 1, candles: int = 10_000) -> Path:  # fmt: skip
    """A job file for the first `candles` candles of the shared BTC 5m file."""
    searcher = searcher or {"kind": "bayesian", "n_initial": 5}
    lines = [
        f"iterations = {iterations}",
        f"seeds = {list(seeds)}",
        *([f"batch_size = {batch_size}"] if batch_size and searcher["kind"] == "bayesian" else []),
        "[data]",
        'kind = "parquet"',
        f'path = "{SHARED}"',
        'timeframe = "5m"',
        f"start = {FIRST_OPEN}",
        f"end = {FIRST_OPEN + candles * FIVE_MINUTES}",
        "[searcher]",
        *(f"{key} = {json.dumps(value)}" for key, value in searcher.items()),
    ]
    path = home / f"job-{time.monotonic_ns()}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def bench_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="rt-bench-", dir="/tmp"))
    home.chmod(0o755)
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> float:
    """Seconds for `python -m cluster ARGS` in a new process (REPROTUNE_HOME=home)."""
    environment = {**os.environ, "REPROTUNE_HOME": str(home), **(env or {})}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cluster", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True)  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


@contextlib.contextmanager
def ray_head(home: Path) -> Iterator[str]:
    """A running Ray head (`ray start --head`, 2 CPUs), stopped afterwards."""
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    temp = home / "ray"
    ray = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray, "start", "--head", "--num-cpus", "2", "--include-dashboard", "false",
                    "--port", "6390", f"--temp-dir={temp}", "--disable-usage-stats"],
                   check=True, capture_output=True, env=env)  # fmt: skip
    try:
        yield "127.0.0.1:6390"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env)


def bench_verification(repeats: int = 3) -> None:
    print("## The old system's verification job (10,000 BTC 5m candles, Bayesian, 10 trials)")
    cold, warm_local, warm_head = [], [], []
    for _ in range(repeats):
        with bench_home() as home:
            job = verification_job(home)
            cold.append(cli(home, "run", str(job), "--no-progress"))
            warm_local.append(cli(home, "run", str(job), "--no-progress"))
            with ray_head(home) as address:
                token = {"RAY_AUTH_MODE": "token"}  # the head's token authentication
                cli(home, "run", str(job), "--no-progress", "--address", address, env=token)
                warm_head.append(cli(home, "run", str(job), "--no-progress", "--address",
                                     address, env=token))  # fmt: skip
    for label, times in (
        ("cold: first run in a new home (embedded PostgreSQL initdb, local Ray start)", cold),
        ("warm: local Ray start, existing database", warm_local),
        ("a new `python -m cluster run` process against a running Ray head", warm_head),
    ):
        print(f"- {label}: median {statistics.median(times):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in times)})")  # fmt: skip
    in_process()


def in_process() -> None:
    """run_job from a Python process that has Ray running (a notebook)."""
    with bench_home() as home, session(home) as database:
        job = verification_job(home)
        times = [timed_run(job, database(), progress=False) for _ in range(4)]
        print(f"- `run_job` in a process with Ray running (a notebook): median of the last 3 "
              f"{statistics.median(times[1:]):.2f} s (first {times[0]:.2f}; "
              f"{', '.join(f'{t:.2f}' for t in times)})")  # fmt: skip


@contextlib.contextmanager
def records(home: Path) -> Iterator:
    """An embedded PostgreSQL in `home`; yields a factory of fresh databases on it."""
    import itertools

    from cluster.records.database import ensure_database
    from cluster.records.pg_server import embedded_server

    numbers = itertools.count()
    with embedded_server(home / "pg") as server:

        def database() -> str:
            name = f"bench{next(numbers)}"
            ensure_database(server.conninfo("postgres"), name)
            return server.conninfo(name)

        yield database


@contextlib.contextmanager
def session(home: Path, num_cpus: int = 2) -> Iterator:
    """Local Ray and an embedded PostgreSQL for in-process runs; yields a factory of
    fresh databases."""
    import ray

    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        with records(home) as database:
            yield database
    finally:
        ray.shutdown()


def timed_run(job: Path, database: str, **options) -> float:
    from cluster.job.driver import run_job

    started = time.perf_counter()
    with open(os.devnull, "w") as out:
        run_job(job, database_url=database, out=out, storage_path=str(job.parent / "tune"),
                **options)  # fmt: skip
    return time.perf_counter() - started


def bench_search50() -> None:
    print("## A 50-trial Bayesian search (batch 4) on a running 2-core Ray, records included")
    with bench_home() as home, session(home) as database:
        job = verification_job(home, iterations=50, batch_size=4,
                               searcher={"kind": "bayesian", "n_initial": 10})  # fmt: skip
        times = [timed_run(job, database(), progress=False) for _ in range(4)]
    print(f"- median of the last 3: {statistics.median(times[1:]):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in times)})")  # fmt: skip


def noop_trainable(config):
    return {
        "trials": [
            {"trial_index": c["trial_index"], "status": "ok", "score": 0.0}
            for c in config["trials"]
        ]
    }


def noop_rate(seeds: int, trials: int) -> float:
    """Trials/s of the same Tune settings as the driver, with a no-op trainable and no
    recording: the interleaver over random searchers, actor reuse, 2 at a time."""
    from ray import tune

    from search.interleave import Chunking
    from search.registry import make_searcher
    from search.toys import MIXED9_SPACE
    from search.tune_searcher import TuneSearcher

    searchers = {seed: make_searcher("random", space=MIXED9_SPACE, seed=seed, iterations=trials,
                                     invalid_score=-100.0) for seed in range(seeds)}  # fmt: skip
    searcher = TuneSearcher(searchers, chunking=Chunking(slots=2))  # as the driver's default
    tuner = tune.Tuner(
        noop_trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1,
                                    max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="rt-bench-tune-"),
                                  verbose=0, log_to_file=False),
    )  # fmt: skip
    started = time.perf_counter()
    tuner.fit()
    assert searcher.finished
    return seeds * trials / (time.perf_counter() - started)


def bench_ensembles(repeats: int = 3) -> None:
    print("## Ensembles of 8 seeds on 10,000 BTC 5m candles, 2 CPUs, 2 trials at a time")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    rows: dict[str, list[float]] = {"noop": [], "random": [], "random50": [], "bayes50": []}
    with bench_home() as home, session(home) as database:
        random_job = verification_job(home, iterations=100, seeds=range(8),
                                      searcher={"kind": "random"})  # fmt: skip
        random50 = verification_job(home, iterations=50, seeds=range(8),
                                    searcher={"kind": "random"})  # fmt: skip
        bayes50 = verification_job(home, iterations=50, seeds=range(8), batch_size=4,
                                   searcher={"kind": "bayesian", "n_initial": 10})  # fmt: skip
        timed_run(random50, database(), progress=False)  # warm-up
        for _ in range(repeats):
            rows["noop"].append(noop_rate(8, 100))
            rows["random"].append(800 / timed_run(random_job, database(), progress=False))
            rows["random50"].append(timed_run(random50, database(), progress=False))
            rows["bayes50"].append(timed_run(bayes50, database(), progress=False))
    noop, rand = statistics.median(rows["noop"]), statistics.median(rows["random"])
    print(f"- no-op trainable, same Tune settings, no recording: {noop:.1f} trials/s "
          f"({', '.join(f'{r:.1f}' for r in rows['noop'])})")  # fmt: skip
    print(f"- random search 8 x 100, real backtests, recorded: {rand:.1f} trials/s "
          f"({', '.join(f'{r:.1f}' for r in rows['random'])}); "
          f"{rand / noop:.0%} of the no-op rate")  # fmt: skip
    r50, b50 = statistics.median(rows["random50"]), statistics.median(rows["bayes50"])
    print(
        f"- 8 x 50 trials: random {r50:.2f} s, Bayesian (batch 4) {b50:.2f} s: "
        f"ratio {b50 / r50:.2f} (runs: {rows['random50']}, {rows['bayes50']})"
    )


if __name__ == "__main__":
    commands = {
        "verification": bench_verification,
        "search50": bench_search50,
        "ensembles": bench_ensembles,
    }
    if not SHARED.exists():
        sys.exit(f"{SHARED} is missing: these benchmarks read the shared BTC 5m candles")
    for name in sys.argv[1:] or list(commands):
        commands[name]()
