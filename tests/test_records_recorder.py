"""The recorder against real servers: the session's (embedded) and Debian's PostgreSQL 15
over TCP with a PGPASSFILE password. Idempotent upserts, the non-deterministic-retry
error, NaN/inf as NULL, bit-exact floats, statuses, locks and a server restart."""

from __future__ import annotations

import math
import random
import struct
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from records_factory import (
    FAST_RETRY,
    FINGERPRINT,
    MANIFEST,
    SPEC_ID,
    new_ensemble,
    ok_metrics,
    ok_trial,
)

from cluster.records.recorder import Recorder
from cluster.records.types import (
    METRIC_COLUMNS,
    EnsembleBusy,
    EnsembleRecord,
    EnsembleStatus,
    JobStatus,
    NonDeterministicRetry,
    TrainingJobRecord,
    TrialRecord,
    TrialStatus,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def recorder(any_pg_url):
    with Recorder(any_pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        yield recorder


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_retried_write_with_the_same_payload_is_a_no_op(recorder, any_pg_url):
    ensemble_id = new_ensemble(recorder)
    first = ok_trial(1, 0, node="node-a", attempts=1, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    recorder.record_trial(ensemble_id, first)
    # The same deterministic part from another execution (node, attempts, time differ).
    retry = ok_trial(1, 0, node="node-b", attempts=2, started_at=datetime(2026, 1, 2, tzinfo=UTC))
    recorder.record_trial(ensemble_id, retry)
    recorder.record_trials(ensemble_id, [first, retry])
    # Every other write again, as a restarted-before-commit driver would do.
    recorder.upsert_dataset(FINGERPRINT, dict(MANIFEST))
    recorder.upsert_training_jobs(ensemble_id, [TrainingJobRecord(2, SPEC_ID, "random", 10)])
    counts = [_count(any_pg_url, t) for t in ("datasets", "ensembles", "training_jobs", "trials")]
    assert counts == [1, 1, 2, 1]
    (stored,) = recorder.recorded_trials(ensemble_id, 1)
    assert stored == first  # the first execution's node, attempts and times are kept


def test_a_retried_trial_with_a_different_payload_raises_and_keeps_the_first(recorder):
    ensemble_id = new_ensemble(recorder)
    recorder.record_trial(ensemble_id, ok_trial(1, 3, score=1.25))
    one_ulp_more = math.nextafter(1.25, 2.0)
    with pytest.raises(NonDeterministicRetry) as raised:
        recorder.record_trial(ensemble_id, ok_trial(1, 3, score=one_ulp_more))
    error = raised.value
    assert error.table == "trials"
    assert error.key == {"ensemble": ensemble_id, "seed": 1, "trial_index": 3}
    # sharpe follows score in ok_metrics, so exactly these two columns differ.
    assert set(error.differences) == {"score", "sharpe"}
    assert "trial_index=3" in str(error) and "0x1.4000000000000p+0" in str(error)
    (stored,) = recorder.recorded_trials(ensemble_id, 1)
    assert _bits(stored.score) == _bits(1.25)


def test_minus_zero_and_zero_are_different_params(recorder):
    ensemble_id = new_ensemble(recorder)
    metrics = ok_metrics()
    recorder.record_trial(ensemble_id, TrialRecord.ok(SPEC_ID, 1, 0, {"x": -0.0}, metrics))
    with pytest.raises(NonDeterministicRetry, match="params"):
        recorder.record_trial(ensemble_id, TrialRecord.ok(SPEC_ID, 1, 0, {"x": 0.0}, metrics))
    with pytest.raises(NonDeterministicRetry, match="params"):  # an int is not a float
        recorder.record_trial(ensemble_id, TrialRecord.ok(SPEC_ID, 1, 0, {"x": 0}, metrics))
    (stored,) = recorder.recorded_trials(ensemble_id, 1)
    assert _bits(stored.params["x"]) == _bits(-0.0)


def test_every_table_refuses_a_different_payload(recorder):
    ensemble_id = new_ensemble(recorder, seeds=(1, 2))
    with pytest.raises(NonDeterministicRetry, match="manifest"):
        recorder.upsert_dataset(FINGERPRINT, {**MANIFEST, "rows": 5001})
    changed = EnsembleRecord(ensemble_id, SPEC_ID, {"job": "demo"}, [1, 2, 3], FINGERPRINT)
    with pytest.raises(NonDeterministicRetry, match="seeds"):
        recorder.create_ensemble(changed)
    with pytest.raises(NonDeterministicRetry, match=r"training_jobs .*seed=2.*budget"):
        recorder.upsert_training_jobs(ensemble_id, [TrainingJobRecord(2, SPEC_ID, "random", 11)])


def test_a_batch_with_one_conflicting_trial_writes_nothing(recorder):
    ensemble_id = new_ensemble(recorder)
    recorder.record_trial(ensemble_id, ok_trial(1, 1, score=0.5))
    batch = [ok_trial(1, 0), ok_trial(1, 1, score=0.75), ok_trial(1, 2)]
    with pytest.raises(NonDeterministicRetry):
        recorder.record_trials(ensemble_id, batch)
    assert [t.trial_index for t in recorder.recorded_trials(ensemble_id, 1)] == [1]


def test_trials_of_an_unknown_seed_or_spec_are_refused_before_writing(recorder):
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    with pytest.raises(LookupError, match="no training job for seed 7"):
        recorder.record_trials(ensemble_id, [ok_trial(1, 0), ok_trial(7, 0)])
    other_spec = "f" * 64
    with pytest.raises(ValueError, match=r"has spec_id f+, but its job has"):
        recorder.record_trials(ensemble_id, [ok_trial(1, 0), ok_trial(1, 1, spec_id=other_spec)])
    assert recorder.recorded_trials(ensemble_id, 1) == []


def test_nan_and_infinities_are_stored_as_null(recorder, any_pg_url):
    ensemble_id = new_ensemble(recorder)
    metrics = ok_metrics(sortino=math.nan, calmar=math.inf, profit_factor=-math.inf)
    recorder.record_trial(ensemble_id, TrialRecord.ok(SPEC_ID, 1, 0, {"x": 1}, metrics))
    with psycopg.connect(any_pg_url) as conn:
        row = conn.execute(
            "SELECT sortino IS NULL, calmar IS NULL, profit_factor IS NULL, sharpe FROM trials"
        ).fetchone()
        assert row == (True, True, True, 1.25)
        # The column type itself refuses them, whoever writes.
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE trials SET sharpe = 'NaN'")


FINITE = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)
_next_index = iter(range(10**6))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(score=FINITE, metric=FINITE, param=FINITE)
@example(score=-0.0, metric=5e-324, param=-5e-324)
@example(score=1.7976931348623157e308, metric=-0.0, param=2.2250738585072014e-308)
def test_floats_round_trip_bit_for_bit(recorder, any_pg_url, score, metric, param):
    ensemble_id = _shared_ensemble(recorder)
    index = next(_next_index)
    metrics = ok_metrics(score, **{name: metric for name in METRIC_COLUMNS if name != "n_trades"})
    recorder.record_trial(ensemble_id, TrialRecord.ok(SPEC_ID, 1, index, {"p": param}, metrics))
    (stored,) = [t for t in recorder.recorded_trials(ensemble_id, 1) if t.trial_index == index]
    assert _bits(stored.score) == _bits(score)
    assert _bits(stored.params["p"]) == _bits(param)
    for name in METRIC_COLUMNS:
        if name != "n_trades":
            assert _bits(stored.metrics[name]) == _bits(metric), name
    # A retry of the same record is a no-op, whatever the value.
    recorder.record_trial(ensemble_id, TrialRecord.ok(SPEC_ID, 1, index, {"p": param}, metrics))


_ensembles: dict[int, uuid.UUID] = {}


def _shared_ensemble(recorder: Recorder) -> uuid.UUID:
    """One ensemble per recorder across the Hypothesis examples of a test."""
    if id(recorder) not in _ensembles:
        _ensembles[id(recorder)] = new_ensemble(recorder, seeds=(1,), budget=1000)
    return _ensembles[id(recorder)]


def test_recorded_trials_come_back_in_trial_index_order(recorder):
    ensemble_id = new_ensemble(recorder)
    trials = [ok_trial(1, i, score=float(i)) for i in range(20)]
    random.Random(7).shuffle(trials)
    for start in range(0, 20, 6):
        recorder.record_trials(ensemble_id, trials[start : start + 6])
    assert [t.trial_index for t in recorder.recorded_trials(ensemble_id, 1)] == list(range(20))
    assert recorder.recorded_trials(ensemble_id, 2) == []


def test_the_best_trial_is_the_highest_score_then_the_lowest_index(recorder):
    ensemble_id = new_ensemble(recorder)
    # Scores by trial_index: 0.5, 2.0, 2.0 (a tie with 1), -100.0 (invalid): best is 1.
    recorder.record_trials(
        ensemble_id,
        [
            ok_trial(1, 0, score=0.5),
            ok_trial(1, 2, score=2.0),
            ok_trial(1, 1, score=2.0),
            TrialRecord.invalid(SPEC_ID, 1, 3, {"x": 1}, "ValueError: equity reached 0 at bar 9"),
        ],
    )
    recorder.set_job_status(ensemble_id, 1, JobStatus.COMPLETE)
    job = recorder.find_job(f"{ensemble_id}:1")
    assert (job.best_trial_index, job.best_score, job.status) == (1, 2.0, JobStatus.COMPLETE)
    assert job.best_params == {"key_level_lookback": 51, "pierce_depth": 0.002}
    assert (job.n_trials, job.n_ok, job.n_invalid) == (4, 3, 1)
    best_first = [t.trial_index for t in recorder.best_trials(job.id)]
    assert best_first == [1, 2, 0, 3]


def test_statuses_follow_the_rules(recorder):
    ensemble_id = new_ensemble(recorder, seeds=(1, 2))
    with recorder.running(ensemble_id):
        recorder.set_job_status(ensemble_id, 1, JobStatus.RUNNING)
        recorder.set_job_status(ensemble_id, 1, JobStatus.COMPLETE)
        with pytest.raises(ValueError, match=r"seeds \[2\] are not"):
            recorder.set_ensemble_status(ensemble_id, EnsembleStatus.COMPLETE)
        with pytest.raises(ValueError, match="is complete; cannot set running"):
            recorder.set_job_status(ensemble_id, 1, JobStatus.RUNNING)
        recorder.set_job_status(ensemble_id, 2, JobStatus.COMPLETE)
        recorder.set_ensemble_status(ensemble_id, EnsembleStatus.COMPLETE)
    assert recorder.ensemble_status(ensemble_id) is EnsembleStatus.COMPLETE
    with pytest.raises(ValueError, match="is complete"), recorder.running(ensemble_id):
        pass


def test_a_running_ensemble_holds_its_lock_and_shows_interrupted_after(recorder, any_pg_url):
    ensemble_id = new_ensemble(recorder)
    assert recorder.ensemble_status(ensemble_id) is EnsembleStatus.INTERRUPTED  # never run
    with recorder.running(ensemble_id):
        assert recorder.ensemble_status(ensemble_id) is EnsembleStatus.RUNNING
        with Recorder(any_pg_url, retry=FAST_RETRY) as other:
            assert other.ensemble_status(ensemble_id) is EnsembleStatus.RUNNING
            with (
                pytest.raises(EnsembleBusy, match="reprotune driver pid"),
                other.running(ensemble_id),
            ):
                pass
            job = other.find_job(f"{ensemble_id}:1")
            assert job.status is JobStatus.PENDING
    assert recorder.ensemble_status(ensemble_id) is EnsembleStatus.INTERRUPTED
    assert recorder.find_job(f"{ensemble_id}:1").status is JobStatus.INTERRUPTED
    with psycopg.connect(any_pg_url) as conn:  # the stored status says so too
        assert conn.execute("SELECT status::text FROM ensembles").fetchone() == ("interrupted",)


def test_a_server_restart_between_two_writes_is_survived(recorder, any_pg):
    if any_pg.restart is None:
        pytest.skip("the server of DATABASE_URL is not ours to restart")
    ensemble_id = new_ensemble(recorder)
    with recorder.running(ensemble_id):
        recorder.record_trial(ensemble_id, ok_trial(1, 0))
        any_pg.restart()  # pg_ctl restart -m fast: every session ends with 57P01
        recorder.record_trial(ensemble_id, ok_trial(1, 1))
        # The write noticed the lost sessions and took the ensemble's lock again.
        assert recorder.ensemble_status(ensemble_id) is EnsembleStatus.RUNNING
    assert [t.trial_index for t in recorder.recorded_trials(ensemble_id, 1)] == [0, 1]


def test_invalid_trials_are_recorded_with_the_penalty_and_their_message(recorder):
    ensemble_id = new_ensemble(recorder)
    message = "ValueError: equity reached 0 at bar 1234\twith a tab"
    recorder.record_trial(ensemble_id, TrialRecord.invalid(SPEC_ID, 2, 0, {"x": 1.5}, message))
    (stored,) = recorder.recorded_trials(ensemble_id, 2)
    assert (stored.status, stored.score, stored.message) == (TrialStatus.INVALID, -100.0, message)
    assert all(value is None for value in stored.metrics.values())


@pytest.mark.parametrize("durable", [False, True])
def test_trials_read_back_the_same_with_either_commit_mode(any_pg_url, durable):
    with Recorder(any_pg_url, retry=FAST_RETRY, durable_trials=durable) as recorder:
        recorder.migrate()
        ensemble_id = new_ensemble(recorder)
        trials = [ok_trial(1, i, score=i / 3) for i in range(5)]
        recorder.record_trials(ensemble_id, trials[:2])
        recorder.record_trial(ensemble_id, trials[2])
        recorder.record_trials(ensemble_id, trials)  # 0-2 again (no-ops) and 3-4
        assert recorder.recorded_trials(ensemble_id, 1) == trials
