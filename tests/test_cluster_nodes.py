"""Several real Ray nodes on this machine (`ray start`, tests/ray_nodes.py): a seed's
records do not depend on how many nodes ran it, the candle table reaches each node once,
and a node lost mid-run costs nothing but a retry (issue 13, fault 2).

The module's cluster grows, then shrinks: the head alone runs the golden ensemble; a
worker node joins for the two-node run; in the node-loss scenario the worker node is
removed while it holds a trial. Drivers are separate processes joining the cluster with
`--address`, as a driver on a cluster's head does. The toy strategy's trials take a few
milliseconds, as the kernel's do, while the worker node takes seconds to start its
first worker: the worker node gets its share only because the run waits for the actors
Ray is starting there and keeps them between batches (cluster.job.trial_actors). For
the fault, the job's environment enables the strategy's hook (tests/job_strategies.py
`hold`): the worker node's first evaluation holds. Every node has 1 CPU (the machine
has 2): what is tested is where trials run, not speed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from conftest import fresh_database, short_temp_dir
from faults import digest, driver_command, driver_environment
from job_strategies import HOLD_AFTER, HOLD_MARKER, HOLD_NODE, register_toys
from ray_nodes import LocalCluster, Node

from cluster.job.data import load_job_data
from cluster.job.parse import load_job_file

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.slow]

SEEDS = (1, 2)
ITERATIONS = 32
TOTAL = len(SEEDS) * ITERATIONS
# Large enough that a copy per trial would show (~2.4 MB), small enough to be quick.
BARS = 50_000
JOB_TOML = f"""
strategy = "toy_hold_quick"
iterations = {ITERATIONS}
batch_size = 4
seeds = {list(SEEDS)}
[data]
kind = "synthetic"
timeframe = "5m"
start = "2024-01-01"
bars = {BARS}
data_seed = 3
[searcher]
kind = "bayesian"
n_initial = 4
"""
# One candidate per Tune trial on several nodes: the first batches (2 seeds x 4) are
# 8 trials, so that every node gets work from the start. The golden run chunks by
# default: records never depend on chunking (or on the number of nodes).
ONE_PER_TRIAL = ("--chunk-size", "1")
# A node lost without a word is noticed by its missed health checks: seconds, not ~30 s.
FAST_HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    base = short_temp_dir()
    try:
        with LocalCluster(base, env=FAST_HEALTH_CHECKS) as started:
            started.start_head(num_cpus=1, dashboard=True)
            yield started
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def database(pg_session) -> Iterator[str]:
    with contextmanager(fresh_database)(pg_session) as url:
        yield url


@pytest.fixture(scope="module")
def job_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("job") / "nodes.toml"
    path.write_text(JOB_TOML)
    return path


def driver_args(
    cluster: LocalCluster, database: str, job_file: Path, tmp: Path, *more: str
) -> list[str]:
    return [
        "run", str(job_file), "--address", cluster.gcs_address, "--database-url", database,
        "--storage-path", str(tmp / "tune"), "--no-progress", *more,
    ]  # fmt: skip


def ensemble_of(output: str) -> uuid.UUID:
    return uuid.UUID(re.search(r"^ensemble ([0-9a-f-]{36})", output, re.M)[1])  # type: ignore[index]


def job_environment(**env_vars: str) -> dict[str, str]:
    """A driver's environment whose job gives its workers `env_vars` (the way `ray job
    submit` hands a job's runtime_env to its driver)."""
    job_config = {"runtime_env": {"env_vars": env_vars}} if env_vars else {}
    return driver_environment(
        RAY_AUTH_MODE="token", RAY_JOB_CONFIG_JSON_ENV_VAR=json.dumps(job_config)
    )


def run_driver(
    cluster: LocalCluster,
    database: str,
    job_file: Path,
    tmp: Path,
    *more: str,
    env_vars: dict[str, str] | None = None,
) -> uuid.UUID:
    done = subprocess.run(
        driver_command(*driver_args(cluster, database, job_file, tmp, *more)),
        cwd="/tmp", env=job_environment(**(env_vars or {})),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return ensemble_of(done.stdout)


def trials_by_node(database: str, ensemble: uuid.UUID) -> dict[str | None, int]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT t.node, count(*) FROM trials t JOIN training_jobs j "
            "ON j.id = t.training_job_id WHERE j.ensemble_id = %s GROUP BY t.node",
            [ensemble],
        ).fetchall()
    return {node: count for node, count in rows}


def attempts(database: str, ensemble: uuid.UUID) -> dict[tuple[int, int], int]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT t.seed, t.trial_index, t.attempts FROM trials t JOIN training_jobs j "
            "ON j.id = t.training_job_id WHERE j.ensemble_id = %s",
            [ensemble],
        ).fetchall()
    return {(seed, index): count for seed, index, count in rows}


def assert_complete(database: str, ensemble: uuid.UUID, golden: str) -> None:
    """Every trial recorded exactly once, and the records equal the one-node run's."""
    recorded = attempts(database, ensemble)
    assert sorted(recorded) == [(s, i) for s in SEEDS for i in range(ITERATIONS)]
    assert digest(database, ensemble) == golden


@pytest.fixture(scope="module")
def golden(cluster, database, job_file, tmp_path_factory) -> str:
    """The digest of the job run on the head alone (one node, one trial at a time)."""
    assert len(cluster.alive_nodes()) == 1
    ensemble = run_driver(cluster, database, job_file, tmp_path_factory.mktemp("golden"))
    assert set(trials_by_node(database, ensemble)) == {cluster.head.node_id}
    return digest(database, ensemble)


def table_bytes(job_file: Path) -> int:
    register_toys()  # the job names a test strategy
    _, dataset = load_job_data(load_job_file(job_file))
    return int(dataset.table.nbytes)


# A worker node that takes seconds to start each worker process, as a cloud node
# does when it sets up the job's runtime environment and imports cold; the head's
# trials take milliseconds.
WORKER_START_S = 1.0
SLOW_WORKER_START = f"""
import os, sys, time
if any(arg.endswith("default_worker.py") for arg in sys.argv):
    time.sleep({WORKER_START_S})
"""


@pytest.fixture(scope="module")
def worker(cluster, golden, tmp_path_factory) -> Node:
    """A worker node joining the head, once the golden run is done, whose workers take
    WORKER_START_S longer to start (a sitecustomize on its PYTHONPATH)."""
    site = tmp_path_factory.mktemp("slow-worker-start")
    (site / "sitecustomize.py").write_text(SLOW_WORKER_START)
    return cluster.add_node(num_cpus=1, env={"PYTHONPATH": str(site)})


def test_two_nodes_share_the_trials_and_record_what_one_node_does(
    cluster, worker, database, job_file, golden, tmp_path
):
    nodes = [cluster.head, worker]
    before = [cluster.store_stats(node) for node in nodes]
    ensemble = run_driver(cluster, database, job_file, tmp_path, *ONE_PER_TRIAL)
    after = [cluster.store_stats(node) for node in nodes]

    by_node = trials_by_node(database, ensemble)
    assert set(by_node) == {cluster.head.node_id, worker.node_id}, by_node
    assert all(count >= 0.2 * TOTAL for count in by_node.values()), by_node
    assert_complete(database, ensemble, golden)

    # The candle table reached each node once: put on the head by the driver, pulled
    # to the worker by its first trial, read from its own store by every later one.
    size = table_bytes(job_file)
    for node, start, end in zip(nodes, before, after, strict=True):
        key = "cumulative_created_bytes"
        created = end.get(key, 0) - start.get(key, 0)
        assert size <= created < 1.5 * size, (node.node_id, created, size, by_node)


@pytest.mark.reliability("fault-2")
def test_a_node_lost_mid_run_costs_a_retry_and_nothing_else(
    cluster, worker, database, job_file, golden, tmp_path
):
    marker = tmp_path / "held"
    hold = {HOLD_MARKER: str(marker), HOLD_AFTER: "1", HOLD_NODE: str(worker.node_id)}
    driver = subprocess.Popen(
        driver_command(*driver_args(cluster, database, job_file, tmp_path, *ONE_PER_TRIAL)),
        cwd="/tmp", env=job_environment(**hold),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # The fault's point: the first trial on the worker node holds there.
        deadline = time.monotonic() + 300  # a bound on a wait for a state, not a timing
        while not marker.exists():
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "no trial ever held on the worker node"
            time.sleep(0.05)
        cluster.remove_node(worker)  # every process of the node SIGKILLed at once
        out, err = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 0, err[-3000:]
    ensemble = ensemble_of(out)

    # The fault happened: the node is gone, and the trial it held ran again elsewhere.
    assert worker.node_id not in {n["node_id"] for n in cluster.alive_nodes()}
    retried = {key: count for key, count in attempts(database, ensemble).items() if count > 1}
    assert retried, "no trial needed a second attempt"
    assert set(trials_by_node(database, ensemble)) == {cluster.head.node_id}
    assert_complete(database, ensemble, golden)
