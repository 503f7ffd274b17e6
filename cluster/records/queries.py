"""The recorder's reads: live statuses, summaries for `list` and `show`, trials back.

Mixed into cluster.records.recorder.Recorder, which provides `_read` (a retried, autocommit
call on a pooled connection).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from cluster.records.evaluations import EvaluationRecord
from cluster.records.exact import parse_canonical_params
from cluster.records.sql import DETERMINISTIC_SELECT
from cluster.records.types import (
    METRIC_COLUMNS,
    EnsembleDetail,
    EnsembleStatus,
    EnsembleSummary,
    JobStatus,
    JobSummary,
    NotRecorded,
    RunKind,
    RunOutcome,
    RunRecord,
    TrialRecord,
    TrialStatus,
)

T = TypeVar("T")

_JOB_COLUMNS = (
    "id, ensemble_id, seed, spec_id, searcher, budget, status::text, n_trials, n_ok, "
    "n_invalid, best_trial_index, best_score, best_params"
)
_JOBS = f"SELECT {_JOB_COLUMNS} FROM training_job_overview"
_JOB_BY_SEED = f"{_JOBS} WHERE ensemble_id = %s AND seed = %s"
_JOB_BY_ID = f"{_JOBS} WHERE id = %s"
_TRIAL_SELECT = sql.SQL(
    "SELECT {deterministic}, t.node, t.attempts, t.started_at, t.finished_at, t.duration_s "
    "FROM trials t JOIN training_jobs j ON j.id = t.training_job_id "
).format(deterministic=DETERMINISTIC_SELECT)
_EVALUATION_SELECT = sql.SQL(
    "SELECT ensemble_id, kind, label, params_exact, dataset_fingerprint, status::text, score, "
    "{metrics}, message, basis, recorded_at FROM evaluations "
).format(metrics=sql.SQL(", ").join(map(sql.Identifier, METRIC_COLUMNS)))
_UUID_PREFIX = re.compile(r"^[0-9a-f-]{1,36}$")


def _job(row: Sequence[Any]) -> JobSummary:
    values = list(row)
    values[6] = JobStatus(values[6])
    return JobSummary(*values)


def _run(row: Sequence[Any]) -> RunRecord:
    values = list(row)
    values[2] = RunKind(values[2])
    values[10] = None if values[10] is None else RunOutcome(values[10])
    return RunRecord(*values)


def trial_from_row(row: Sequence[Any]) -> TrialRecord:
    """A TrialRecord from a row of the trial columns (spec_id, seed, trial_index,
    params_exact, status, score, the metrics, message, node, attempts, times)."""
    spec_id, seed, trial_index, params_exact, status, score = row[:6]
    n = len(METRIC_COLUMNS)
    metrics = dict(zip(METRIC_COLUMNS, row[6 : 6 + n], strict=True))
    message, node, attempts, started_at, finished_at, duration_s = row[6 + n :]
    return TrialRecord(
        spec_id,
        seed,
        trial_index,
        parse_canonical_params(params_exact),
        TrialStatus(status),
        score,
        metrics,
        message,
        node,
        attempts,
        started_at,
        finished_at,
        duration_s,
    )


def _evaluation(row: Sequence[Any]) -> EvaluationRecord:
    ensemble_id, kind, label, params_exact, fingerprint, status, score = row[:7]
    n = len(METRIC_COLUMNS)
    metrics = dict(zip(METRIC_COLUMNS, row[7 : 7 + n], strict=True))
    message, basis, recorded_at = row[7 + n :]
    return EvaluationRecord(
        ensemble_id,
        kind,
        label,
        parse_canonical_params(params_exact),
        fingerprint,
        TrialStatus(status),
        score,
        metrics,
        message,
        basis,
        recorded_at,
    )


class RecordsQueries:
    """Read-only questions to the records."""

    def _read(self, what: str, action: Callable[[psycopg.Connection], T]) -> T:
        raise NotImplementedError

    def ensemble_status(self, ensemble_id: uuid.UUID) -> EnsembleStatus:
        """The live status: complete, running (someone holds the lock) or interrupted."""

        def read(conn: psycopg.Connection) -> EnsembleStatus:
            row = conn.execute(
                "SELECT status::text FROM ensemble_overview WHERE id = %s", [ensemble_id]
            ).fetchone()
            if row is None:
                raise NotRecorded(f"ensemble {ensemble_id} is not recorded")
            return EnsembleStatus(row[0])

        return self._read(f"reading the status of {ensemble_id}", read)

    def ensembles(self) -> list[EnsembleSummary]:
        """Every ensemble, oldest first, with its jobs by seed."""

        def read(conn: psycopg.Connection) -> list[EnsembleSummary]:
            jobs: dict[uuid.UUID, list[JobSummary]] = {}
            for row in conn.execute(f"{_JOBS} ORDER BY ensemble_id, seed"):
                jobs.setdefault(row[1], []).append(_job(row))
            rows = conn.execute(
                "SELECT id, name, spec_id, seeds, status::text, dataset_fingerprint, "
                "created_at, finished_at FROM ensemble_overview ORDER BY created_at, id"
            ).fetchall()
            return [
                EnsembleSummary(
                    r[0],
                    r[1],
                    r[2],
                    tuple(r[3]),
                    EnsembleStatus(r[4]),
                    r[5],
                    r[6],
                    r[7],
                    tuple(jobs.get(r[0], ())),
                )
                for r in rows
            ]

        return self._read("listing ensembles", read)

    def ensemble_detail(self, ensemble_id: uuid.UUID) -> EnsembleDetail:
        """What is recorded about the ensemble itself, with its live status."""

        def read(conn: psycopg.Connection) -> EnsembleDetail:
            row = conn.execute(
                "SELECT e.id, e.name, e.spec_id, e.spec, e.seeds, e.dataset_fingerprint, "
                "e.records_version, e.library_versions, e.host, o.status::text, e.created_at "
                "FROM ensembles e JOIN ensemble_overview o ON o.id = e.id WHERE e.id = %s",
                [ensemble_id],
            ).fetchone()
            if row is None:
                raise NotRecorded(f"ensemble {ensemble_id} is not recorded")
            values = list(row)
            values[4] = tuple(values[4])
            values[9] = EnsembleStatus(values[9])
            return EnsembleDetail(*values)

        return self._read(f"reading ensemble {ensemble_id}", read)

    def ensembles_of_spec(self, spec_id: str) -> list[tuple[uuid.UUID, str]]:
        """(id, dataset fingerprint) of every ensemble of `spec_id`, oldest first."""
        return self._read(
            "finding the ensembles of a spec",
            lambda conn: [
                (row[0], row[1])
                for row in conn.execute(
                    "SELECT id, dataset_fingerprint FROM ensembles WHERE spec_id = %s "
                    "ORDER BY created_at, id",
                    [spec_id],
                )
            ],
        )

    def latest_ensemble(self) -> uuid.UUID:
        """The ensemble created last (NotRecorded when there is none)."""
        row = self._read(
            "finding the latest ensemble",
            lambda conn: conn.execute(
                "SELECT id FROM ensembles ORDER BY created_at DESC, id DESC LIMIT 1"
            ).fetchone(),
        )
        if row is None:
            raise NotRecorded("no ensemble is recorded yet: `run` a job first")
        return row[0]

    def runs(self, ensemble_id: uuid.UUID) -> list[RunRecord]:
        """The ensemble's executions, oldest first."""
        query = (
            "SELECT id, ensemble_id, kind, execution, platform, manifest, "
            "platform_change_allowed, host, started_at, finished_at, outcome "
            "FROM ensemble_runs WHERE ensemble_id = %s ORDER BY started_at, id"
        )
        return self._read(
            f"reading the runs of ensemble {ensemble_id}",
            lambda conn: [_run(row) for row in conn.execute(query, [ensemble_id])],
        )

    def find_ensemble(self, text: str) -> uuid.UUID:
        """The ensemble whose id is `text` or starts with it (as `list` shows it)."""
        text = text.strip().lower()
        if not _UUID_PREFIX.match(text):
            raise NotRecorded(f"{text!r} is not an ensemble id (a UUID or its first characters)")
        rows = self._read(
            "finding an ensemble",
            lambda conn: conn.execute(
                "SELECT id FROM ensembles WHERE id::text LIKE %s ORDER BY id LIMIT 6", [text + "%"]
            ).fetchall(),
        )
        if not rows:
            raise NotRecorded(f"no ensemble id starts with {text!r}")
        if len(rows) > 1:
            shown = ", ".join(str(r[0]) for r in rows[:5])
            raise NotRecorded(
                f"{text!r} names several ensembles ({shown}...): give more characters"
            )
        return rows[0][0]

    def find_job(self, text: str) -> JobSummary:
        """A job by its id as `list` shows it ("17") or as ENSEMBLE:SEED ("3f2a:42")."""
        if ":" in text:
            prefix, _, seed_text = text.rpartition(":")
            ensemble_id = self.find_ensemble(prefix)
            try:
                seed = int(seed_text)
            except ValueError:
                raise NotRecorded(f"{seed_text!r} is not a seed (an integer)") from None
            query, params = _JOB_BY_SEED, [ensemble_id, seed]
        else:
            try:
                job_id = int(text)
            except ValueError:
                raise NotRecorded(
                    f"{text!r} is not a job: give its id (as `list` shows it) or ENSEMBLE:SEED"
                ) from None
            query, params = _JOB_BY_ID, [job_id]
        row = self._read(
            "finding a job",
            lambda conn: conn.execute(query, params).fetchone(),
        )
        if row is None:
            raise NotRecorded(f"no training job {text!r}")
        return _job(row)

    def best_trials(self, job_id: int, limit: int | None = None) -> list[TrialRecord]:
        """A job's trials, highest score first (ties: lowest trial_index first)."""
        query = _TRIAL_SELECT + sql.SQL(
            "WHERE j.id = %s ORDER BY t.score DESC, t.trial_index LIMIT %s"
        )
        return self._read(
            f"reading the trials of job {job_id}",
            lambda conn: [trial_from_row(r) for r in conn.execute(query, [job_id, limit])],
        )

    def recorded_trials(self, ensemble_id: uuid.UUID, seed: int) -> list[TrialRecord]:
        """One job's recorded trials in trial_index order (what resume rebuilds from)."""
        return self.ensemble_trials(ensemble_id, [seed])

    def ensemble_trials(
        self, ensemble_id: uuid.UUID, seeds: Sequence[int] | None = None
    ) -> list[TrialRecord]:
        """The trials of an ensemble (or of the jobs of `seeds`), by seed, trial_index."""
        query = _TRIAL_SELECT + sql.SQL(
            "WHERE j.ensemble_id = %s AND (%s::integer[] IS NULL OR j.seed = ANY(%s)) "
            "ORDER BY t.seed, t.trial_index"
        )
        chosen = None if seeds is None else list(seeds)
        return self._read(
            f"reading the trials of ensemble {ensemble_id}",
            lambda conn: [
                trial_from_row(r) for r in conn.execute(query, [ensemble_id, chosen, chosen])
            ],
        )

    def evaluations(
        self, ensemble_id: uuid.UUID, kind: str | None = None
    ) -> list[EvaluationRecord]:
        """The ensemble's extra backtests (of one `kind`, or all), by kind and label."""
        query = _EVALUATION_SELECT + sql.SQL(
            "WHERE ensemble_id = %s AND (%s::text IS NULL OR kind = %s) ORDER BY kind, label"
        )
        return self._read(
            f"reading the evaluations of ensemble {ensemble_id}",
            lambda conn: [_evaluation(r) for r in conn.execute(query, [ensemble_id, kind, kind])],
        )
