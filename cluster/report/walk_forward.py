"""Walk-forward out of sample: each window's best tested on the candles after its
training window, and the test windows' equity stitched (a job's `walk_forward`,
docs/jobs.md).

The windows' searches ran in the ensemble's experiment on their training rows only
(cluster.job.windows). Once every search is complete, `record_after_search` (the
driver, and `resume`) or a report that finds them missing, in this process:
- takes each window's best trial (highest score, ties to the lowest trial_index, as a
  seed's best) and backtests its params on the window's test rows alone, with the
  job's fees and costs: an evaluation of kind "walk_forward" labelled "seed S window W"
  on the ensemble's dataset, its basis naming the window, the trial and the rows;
- chains those test windows' equity curves into the seed's stitched out-of-sample
  equity (cluster.robustness.walk_forward) and measures it with the kernel's metrics;
- does the same with the seed's best whole-range parameters on the same test windows:
  the in-sample comparison (the whole-range search saw these candles, so this is
  what hindsight would have earned on them);
- records both as the `robustness` figure (analysis "walk_forward", label "seed S").
Everything is a deterministic function of the records, the candles and the job: a
report reads the recorded figure and backtests nothing. A recorded window evaluation
whose params are not its window's best now is a contradiction and stops the report.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster.errors import Failed
from cluster.records.evaluations import EvaluationRecord
from cluster.records.exact import canonical_params
from cluster.records.out_of_sample import FigureRecord, WindowRecord
from cluster.records.recorder import Recorder
from cluster.records.types import EnsembleDetail, JobStatus, TrialRecord
from cluster.report.backtests import EnsembleData, refuse_changed_code_for
from cluster.report.holdout import seed_label
from cluster.report.robustness import _plain
from cluster.robustness.walk_forward import rows, stitch, stitched_metrics

WALK_FORWARD = "walk_forward"  # the evaluations' kind and the figures' analysis
VERSION = 1  # a change of what the figure means or how it is computed needs a new one
SETTINGS = {"version": VERSION, "test_start": "flat, equity 1.0 at each window's first close"}
SUMMARY = ("score", "sharpe", "total_return", "max_drawdown", "n_trades")


def window_label(seed: int, window: int) -> str:
    return f"seed {seed} window {window}"


@dataclass(frozen=True)
class SeedWalkForward:
    """One seed's recorded walk-forward figure (plain JSON data, `FigureRecord.result`)."""

    seed: int
    result: dict[str, Any]

    def summary(self) -> str:
        """One line: the stitched out-of-sample result beside the in-sample best's."""
        oos = self.result["stitched"]
        ins = self.result["in_sample"]["stitched"]
        windows = len(self.result["windows"])
        if "reason" in oos:
            return f"seed {self.seed}: {windows} window(s), {oos['reason']}"
        return (
            f"seed {self.seed}: {windows} test window(s) stitched, out of sample Sharpe "
            f"{_g(oos['sharpe'])} return {_g(oos['total_return'])}; the whole-range best "
            f"on the same candles (in sample) Sharpe {_g(ins.get('sharpe'))} return "
            f"{_g(ins.get('total_return'))}"
        )


@dataclass(frozen=True)
class WalkForward:
    """Every seed's figure, the job's `walk_forward` (train, test, step); `new` when
    this call computed any."""

    seeds: tuple[SeedWalkForward, ...]
    plan: dict[str, int]
    new: bool


def best_trial(trials: Sequence[TrialRecord]) -> TrialRecord:
    """The highest score, ties to the lowest trial_index."""
    return max(trials, key=lambda t: (t.score, -t.trial_index))


def walk_forward_results(
    recorder: Recorder, detail: EnsembleDetail, data: EnsembleData
) -> WalkForward | None:
    """The ensemble's walk-forward figures, computed and recorded where missing; None
    when the job has no walk_forward."""
    if "walk_forward" not in detail.spec:
        return None
    windows = recorder.windows(detail.id)
    stored = {f.label: f for f in recorder.figures(detail.id, WALK_FORWARD)}
    found, new = [], False
    for seed in detail.seeds:
        figure = stored.get(seed_label(seed))
        if figure is None:
            refuse_changed_code_for(detail, "walk-forward tests")
            own = [w for w in windows if w.seed == seed]
            figure = _compute(recorder, detail, data, seed, own)
            recorder.record_figure(figure)
            new = True
        found.append(SeedWalkForward(seed, dict(figure.result)))
    if new:  # what is shown is always what was recorded
        stored = {f.label: f for f in recorder.figures(detail.id, WALK_FORWARD)}
        found = [SeedWalkForward(s.seed, dict(stored[seed_label(s.seed)].result)) for s in found]
    return WalkForward(tuple(found), dict(detail.spec["walk_forward"]), new)


def record_after_search(
    recorder: Recorder, ensemble_id: uuid.UUID, spec: Any, dataset: Any
) -> WalkForward:
    """The driver's step after a complete search of a job with walk_forward."""
    detail = recorder.ensemble_detail(ensemble_id)
    data = EnsembleData(recorder, detail, None, loaded=(spec, dataset))
    result = walk_forward_results(recorder, detail, data)
    assert result is not None, "a job with walk_forward has walk-forward results"
    return result


def _compute(
    recorder: Recorder,
    detail: EnsembleDetail,
    data: EnsembleData,
    seed: int,
    windows: Sequence[WindowRecord],
) -> FigureRecord:
    spec, candles, _ = data.load()
    strategy, constants = spec.strategy_object(), spec.constants()
    trials = recorder.window_trials(detail.id)
    stored = {e.label: e for e in recorder.evaluations(detail.id, WALK_FORWARD)}
    whole = best_trial(recorder.recorded_trials(detail.id, seed))
    entries, tested, hindsight = [], [], []
    for window in windows:
        own = trials.get((seed, window.window_index), [])
        if window.status != JobStatus.COMPLETE or len(own) < window.budget:
            raise Failed(f"window {window.window_index} of seed {seed} is not complete")
        best = best_trial(own)
        test = rows(candles, window.test_start, window.test_stop)
        label = window_label(seed, window.window_index)
        evaluation = _evaluation(recorder, detail, data, stored.get(label), label, best, window)
        entries.append(_window_entry(window, best, evaluation))
        tested.append((best.params, test))
        hindsight.append((whole.params, test))
    result = {
        "seed": seed,
        "windows": entries,
        "stitched": _stitched(strategy, constants, tested),
        "in_sample": {
            "trial_index": whole.trial_index,
            "params": dict(whole.params),
            "whole_range": {"score": whole.score, **_summary(whole.metrics)},
            "stitched": _stitched(strategy, constants, hindsight),
        },
    }

    return FigureRecord(detail.id, WALK_FORWARD, seed_label(seed), _plain(result), SETTINGS)


def _evaluation(
    recorder: Recorder,
    detail: EnsembleDetail,
    data: EnsembleData,
    stored: EvaluationRecord | None,
    label: str,
    best: TrialRecord,
    window: WindowRecord,
) -> EvaluationRecord:
    """The window's best on its test rows: the recorded evaluation, or a new one."""
    basis = {
        "seed": window.seed,
        "window_index": window.window_index,
        "trial_index": best.trial_index,
        "params": dict(best.params),
        "test_rows": [window.test_start, window.test_stop],
    }
    if stored is not None:
        if canonical_params(stored.params) != canonical_params(best.params) or (
            stored.basis != basis
        ):
            raise Failed(
                f"ensemble {detail.id}'s recorded walk-forward test of {label} is not of "
                "the window's best trial its records give now: the records were changed"
            )
        return stored
    from trainable.strategies import outcome

    spec, candles, _ = data.load()
    test = rows(candles, window.test_start, window.test_stop)
    metrics, message = outcome(spec.strategy_object(), test, best.params, spec.constants())
    evaluation = EvaluationRecord.of_outcome(
        detail.id, WALK_FORWARD, label, best.params, detail.dataset_fingerprint, metrics,
        message, basis,
    )  # fmt: skip
    recorder.record_evaluation(evaluation)
    return evaluation


def _window_entry(
    window: WindowRecord, best: TrialRecord, evaluation: EvaluationRecord
) -> dict[str, Any]:
    return {
        "window_index": window.window_index,
        "trial_index": best.trial_index,
        "params": dict(best.params),
        "train_rows": [window.train_start, window.train_stop],
        "test_rows": [window.test_start, window.test_stop],
        "train_from": window.train_from,
        "test_from": window.test_from,
        "test_until": window.test_until,
        "in_sample": {"score": best.score, **_summary(best.metrics)},
        "test": {
            "status": evaluation.status.value,
            "score": evaluation.score,
            **_summary(evaluation.metrics),
        },
    }


def _summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {name: metrics.get(name) for name in SUMMARY if name != "score"}


def stitched_curve(strategy: Any, constants: Any, tested: Sequence[tuple[Any, Any]]) -> np.ndarray:
    """The stitched equity of (params, test candles) pairs, in order; ValueError when a
    backtest is rejected (no equity curve)."""
    return stitch([strategy.equity(test, params, constants) for params, test in tested])


def _stitched(strategy: Any, constants: Any, tested: Sequence[tuple[Any, Any]]) -> dict[str, Any]:
    """The stitched equity's metrics, or a reason why there are none."""
    if strategy.equity is None:
        return {"reason": f"the strategy {strategy.name} gives no equity curve"}
    try:
        equity = stitched_curve(strategy, constants, tested)
    except ValueError as error:  # a window's test backtest is invalid
        return {"reason": f"a test window's backtest is invalid ({type(error).__name__}: {error})"}
    found = stitched_metrics(equity, constants.bars_per_year)
    trades = 0
    if strategy.trade_returns is not None:
        trades = sum(int(strategy.trade_returns(t, p, constants).size) for p, t in tested)
    return {**found, "n_trades": trades}


def _g(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"
