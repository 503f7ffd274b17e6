"""Fault scenarios 1 and 3 of issue 13: a worker process SIGKILLed while it runs a trial,
several times in one run; the driver SIGKILLed at named points, then `resume`.

The job: the toy bowl counted (`counted_toy`, tests/job_runner.py), Bayesian with 4
random points then batches of 4, 12 trials for each of two seeds (batches 0-3, 4-7,
8-11), at most 2 candidates per Tune trial, 2 trials at once: 24 records. Every driver
is a process of its own (tests/job_runner.py, the command line) that joins the module's
Ray and counts the trainable's executions in a file of its own. Golden: the same job
run once, undisturbed.

Faults fire at named points enabled by environment variables (never after a sleep):
`REPROTUNE_TEST_KILL_WORKER` in a worker (trainable/tune_adapter.py), given to the
driver's workers as the job's runtime environment (the way `ray job submit
--runtime-env-json` does it); `REPROTUNE_TEST_KILL_DRIVER_AT` in the driver
(cluster/job/kill_points.py). Each case first asserts that its fault happened (a marker
file per worker kill and the recorded attempts; the driver's exit by SIGKILL with
exactly the records of its point), then that the records are golden with every trial
recorded once, and that nothing the driver started outlives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import psutil
import psycopg
import pytest
from conftest import fresh_database
from faults import digest, driver_command, driver_environment, trial_rows
from job_strategies import executions

from cluster.job.kill_points import KILL_DRIVER_AT, KillPoint
from trainable.tune_adapter import KILL_WORKER

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.slow]
RAY_INIT = {"num_cpus": 2}

SEEDS = (1, 2)
ITERATIONS = 12
TOTAL = len(SEEDS) * ITERATIONS
JOB = """
strategy = "counted_toy"
iterations = 12
batch_size = 4
seeds = [1, 2]
[data]
kind = "synthetic"
timeframe = "5m"
start = "2024-01-01"
bars = 300
data_seed = 3
[searcher]
kind = "bayesian"
n_initial = 4
[execution]
chunk_size = 2
max_concurrent_trials = 2
suggestion_processes = 1
"""


@pytest.fixture(scope="module")
def job_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("job") / "job.toml"
    path.write_text(JOB)
    return path


@pytest.fixture(scope="module")
def ray_address(ray_local) -> str:
    """The module's Ray, for drivers that join it (no Ray start of their own)."""
    return str(ray_local._private.worker.global_worker.node.gcs_address)


def driver(*args: str, count: Path, **env: str) -> subprocess.CompletedProcess:
    """The command line as a driver process in a process group of its own, counting its
    executions in `count`. Whatever it started in its group (the suggestion pool) must
    end with it, killed or not: the test fails, after killing them, if any is left."""
    process = subprocess.Popen(
        driver_command(*args),
        cwd="/tmp",
        env=driver_environment(REPROTUNE_TEST_COUNT_FILE=str(count), RAY_AUTH_MODE="token", **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        left = group_left(process.pid)
    assert not left, f"the driver left processes running: {left}"
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def group_left(group: int) -> list[str]:
    """The live processes of process group `group` once they had up to 30 s to end by
    themselves (a bound on a wait for a state); any left are killed and named."""
    deadline = time.monotonic() + 30
    while True:
        members = []
        for process in psutil.process_iter(["pid", "status", "cmdline"]):
            try:
                if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                    members.append(process)
            except (ProcessLookupError, psutil.Error):
                continue
        if not members or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for process in members:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return [" ".join(process.info["cmdline"] or [])[:120] for process in members]


def options(database: str, tmp_path: Path, address: str) -> list[str]:
    return ["--database-url", database, "--storage-path", str(tmp_path / "tune"),
            "--no-progress", "--address", address]  # fmt: skip


def workers_environment(**env: str) -> str:
    """`env` for the driver's Ray workers: the job configuration that the job manager
    hands a driver started by `ray job submit --runtime-env-json` (Ray merges it into
    the job's runtime environment when the driver connects)."""
    return json.dumps({"runtime_env": {"env_vars": env}})


def assert_golden(database: str, golden: str) -> None:
    """Every trial recorded exactly once, and the records equal the undisturbed run's."""
    rows = trial_rows(database)
    assert sorted(rows) == [(seed, index) for seed in SEEDS for index in range(ITERATIONS)]
    assert digest(database) == golden


@pytest.fixture(scope="module")
def golden(pg_session, job_file, ray_address, tmp_path_factory) -> str:
    """The digest of the job run with no fault (each trial executed once)."""
    tmp_path = tmp_path_factory.mktemp("golden")
    database = next(databases := fresh_database(pg_session))
    try:
        done = driver("run", str(job_file), *options(database, tmp_path, ray_address),
                      count=tmp_path / "golden.count")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert executions(tmp_path / "golden.count") == TOTAL
        return digest(database)
    finally:
        databases.close()


def attempts(database: str) -> dict[tuple[int, int], int]:
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT seed, trial_index, attempts FROM trials").fetchall()
    return {(seed, index): count for seed, index, count in rows}


# --- fault 1: a worker process SIGKILLed while it runs a trial ----------------------------

# (seed, trial_index): a random point, a point of a model batch, the last trial.
WORKER_KILLS = ((1, 1), (2, 6), (1, 11))


@pytest.mark.reliability("fault-1")
def test_workers_killed_while_running_trials_are_retried_to_the_golden_records(
    pg_url, job_file, golden, ray_address, tmp_path
):
    """Three Tune trials (each a chunk of up to 2 candidates) lose their worker to a
    SIGKILL right before a given candidate, on their first attempt: each chunk is
    retried whole and the run completes with the records of an undisturbed run."""
    marks = tmp_path / "kills"
    marks.mkdir()
    points = ",".join(f"{seed}:{index}" for seed, index in WORKER_KILLS)
    hook = workers_environment(**{KILL_WORKER: f"{points}@{marks}"})
    done = driver("run", str(job_file), *options(pg_url, tmp_path, ray_address),
                  count=tmp_path / "run.count", RAY_JOB_CONFIG_JSON_ENV_VAR=hook)  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Each kill fired, once: its marker is created right before the SIGKILL, and the
    # retry that found it went on.
    assert sorted(p.name for p in marks.iterdir()) == sorted(
        f"killed-{seed}-{index}" for seed, index in WORKER_KILLS
    )
    counts = attempts(pg_url)
    assert all(counts[point] == 2 for point in WORKER_KILLS), counts
    retried = {key for key, count in counts.items() if count > 1}
    assert set(counts.values()) == {1, 2}
    # The retried trials are the killed chunks (at most 2 candidates each): a kill's
    # chunk-mate before it ran twice, one after it once.
    assert len(retried) <= 2 * len(WORKER_KILLS)
    ran = executions(tmp_path / "run.count")
    assert TOTAL <= ran <= TOTAL + len(retried) - len(WORKER_KILLS)
    assert_golden(pg_url, golden)


# --- fault 3: the driver SIGKILLed, then resume ------------------------------------------

# id: (the kill point, the seed whose records it counts, how many it leaves).
DRIVER_KILLS = {
    # Recorded: the ensemble, its jobs and the run; nothing ran.
    "before-the-first-trial": ("experiment-start", None, 0),
    # Seed 1's batch 4-7 half recorded (its other half may be running).
    "mid-batch": ("recorded:1:6", 1, 6),
    # Seed 2's batch 4-7 all recorded; its searcher was told those outcomes but has not
    # computed batch 8-11 from them (the commit runs inside the completion callback,
    # before Tune asks any searcher for more).
    "batch-recorded-before-the-searcher-used-it": ("recorded:2:8", 2, 8),
    # Seed 1's last batch, 8-11, half recorded.
    "during-the-last-batch": ("recorded:1:10", 1, 10),
}


@pytest.mark.reliability("fault-3")
@pytest.mark.parametrize("case", list(DRIVER_KILLS))
def test_a_driver_killed_at_a_named_point_is_resumed_to_the_golden_records(
    case, pg_url, job_file, golden, ray_address, tmp_path
):
    point, seed, left = DRIVER_KILLS[case]
    killed = driver("run", str(job_file), *options(pg_url, tmp_path, ray_address),
                    count=tmp_path / "killed.count", **{KILL_DRIVER_AT: point})  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rows = trial_rows(pg_url)
    per_seed = Counter(s for s, _ in rows)
    if seed is None:
        assert rows == [] and executions(tmp_path / "killed.count") == 0
    else:
        assert per_seed[seed] == left
    for s in SEEDS:  # a seed's records are a prefix: delivered in trial_index order
        assert sorted(i for t, i in rows if t == s) == list(range(per_seed[s]))
    before = len(rows)
    assert executions(tmp_path / "killed.count") >= before
    ensemble = killed.stdout.split()[1]

    resumed = driver("resume", ensemble, *options(pg_url, tmp_path, ray_address),
                     count=tmp_path / "resumed.count")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"{TOTAL - before} trial(s) missing" in resumed.stdout
    # Exactly the trials without a record ran: nothing recorded was recomputed.
    assert executions(tmp_path / "resumed.count") == TOTAL - before
    assert_golden(pg_url, golden)
    with psycopg.connect(pg_url) as conn:
        runs = conn.execute("SELECT kind, outcome FROM ensemble_runs ORDER BY started_at")
        assert runs.fetchall() == [("run", None), ("resume", "complete")]
        (status,) = conn.execute("SELECT status::text FROM ensembles").fetchone()
    assert status == "complete"


def test_kill_points_are_parsed_strictly(monkeypatch):
    for value, expected in (("experiment-start", KillPoint()), ("recorded:13", KillPoint(13)),
                            ("recorded:2:8", KillPoint(8, seed=2))):  # fmt: skip
        monkeypatch.setenv(KILL_DRIVER_AT, value)
        assert KillPoint.from_environment() == expected
    for value in ("start", "recorded", "recorded:x", "recorded:1:2:3"):
        monkeypatch.setenv(KILL_DRIVER_AT, value)
        with pytest.raises(ValueError, match=KILL_DRIVER_AT):
            KillPoint.from_environment()
    assert KillPoint(8, seed=2).reached({2: 8}) and not KillPoint(8, seed=2).reached({1: 9})
    assert KillPoint(13).reached({1: 6, 2: 7}) and not KillPoint().reached({1: 99})
