"""Extra backtests of an ensemble (sql/003_evaluations.sql): written once per natural key,
read back bit for bit, a different retry refused and the stored record kept."""

from __future__ import annotations

import math
import uuid

import psycopg
import pytest
from records_factory import FAST_RETRY, FINGERPRINT, new_ensemble, ok_metrics

from cluster.records.evaluations import EvaluationRecord
from cluster.records.exact import same_value
from cluster.records.recorder import Recorder
from cluster.records.types import NonDeterministicRetry, NotRecorded, TrialStatus

pytestmark = pytest.mark.postgres

PARAMS = {"key_level_lookback": 120, "pierce_depth": 0.1 + 0.2, "volume_spike_threshold": -0.0}


@pytest.fixture
def recorder(pg_url):
    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        yield recorder


def consensus(ensemble_id: uuid.UUID, score: float = 1.25, **kwargs) -> EvaluationRecord:
    return EvaluationRecord.of_outcome(
        ensemble_id,
        "consensus",
        "median",
        kwargs.pop("params", PARAMS),
        FINGERPRINT,
        ok_metrics(score, calmar=None),
        None,
        {"seeds": [1, 2], "trial_indices": [3, 7]},
    )


def test_an_evaluation_is_written_once_and_read_back_bit_for_bit(recorder, pg_url):
    ensemble_id = new_ensemble(recorder)
    record = consensus(ensemble_id)
    assert recorder.record_evaluation(record) is True
    assert recorder.record_evaluation(consensus(ensemble_id)) is False  # a no-op
    (stored,) = recorder.evaluations(ensemble_id)
    assert stored.recorded_at is not None
    assert same_value(stored.deterministic(), record.deterministic())
    assert math.copysign(1.0, stored.params["volume_spike_threshold"]) == -1.0  # -0.0 kept
    assert stored.metrics["calmar"] is None and stored.status is TrialStatus.OK
    assert recorder.evaluations(ensemble_id, "holdout") == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM evaluations").fetchone() == (1,)


def test_a_retry_with_other_bits_is_refused_and_the_first_record_stays(recorder):
    ensemble_id = new_ensemble(recorder)
    recorder.record_evaluation(consensus(ensemble_id))
    nudged = math.nextafter(1.25, 2.0)
    with pytest.raises(NonDeterministicRetry, match=r"evaluations .*score"):
        recorder.record_evaluation(consensus(ensemble_id, score=nudged))
    other_params = {**PARAMS, "key_level_lookback": 121}
    with pytest.raises(NonDeterministicRetry, match="params"):
        recorder.record_evaluation(consensus(ensemble_id, params=other_params))
    (stored,) = recorder.evaluations(ensemble_id)
    assert stored.score == 1.25 and stored.params["key_level_lookback"] == 120


def test_an_invalid_evaluation_keeps_its_message_and_no_metrics(recorder):
    ensemble_id = new_ensemble(recorder)
    record = EvaluationRecord.of_outcome(
        ensemble_id, "consensus", "median", PARAMS, FINGERPRINT,
        {**dict.fromkeys(ok_metrics()), "score": -100.0}, "ValueError: equity reached 0",
    )  # fmt: skip
    recorder.record_evaluation(record)
    (stored,) = recorder.evaluations(ensemble_id)
    assert stored.status is TrialStatus.INVALID and stored.score == -100.0
    assert stored.message == "ValueError: equity reached 0"
    assert set(stored.metrics.values()) == {None}


def test_an_evaluation_of_an_unknown_ensemble_is_not_recorded(recorder):
    new_ensemble(recorder)  # records the dataset
    with pytest.raises(NotRecorded, match="is not recorded"):
        recorder.record_evaluation(consensus(uuid.uuid4()))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kind": "Consensus"}, "kind must be lower-case"),
        ({"label": ""}, "label must be a non-empty"),
        ({"score": math.nan}, "score must be a finite float"),
        ({"message": "ValueError: no"}, "an ok evaluation has no message"),
        ({"params": {"x": True}}, "parameter x must be an int or float"),
    ],
)
def test_a_bad_evaluation_is_refused_before_anything_is_written(change, problem):
    fields = {
        "ensemble_id": uuid.uuid4(), "kind": "consensus", "label": "median", "params": PARAMS,
        "dataset_fingerprint": FINGERPRINT, "status": TrialStatus.OK, "score": 1.0,
        "metrics": {k: v for k, v in ok_metrics().items() if k != "score"},
    }  # fmt: skip
    with pytest.raises(ValueError, match=problem):
        EvaluationRecord(**{**fields, **change})
