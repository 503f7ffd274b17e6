"""Records refuse bad values when built, naming the field, before anything is written."""

from __future__ import annotations

import math
import struct
import uuid
from datetime import datetime

import numpy as np
import pytest
from records_factory import FINGERPRINT, SPEC_ID, ok_metrics

from cluster.records.exact import canonical_params
from cluster.records.retry import RetryPolicy
from cluster.records.types import (
    METRIC_COLUMNS,
    EnsembleRecord,
    TrainingJobRecord,
    TrialRecord,
    TrialStatus,
)


def _ok(**changes):
    values = {"spec_id": SPEC_ID, "seed": 1, "trial_index": 0, "params": {"x": 1.5},
              "metrics": ok_metrics()}  # fmt: skip
    values.update(changes)
    return TrialRecord.ok(**values)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"spec_id": "abc"}, "spec_id must be 64 lower-case hex digits"),
        ({"seed": 2**31}, r"seed must be in \[-2147483648, 2147483647\], got 2147483648"),
        ({"seed": 1.0}, "seed must be an int, got float"),
        ({"trial_index": -1}, r"trial_index must be in \[0, "),
        ({"params": {"x": True}}, "parameter x must be an int or float, got bool"),
        ({"params": {"x": math.inf}}, "parameter x is not finite"),
        ({"params": {"x": "1"}}, "parameter x must be an int or float, got str"),
        ({"metrics": ok_metrics(math.nan)}, "score must be a finite float, got nan"),
        ({"metrics": ok_metrics(1)}, "score must be a finite float, got 1"),
        ({"metrics": {**ok_metrics(), "sharp": 1.0}}, r"metrics: unknown \['sharp'\]"),
        (
            {"metrics": {k: v for k, v in ok_metrics().items() if k != "calmar"}},
            r"metrics: unknown \[\], missing \['calmar'\]",
        ),
        ({"metrics": ok_metrics(n_trades=2.0)}, "metric n_trades must be an int, got float"),
        ({"metrics": ok_metrics(n_trades=None)}, "an ok trial needs n_trades"),
        ({"started_at": datetime(2026, 1, 1)}, "started_at must be a timezone-aware datetime"),
        ({"attempts": 0}, r"attempts must be in \[1, "),
        ({"duration_s": -1.0}, "duration_s must be a finite float >= 0"),
    ],
)
def test_a_bad_trial_is_refused_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=r"^trial -?\d+ of seed .*: " + message):
        _ok(**changes)


def test_values_exactly_at_their_limits_are_accepted():
    # int4 columns hold -2**31 .. 2**31 - 1; trial indexes and counts start at 0, attempts
    # at 1; a duration of exactly 0 s is a duration.
    low, high = -(2**31), 2**31 - 1
    trial = _ok(seed=high, trial_index=0, attempts=1, duration_s=0.0)
    assert (trial.seed, trial.trial_index, trial.duration_s) == (high, 0, 0.0)
    assert _ok(seed=low, trial_index=high, metrics=ok_metrics(n_trades=0)).seed == low


def test_outcomes_are_consistent():
    with pytest.raises(ValueError, match="an invalid trial needs its message"):
        TrialRecord.invalid(SPEC_ID, 1, 0, {"x": 1}, "")
    undefined = dict.fromkeys(METRIC_COLUMNS)
    with pytest.raises(ValueError, match=r"an invalid trial has no metrics, got \['sharpe'\]"):
        metrics = {**undefined, "sharpe": 1.0}
        TrialRecord(SPEC_ID, 1, 0, {"x": 1}, TrialStatus.INVALID, -100.0, metrics, "ValueError: x")
    with pytest.raises(ValueError, match="an ok trial has no message"):
        metrics = {k: v for k, v in ok_metrics().items() if k != "score"}
        TrialRecord(SPEC_ID, 1, 0, {"x": 1}, TrialStatus.OK, 1.0, metrics, "oops")


def test_numpy_scalars_become_plain_python_with_the_same_bits():
    value = np.float64(0.1) + np.float64(0.2)
    metrics = ok_metrics(float(value), n_trades=np.int32(4), sortino=np.float64(-0.0))
    trial = _ok(params={"x": value, "n": np.int64(3)}, metrics=metrics)
    assert type(trial.params["x"]) is float and type(trial.params["n"]) is int
    assert struct.pack("<d", trial.params["x"]) == struct.pack("<d", float(value))
    assert type(trial.metrics["n_trades"]) is int
    assert struct.pack("<d", trial.metrics["sortino"]) == struct.pack("<d", -0.0)
    assert canonical_params(trial.params) == '{"n":3,"x":"0x1.3333333333334p-2"}'


def test_non_finite_metrics_become_undefined():
    trial = _ok(metrics=ok_metrics(calmar=math.inf, sortino=math.nan, profit_factor=-math.inf))
    assert (trial.metrics["calmar"], trial.metrics["sortino"], trial.metrics["profit_factor"]) == (
        None, None, None,
    )  # fmt: skip


def test_ensembles_and_jobs_check_their_fields():
    with pytest.raises(ValueError, match="without repeats"):
        EnsembleRecord(uuid.uuid4(), SPEC_ID, {}, [1, 1], FINGERPRINT)
    with pytest.raises(ValueError, match=r"ensemble id must be a uuid\.UUID"):
        EnsembleRecord(str(uuid.uuid4()), SPEC_ID, {}, [1], FINGERPRINT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dataset_fingerprint must be 64"):
        EnsembleRecord(uuid.uuid4(), SPEC_ID, {}, [1], "sha256:abc")
    with pytest.raises(ValueError, match=r"budget must be in \[1, "):
        TrainingJobRecord(1, SPEC_ID, "random", 0)
    ensemble = EnsembleRecord(uuid.uuid4(), SPEC_ID, {}, [3, 1], FINGERPRINT)
    assert ensemble.seeds == (3, 1) and ensemble.records_version >= 1
    assert "numpy" in ensemble.library_versions and "blas" in ensemble.host


def test_a_retry_policy_is_bounded():
    assert list(RetryPolicy(attempts=5, first_delay_s=0.1, max_delay_s=0.3).delays()) == [
        0.1, 0.2, 0.3, 0.3,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        RetryPolicy(attempts=0)
