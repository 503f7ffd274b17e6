"""What the fault scenarios share (tests/test_faults_*.py): one small job, its golden
digest, a driver run in this process, and the checks every scenario ends with.

The job: the toy bowl (tests/job_strategies.py) on synthetic candles, Bayesian search
in batches of 4, 8 trials for each of two seeds: 16 records, ~1 s of Tune per run.
Faults fire at a deterministic point, never after a sleep: `at_recorded(n, fault)` runs
`fault` once, right before the write that brings the trials recorded by this process to
`n` or more (the Nth recorded row), so that at least that write meets the fault however
the driver batches its writes.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cluster.job.driver import run_job
from cluster.job.parse import parse_job
from cluster.records.export import build_export
from cluster.records.recorder import Recorder
from cluster.records.retry import RetryPolicy
from cluster.records.types import TrialRecord

SEEDS = (1, 2)
ITERATIONS = 8
TOTAL = len(SEEDS) * ITERATIONS
JOB_TABLE: dict[str, Any] = {
    "data": {"kind": "synthetic", "timeframe": "5m", "start": "2024-01-01", "bars": 300,
             "data_seed": 3},
    "strategy": "toy_quadratic",
    "iterations": ITERATIONS,
    "batch_size": 4,
    "seeds": list(SEEDS),
    "searcher": {"kind": "bayesian", "n_initial": 4},
}  # fmt: skip
JOB_TOML = """
strategy = "toy_quadratic"
iterations = 8
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
"""
# Budgets of the scenarios: a restart is ridden out, an outage gives up within ~1 s.
RETRY = RetryPolicy(attempts=4, first_delay_s=0.05, max_delay_s=0.2, connect_timeout_s=1.0)


def spec() -> Any:
    return parse_job(JOB_TABLE)


def run(database: str, tmp_path: Path, **options: Any) -> uuid.UUID:
    """The job as a new ensemble, driven from this process (its Ray is the test's)."""
    return run_job(
        spec(),
        database_url=database,
        storage_path=str(tmp_path / "tune"),
        progress=False,
        out=io.StringIO(),
        records_retry=RETRY,
        **options,
    )


def digest(database: str, ensemble: uuid.UUID | str | None = None) -> str:
    with Recorder(database) as recorder:
        found = recorder.find_ensemble(str(ensemble)) if ensemble else recorder.latest_ensemble()
        return build_export(recorder.ensemble_trials(found)).digest


def trial_rows(database: str) -> list[tuple[int, int]]:
    """(seed, trial_index) of every recorded trial, duplicates included."""
    with psycopg.connect(database) as conn:
        return [tuple(row) for row in conn.execute("SELECT seed, trial_index FROM trials")]


def assert_golden(database: str, golden: str, ensemble: uuid.UUID | str | None = None) -> None:
    """Every trial recorded exactly once, and the records equal the undisturbed run's."""
    rows = trial_rows(database)
    assert len(rows) == TOTAL and len(set(rows)) == TOTAL
    assert sorted(rows) == [(s, i) for s in SEEDS for i in range(ITERATIONS)]
    assert digest(database, ensemble) == golden


@contextmanager
def at_recorded(
    monkeypatch: pytest.MonkeyPatch, n: int, fault: Callable[[], None]
) -> Iterator[list[int]]:
    """Run `fault` once, right before the write that brings this process's recorded
    trials to `n` or more; yields a list that holds the count recorded before it once
    it fired."""
    fired: list[int] = []
    recorded = [0]
    original = Recorder.record_trials

    def record_trials(self: Recorder, ensemble_id: uuid.UUID, trials: list[TrialRecord]) -> None:
        if not fired and recorded[0] + len(trials) >= n:
            fired.append(recorded[0])
            fault()
        original(self, ensemble_id, trials)
        recorded[0] += len(trials)

    monkeypatch.setattr(Recorder, "record_trials", record_trials)
    yield fired


RUNNER = Path(__file__).resolve().parent / "job_runner.py"
REPO_ROOT = Path(__file__).resolve().parent.parent


def driver_command(*args: str) -> list[str]:
    """The command line as a driver process of its own (tests/job_runner.py)."""
    return [sys.executable, str(RUNNER), *args]


def driver_environment(**env: str) -> dict[str, str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    environment.pop("RAY_ADDRESS", None)
    return environment


def driver(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        driver_command(*args),
        cwd="/tmp",
        env=driver_environment(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )
