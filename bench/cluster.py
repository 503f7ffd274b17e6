"""Benchmarks of running on a cluster (issue 11). From the repository root, one each:

    python bench/cluster.py nodes     # 2 nodes x 1 CPU vs 1 node x 2 CPUs; data per node
    python bench/cluster.py submit    # `ray job submit` vs `python -m cluster run`, one head
    python bench/cluster.py kernel    # first backtest in a fresh actor under `ray job submit`
    python bench/cluster.py           # all three

Nodes are real `ray start` processes on this machine (tests/ray_nodes.py: own ports and
temp dirs, stopped by pid, never `ray stop`), records go to an embedded PostgreSQL in a
fresh /tmp/rt-bench-* home. The jobs read the first 10,000 candles of
../shared/data/binance_BTC-USDT_5m.parquet (the old system's verification data).
Numbers are wall-clock seconds on a shared 2-core machine, whatever else it is doing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from job import SHARED, bench_home, records, verification_job  # noqa: E402
from ray_nodes import RAY, LocalCluster  # noqa: E402

STOP_ENV = {"RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": "60"}


def run_driver(job: Path, address: str, database: str, home: Path) -> tuple[float, uuid.UUID]:
    """Seconds for `python -m cluster run JOB --address` in a new process; its ensemble."""
    environment = {**os.environ, "RAY_AUTH_MODE": "token", "REPROTUNE_HOME": str(home)}
    environment.pop("RAY_ADDRESS", None)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cluster", "run", str(job), "--address", address,
         "--database-url", database, "--no-progress", "--storage-path", str(home / "tune")],
        cwd=ROOT, env=environment, capture_output=True, text=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, uuid.UUID(re.search(r"^ensemble (\S+)", done.stdout, re.M)[1])  # type: ignore[index]


def trial_span(database: str, ensemble: uuid.UUID) -> tuple[int, float, dict[str, int]]:
    """(trials, seconds from the first trial's start to the last one's end, trials per
    node) from the records."""
    import psycopg

    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT t.node, t.started_at, t.finished_at FROM trials t JOIN training_jobs j "
            "ON j.id = t.training_job_id WHERE j.ensemble_id = %s",
            [ensemble],
        ).fetchall()
    span = (max(r[2] for r in rows) - min(r[1] for r in rows)).total_seconds()
    nodes: dict[str, int] = {}
    for node, _, _ in rows:
        nodes[node] = nodes.get(node, 0) + 1
    return len(rows), span, nodes


def bench_nodes(repeats: int = int(os.environ.get("BENCH_REPEATS", "3"))) -> None:
    print("## 2 nodes x 1 CPU against 1 node x 2 CPUs (4 seeds x 50 Bayesian trials, batch 4)")
    with bench_home() as home, records(home) as database:
        job = verification_job(home, iterations=50, seeds=range(4), batch_size=4,
                               searcher={"kind": "bayesian", "n_initial": 10})  # fmt: skip
        results: dict[str, list[tuple[float, float]]] = {"1 node x 2 CPUs": [],
                                                          "2 nodes x 1 CPU": []}  # fmt: skip
        transfers: list[str] = []
        for label in results:
            with LocalCluster(home / ("one" if label.startswith("1") else "two")) as cluster:
                if label.startswith("1"):
                    cluster.start_head(num_cpus=2, dashboard=True)
                    nodes = [cluster.head]
                else:
                    cluster.start_head(num_cpus=1, dashboard=True)
                    nodes = [cluster.head, cluster.add_node(num_cpus=1)]
                run_driver(job, cluster.gcs_address, database(), home)  # warm-up
                for _ in range(repeats):
                    before = [cluster.store_stats(node) for node in nodes]
                    wall, ensemble = run_driver(job, cluster.gcs_address, (db := database()), home)
                    after = [cluster.store_stats(node) for node in nodes]
                    trials, span, per_node = trial_span(db, ensemble)
                    results[label].append((trials / span, trials / wall))
                    moved = [
                        (a.get("cumulative_created_objects", 0)
                         - b.get("cumulative_created_objects", 0),
                         a.get("cumulative_created_bytes", 0)
                         - b.get("cumulative_created_bytes", 0))
                        for b, a in zip(before, after, strict=True)
                    ]  # fmt: skip
                    transfers.append(
                        f"{label}: trials per node {sorted(per_node.values())}; object store "
                        "objects/bytes created per node "
                        + ", ".join(f"{o} / {b:,}" for o, b in moved)
                    )
        for label, rates in results.items():
            span_rates = [r[0] for r in rates]
            wall_rates = [r[1] for r in rates]
            print(f"- {label}: median {statistics.median(span_rates):.1f} trials/s between "
                  f"the first trial's start and the last one's end "
                  f"({', '.join(f'{r:.1f}' for r in span_rates)}); "
                  f"{statistics.median(wall_rates):.1f} trials/s over the driver's wall time "
                  f"({', '.join(f'{r:.1f}' for r in wall_rates)})")  # fmt: skip
        for line in transfers:
            print(f"- {line}")
    from cluster.job.data import load_job_data
    from cluster.job.parse import load_job_file

    with bench_home() as home:
        _, dataset = load_job_data(load_job_file(verification_job(home)))
        print(f"- the candle table: {dataset.table.nbytes:,} bytes")


@contextlib.contextmanager
def head_with_database(home: Path, database: str, num_cpus: int = 2) -> Iterator[LocalCluster]:
    with LocalCluster(home / "head", env={"DATABASE_URL": database}) as cluster:
        cluster.start_head(num_cpus=num_cpus, dashboard=True)
        yield cluster


def submit(cluster: LocalCluster, *entry: str, env_vars: dict[str, str] | None = None) -> float:
    """Seconds from `ray job submit` (which waits) to the job's end; raises unless it
    SUCCEEDED."""
    started = time.perf_counter()
    done = subprocess.run(
        [RAY, "job", "submit", "--address", cluster.dashboard_url, "--working-dir", str(ROOT),
         "--runtime-env-json", json.dumps({"env_vars": {**STOP_ENV, **(env_vars or {})}}),
         "--", *entry],
        cwd=ROOT, env=cluster.client_env(), capture_output=True, text=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or "succeeded" not in (done.stdout + done.stderr).lower():
        raise RuntimeError(f"job failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def bench_submit(repeats: int = int(os.environ.get("BENCH_REPEATS", "3"))) -> None:
    print("## The verification job (10 Bayesian trials, 10,000 candles) on a running head")
    with bench_home() as home, records(home) as database:
        url = database()
        job = verification_job(home)
        with head_with_database(home, url) as cluster:
            run_driver(job, cluster.gcs_address, url, home)  # warm-up (kernel cache)
            submitted, direct = [], []
            for _ in range(repeats):
                submitted.append(submit(cluster, "python", "-m", "cluster", "run", str(job),
                                        "--no-progress"))  # fmt: skip
                direct.append(run_driver(job, cluster.gcs_address, url, home)[0])
            trivial = [submit(cluster, "python", "-c", "pass") for _ in range(repeats)]
    for label, times in (
        ("`ray job submit ... -- python -m cluster run`, submit to SUCCEEDED", submitted),
        ("`python -m cluster run --address` on the same head", direct),
        ("`ray job submit ... -- python -c pass` (the job API's own cost)", trivial),
    ):
        print(f"- {label}: median {statistics.median(times):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in times)})")  # fmt: skip


PROBE = """
import json, sys, time
import ray

@ray.remote(num_cpus=0)
class Fresh:
    def first_backtest(self):
        started = time.perf_counter()
        import trainable
        from trainable import backtest, jit
        backtest.warm_up()
        return {"seconds": time.perf_counter() - started, "package": trainable.__file__,
                "cache": str(jit.cache_dir())}

ray.init()
print("PROBE", json.dumps(ray.get(Fresh.remote().first_backtest.remote())))
"""


def bench_kernel(repeats: int = int(os.environ.get("BENCH_REPEATS", "3"))) -> None:
    print("## First backtest in a fresh actor under `ray job submit` (import + compile/load)")
    with bench_home() as home, records(home) as database:
        url = database()
        empty = home / "empty-numba-cache"
        with head_with_database(home, url) as cluster:
            rows: dict[str, list[float]] = {"the project's kernel cache": [],
                                            "an empty numba cache (cold compile)": []}  # fmt: skip
            where = ""
            for _ in range(repeats):
                for label in rows:
                    env = (
                        {}
                        if "project" in label
                        else {"NUMBA_CACHE_DIR": str(empty / uuid.uuid4().hex)}
                    )
                    seconds, where = probe(cluster, env)
                    rows[label].append(seconds)
    for label, times in rows.items():
        print(f"- {label}: median {statistics.median(times):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in times)})")  # fmt: skip
    print(f"- the actor imported the kernel from {where}")


def probe(cluster: LocalCluster, env: dict[str, str]) -> tuple[float, str]:
    done = subprocess.run(
        [RAY, "job", "submit", "--address", cluster.dashboard_url, "--working-dir", str(ROOT),
         "--runtime-env-json", json.dumps({"env_vars": env}), "--", "python", "-c", PROBE],
        cwd=ROOT, env=cluster.client_env(), capture_output=True, text=True,
    )  # fmt: skip
    found = re.search(r"^PROBE (.*)$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"probe failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result = json.loads(found[1])
    return float(result["seconds"]), f"{result['package']} (cache {result['cache']})"


if __name__ == "__main__":
    commands = {"nodes": bench_nodes, "submit": bench_submit, "kernel": bench_kernel}
    if not SHARED.exists():
        sys.exit(f"{SHARED} is missing: these benchmarks read the shared BTC 5m candles")
    for name in sys.argv[1:] or list(commands):
        commands[name]()
