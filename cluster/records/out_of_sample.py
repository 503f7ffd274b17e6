"""Records of an ensemble's out-of-sample tests and robustness (sql/004_out_of_sample.sql).

- `record_ensemble_dataset` / `ensemble_dataset`: the holdout's dataset of an ensemble;
  `dataset_manifest`: what a recorded dataset holds.
- `upsert_windows`, `set_window_status`, `windows`: the walk-forward windows, one per
  (ensemble, seed, window_index); `record_window_trials`, `window_trials`: their
  searches' trials, with the columns and conventions of `trials` (`TrialRecord`s whose
  spec_id is the ensemble's).
- `record_figure` / `figures`: what the report derives from many backtests, one row per
  (ensemble, analysis, label), its result as canonical JSON text (`FigureRecord`).

Mixed into `cluster.records.recorder.Recorder` (which provides `_run` and `_read`); the
rules are the recorder's: idempotent upserts on natural keys, NonDeterministicRetry when
a retried write differs in its deterministic part, floats compared bit for bit.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from cluster.records import sql as q
from cluster.records.exact import canonical_params
from cluster.records.queries import trial_from_row
from cluster.records.types import (
    DETERMINISTIC_COLUMNS,
    METRIC_COLUMNS,
    JobStatus,
    NonDeterministicRetry,
    NotRecorded,
    TrialRecord,
    check_int4,
)

T = TypeVar("T")
ANALYSIS = re.compile(r"^[a-z][a-z0-9_]*$")
HOLDOUT_ROLE = "holdout"

_WINDOW_TRIAL_COLUMNS = (
    "ensemble_id", "seed", "window_index", "trial_index", "params", "params_exact", "status",
    "score", *METRIC_COLUMNS, "message", "node", "attempts", "started_at", "finished_at",
    "duration_s",
)  # fmt: skip
_INSERT_WINDOW_TRIAL = sql.SQL(
    "INSERT INTO walk_forward_trials ({columns}) VALUES ({values}) "
    "ON CONFLICT (ensemble_id, seed, window_index, trial_index) DO NOTHING "
    "RETURNING seed, window_index, trial_index"
).format(
    columns=sql.SQL(", ").join(map(sql.Identifier, _WINDOW_TRIAL_COLUMNS)),
    values=sql.SQL(", ").join(sql.Placeholder() * len(_WINDOW_TRIAL_COLUMNS)),
)
_WINDOW_TRIAL_SELECT = sql.SQL(
    "SELECT e.spec_id, t.seed, t.trial_index, t.params_exact, t.status::text, t.score, "
    "{metrics}, t.message, t.node, t.attempts, t.started_at, t.finished_at, t.duration_s, "
    "t.window_index FROM walk_forward_trials t JOIN ensembles e ON e.id = t.ensemble_id "
).format(metrics=sql.SQL(", ").join(sql.Identifier("t", m) for m in METRIC_COLUMNS))
_WINDOW_COLUMNS = (
    "search_seed", "train_start", "train_stop", "test_start", "test_stop", "train_from",
    "test_from", "test_until", "budget",
)  # fmt: skip


@dataclass(frozen=True)
class WindowRecord:
    """One walk-forward window of one seed (rows and open times half-open)."""

    seed: int
    window_index: int
    search_seed: int
    train_start: int
    train_stop: int
    test_start: int
    test_stop: int
    train_from: int
    test_from: int
    test_until: int
    budget: int
    status: JobStatus = JobStatus.PENDING

    def __post_init__(self) -> None:
        check_int4("seed", self.seed)
        check_int4("window_index", self.window_index, minimum=0)
        check_int4("budget", self.budget, minimum=1)
        if not 0 <= self.train_start < self.train_stop <= self.test_start < self.test_stop:
            raise ValueError(f"window {self.window_index} of seed {self.seed}: bad rows")
        object.__setattr__(self, "status", JobStatus(self.status))

    def deterministic(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _WINDOW_COLUMNS}


@dataclass(frozen=True)
class FigureRecord:
    """One robustness figure of an ensemble: `result` is plain JSON data (floats finite),
    recorded as canonical JSON text, so that it comes back bit for bit."""

    ensemble_id: uuid.UUID
    analysis: str
    label: str
    result: Mapping[str, Any]
    settings: Mapping[str, Any] = field(default_factory=dict)
    recorded_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.analysis, str) or not ANALYSIS.match(self.analysis):
            raise ValueError(f"analysis must be lower-case words joined by '_': {self.analysis!r}")
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"label must be a non-empty string, got {self.label!r}")
        self.exact  # JSON-able with finite floats, or ValueError now  # noqa: B018

    @property
    def exact(self) -> str:
        return exact_json(self.result)


def exact_json(value: Any) -> str:
    """Canonical JSON: keys sorted, no spaces, floats in Python's shortest round-trip
    form (every bit), NaN and infinities refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


class OutOfSampleRecords:
    """The recorder's methods for sql/004 (see the module docstring)."""

    def _run(self, what: str, action: Callable[[psycopg.Connection], T], atomic: bool = True) -> T:
        raise NotImplementedError

    def _read(self, what: str, action: Callable[[psycopg.Connection], T]) -> T:
        raise NotImplementedError

    # -- the holdout's dataset ------------------------------------------------------
    def record_ensemble_dataset(self, ensemble_id: uuid.UUID, role: str, fingerprint: str) -> bool:
        """Link a recorded dataset to the ensemble in `role` ('holdout'); True if new."""

        def upsert(conn: psycopg.Connection) -> bool:
            try:
                return q.upsert(
                    conn, "ensemble_datasets", {"ensemble_id": ensemble_id, "role": role},
                    {"dataset_fingerprint": fingerprint},
                )  # fmt: skip
            except psycopg.errors.ForeignKeyViolation:
                raise NotRecorded(
                    f"ensemble {ensemble_id} or dataset {fingerprint} is not recorded"
                ) from None

        return self._run(f"recording the {role} dataset of {ensemble_id}", upsert)

    def ensemble_dataset(self, ensemble_id: uuid.UUID, role: str) -> str | None:
        row = self._read(
            f"reading the {role} dataset of {ensemble_id}",
            lambda conn: conn.execute(
                "SELECT dataset_fingerprint FROM ensemble_datasets WHERE ensemble_id = %s "
                "AND role = %s",
                [ensemble_id, role],
            ).fetchone(),
        )
        return None if row is None else str(row[0])

    def dataset_manifest(self, fingerprint: str) -> dict[str, Any]:
        """The recorded manifest of a dataset (NotRecorded when there is none)."""
        row = self._read(
            f"reading the manifest of dataset {fingerprint}",
            lambda conn: conn.execute(
                "SELECT manifest FROM datasets WHERE fingerprint = %s", [fingerprint]
            ).fetchone(),
        )
        if row is None:
            raise NotRecorded(f"dataset {fingerprint} is not recorded")
        return dict(row[0])

    # -- walk-forward windows -------------------------------------------------------
    def upsert_windows(self, ensemble_id: uuid.UUID, windows: Sequence[WindowRecord]) -> None:
        """Record the ensemble's windows in one transaction (their seeds' training jobs
        first)."""

        def upsert_all(conn: psycopg.Connection) -> None:
            for window in windows:
                key = {"ensemble_id": ensemble_id, "seed": window.seed,
                       "window_index": window.window_index}  # fmt: skip
                try:
                    q.upsert(conn, "walk_forward_windows", key, window.deterministic())
                except psycopg.errors.ForeignKeyViolation:
                    raise NotRecorded(
                        f"ensemble {ensemble_id} has no training job for seed {window.seed}"
                    ) from None

        self._run(f"recording the walk-forward windows of {ensemble_id}", upsert_all)

    def set_window_status(
        self, ensemble_id: uuid.UUID, seed: int, window_index: int, status: JobStatus
    ) -> None:
        """Set a window's status; a complete window stays complete."""
        status = JobStatus(status)

        def update(conn: psycopg.Connection) -> None:
            row = conn.execute(
                "SELECT status::text FROM walk_forward_windows WHERE ensemble_id = %s AND "
                "seed = %s AND window_index = %s",
                [ensemble_id, seed, window_index],
            ).fetchone()
            if row is None:
                raise NotRecorded(f"no window {window_index} of seed {seed} in {ensemble_id}")
            if row[0] == JobStatus.COMPLETE and status != JobStatus.COMPLETE:
                raise ValueError(f"window {window_index} of seed {seed} is complete")
            conn.execute(
                "UPDATE walk_forward_windows SET status = %(status)s::job_status, "
                "finished_at = CASE WHEN %(status)s::job_status = 'complete' "
                "    THEN coalesce(finished_at, now()) END "
                "WHERE ensemble_id = %(e)s AND seed = %(s)s AND window_index = %(w)s",
                {"status": status.value, "e": ensemble_id, "s": seed, "w": window_index},
            )

        self._run(f"setting the status of window {window_index} of seed {seed}", update)

    def windows(self, ensemble_id: uuid.UUID) -> list[WindowRecord]:
        """The ensemble's windows by seed and window_index."""
        query = (
            f"SELECT seed, window_index, {', '.join(_WINDOW_COLUMNS)}, status::text "
            "FROM walk_forward_windows WHERE ensemble_id = %s ORDER BY seed, window_index"
        )
        return self._read(
            f"reading the walk-forward windows of {ensemble_id}",
            lambda conn: [WindowRecord(*row) for row in conn.execute(query, [ensemble_id])],
        )

    def record_window_trials(
        self, ensemble_id: uuid.UUID, trials: Sequence[tuple[int, TrialRecord]]
    ) -> None:
        """Record finished trials of windows' searches, (window_index, trial) each, in one
        transaction; as `record_trials`: the same record again is a no-op, a different
        one raises NonDeterministicRetry and nothing of this call is written."""
        if not trials:
            return
        rows = [
            (ensemble_id, t.seed, window, t.trial_index, Jsonb(t.params),
             canonical_params(t.params), t.status.value, t.score,
             *(t.metrics[m] for m in METRIC_COLUMNS), t.message, t.node, t.attempts,
             t.started_at, t.finished_at, t.duration_s)
            for window, t in trials
        ]  # fmt: skip

        def insert(conn: psycopg.Connection) -> None:
            conn.execute("SET LOCAL synchronous_commit TO off")  # as trials: resume recomputes
            inserted: set[tuple[int, int, int]] = set()
            with conn.cursor() as cursor:
                cursor.executemany(_INSERT_WINDOW_TRIAL, rows, returning=True)
                while True:
                    inserted.update(cursor.fetchall())
                    if not cursor.nextset():
                        break
            conflicts = [(w, t) for w, t in trials if (t.seed, w, t.trial_index) not in inserted]
            if conflicts:
                _compare_stored(conn, ensemble_id, conflicts)

        self._run(f"recording {len(trials)} window trial(s) of {ensemble_id}", insert)

    def window_trials(self, ensemble_id: uuid.UUID) -> dict[tuple[int, int], list[TrialRecord]]:
        """Every window's trials, (seed, window_index) -> trials in trial_index order."""
        query = _WINDOW_TRIAL_SELECT + sql.SQL(
            "WHERE t.ensemble_id = %s ORDER BY t.seed, t.window_index, t.trial_index"
        )

        def read(conn: psycopg.Connection) -> dict[tuple[int, int], list[TrialRecord]]:
            found: dict[tuple[int, int], list[TrialRecord]] = {}
            for row in conn.execute(query, [ensemble_id]):
                trial = trial_from_row(row[:-1])
                found.setdefault((trial.seed, row[-1]), []).append(trial)
            return found

        return self._read(f"reading the window trials of {ensemble_id}", read)

    # -- robustness figures ---------------------------------------------------------
    def record_figure(self, figure: FigureRecord) -> bool:
        """Record a robustness figure; True if it was new (the same again: a no-op;
        other settings or another result: NonDeterministicRetry)."""
        key = {"ensemble_id": figure.ensemble_id, "analysis": figure.analysis,
               "label": figure.label}  # fmt: skip
        values = {
            "settings": Jsonb(dict(figure.settings)),
            "result": Jsonb(json.loads(figure.exact)),
            "result_exact": figure.exact,
        }

        def upsert(conn: psycopg.Connection) -> bool:
            try:
                return q.upsert(conn, "robustness", key, values)
            except psycopg.errors.ForeignKeyViolation:
                raise NotRecorded(f"ensemble {figure.ensemble_id} is not recorded") from None

        return self._run(f"recording {figure.analysis}/{figure.label}", upsert)

    def figures(self, ensemble_id: uuid.UUID, analysis: str | None = None) -> list[FigureRecord]:
        """The ensemble's robustness figures (of one analysis, or all), results decoded
        from their exact text."""
        query = (
            "SELECT ensemble_id, analysis, label, result_exact, settings, recorded_at "
            "FROM robustness WHERE ensemble_id = %s AND (%s::text IS NULL OR analysis = %s) "
            "ORDER BY analysis, label"
        )
        return self._read(
            f"reading the robustness figures of {ensemble_id}",
            lambda conn: [
                FigureRecord(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])
                for row in conn.execute(query, [ensemble_id, analysis, analysis])
            ],
        )


def _compare_stored(
    conn: psycopg.Connection, ensemble_id: uuid.UUID, trials: Sequence[tuple[int, TrialRecord]]
) -> None:
    query = _WINDOW_TRIAL_SELECT + sql.SQL(
        "WHERE t.ensemble_id = %s AND t.seed = %s AND t.window_index = %s AND t.trial_index = %s"
    )
    for window, trial in trials:
        row = conn.execute(query, [ensemble_id, trial.seed, window, trial.trial_index]).fetchone()
        assert row is not None, "a window trial vanished between INSERT and SELECT"
        stored = trial_from_row(row[:-1]).deterministic()
        differences = q.differences(
            {k: stored[k] for k in DETERMINISTIC_COLUMNS}, trial.deterministic()
        )
        if differences:
            key = {"ensemble": ensemble_id, "seed": trial.seed, "window_index": window,
                   "trial_index": trial.trial_index}  # fmt: skip
            raise NonDeterministicRetry("walk_forward_trials", key, differences)
