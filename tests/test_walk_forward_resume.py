"""Resume of a walk-forward ensemble (contract 5), with real driver processes.

Two seeds, listed out of order on purpose (records are read back by seed), two windows
each, and a holdout of the 200 candles after the job's 800. A driver is SIGKILLed by
its own test hook right after seed 42's window 1 has recorded exactly 5 trials (in the
middle of a Bayesian batch of 2), then resumed. Its records (the whole-range trials,
the windows, their trials, the consensus, holdout and window tests, the stitched
figures) must equal those of an uninterrupted run of the same job, and counting
executions shows that the resume ran exactly the trials that were not recorded, plus
the steps after the search. Then those steps' records are deleted from the
uninterrupted run's, as if its driver had died right after the search: `resume`
records them again (the holdout's backtests too, which resume never ran before), bit
for bit, without searching.
"""

from __future__ import annotations

import signal

import psycopg
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_CANDLES, fresh_database
from job_strategies import executions
from test_job_resume import driver

from cluster.job.out_of_sample import window_seed
from cluster.records.export import build_export
from cluster.records.recorder import Recorder

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.slow]
ROWS, WINDOWS, ITERATIONS, SEEDS = 800, 2, 8, (123, 42)
HOLDOUT_ROWS = 200
HOLDOUT_FROM = pq.read_table(FIXTURE_CANDLES, columns=["timestamp"])["timestamp"][ROWS].as_py()
JOB = f"""
iterations = {ITERATIONS}
batch_size = 2
seeds = [123, 42]
strategy = "counted_reversal"
walk_forward = {{ train = 400, test = 200, step = 200 }}
[data]
kind = "parquet"
path = "candles.parquet"
timeframe = "5m"
end = {HOLDOUT_FROM}
[holdout]
start = {HOLDOUT_FROM}
[searcher]
kind = "bayesian"
n_initial = 4
"""
TOTAL = len(SEEDS) * (1 + WINDOWS) * ITERATIONS
TESTS = len(SEEDS) * WINDOWS  # one backtest of each window's best on its test rows
# After the search: the windows' tests, the consensus, each seed's best and the
# consensus on the holdout.
AFTER = TESTS + 1 + len(SEEDS) + 1
KILLED_WINDOW, KILLED_AFTER = 1, 5


def everything(url: str) -> dict:
    """Every record the comparison covers, deterministic parts only."""
    with Recorder(url) as recorder:
        ensemble = recorder.latest_ensemble()
        detail = recorder.ensemble_detail(ensemble)
        windows = recorder.windows(ensemble)
        window_trials = recorder.window_trials(ensemble)
        evaluations = recorder.evaluations(ensemble)
        return {
            "status": detail.status.value,
            "trials": build_export(recorder.ensemble_trials(ensemble)).digest,
            "windows": [(w.seed, w.window_index, w.deterministic(), w.status) for w in windows],
            "window_trials": {
                key: [t.deterministic() for t in trials] for key, trials in window_trials.items()
            },
            "evaluations": {(e.kind, e.label): e.deterministic() for e in evaluations},
            "figures": {f.label: f.exact for f in recorder.figures(ensemble, "walk_forward")},
        }


def window_trials_recorded(url: str) -> dict[tuple[int, int], int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT seed, window_index, count(*) FROM walk_forward_trials "
            "GROUP BY seed, window_index"
        ).fetchall()
    return {(seed, window): count for seed, window, count in rows}


def test_a_driver_killed_mid_windows_resumes_to_an_uninterrupted_runs_records(pg_session, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(JOB)
    pq.write_table(pq.read_table(FIXTURE_CANDLES).slice(0, ROWS + HOLDOUT_ROWS),
                   tmp_path / "candles.parquet")  # fmt: skip
    common = ["--storage-path", str(tmp_path / "tune"), "--no-progress"]
    golden_db = next(golden_gen := fresh_database(pg_session))
    killed_db = next(killed_gen := fresh_database(pg_session))
    try:
        golden = driver("run", str(job), "--database-url", golden_db, *common,
                        count=tmp_path / "golden.count")  # fmt: skip
        assert golden.returncode == 0, golden.stderr
        # Every search's trials, then one test of each window's best.
        assert executions(tmp_path / "golden.count") == TOTAL + AFTER
        expected = everything(golden_db)
        assert expected["status"] == "complete" and len(expected["figures"]) == len(SEEDS)
        kinds = [kind for kind, _ in expected["evaluations"]]
        assert sorted(set(kinds)) == ["consensus", "holdout", "walk_forward"]
        assert len(kinds) == AFTER
        assert sum(len(t) for t in expected["window_trials"].values()) == TESTS * ITERATIONS

        kill = {"REPROTUNE_TEST_KILL_DRIVER_AT":
                f"recorded:{window_seed(42, KILLED_WINDOW)}:{KILLED_AFTER}"}  # fmt: skip
        killed = driver("run", str(job), "--database-url", killed_db, *common,
                        count=tmp_path / "killed.count", env=kill)  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert window_trials_recorded(killed_db)[42, KILLED_WINDOW] == KILLED_AFTER
        with psycopg.connect(killed_db) as conn:
            before = conn.execute(
                "SELECT (SELECT count(*) FROM trials) + (SELECT count(*) FROM walk_forward_trials)"
            ).fetchone()[0]
            unfinished = conn.execute(
                "SELECT count(*) FROM walk_forward_windows WHERE status <> 'complete'"
            ).fetchone()[0]
        assert before < TOTAL and unfinished >= 1
        ensemble = killed.stdout.split()[1]

        resumed = driver("resume", ensemble, "--database-url", killed_db, *common,
                         count=tmp_path / "resumed.count")  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        assert f"{TOTAL - before} trial(s) missing" in resumed.stdout
        assert "walk-forward window search(es) among them" in resumed.stdout
        # Exactly the trials without a record ran again, then the windows' tests.
        assert executions(tmp_path / "resumed.count") == TOTAL - before + AFTER
        assert everything(killed_db) == expected

        # The driver died after the search, before its tests: resume records them.
        with psycopg.connect(golden_db) as conn:
            conn.execute("DELETE FROM robustness WHERE analysis = 'walk_forward'")
            conn.execute("DELETE FROM evaluations")  # the consensus and holdout's too
        again = driver("resume", ensemble_of(golden_db), "--database-url", golden_db, *common,
                       count=tmp_path / "again.count")  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "recording the steps after its search" in again.stdout
        assert executions(tmp_path / "again.count") == AFTER  # no search ran
        assert everything(golden_db) == expected
        done = driver("resume", ensemble_of(golden_db), "--database-url", golden_db, *common,
                      count=tmp_path / "done.count")  # fmt: skip
        assert done.returncode == 0 and "nothing to resume" in done.stdout
    finally:
        for generator in (golden_gen, killed_gen):
            generator.close()


def ensemble_of(url: str) -> str:
    with Recorder(url) as recorder:
        return str(recorder.latest_ensemble())
