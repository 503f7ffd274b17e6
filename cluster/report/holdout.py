"""In-sample against the holdout: each seed's best and the consensus on candles the search
never saw (a job's `holdout`, docs/jobs.md).

The run loads and checks the holdout's candles before anything is recorded, links their
dataset to the ensemble (`ensemble_datasets`, role "holdout") and never puts them in the
object store: no trial can see them. Once the search is complete, `record_after_search`
(the driver) backtests each seed's best parameter set and the consensus (recorded as
the report records it, `backtests.consensus`) on the holdout's candles, with the job's
fees and costs, and records each as an evaluation of kind "holdout" labelled "seed N" or
"consensus" on the holdout's dataset. A report finds them; an ensemble finished by
`resume` gets them from its first report. A recorded holdout backtest whose params are
not what the records give now is a contradiction and stops the report.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cluster.errors import Failed
from cluster.records.evaluations import EvaluationRecord
from cluster.records.exact import canonical_params
from cluster.records.out_of_sample import HOLDOUT_ROLE
from cluster.records.recorder import Recorder
from cluster.records.types import EnsembleDetail
from cluster.report.backtests import Consensus, EnsembleData
from cluster.report.stability import Stability

HOLDOUT_KIND = "holdout"
CONSENSUS_SET = "consensus"


def seed_label(seed: int) -> str:
    return f"seed {seed}"


@dataclass(frozen=True)
class HoldoutRow:
    """One parameter set: its in-sample outcome (the seed's best trial, or the consensus
    evaluation: score and metrics) beside its recorded holdout backtest."""

    label: str
    params: dict[str, int | float]
    in_sample: dict[str, Any]  # "score" and every metric; None where undefined
    holdout: EvaluationRecord


@dataclass(frozen=True)
class Holdout:
    """The holdout's dataset and each parameter set's in-sample and holdout outcomes;
    `new` when this call backtested any of them."""

    fingerprint: str
    start: int
    end: int
    rows: int
    sets: tuple[HoldoutRow, ...]
    new: bool


def wanted_sets(
    stability: Stability, consensus: Consensus, trials: Mapping[tuple[int, int], Mapping[str, Any]]
) -> list[tuple[str, dict[str, int | float], dict[str, Any], dict[str, Any]]]:
    """(label, params, in-sample outcome, basis) of every set tested on the holdout:
    each seed's best (by trial), then the consensus."""
    found = []
    for best in stability.seeds:
        basis: dict[str, Any] = {"seed": best.seed, "trial_index": best.trial_index}
        found.append((seed_label(best.seed), dict(best.params),
                      dict(trials[best.seed, best.trial_index]), basis))  # fmt: skip
    evaluation = consensus.evaluation
    in_sample = {"score": evaluation.score, **evaluation.metrics}
    basis = {"consensus": CONSENSUS_SET, "params_exact": canonical_params(evaluation.params)}
    found.append((CONSENSUS_SET, dict(evaluation.params), in_sample, basis))
    return found


def holdout_results(
    recorder: Recorder,
    detail: EnsembleDetail,
    stability: Stability,
    consensus: Consensus,
    data: EnsembleData,
) -> Holdout | None:
    """The ensemble's holdout backtests, made and recorded where missing; None when the
    job has no holdout."""
    fingerprint = recorder.ensemble_dataset(detail.id, HOLDOUT_ROLE)
    if fingerprint is None or "holdout" not in detail.spec:
        return None
    stored = {e.label: e for e in recorder.evaluations(detail.id, HOLDOUT_KIND)}
    trials = _in_sample(recorder, detail.id, stability)
    rows, new = [], False
    for label, params, in_sample, basis in wanted_sets(stability, consensus, trials):
        evaluation = stored.get(label)
        if evaluation is None:
            evaluation = _backtest(recorder, detail, data, fingerprint, label, params, basis)
            new = True
        elif canonical_params(evaluation.params) != canonical_params(params) or (
            evaluation.basis != basis
        ):
            raise Failed(
                f"ensemble {detail.id}'s recorded holdout backtest of {label} "
                f"({canonical_params(evaluation.params)}) is not of the parameters its "
                f"records give now ({canonical_params(params)}): the records were changed"
            )
        rows.append(HoldoutRow(label, params, in_sample, evaluation))
    window = detail.spec["holdout"]
    manifest = recorder.dataset_manifest(fingerprint)
    return Holdout(
        fingerprint=fingerprint,
        start=int(window["start"]),
        end=int(window["end"]),
        rows=int(manifest.get("rows", 0)),
        sets=tuple(rows),
        new=new,
    )


def _in_sample(
    recorder: Recorder, ensemble_id: uuid.UUID, stability: Stability
) -> dict[tuple[int, int], dict[str, Any]]:
    """Each seed's best trial's score and metrics, as recorded."""
    found = {}
    for best in stability.seeds:
        trial = recorder.recorded_trials(ensemble_id, best.seed)[best.trial_index]
        assert trial.trial_index == best.trial_index, "trials are numbered from 0"
        found[best.seed, best.trial_index] = {"score": trial.score, **trial.metrics}
    return found


def _backtest(
    recorder: Recorder,
    detail: EnsembleDetail,
    data: EnsembleData,
    fingerprint: str,
    label: str,
    params: Mapping[str, int | float],
    basis: Mapping[str, Any],
) -> EvaluationRecord:
    from cluster.report.backtests import refuse_changed_code_for
    from trainable.strategies import outcome

    refuse_changed_code_for(detail, "holdout backtests")
    spec, _, _ = data.load()
    _, candles = data.holdout(fingerprint)
    metrics, message = outcome(spec.strategy_object(), candles, params, spec.constants())
    evaluation = EvaluationRecord.of_outcome(
        detail.id, HOLDOUT_KIND, label, params, fingerprint, metrics, message, basis
    )
    recorder.record_evaluation(evaluation)
    return evaluation


def record_after_search(
    recorder: Recorder, ensemble_id: uuid.UUID, spec: Any, dataset: Any, holdout: Any
) -> Holdout | None:
    """The driver's step after a complete search of a job with a holdout: the consensus
    and every holdout backtest, recorded (module docstring)."""
    from cluster.report.backtests import consensus as consensus_of
    from cluster.report.frame import recorded_frame, recorded_space
    from cluster.report.stability import analyse

    detail = recorder.ensemble_detail(ensemble_id)
    frame = recorded_frame(recorder, ensemble_id)
    stability = analyse(frame, recorded_space(detail.spec), float(detail.spec["score_penalty"]))
    data = EnsembleData(recorder, detail, None, loaded=(spec, dataset), holdout=holdout)
    agreed = consensus_of(recorder, detail, stability, data)
    return holdout_results(recorder, detail, stability, agreed, data)
