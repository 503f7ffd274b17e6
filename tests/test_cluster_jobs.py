"""Ensembles through Ray's job API on a real head (`ray start --head`, tests/ray_nodes.py):
the README's "Running on a cluster" commands as written (but `ray up` and `ray
dashboard`, and the dashboard's address), and `ray job stop` mid-run then `resume`
(issue 13, fault 4).

The head gets DATABASE_URL in its environment, as ray-cluster.yaml gives it, so job
drivers find the module's PostgreSQL database; token authentication stays on (clients
get RAY_AUTH_MODE=token). Jobs upload this checkout as their working dir; a toy job's
entry point is this checkout's tests/job_runner.py by its absolute path (`.rayignore`
leaves the tests out of the upload), which the head, on this machine, can run.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import REPO_ROOT, fresh_database, short_temp_dir
from faults import RUNNER, digest, driver_command, driver_environment
from job_strategies import HOLD_AFTER, HOLD_MARKER
from ray_nodes import RAY, LocalCluster, auth_token

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.slow]

README = REPO_ROOT / "README.md"
README_ADDRESS = "http://127.0.0.1:8265"
STOP_ENV = {"RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": "60"}
SEEDS = (1, 2)
ITERATIONS = 8
TOTAL = len(SEEDS) * ITERATIONS
JOB_TOML = f"""
strategy = "toy_hold"
iterations = {ITERATIONS}
batch_size = 4
seeds = {list(SEEDS)}
[data]
kind = "synthetic"
timeframe = "5m"
start = "2024-01-01"
bars = 300
data_seed = 3
[searcher]
kind = "bayesian"
n_initial = 4
"""


@pytest.fixture(scope="module")
def database(pg_session) -> Iterator[str]:
    with contextmanager(fresh_database)(pg_session) as url:
        yield url


@pytest.fixture(scope="module")
def head(database) -> Iterator[LocalCluster]:
    base = short_temp_dir()
    env = {"DATABASE_URL": database, "RAY_metrics_report_interval_ms": "1000"}
    try:
        with LocalCluster(base, env=env) as cluster:
            cluster.start_head(num_cpus=2, dashboard=True)
            yield cluster
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def job_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("job") / "toy.toml"
    path.write_text(JOB_TOML)
    return path


def job_info(head: LocalCluster, submission_id: str) -> dict[str, Any]:
    return dict(head.dashboard_get(f"/api/jobs/{submission_id}"))


def wait_for_job(head: LocalCluster, submission_id: str, *states: str) -> str:
    deadline = time.monotonic() + 600  # a bound on a wait for a state, not a timing
    while (status := job_info(head, submission_id)["status"]) not in states:
        assert time.monotonic() < deadline, f"job {submission_id} still {status}"
        time.sleep(0.2)
    return status


def job_logs(head: LocalCluster, submission_id: str) -> str:
    return str(head.dashboard_get(f"/api/jobs/{submission_id}/logs")["logs"])


def submit(head: LocalCluster, submission_id: str, env_vars: dict[str, str], *entry: str) -> None:
    done = subprocess.run(
        [
            RAY, "job", "submit", "--address", head.dashboard_url, "--no-wait",
            "--submission-id", submission_id, "--working-dir", str(REPO_ROOT),
            "--runtime-env-json", json.dumps({"env_vars": env_vars}), "--", *entry,
        ],
        cwd=REPO_ROOT, env=head.client_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def ensemble_in(log: str) -> uuid.UUID:
    found = re.search(r"^ensemble ([0-9a-f-]{36})", log, re.M)
    assert found, log[-3000:]
    return uuid.UUID(found[1])


# --- the README's section, as written -------------------------------------------------


def readme_commands() -> list[str]:
    """The commands of the README's "Running on a cluster" code blocks, continuation
    lines joined, comments dropped."""
    text = README.read_text()
    section = text.split("## Running on a cluster\n", 1)[1].split("\n## ", 1)[0]
    lines = [line[4:] for line in section.splitlines() if line.startswith("    ")]
    commands, current = [], ""
    for line in lines:
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            commands.append(re.sub(r"\s+#.*$", "", current).strip())
            current = ""
    return commands


def test_the_readme_section_runs_against_a_local_head(head, database):
    commands = readme_commands()
    assert commands[0] == "ray up ray-cluster.yaml" and "--working-dir ." in commands[3]
    environment = head.client_env()
    outputs = []
    for command in commands:
        if command.startswith(("ray up ", "ray dashboard ")):
            continue  # the cloud's part: the test's head stands in for it
        if command.startswith("export "):
            name, value = command.removeprefix("export ").split("=", 1)
            environment[name] = value
            continue
        args = shlex.split(command.replace(README_ADDRESS, head.dashboard_url))
        done = subprocess.run(
            args, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        outputs.append(done.stdout + done.stderr)
    submitted, logs, status, report = outputs

    assert "ensemble-1" in submitted
    assert "SUCCEEDED" in status or "succeeded" in status
    ensemble = ensemble_in(logs)
    for seed in (1, 2):  # the progress lines, as the dashboard's job page shows
        assert re.search(rf"^seed={seed} done=30/30 best=-?\d", logs, re.M), logs[-3000:]
    assert re.search(r"^trials done=\d+/60 trials/s=", logs, re.M), logs[-3000:]
    assert "Verdict:" in report and str(ensemble)[:8] in report
    # Tune's logs went to the head's default place, ~/ray_results (README): tidy up.
    shutil.rmtree(Path.home() / "ray_results" / f"reprotune-{ensemble}", ignore_errors=True)

    # The records are in PostgreSQL, all of them, and the run ended complete.
    with psycopg.connect(database) as conn:
        (trials,) = conn.execute(
            "SELECT count(*) FROM trials t JOIN training_jobs j ON j.id = t.training_job_id "
            "WHERE j.ensemble_id = %s",
            [ensemble],
        ).fetchone()
        outcomes = conn.execute(
            "SELECT outcome::text FROM ensemble_runs WHERE ensemble_id = %s", [ensemble]
        ).fetchall()
    assert trials == 60 and outcomes == [("complete",)]

    # The dashboard's job API lists the job, to a client with the token only.
    listed = head.dashboard_get("/api/jobs/")
    (job,) = [j for j in listed if j.get("submission_id") == "ensemble-1"]
    assert job["status"] == "SUCCEEDED"
    assert "DATABASE_URL" not in json.dumps(job)  # nothing of the database in the job
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(head.dashboard_url + "/api/jobs/", timeout=30)
    assert refused.value.code == 401
    assert auth_token() not in json.dumps(listed)


# --- fault 4: `ray job stop` mid-run, then resume -------------------------------------


@pytest.fixture(scope="module")
def golden(head, database, job_file, tmp_path_factory) -> str:
    """The digest of the job run undisturbed by a driver on the head."""
    tmp = tmp_path_factory.mktemp("golden")
    done = subprocess.run(
        driver_command("run", str(job_file), "--address", head.gcs_address, "--no-progress",
                       "--storage-path", str(tmp / "tune")),
        cwd="/tmp", env=driver_environment(RAY_AUTH_MODE="token", DATABASE_URL=database),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return digest(database, ensemble_in(done.stdout))


def metric_samples(url: str, name: str) -> list[str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return []
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def wait_for_metrics(head: LocalCluster, ensemble: uuid.UUID) -> dict[str, list[str]]:
    """The run's Ray metrics on the head's metrics port, once every one has a sample
    (trials done: one per seed)."""
    names = ["ray_reprotune_trials_done", "ray_reprotune_trials_budget",
             "ray_reprotune_trials_per_second"]  # fmt: skip
    deadline = time.monotonic() + 120  # a bound on a wait for a state, not a timing
    while True:
        found = {
            name: [s for s in metric_samples(head.head.metrics_url, name) if str(ensemble) in s]
            for name in names
        }
        seeds = {f'seed="{seed}"' for seed in SEEDS}
        tagged = {t for s in found["ray_reprotune_trials_done"] for t in seeds if t in s}
        if (all(found.values()) and tagged == seeds) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.reliability("fault-4")
def test_ray_job_stop_mid_run_then_resume_ends_golden(head, database, job_file, golden, tmp_path):
    marker = tmp_path / "held"
    hold = {HOLD_MARKER: str(marker), HOLD_AFTER: "3", "REPROTUNE_PROGRESS_INTERVAL_S": "1"}
    storage = ["--storage-path", str(tmp_path / "tune")]
    submit(head, "stopped-1", {**STOP_ENV, **hold},
           "python", str(RUNNER), "run", str(job_file), *storage)  # fmt: skip

    # The fault's point: a trial holds (the third evaluation of a worker process).
    deadline = time.monotonic() + 300  # a bound on a wait for a state, not a timing
    while not marker.exists():
        assert job_info(head, "stopped-1")["status"] in ("PENDING", "RUNNING")
        assert time.monotonic() < deadline, "no trial held"
        time.sleep(0.05)
    ensemble = ensemble_in(job_logs(head, "stopped-1"))
    # While it runs, its progress is in Ray's metrics (the dashboard's metrics view).
    metrics = wait_for_metrics(head, ensemble)
    assert all(metrics.values()), metrics
    for seed in SEEDS:
        assert any(f'seed="{seed}"' in s for s in metrics["ray_reprotune_trials_done"]), metrics

    stop = subprocess.Popen(
        [RAY, "job", "stop", "--address", head.dashboard_url, "stopped-1"],
        env=head.client_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert wait_for_job(head, "stopped-1", "STOPPED", "SUCCEEDED", "FAILED") == "STOPPED"
    finally:
        Path(str(marker) + ".release").touch()  # the held trial may end now (the job did)
        stop.communicate(timeout=300)

    # The fault happened, and the driver ended it cleanly: it recorded the run as
    # interrupted (a killed driver could not have) and said how to finish it.
    log = job_logs(head, "stopped-1")
    assert f"python -m cluster resume {ensemble}" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    with psycopg.connect(database) as conn:
        runs = conn.execute(
            "SELECT outcome::text FROM ensemble_runs WHERE ensemble_id = %s", [ensemble]
        ).fetchall()
        (kept,) = conn.execute(
            "SELECT count(*) FROM trials t JOIN training_jobs j ON j.id = t.training_job_id "
            "WHERE j.ensemble_id = %s",
            [ensemble],
        ).fetchone()
    assert runs == [("interrupted",)] and kept < TOTAL

    submit(head, "resumed-1", STOP_ENV,
           "python", str(RUNNER), "resume", str(ensemble), *storage)  # fmt: skip
    assert wait_for_job(head, "resumed-1", "STOPPED", "SUCCEEDED", "FAILED") == "SUCCEEDED", (
        job_logs(head, "resumed-1")[-3000:]
    )
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT t.seed, t.trial_index FROM trials t JOIN training_jobs j "
            "ON j.id = t.training_job_id WHERE j.ensemble_id = %s",
            [ensemble],
        ).fetchall()
    assert sorted(rows) == [(s, i) for s in SEEDS for i in range(ITERATIONS)]
    assert digest(database, ensemble) == golden


def test_the_readme_job_settings_carry_no_secret():
    """What the README has users submit: the stop settings, nothing of the database."""
    (submit_command,) = [c for c in readme_commands() if "--runtime-env-json" in c]
    args = shlex.split(submit_command)
    runtime_env = json.loads(args[args.index("--runtime-env-json") + 1])
    assert runtime_env == {"env_vars": STOP_ENV}
