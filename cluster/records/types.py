"""What goes into the records and comes out: statuses, records, summaries, errors.

Every record validates itself when built and raises a ValueError naming the field, so
that a bad value is refused before anything is written (DESIGN.md, contract 6).
"""

from __future__ import annotations

import math
import numbers
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cluster.records.exact import ParamValue, canonical_params, float_hex
from cluster.versions import RECORDS_VERSION, host_description, installed_versions
from trainable.declaration import METRICS, SCORE_PENALTY

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
# The metric columns of `trials` besides `score`, in declaration order.
METRIC_COLUMNS: tuple[str, ...] = tuple(m.name for m in METRICS if m.name != "score")
# The deterministic part of a trial record (DESIGN.md, contract 2), in export order:
# what two runs of the same spec and seed must agree on bit for bit.
DETERMINISTIC_COLUMNS: tuple[str, ...] = (
    "spec_id",
    "seed",
    "trial_index",
    "params",
    "status",
    "score",
    *METRIC_COLUMNS,
    "message",
)
_INT_METRICS = frozenset(m.name for m in METRICS if m.kind == "int")


class EnsembleStatus(StrEnum):
    """SQL type ensemble_status."""

    RUNNING = "running"
    INTERRUPTED = "interrupted"
    COMPLETE = "complete"


class JobStatus(StrEnum):
    """SQL type job_status."""

    PENDING = "pending"
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    COMPLETE = "complete"


class TrialStatus(StrEnum):
    """SQL type trial_status: the kernel's outcome (contract 3)."""

    OK = "ok"
    INVALID = "invalid"


class NonDeterministicRetry(RuntimeError):
    """A write met a record with the same natural key but a different payload.

    The stored record is kept (never last-write-wins). `differences` maps each differing
    column to (stored, new).
    """

    def __init__(
        self, table: str, key: Mapping[str, object], differences: Mapping[str, tuple[Any, Any]]
    ) -> None:
        self.table = table
        self.key = dict(key)
        self.differences = dict(differences)
        where = ", ".join(f"{k}={v}" for k, v in self.key.items())
        changes = "; ".join(
            f"{column}: stored {_show(old)}, new {_show(new)}"
            for column, (old, new) in self.differences.items()
        )
        super().__init__(
            f"non-deterministic retry: {table} ({where}) is already recorded with a "
            f"different {', '.join(self.differences)} ({changes})"
        )


class RecordsUnavailable(RuntimeError):
    """PostgreSQL could not be reached (or kept failing) within the retry budget."""


class EnsembleBusy(RuntimeError):
    """Another process holds the ensemble's lock: it is running there."""


class NotRecorded(LookupError):
    """The ensemble, job or dataset asked for is not in the records."""


def _show(value: Any) -> str:
    return float_hex(value) if isinstance(value, float) and math.isfinite(value) else repr(value)


def check_sha256(name: str, value: object) -> str:
    if not isinstance(value, str) or not SHA256_HEX.match(value):
        raise ValueError(f"{name} must be 64 lower-case hex digits (a sha256), got {value!r}")
    return value


def check_int4(name: str, value: object, minimum: int = INT4_MIN) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if not minimum <= int(value) <= INT4_MAX:
        raise ValueError(f"{name} must be in [{minimum}, {INT4_MAX}], got {value}")
    return int(value)


def _plain_params(params: Mapping[str, object]) -> dict[str, ParamValue]:
    """Exact plain-Python copies (numpy ints -> int, numpy floats -> float)."""
    plain: dict[str, ParamValue] = {}
    for name, value in params.items():
        if isinstance(value, bool):
            raise ValueError(f"parameter {name} must be an int or float, got bool {value!r}")
        if isinstance(value, numbers.Integral):
            plain[name] = int(value)
        elif isinstance(value, float):
            plain[name] = float(value)
        else:
            raise ValueError(
                f"parameter {name} must be an int or float, got {type(value).__name__} {value!r}"
            )
    canonical_params(plain)  # names and finiteness
    return plain


def _metric(name: str, value: object) -> int | float | None:
    """A metric as stored: None for undefined, NaN or infinite (STRATEGY.md C18)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"metric {name} must be a number or None, got {value!r}")
    if name in _INT_METRICS:
        if not isinstance(value, numbers.Integral):
            raise ValueError(f"metric {name} must be an int, got {type(value).__name__} {value!r}")
        return check_int4(f"metric {name}", value, minimum=0)
    number = float(value)
    return number if math.isfinite(number) else None


def checked_outcome(
    status: str,
    score: object,
    metrics: Mapping[str, object],
    message: object,
    what: str,
) -> tuple[TrialStatus, float, dict[str, int | float | None]]:
    """The outcome columns that trials and other evaluations share, checked: (status,
    score, metrics as stored). `ok`: no message, n_trades defined; `invalid`: a message
    (exception class and text), every metric undefined. `score` is finite either way.
    `what` names the record in messages ("trial", "evaluation")."""
    status = TrialStatus(status)
    if not isinstance(score, float) or not math.isfinite(score):
        raise ValueError(f"score must be a finite float, got {score!r}")
    unknown = sorted(set(metrics) - set(METRIC_COLUMNS))
    missing = [name for name in METRIC_COLUMNS if name not in metrics]
    if unknown or missing:
        raise ValueError(f"metrics: unknown {unknown}, missing {missing}")
    stored = {name: _metric(name, metrics[name]) for name in METRIC_COLUMNS}
    if status is TrialStatus.OK:
        if message is not None:
            raise ValueError(f"an ok {what} has no message, got {message!r}")
        if stored["n_trades"] is None:
            raise ValueError(f"an ok {what} needs n_trades")
    else:
        if not isinstance(message, str) or not message:
            raise ValueError(f"an invalid {what} needs its message (exception class and text)")
        defined = [name for name, value in stored.items() if value is not None]
        if defined:
            raise ValueError(f"an invalid {what} has no metrics, got {defined}")
    return status, float(score), stored


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial (DESIGN.md, contracts 2 and 3).

    Deterministic part, compared bit for bit on a retried write: spec_id, seed,
    trial_index, params, status, score, metrics, message. The rest (node, attempts,
    times) describes one execution: a retried write keeps the first one's.

    `metrics` holds every metric of `trainable.declaration.METRICS` except `score`;
    NaN and infinities become None (undefined). `score` must be finite. An invalid
    trial has a message, score = the job's penalty and every metric None.
    """

    spec_id: str
    seed: int
    trial_index: int
    params: Mapping[str, ParamValue]
    status: TrialStatus
    score: float
    metrics: Mapping[str, int | float | None]
    message: str | None = None
    node: str | None = None
    attempts: int = 1
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None

    def __post_init__(self) -> None:
        where = f"trial {self.trial_index!r} of seed {self.seed!r}"
        try:
            self._validate()
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None

    def _validate(self) -> None:
        check_sha256("spec_id", self.spec_id)
        check_int4("seed", self.seed)
        check_int4("trial_index", self.trial_index, minimum=0)
        object.__setattr__(self, "params", _plain_params(self.params))
        status, score, metrics = checked_outcome(
            self.status, self.score, self.metrics, self.message, "trial"
        )
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "metrics", metrics)
        check_int4("attempts", self.attempts, minimum=1)
        for name in ("started_at", "finished_at"):
            moment = getattr(self, name)
            if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
                raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")
        if self.duration_s is not None and not (
            isinstance(self.duration_s, float)
            and math.isfinite(self.duration_s)
            and self.duration_s >= 0
        ):
            raise ValueError(f"duration_s must be a finite float >= 0, got {self.duration_s!r}")

    @classmethod
    def ok(
        cls,
        spec_id: str,
        seed: int,
        trial_index: int,
        params: Mapping[str, ParamValue],
        metrics: Mapping[str, int | float | None],
        **execution: Any,
    ) -> TrialRecord:
        """An `ok` trial from the backtest's metrics (`BacktestResult.metrics`, with score)."""
        rest = {name: value for name, value in metrics.items() if name != "score"}
        score = metrics.get("score")
        return cls(spec_id, seed, trial_index, params, TrialStatus.OK, score, rest, **execution)  # type: ignore[arg-type]

    @classmethod
    def invalid(
        cls,
        spec_id: str,
        seed: int,
        trial_index: int,
        params: Mapping[str, ParamValue],
        message: str,
        score: float = SCORE_PENALTY,
        **execution: Any,
    ) -> TrialRecord:
        """An `invalid` trial: the kernel rejected the input; score is the job's penalty."""
        metrics = dict.fromkeys(METRIC_COLUMNS)
        return cls(
            spec_id,
            seed,
            trial_index,
            params,
            TrialStatus.INVALID,
            score,
            metrics,
            message,
            **execution,
        )

    def deterministic(self) -> dict[str, Any]:
        """The part two runs of the same job must agree on, bit for bit."""
        return {
            "spec_id": self.spec_id,
            "seed": self.seed,
            "trial_index": self.trial_index,
            "params": canonical_params(self.params),
            "status": self.status.value,
            "score": self.score,
            **self.metrics,
            "message": self.message,
        }


@dataclass(frozen=True)
class EnsembleRecord:
    """One execution of a resolved spec over a seed list (DESIGN.md, contract 1).

    `id` is made by the driver before the first write (so a retried create is an
    idempotent upsert). Versions and host default to this process's.
    """

    id: uuid.UUID
    spec_id: str
    spec: Mapping[str, Any]
    seeds: Sequence[int]
    dataset_fingerprint: str
    name: str | None = None
    records_version: int = RECORDS_VERSION
    library_versions: Mapping[str, str] = field(default_factory=installed_versions)
    host: Mapping[str, str] = field(default_factory=host_description)

    def __post_init__(self) -> None:
        if not isinstance(self.id, uuid.UUID):
            raise ValueError(f"ensemble id must be a uuid.UUID, got {self.id!r}")
        check_sha256("spec_id", self.spec_id)
        check_sha256("dataset_fingerprint", self.dataset_fingerprint)
        seeds = tuple(check_int4("seed", seed) for seed in self.seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be a non-empty list without repeats, got {list(seeds)}")
        object.__setattr__(self, "seeds", seeds)
        check_int4("records_version", self.records_version, minimum=1)


class RunKind(StrEnum):
    """ensemble_runs.kind: an ensemble's first execution, or a resume of it."""

    RUN = "run"
    RESUME = "resume"


class RunOutcome(StrEnum):
    """ensemble_runs.outcome: how an execution ended (NULL: its driver was killed)."""

    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


@dataclass(frozen=True)
class RunRecord:
    """One execution of an ensemble (sql/002_ensemble_runs.sql). `id` is made by the
    driver before its first write. Nothing here is part of what runs compare."""

    id: uuid.UUID
    ensemble_id: uuid.UUID
    kind: RunKind
    execution: Mapping[str, Any]
    platform: Mapping[str, Any]
    manifest: Mapping[str, Any]
    platform_change_allowed: bool = False
    host: Mapping[str, str] = field(default_factory=host_description)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: RunOutcome | None = None

    def __post_init__(self) -> None:
        for name in ("id", "ensemble_id"):
            if not isinstance(getattr(self, name), uuid.UUID):
                raise ValueError(f"run {name} must be a uuid.UUID, got {getattr(self, name)!r}")
        object.__setattr__(self, "kind", RunKind(self.kind))
        if self.outcome is not None:
            object.__setattr__(self, "outcome", RunOutcome(self.outcome))


@dataclass(frozen=True)
class EnsembleDetail:
    """Everything recorded about an ensemble itself (resume and verify start here)."""

    id: uuid.UUID
    name: str | None
    spec_id: str
    spec: dict[str, Any]
    seeds: tuple[int, ...]
    dataset_fingerprint: str
    records_version: int
    library_versions: dict[str, str]
    host: dict[str, str]
    status: EnsembleStatus
    created_at: datetime


@dataclass(frozen=True)
class TrainingJobRecord:
    """One seed's search in an ensemble: the job (spec_id, seed)."""

    seed: int
    spec_id: str
    searcher: str
    budget: int
    searcher_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_int4("seed", self.seed)
        check_sha256("spec_id", self.spec_id)
        if not isinstance(self.searcher, str) or not self.searcher:
            raise ValueError(f"searcher must be a non-empty name, got {self.searcher!r}")
        check_int4("budget", self.budget, minimum=1)


@dataclass(frozen=True)
class JobSummary:
    """A training job as `list` shows it; `status` is the live one (see the SQL view)."""

    id: int
    ensemble_id: uuid.UUID
    seed: int
    spec_id: str
    searcher: str
    budget: int
    status: JobStatus
    n_trials: int
    n_ok: int
    n_invalid: int
    best_trial_index: int | None
    best_score: float | None
    best_params: dict[str, Any] | None


@dataclass(frozen=True)
class EnsembleSummary:
    """An ensemble as `list` shows it, with its live status and its jobs by seed."""

    id: uuid.UUID
    name: str | None
    spec_id: str
    seeds: tuple[int, ...]
    status: EnsembleStatus
    dataset_fingerprint: str
    created_at: datetime
    finished_at: datetime | None
    jobs: tuple[JobSummary, ...]
