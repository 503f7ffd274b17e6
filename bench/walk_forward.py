"""The overhead of walk-forward windows (issue 14). From the repository root:

    python bench/walk_forward.py

A walk-forward job of 10 windows x 2 seeds x 50 Bayesian trials (batch 4) on the 5,000
bundled BTC/USDT 5m candles (train 2,000, test 300, step 300: exactly 10 windows), which
also runs each seed's whole-range search: 2 x (1 + 10) x 50 = 1,100 trials. Against it,
one plain ensemble with the same number of searches and trials: 22 seeds x 50 Bayesian
trials on the same candles. Both run in this process on one local Ray (2 CPUs) after a
small warm-up run, each into a database of its own on one embedded PostgreSQL; the
ratio is of one run of each. The walk-forward's steps after its search (each window's
best tested on its test rows, the stitched equity) are timed again on their own.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from job import bench_home, session  # noqa: E402

CANDLES = ROOT / "tests" / "data" / "binance_BTC-USDT_5m_0-4999.parquet"
SEEDS, WINDOWS, ITERATIONS = 2, 10, 50
WALK_FORWARD = "walk_forward = { train = 2000, test = 300, step = 300 }"


def job_file(home: Path, seeds: int, walk_forward: bool, iterations: int = ITERATIONS) -> Path:
    lines = [
        f"iterations = {iterations}",
        "batch_size = 4",
        f"seeds = {list(range(1, seeds + 1))}",
        *([WALK_FORWARD] if walk_forward else []),
        "[data]",
        'kind = "parquet"',
        f'path = "{CANDLES}"',
        'timeframe = "5m"',
        "[searcher]",
        'kind = "bayesian"',
    ]
    path = home / f"job-{time.monotonic_ns()}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def timed(job: Path, database: str) -> tuple[float, object]:
    from cluster.job.driver import run_job

    started = time.perf_counter()
    with open(os.devnull, "w") as out:
        ensemble = run_job(job, database_url=database, out=out, progress=False,
                           storage_path=str(job.parent / "tune"))  # fmt: skip
    return time.perf_counter() - started, ensemble


def after_search_again(database: str, ensemble: object) -> float:
    """Seconds to test the windows' bests and stitch again (their records deleted)."""
    import psycopg

    from cluster.job.data import load_job_data
    from cluster.job.recorded import recorded_spec
    from cluster.records.recorder import Recorder
    from cluster.report.walk_forward import record_after_search

    with psycopg.connect(database) as conn:
        conn.execute("DELETE FROM robustness WHERE analysis = 'walk_forward'")
        conn.execute("DELETE FROM evaluations WHERE kind = 'walk_forward'")
    with Recorder(database) as recorder:
        detail = recorder.ensemble_detail(ensemble)  # type: ignore[arg-type]
        spec, dataset = load_job_data(recorded_spec(detail, recorder.runs(detail.id)))
        started = time.perf_counter()
        record_after_search(recorder, detail.id, spec, dataset)
        return time.perf_counter() - started


def main() -> None:
    trials = SEEDS * (1 + WINDOWS) * ITERATIONS
    print(f"## Walk-forward: {WINDOWS} windows x {SEEDS} seeds x {ITERATIONS} Bayesian trials "
          f"({trials:,} trials with the whole-range searches) vs a plain ensemble of "
          f"{SEEDS * (1 + WINDOWS)} seeds x {ITERATIONS}")  # fmt: skip
    print(f"- load average before: {os.getloadavg()[0]:.2f} (2 cores)")
    with bench_home() as home, session(home) as database:
        timed(job_file(home, 2, False, iterations=8), database())  # warm-up: actors, kernel
        plain, _ = timed(job_file(home, SEEDS * (1 + WINDOWS), False), database())
        url = database()
        windows, ensemble = timed(job_file(home, SEEDS, True), url)
        after = after_search_again(url, ensemble)
    print(f"- plain ensemble, {trials:,} trials: {plain:.1f} s ({trials / plain:.1f} trials/s)")
    print(f"- walk-forward, {trials:,} trials: {windows:.1f} s ({trials / windows:.1f} trials/s), "
          f"of which the windows' tests and stitching {after:.2f} s")  # fmt: skip
    print(f"- ratio walk-forward / plain: {windows / plain:.2f}")
    print(f"- load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
