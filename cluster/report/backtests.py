"""The report's own backtests, in this process (one backtest each, no Ray): the consensus
parameter set, recorded so that the report is reproducible, and the equity curves of the
pictures (not recorded: they only draw what the records already say).

They run on the ensemble's candles, loaded the way `resume` loads them: the job spec is
rebuilt from the records (`cluster.job.recorded`), its data loaded and cleaned by the
same code, and the fingerprint must be the recorded one, else `DataChanged` (exit 2)
names both. The job constants (fees, slippage, min_trades, timeframe) are the spec's.

The consensus is recorded once, as the evaluation (kind "consensus", label "median") of
the ensemble. A later report finds it and backtests nothing; a recorded consensus whose
params are not the ones the records give now is a contradiction and stops the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster.candles.dataset import Dataset
from cluster.candles.exchange import DownloadSettings
from cluster.errors import Failed, InvalidInput
from cluster.records.evaluations import EvaluationRecord
from cluster.records.exact import canonical_params
from cluster.records.recorder import Recorder
from cluster.records.types import EnsembleDetail
from cluster.report.stability import Stability
from trainable.types import Candles

CONSENSUS_KIND = "consensus"
CONSENSUS_LABEL = "median"  # the rule that chose the params: a new rule needs a new label


@dataclass(frozen=True)
class Consensus:
    """The consensus parameter set's recorded backtest; `new` when this report made it."""

    evaluation: EvaluationRecord
    new: bool


class EnsembleData:
    """The ensemble's job spec and candles (and its holdout's), loaded once, on first use.

    The driver, which has them loaded already, hands them over as `loaded` (the spec and
    the search dataset) and `holdout` (the holdout's dataset, if any).
    """

    def __init__(
        self,
        recorder: Recorder,
        detail: EnsembleDetail,
        settings: DownloadSettings | None,
        *,
        loaded: tuple[Any, Dataset] | None = None,
        holdout: Dataset | None = None,
    ) -> None:
        self._recorder = recorder
        self._detail = detail
        self._settings = settings
        self._dataset: tuple[Any, Dataset] | None = loaded
        self._loaded: tuple[Any, Candles, np.ndarray] | None = None
        self._holdout: Dataset | None = holdout
        self._holdout_candles: Candles | None = None

    def dataset(self) -> tuple[Any, Dataset]:
        """(the JobSpec, its Dataset); DataChanged when the candles are not the
        recorded ones."""
        if self._dataset is None:
            from cluster.candles.dataset import check_fingerprint
            from cluster.job.data import load_job_data
            from cluster.job.recorded import recorded_spec

            spec = recorded_spec(self._detail, self._recorder.runs(self._detail.id))
            spec, dataset = load_job_data(spec, settings=self._settings)
            check_fingerprint(dataset, self._detail.dataset_fingerprint)
            self._dataset = (spec, dataset)
        return self._dataset

    def load(self) -> tuple[Any, Candles, np.ndarray]:
        """(the JobSpec, its Candles, their timestamps in ms); DataChanged when the
        candles are not the recorded ones."""
        if self._loaded is None:
            from trainable.candle_table import candles_from_table

            spec, dataset = self.dataset()
            candles = candles_from_table(dataset.table)
            self._loaded = (spec, candles, candles.timestamp)
        return self._loaded

    def holdout(self, fingerprint: str) -> tuple[Dataset, Candles]:
        """The holdout's dataset and Candles; DataChanged unless its fingerprint is the
        recorded `fingerprint`."""
        from cluster.candles.dataset import check_fingerprint
        from trainable.candle_table import candles_from_table

        if self._holdout is None:
            from cluster.job.data import load_holdout_data

            spec, dataset = self.dataset()
            _, holdout = load_holdout_data(spec, dataset, settings=self._settings)
            if holdout is None:
                raise Failed(f"ensemble {self._detail.id} has a holdout dataset but no holdout")
            self._holdout = holdout
        check_fingerprint(self._holdout, fingerprint)
        if self._holdout_candles is None:
            self._holdout_candles = candles_from_table(self._holdout.table)
        return self._holdout, self._holdout_candles


def consensus_basis(stability: Stability) -> dict[str, Any]:
    """What the consensus params come from: each seed's best trial."""
    return {
        "rule": "per-parameter median of the seeds' best trials, ints rounded half to even",
        "seeds": [s.seed for s in stability.seeds],
        "best_trial_indices": [s.trial_index for s in stability.seeds],
    }


def consensus(
    recorder: Recorder, detail: EnsembleDetail, stability: Stability, data: EnsembleData
) -> Consensus:
    """The recorded backtest of the consensus params, made and recorded if missing."""
    params, basis = stability.consensus, consensus_basis(stability)
    for stored in recorder.evaluations(detail.id, CONSENSUS_KIND):
        if stored.label != CONSENSUS_LABEL:
            continue
        if canonical_params(stored.params) != canonical_params(params) or stored.basis != basis:
            raise Failed(
                f"ensemble {detail.id}'s recorded consensus ({canonical_params(stored.params)}, "
                f"from {stored.basis}) is not the one its trials give now "
                f"({canonical_params(params)}, from {basis}): the records were changed"
            )
        return Consensus(stored, new=False)
    refuse_changed_code_for(detail, "the consensus")
    from trainable.strategies import outcome

    spec, candles, _ = data.load()
    metrics, message = outcome(spec.strategy_object(), candles, params, spec.constants())
    evaluation = EvaluationRecord.of_outcome(
        detail.id, CONSENSUS_KIND, CONSENSUS_LABEL, params, detail.dataset_fingerprint,
        metrics, message, basis,
    )  # fmt: skip
    recorder.record_evaluation(evaluation)
    return Consensus(evaluation, new=True)


def refuse_changed_code_for(detail: EnsembleDetail, what: str) -> None:
    """A new record must be what the ensemble's own code would compute: InvalidInput
    saying that this code cannot compute `what` of the ensemble, and why."""
    from cluster.job.recorded import refuse_changed_code

    try:
        refuse_changed_code(detail)
    except InvalidInput as error:
        raise InvalidInput(
            [f"cannot compute ensemble {detail.id}'s {what} with this code:", *error.problems]
        ) from None


def equity_curves(
    data: EnsembleData, parameter_sets: Mapping[str, Mapping[str, int | float]]
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, str]]:
    """(timestamps, the equity curve of each named parameter set, why a set has none).

    Empty curves (with a reason each) when the strategy gives no equity curve.
    """
    spec, candles, timestamps = data.load()
    strategy = spec.strategy_object()
    if strategy.equity is None:
        reason = f"the strategy {strategy.name} gives no equity curve"
        return timestamps, {}, dict.fromkeys(parameter_sets, reason)
    curves: dict[str, np.ndarray] = {}
    missing: dict[str, str] = {}
    for name, params in parameter_sets.items():
        try:
            curves[name] = strategy.equity(candles, params, spec.constants())
        except ValueError as error:  # an invalid outcome: no curve to draw
            missing[name] = f"{type(error).__name__}: {error}"
    return timestamps, curves, missing
