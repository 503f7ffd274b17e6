"""Contract 2 through the whole pipeline: spec -> driver -> Tune on a real local Ray ->
PostgreSQL. Each side of a comparison is computed from scratch in a database of its
own, and counts its executions, so a side that quietly reused the other's work (or ran
fewer trials) would fail.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from conftest import FIXTURE_CANDLES, fresh_database
from job_strategies import (
    counting,
    crashing_once_toy,
    crashing_toy,
    executions,
    register_toys,
    ship_by_value,
    toy_score,
)

from cluster.errors import Failed, Interrupted, InvalidInput
from cluster.job.driver import run_job
from cluster.job.parse import parse_job
from cluster.job.resume import resume_job
from cluster.records.export import build_export
from cluster.records.recorder import Recorder
from cluster.records.types import TrialStatus
from trainable.strategies import get_strategy

pytestmark = [pytest.mark.ray, pytest.mark.postgres]
RAY_INIT = {"num_cpus": 4}
SYNTHETIC = {"kind": "synthetic", "timeframe": "5m", "start": "2024-01-01", "bars": 300,
             "data_seed": 3}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def toys(ray_local):
    register_toys()
    ship_by_value()
    from trainable.backtest import warm_up

    warm_up()  # compile once here, so that workers load the kernel from the cache


@pytest.fixture
def databases(pg_session) -> Iterator:
    """A factory of fresh, empty databases (dropped afterwards)."""
    with contextlib.ExitStack() as stack:

        def new() -> str:
            return stack.enter_context(contextlib.contextmanager(fresh_database)(pg_session))

        yield new


@dataclass
class Counted:
    """A strategy registered for one test, counting its executions in a file. Both sides
    of a comparison use it (its name is part of the spec) and run one after the other,
    so the count after each side says how many trials that side really ran."""

    name: str
    path: Path
    seen: int = 0

    def ran(self) -> int:
        """Executions since the last call."""
        total = executions(self.path)
        ran, self.seen = total - self.seen, total
        return ran


def counted(tmp_path: Path, base: str = "toy_quadratic") -> Counted:
    name = f"{base}_counted_{tmp_path.name}"
    path = tmp_path / "executions.count"
    counting(get_strategy(base), path, name)
    return Counted(name, path)


@dataclass(frozen=True)
class Side:
    ensemble: str
    database: str

    def export(self, seeds=None):
        with Recorder(self.database) as recorder:
            found = recorder.find_ensemble(self.ensemble)
            return build_export(recorder.ensemble_trials(found, seeds))


def run(table: dict, database: str, tmp_path: Path, **options) -> Side:
    ensemble = run_job(
        parse_job(table, base_dir=FIXTURE_CANDLES.parent),
        database_url=database,
        storage_path=str(tmp_path / "tune"),
        progress=False,
        out=io.StringIO(),
        **options,
    )
    return Side(str(ensemble), database)


def test_the_same_spec_twice_gives_identical_records(databases, tmp_path):
    """The real strategy on real candles, Bayesian with batches of 4, two seeds; chunks of
    a batch per Tune trial, then one candidate per Tune trial."""
    strategy = counted(tmp_path, base="key_level_reversal")
    table = {
        "data": {"kind": "parquet", "path": FIXTURE_CANDLES.name, "timeframe": "5m"},
        "strategy": strategy.name,
        "iterations": 14,
        "batch_size": 4,
        "seeds": [42, 123],
        "searcher": {"kind": "bayesian", "n_initial": 6},
    }
    first = run(table, databases(), tmp_path)  # chunks: each Tune trial a Bayesian batch
    assert strategy.ran() == 28
    second = run(table, databases(), tmp_path, chunk_size=1)  # one backtest per Tune trial
    assert strategy.ran() == 28
    assert tune_trials(first) < 28 and tune_trials(second) == 28
    one, other = first.export(), second.export()
    assert len(one.rows) == len(other.rows) == 28
    assert one.digest == other.digest
    assert {t.status for t in one.trials} >= {TrialStatus.OK}
    assert len({t.params["key_level_lookback"] for t in one.trials}) > 5  # a real search


def test_a_seed_alone_equals_that_seed_among_four(databases, tmp_path):
    strategy = counted(tmp_path)
    table = {"data": SYNTHETIC, "strategy": strategy.name, "iterations": 16, "batch_size": 4,
             "searcher": {"kind": "bayesian", "n_initial": 4}}  # fmt: skip
    four = run({**table, "seeds": [5, 6, 7, 8]}, databases(), tmp_path)
    assert strategy.ran() == 64
    alone = run({**table, "seeds": [7]}, databases(), tmp_path)
    assert strategy.ran() == 16
    assert four.export(seeds=[7]).digest == alone.export().digest
    assert four.export(seeds=[7]).digest != four.export(seeds=[8]).digest
    # The toy's score is known: every recorded score is the objective of its params.
    for trial in four.export().trials:
        if trial.status is TrialStatus.OK:
            assert trial.score == toy_score(trial.params)
        else:
            assert trial.params["k"] == 5 and trial.params["x"] > 0.9


def test_one_trial_at_a_time_and_four_at_once_give_identical_records(databases, tmp_path):
    strategy = counted(tmp_path, base="toy_sleepy")
    table = {"data": SYNTHETIC, "strategy": strategy.name, "iterations": 12, "batch_size": 4,
             "seeds": [1, 2, 3], "searcher": {"kind": "bayesian", "n_initial": 4}}  # fmt: skip
    serial = run(table, databases(), tmp_path, max_concurrent_trials=1)
    assert strategy.ran() == 36
    parallel = run(table, databases(), tmp_path, max_concurrent_trials=4)
    assert strategy.ran() == 36
    serial_trials, parallel_trials = serial.export().trials, parallel.export().trials
    assert max_overlap(serial_trials) == 1
    assert max_overlap(parallel_trials) >= 2, "trials never ran at the same time"
    by_start = sorted(parallel_trials, key=lambda t: t.started_at)
    by_end = sorted(parallel_trials, key=lambda t: t.finished_at)
    assert [t.trial_index for t in by_start] != [t.trial_index for t in by_end]
    assert serial.export().digest == parallel.export().digest


@pytest.mark.parametrize("searcher", [{"kind": "random"}, {"kind": "grid", "points": 4}])
def test_random_and_grid_records_do_not_depend_on_concurrency_or_chunks(
    databases, tmp_path, searcher
):
    strategy = counted(tmp_path)
    table = {"data": SYNTHETIC, "strategy": strategy.name, "iterations": 12, "seeds": [11, 12],
             "searcher": searcher}  # fmt: skip
    one = run(table, databases(), tmp_path, max_concurrent_trials=2)  # chunks
    assert strategy.ran() == 24
    other = run(table, databases(), tmp_path, max_concurrent_trials=3, chunk_size=1)
    assert strategy.ran() == 24
    assert tune_trials(one) < 24 and tune_trials(other) == 24
    assert one.export().digest == other.export().digest
    trials = one.export().trials
    assert len({(t.params["x"], t.params["k"]) for t in trials if t.seed == 11}) == 12
    for trial in trials:
        assert trial.status is TrialStatus.INVALID or trial.score == toy_score(trial.params)


def test_a_trial_failing_past_its_retries_stops_resumable_and_resume_finishes_it(
    databases, tmp_path
):
    """Contract 3: a worker that dies is retried (max_failures = 1), then the trial is
    not recorded, never told to its searcher, and the run ends "interrupted, resumable";
    once the fault is gone, resume gives the records of an undisturbed run."""
    marker = tmp_path / "crash"
    crashing_toy(marker, f"toy_crashing_{tmp_path.name}")
    table = {"data": SYNTHETIC, "strategy": f"toy_crashing_{tmp_path.name}", "iterations": 12,
             "seeds": [21, 22], "searcher": {"kind": "random"},
             "execution": {"max_failures": 1}}  # fmt: skip
    golden = run(table, databases(), tmp_path)  # no marker: no fault
    faulty_db = databases()
    marker.touch()
    with pytest.raises(Interrupted, match=r"trial\(s\) failed past their retries"):
        run(table, faulty_db, tmp_path)
    with Recorder(faulty_db) as recorder:
        ensemble = recorder.latest_ensemble()
        partial = recorder.ensemble_trials(ensemble)
        assert recorder.ensemble_status(ensemble).value == "interrupted"
        assert [run.outcome.value for run in recorder.runs(ensemble)] == ["interrupted"]
    crashed = [t for t in golden.export().trials if t.params["k"] == 3]
    assert crashed, "the fault never fired"
    # Random trials do not wait on each other: everything but the crashed trials (and,
    # per seed, what comes after one in delivery order) is recorded; those never are.
    assert {(t.seed, t.trial_index) for t in partial} <= {
        (t.seed, t.trial_index) for t in golden.export().trials if t.params["k"] != 3
    }
    assert all(t.params["k"] != 3 for t in partial)

    marker.unlink()
    resume_job(str(ensemble), database_url=faulty_db, storage_path=str(tmp_path / "tune"),
               progress=False, out=io.StringIO())  # fmt: skip
    assert Side(str(ensemble), faulty_db).export().digest == golden.export().digest


def test_records_that_the_searcher_does_not_reproduce_stop_the_resume(databases, tmp_path):
    """A recorded params value one bit off (as another platform's suggestion would be):
    resume refuses to continue, naming the seed and the trial."""
    strategy = counted(tmp_path)
    table = {"data": SYNTHETIC, "strategy": strategy.name, "iterations": 12, "seeds": [31],
             "searcher": {"kind": "random"}}  # fmt: skip
    database = databases()
    side = run(table, database, tmp_path)
    with psycopg.connect(database) as conn:  # as if the driver had died after 6 trials
        conn.execute("DELETE FROM trials WHERE trial_index >= 6")
        conn.execute("UPDATE ensembles SET status = 'interrupted'")
        conn.execute("UPDATE training_jobs SET status = 'running', best_trial_index = NULL, "
                     "best_score = NULL, best_params = NULL")  # fmt: skip
        (exact,) = conn.execute("SELECT params_exact FROM trials WHERE trial_index = 4").fetchone()
        x = json.loads(exact)["x"]
        nudged = float.hex(math.nextafter(float.fromhex(x), 2.0))
        conn.execute("UPDATE trials SET params_exact = replace(params_exact, %s, %s) "
                     "WHERE trial_index = 4", [x, nudged])  # fmt: skip
    strategy.ran()
    with pytest.raises(Failed, match="non-determinism: seed 31 trial 4: recorded params"):
        resume_job(side.ensemble, database_url=database, progress=False, out=io.StringIO())
    assert strategy.ran() == 0


def test_a_worker_killed_in_the_middle_of_a_chunk_is_retried_to_the_same_records(
    databases, tmp_path
):
    """The first candidate with k = 3 kills its worker, once: its chunk (a random seed's
    candidates, several per Tune trial) is retried, nothing is recorded twice, and the
    records equal an undisturbed run's."""
    marker = tmp_path / "crash-once"
    name = f"toy_crashing_once_{tmp_path.name}"
    crashing_once_toy(marker, name)
    table = {"data": SYNTHETIC, "strategy": name, "iterations": 16, "seeds": [21, 22],
             "searcher": {"kind": "random"}, "execution": {"max_failures": 2}}  # fmt: skip
    golden = run(table, databases(), tmp_path)  # no marker: no fault
    marker.touch()
    disturbed = run(table, databases(), tmp_path, chunk_size=6)
    assert not marker.exists(), "the fault never fired"
    trials = disturbed.export().trials
    assert len(trials) == 32 and len({(t.seed, t.trial_index) for t in trials}) == 32
    with Recorder(disturbed.database) as recorder:
        attempts = {
            (t.seed, t.trial_index): t.attempts
            for t in recorder.ensemble_trials(recorder.find_ensemble(disturbed.ensemble))
        }
    retried = sorted(key for key, count in attempts.items() if count == 2)
    # The retried chunk: up to 6 consecutive candidates of one seed, the crash among them.
    assert 1 < len(retried) <= 6 and len({seed for seed, _ in retried}) == 1
    assert set(attempts.values()) == {1, 2}
    assert disturbed.export().digest == golden.export().digest


def test_a_bayesian_resume_on_another_numeric_platform_is_refused_unless_allowed(
    databases, tmp_path
):
    """The ensemble's recorded numeric platform is made to say another architecture, as
    if its suggestions had been computed on another machine: resume refuses, naming the
    difference; allowed, it proceeds, records that it did, and (the platform being in
    fact the same) ends with the records of an uninterrupted run."""
    strategy = counted(tmp_path)
    table = {"data": SYNTHETIC, "strategy": strategy.name, "iterations": 12, "batch_size": 4,
             "seeds": [51, 52], "searcher": {"kind": "bayesian", "n_initial": 4}}  # fmt: skip
    golden = run(table, databases(), tmp_path)
    database = databases()
    side = run(table, database, tmp_path)
    with psycopg.connect(database) as conn:  # as if the driver had died after 4 trials a seed
        conn.execute("DELETE FROM trials WHERE trial_index >= 4")
        conn.execute("UPDATE ensembles SET status = 'interrupted'")
        conn.execute("UPDATE training_jobs SET status = 'running', best_trial_index = NULL, "
                     "best_score = NULL, best_params = NULL")  # fmt: skip
        (architecture,) = conn.execute(
            "SELECT platform->>'architecture' FROM ensemble_runs"
        ).fetchone()
        conn.execute("UPDATE ensemble_runs SET platform = "
                     "jsonb_set(platform, '{architecture}', '\"riscv64\"')")  # fmt: skip
    strategy.ran()
    with pytest.raises(InvalidInput) as refused:
        resume_job(side.ensemble, database_url=database, progress=False, out=io.StringIO())
    assert f"architecture: recorded 'riscv64', now {architecture!r}" in refused.value.problems
    assert strategy.ran() == 0
    resume_job(side.ensemble, database_url=database, progress=False, out=io.StringIO(),
               allow_platform_change=True)  # fmt: skip
    assert strategy.ran() == 16
    with psycopg.connect(database) as conn:
        allowed = conn.execute(
            "SELECT kind, platform_change_allowed FROM ensemble_runs ORDER BY started_at"
        ).fetchall()
    assert allowed == [("run", False), ("resume", True)]
    assert side.export().digest == golden.export().digest


def tune_trials(side: Side) -> int:
    """How many Tune trials the side's (only) run took, from its execution record."""
    with psycopg.connect(side.database) as conn:
        (count,) = conn.execute("SELECT execution->>'tune_trials' FROM ensemble_runs").fetchone()
    return int(count)


def max_overlap(trials) -> int:
    events = sorted([(t.started_at, 1) for t in trials] + [(t.finished_at, -1) for t in trials])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak
