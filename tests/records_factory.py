"""Small builders for the records tests: a spec id, a dataset, an ensemble with jobs,
and trials whose metrics are easy to tell apart."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from cluster.records.recorder import Recorder
from cluster.records.retry import RetryPolicy
from cluster.records.types import EnsembleRecord, TrainingJobRecord, TrialRecord

SPEC_ID = hashlib.sha256(b"a resolved job spec").hexdigest()
FINGERPRINT = hashlib.sha256(b"a candle table").hexdigest()
MANIFEST = {"market": "BTC/USDT", "timeframe": "5m", "rows": 5000}
# Tests fail fast instead of riding out a 20 s outage.
FAST_RETRY = RetryPolicy(attempts=4, first_delay_s=0.05, max_delay_s=0.2, connect_timeout_s=2.0)


def ok_metrics(score: float = 1.25, **overrides: float | int | None) -> dict:
    """Metrics of an ok trial, `score` included (as BacktestResult.metrics has it)."""
    metrics: dict = {
        "score": score,
        "sharpe": score,
        "sortino": 2.5,
        "calmar": 3.75,
        "total_return": 0.125,
        "max_drawdown": 0.0625,
        "n_trades": 12,
        "win_rate": 0.5,
        "profit_factor": 1.5,
        "exposure": 0.25,
        "mean_bars_held": 7.0,
    }
    metrics.update(overrides)
    return metrics


def ok_trial(seed: int, trial_index: int, score: float = 1.25, spec_id: str = SPEC_ID,
             **execution: object) -> TrialRecord:  # fmt: skip
    params = {"key_level_lookback": 50 + trial_index, "pierce_depth": 0.001 * (trial_index + 1)}
    return TrialRecord.ok(spec_id, seed, trial_index, params, ok_metrics(score), **execution)


def new_ensemble(
    recorder: Recorder,
    seeds: Sequence[int] = (1, 2),
    spec_id: str = SPEC_ID,
    budget: int = 10,
    name: str | None = None,
) -> uuid.UUID:
    """Record the dataset, a new ensemble over `seeds`, and one random-search job per seed."""
    recorder.upsert_dataset(FINGERPRINT, MANIFEST)
    ensemble_id = uuid.uuid4()
    recorder.create_ensemble(
        EnsembleRecord(ensemble_id, spec_id, {"job": "demo"}, list(seeds), FINGERPRINT, name)
    )
    recorder.upsert_training_jobs(
        ensemble_id, [TrainingJobRecord(seed, spec_id, "random", budget) for seed in seeds]
    )
    return ensemble_id
