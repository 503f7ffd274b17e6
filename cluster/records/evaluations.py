"""Extra backtests of an ensemble that are not search trials (sql/003_evaluations.sql).

The report's consensus parameter set is one; holdout and walk-forward tests can be
others. An `EvaluationRecord` is keyed by (ensemble_id, kind, label) and has a trial's
outcome columns with the same conventions: params written bit for bit, status `ok`
(metrics) or `invalid` (a message, the penalty score, no metrics), undefined metrics as
None. Its deterministic part (`deterministic()`) is what a retried write must repeat
exactly; `recorded_at` is the database's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cluster.records.exact import ParamValue, canonical_params
from cluster.records.types import (
    METRIC_COLUMNS,
    TrialStatus,
    _plain_params,
    check_sha256,
    checked_outcome,
)

KIND = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class EvaluationRecord:
    """One extra backtest of an ensemble (see the module docstring).

    `metrics` holds every metric column except `score`. `basis` says what the params
    were derived from (plain JSON data; part of the deterministic record).
    """

    ensemble_id: uuid.UUID
    kind: str
    label: str
    params: Mapping[str, ParamValue]
    dataset_fingerprint: str
    status: TrialStatus
    score: float
    metrics: Mapping[str, int | float | None]
    message: str | None = None
    basis: Mapping[str, Any] = field(default_factory=dict)
    recorded_at: datetime | None = None

    def __post_init__(self) -> None:
        where = f"evaluation {self.kind!r}/{self.label!r}"
        try:
            self._validate()
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None

    def _validate(self) -> None:
        if not isinstance(self.ensemble_id, uuid.UUID):
            raise ValueError(f"ensemble_id must be a uuid.UUID, got {self.ensemble_id!r}")
        if not isinstance(self.kind, str) or not KIND.match(self.kind):
            raise ValueError(f"kind must be lower-case words joined by '_', got {self.kind!r}")
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"label must be a non-empty string, got {self.label!r}")
        check_sha256("dataset_fingerprint", self.dataset_fingerprint)
        object.__setattr__(self, "params", _plain_params(self.params))
        status, score, metrics = checked_outcome(
            self.status, self.score, self.metrics, self.message, "evaluation"
        )
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "basis", dict(self.basis))

    @classmethod
    def of_outcome(
        cls,
        ensemble_id: uuid.UUID,
        kind: str,
        label: str,
        params: Mapping[str, ParamValue],
        dataset_fingerprint: str,
        metrics: Mapping[str, int | float | None],
        message: str | None,
        basis: Mapping[str, Any] | None = None,
    ) -> EvaluationRecord:
        """From an evaluation's outcome (`trainable.strategies.outcome`): every metric
        with `score`, and the message of an invalid one (None when ok)."""
        status = TrialStatus.OK if message is None else TrialStatus.INVALID
        rest = {name: value for name, value in metrics.items() if name != "score"}
        if status is TrialStatus.INVALID:
            rest = dict.fromkeys(METRIC_COLUMNS)
        return cls(
            ensemble_id,
            kind,
            label,
            params,
            dataset_fingerprint,
            status,
            metrics["score"],  # type: ignore[arg-type]  # checked in __post_init__
            rest,
            message,
            basis or {},
        )

    @property
    def key(self) -> dict[str, Any]:
        return {"ensemble_id": self.ensemble_id, "kind": self.kind, "label": self.label}

    def deterministic(self) -> dict[str, Any]:
        """What a retried write must repeat bit for bit (params as canonical text)."""
        return {
            "params_exact": canonical_params(self.params),
            "basis": self.basis,
            "dataset_fingerprint": self.dataset_fingerprint,
            "status": self.status.value,
            "score": self.score,
            **self.metrics,
            "message": self.message,
        }
