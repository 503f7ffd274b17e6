"""`verify` on records made for the purpose, in a real database: identical records,
a single changed bit, a missing trial, and ensembles that are not comparable."""

from __future__ import annotations

import io

import pytest
from records_factory import FAST_RETRY, SPEC_ID, new_ensemble, ok_trial

from cluster.errors import InvalidInput
from cluster.job.verify import compare
from cluster.records.out_of_sample import FigureRecord, WindowRecord
from cluster.records.recorder import Recorder

pytestmark = pytest.mark.postgres
OTHER_SPEC = "f" * 64


def _two(recorder: Recorder, second_trials, spec_id: str = SPEC_ID):
    a = new_ensemble(recorder, seeds=(1, 2))
    b = new_ensemble(recorder, seeds=(2, 3), spec_id=spec_id)
    recorder.record_trials(a, [ok_trial(s, k) for s in (1, 2) for k in range(3)])
    recorder.record_trials(b, second_trials(spec_id))
    return a, b


def _compare(recorder, a, b, force=False) -> tuple[bool, str]:
    out = io.StringIO()
    return compare(recorder, str(a), str(b), force=force, out=out), out.getvalue()


def test_identical_shared_seeds_verify(pg_url):
    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        a, b = _two(recorder, lambda spec: [ok_trial(s, k, spec_id=spec) for s in (2, 3)
                                            for k in range(3)])  # fmt: skip
        same, text = _compare(recorder, a, b)
    assert same and "identical: 3 trial records" in text
    assert "seeds in only one of them, not compared: [1, 3]" in text


def test_one_changed_bit_is_named_with_both_values(pg_url):
    changed = 1.25 + 2.0**-52  # the next float after 1.25: one bit apart
    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        a, b = _two(recorder, lambda spec: [ok_trial(2, 0, spec_id=spec),
                                            ok_trial(2, 1, changed, spec_id=spec),
                                            ok_trial(2, 2, spec_id=spec)])  # fmt: skip
        same, text = _compare(recorder, a, b)
    assert not same
    assert (
        "first difference at seed 2 trial 1, column score: A 1.25 (0x1.4000000000000p+0), "
        "B 1.2500000000000002 (0x1.4000000000001p+0)"
    ) in text


def test_a_missing_trial_is_named(pg_url):
    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        a, b = _two(recorder, lambda spec: [ok_trial(2, 0, spec_id=spec),
                                            ok_trial(2, 2, spec_id=spec)])  # fmt: skip
        same, text = _compare(recorder, a, b)
    assert not same
    assert "first difference at seed 2 trial 1: not recorded in B (A has 3 trials, B 2" in text


def test_different_specs_are_refused_unless_forced(pg_url):
    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        a, b = _two(recorder, lambda spec: [ok_trial(2, k, spec_id=spec) for k in range(3)],
                    spec_id=OTHER_SPEC)  # fmt: skip
        with pytest.raises(InvalidInput, match="the ensembles ran different specs"):
            _compare(recorder, a, b)
        same, text = _compare(recorder, a, b, force=True)
    assert not same and "column spec_id" in text


def _window(seed: int, index: int) -> WindowRecord:
    return WindowRecord(
        seed=seed, window_index=index, search_seed=seed + (index + 1) * 2**32,
        train_start=0, train_stop=300, test_start=300, test_stop=400, train_from=1_000,
        test_from=2_000, test_until=3_000, budget=2,
    )  # fmt: skip


def _walk_forward(recorder: Recorder, window_score: float, figure: dict | None):
    """An ensemble of seed 2 with the same trials, one window, its trials and maybe a
    walk_forward figure."""
    ensemble = new_ensemble(recorder, seeds=(2,))
    recorder.record_trials(ensemble, [ok_trial(2, k) for k in range(3)])
    recorder.upsert_windows(ensemble, [_window(2, 0)])
    recorder.record_window_trials(
        ensemble, [(0, ok_trial(2, 0)), (0, ok_trial(2, 1, score=window_score))]
    )
    if figure is not None:
        recorder.record_figure(FigureRecord(ensemble, "walk_forward", "seed 2", figure))
    return ensemble


def test_window_trials_and_walk_forward_figures_are_compared_too(pg_url):
    changed = 1.25 + 2.0**-52
    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        a = _walk_forward(recorder, 1.25, {"sharpe": 0.5})
        same, text = _compare(recorder, a, _walk_forward(recorder, 1.25, {"sharpe": 0.5}))
        # The window, its two trials and the figure.
        assert same and "identical: 3 trial records and 4 out-of-sample record(s)" in text
        same, text = _compare(recorder, a, _walk_forward(recorder, changed, {"sharpe": 0.5}))
        assert not same and "the trials agree" in text
        assert "first difference at walk-forward seed 2 window 0 trial 1, column score" in text
        same, text = _compare(recorder, a, _walk_forward(recorder, 1.25, {"sharpe": 0.25}))
        assert not same and "walk_forward figure 'seed 2', column result" in text
        # Not recorded yet on one side (made after the search): noted, not a difference.
        same, text = _compare(recorder, a, _walk_forward(recorder, 1.25, None))
        assert same and "walk_forward figure 'seed 2' is recorded in one ensemble only" in text
