"""Records of out-of-sample tests and robustness (sql/004_out_of_sample.sql): written once
per natural key, read back bit for bit, a different retry refused and the first kept."""

from __future__ import annotations

import hashlib
import math

import pytest
from records_factory import FAST_RETRY, MANIFEST, SPEC_ID, new_ensemble, ok_trial

from cluster.records.exact import same_value
from cluster.records.out_of_sample import HOLDOUT_ROLE, FigureRecord, WindowRecord
from cluster.records.recorder import Recorder
from cluster.records.types import (
    EnsembleStatus,
    JobStatus,
    NonDeterministicRetry,
    NotRecorded,
)

pytestmark = pytest.mark.postgres

HOLDOUT = hashlib.sha256(b"the holdout's candles").hexdigest()


@pytest.fixture
def recorder(pg_url):
    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        yield recorder


def window(seed: int, index: int, **change: int) -> WindowRecord:
    values = dict(
        seed=seed, window_index=index, search_seed=seed + (index + 1) * 2**32,
        train_start=100 * index, train_stop=100 * index + 300, test_start=100 * index + 300,
        test_stop=100 * index + 400, train_from=1_000 + index, test_from=2_000 + index,
        test_until=3_000 + index, budget=10,
    )  # fmt: skip
    values.update(change)
    return WindowRecord(**values)


def test_the_holdout_dataset_is_linked_once(recorder):
    ensemble_id = new_ensemble(recorder)
    recorder.upsert_dataset(HOLDOUT, MANIFEST)
    assert recorder.ensemble_dataset(ensemble_id, HOLDOUT_ROLE) is None
    assert recorder.record_ensemble_dataset(ensemble_id, HOLDOUT_ROLE, HOLDOUT) is True
    assert recorder.record_ensemble_dataset(ensemble_id, HOLDOUT_ROLE, HOLDOUT) is False
    assert recorder.ensemble_dataset(ensemble_id, HOLDOUT_ROLE) == HOLDOUT
    other = hashlib.sha256(b"other candles").hexdigest()
    recorder.upsert_dataset(other, MANIFEST)
    with pytest.raises(NonDeterministicRetry, match="dataset_fingerprint"):
        recorder.record_ensemble_dataset(ensemble_id, HOLDOUT_ROLE, other)
    with pytest.raises(NotRecorded, match=r"f{64}"):
        recorder.record_ensemble_dataset(new_ensemble(recorder), HOLDOUT_ROLE, "f" * 64)


def test_windows_are_upserted_and_their_rows_never_change(recorder):
    ensemble_id = new_ensemble(recorder, seeds=(1, 2))
    windows = [window(seed, w) for seed in (1, 2) for w in range(3)]
    recorder.upsert_windows(ensemble_id, windows)
    recorder.upsert_windows(ensemble_id, windows)  # a retry: no-op
    assert recorder.windows(ensemble_id) == windows
    with pytest.raises(NonDeterministicRetry, match="test_stop"):
        recorder.upsert_windows(ensemble_id, [window(1, 0, test_stop=401)])
    with pytest.raises(NotRecorded, match="seed 9"):
        recorder.upsert_windows(ensemble_id, [window(9, 0)])
    with pytest.raises(ValueError, match="bad rows"):
        window(1, 0, test_start=299)


def test_window_trials_are_written_once_and_read_back_bit_for_bit(recorder):
    ensemble_id = new_ensemble(recorder, seeds=(1, 2))
    recorder.upsert_windows(ensemble_id, [window(1, 0), window(1, 1), window(2, 0)])
    trials = [(0, ok_trial(1, k, score=0.1 * k)) for k in range(3)]
    trials += [(1, ok_trial(1, 0, score=-0.0)), (0, ok_trial(2, 0, score=5e-324))]
    recorder.record_window_trials(ensemble_id, trials)
    recorder.record_window_trials(ensemble_id, trials[:2])  # a retry: no-op
    stored = recorder.window_trials(ensemble_id)
    assert sorted(stored) == [(1, 0), (1, 1), (2, 0)]
    assert [t.trial_index for t in stored[1, 0]] == [0, 1, 2]
    for (seed, w), records in stored.items():
        expected = [t for index, t in trials if index == w and t.seed == seed]
        assert all(r.spec_id == SPEC_ID for r in records)
        assert same_value([r.deterministic() for r in records],
                          [t.deterministic() for t in expected])  # fmt: skip
    assert math.copysign(1.0, stored[1, 1][0].score) == -1.0


def test_a_window_trial_retried_with_other_bits_is_refused(recorder):
    ensemble_id = new_ensemble(recorder)
    recorder.upsert_windows(ensemble_id, [window(1, 0)])
    recorder.record_window_trials(ensemble_id, [(0, ok_trial(1, 0, score=1.25))])
    nudged = ok_trial(1, 0, score=math.nextafter(1.25, 2.0))
    new = ok_trial(1, 1)
    with pytest.raises(NonDeterministicRetry, match=r"walk_forward_trials .*window_index=0"):
        recorder.record_window_trials(ensemble_id, [(0, new), (0, nudged)])
    (stored,) = recorder.window_trials(ensemble_id).values()
    assert [t.score for t in stored] == [1.25]  # nothing of the refused batch was written


def test_an_ensemble_is_complete_only_with_its_windows(recorder):
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    recorder.upsert_windows(ensemble_id, [window(1, 0)])
    recorder.set_job_status(ensemble_id, 1, JobStatus.COMPLETE)
    with pytest.raises(ValueError, match="walk-forward"):
        recorder.set_ensemble_status(ensemble_id, EnsembleStatus.COMPLETE)
    recorder.set_window_status(ensemble_id, 1, 0, JobStatus.COMPLETE)
    with pytest.raises(ValueError, match="is complete"):
        recorder.set_window_status(ensemble_id, 1, 0, JobStatus.RUNNING)
    recorder.set_ensemble_status(ensemble_id, EnsembleStatus.COMPLETE)
    assert recorder.windows(ensemble_id)[0].status is JobStatus.COMPLETE


def test_figures_come_back_bit_for_bit_and_never_change(recorder):
    ensemble_id = new_ensemble(recorder)
    result = {"pbo": 0.1 + 0.2, "zero": -0.0, "tiny": 5e-324, "n": 3, "list": [1.0, None]}
    figure = FigureRecord(ensemble_id, "pbo", "blocks 16", result, {"blocks": 16})
    assert recorder.record_figure(figure) is True
    assert recorder.record_figure(figure) is False
    (stored,) = recorder.figures(ensemble_id)
    assert same_value(stored.result, result) and stored.settings == {"blocks": 16}
    assert math.copysign(1.0, stored.result["zero"]) == -1.0
    with pytest.raises(NonDeterministicRetry, match="result"):
        recorder.record_figure(
            FigureRecord(ensemble_id, "pbo", "blocks 16", {**result, "pbo": 0.3}, {"blocks": 16})
        )
    with pytest.raises(NonDeterministicRetry, match="settings"):
        recorder.record_figure(FigureRecord(ensemble_id, "pbo", "blocks 16", result, {"b": 8}))
    assert recorder.figures(ensemble_id, "dsr") == []
    with pytest.raises(ValueError):
        FigureRecord(ensemble_id, "pbo", "x", {"bad": math.nan})
