"""The recorder's SQL, one function per statement (used only by cluster.records.recorder).

Functions take an open connection and run inside the caller's transaction and retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from cluster.records.exact import same_value
from cluster.records.types import (
    DETERMINISTIC_COLUMNS,
    METRIC_COLUMNS,
    EnsembleStatus,
    JobStatus,
    NonDeterministicRetry,
    NotRecorded,
    RunOutcome,
    TrialRecord,
)

TRIAL_COLUMNS = (
    "training_job_id",
    "trial_index",
    "seed",
    "spec_id",
    "params",
    "params_exact",
    "status",
    "score",
    *METRIC_COLUMNS,
    "message",
    "node",
    "attempts",
    "started_at",
    "finished_at",
    "duration_s",
)
# The deterministic columns, in the order of TrialRecord.deterministic() and the export.
DETERMINISTIC_SELECT = sql.SQL(
    "t.spec_id, t.seed, t.trial_index, t.params_exact, t.status::text, t.score, {metrics}, "
    "t.message"
).format(metrics=sql.SQL(", ").join(sql.Identifier("t", m) for m in METRIC_COLUMNS))

_INSERT_TRIAL = sql.SQL(
    "INSERT INTO trials ({columns}) VALUES ({values}) "
    "ON CONFLICT (training_job_id, trial_index) DO NOTHING "
    "RETURNING training_job_id, trial_index"
).format(
    columns=sql.SQL(", ").join(map(sql.Identifier, TRIAL_COLUMNS)),
    values=sql.SQL(", ").join(sql.Placeholder() * len(TRIAL_COLUMNS)),
)


def _names(columns: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def upsert(
    conn: psycopg.Connection, table: str, key: Mapping[str, Any], values: Mapping[str, Any]
) -> bool:
    """Insert a row unless its key exists; then compare: NonDeterministicRetry on any
    difference. True when the row was inserted.

    Plain values compare by `same_value` (floats by bits, 1 and 1.0 differ). Jsonb
    values compare as the text of the stored jsonb: jsonb's own `=` compares numbers
    by value, so it would take `{"points": 5}` and `{"points": 5.0}` for the same
    options, whereas the text keeps the difference (numeric keeps its scale, so `5`
    and `5.0` print differently). What jsonb cannot hold at all it cannot compare
    either: it has no -0.0 (stored as 0.0), and a float like 1e16 is stored as the
    integer 10000000000000000; only trial params have an exact column (params_exact).
    """
    columns = [*key, *values]
    insert = sql.SQL(
        "INSERT INTO {table} ({columns}) VALUES ({params}) ON CONFLICT ({key}) DO NOTHING "
        "RETURNING true"
    ).format(
        table=sql.Identifier(table),
        columns=_names(columns),
        params=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        key=_names(list(key)),
    )
    if conn.execute(insert, [*key.values(), *values.values()]).fetchone():
        return True
    selects, params = [], []
    for column, value in values.items():
        if isinstance(value, Jsonb):
            selects.append(
                sql.SQL("{c}, {c}::text = {p}::jsonb::text").format(
                    c=sql.Identifier(column), p=sql.Placeholder()
                )
            )
            params.append(value)
        else:
            selects.append(sql.SQL("{c}, true").format(c=sql.Identifier(column)))
    where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in key)
    select = sql.SQL("SELECT {selects} FROM {table} WHERE {where}").format(
        selects=sql.SQL(", ").join(selects), table=sql.Identifier(table), where=where
    )
    row = conn.execute(select, [*params, *key.values()]).fetchone()
    assert row is not None, f"{table} row vanished between INSERT and SELECT"
    differences = {}
    for i, (column, value) in enumerate(values.items()):
        stored, same_json = row[2 * i], row[2 * i + 1]
        if isinstance(value, Jsonb):
            if not same_json:
                differences[column] = (stored, value.obj)
        elif not same_value(stored, value):
            differences[column] = (stored, value)
    if differences:
        raise NonDeterministicRetry(table, key, differences)
    return False


def trial_row(job_id: int, trial: TrialRecord, params: Jsonb, params_exact: str) -> tuple:
    """The values of TRIAL_COLUMNS for one trial."""
    return (
        job_id,
        trial.trial_index,
        trial.seed,
        trial.spec_id,
        params,
        params_exact,
        trial.status.value,
        trial.score,
        *(trial.metrics[m] for m in METRIC_COLUMNS),
        trial.message,
        trial.node,
        trial.attempts,
        trial.started_at,
        trial.finished_at,
        trial.duration_s,
    )


def insert_trials(conn: psycopg.Connection, rows: Sequence[tuple]) -> set[tuple[int, int]]:
    """Insert trials that are not recorded yet; the (job id, trial_index) inserted."""
    inserted: set[tuple[int, int]] = set()
    with conn.cursor() as cursor:
        if len(rows) == 1:
            cursor.execute(_INSERT_TRIAL, rows[0])
            inserted.update(cursor.fetchall())
            return inserted
        cursor.executemany(_INSERT_TRIAL, rows, returning=True)
        while True:
            inserted.update(cursor.fetchall())
            if not cursor.nextset():
                return inserted


def stored_trials(
    conn: psycopg.Connection, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], dict[str, Any]]:
    """The deterministic part of recorded trials, by (job id, trial_index)."""
    query = sql.SQL(
        "SELECT t.training_job_id, {columns} FROM trials t "
        "JOIN unnest(%s::bigint[], %s::integer[]) AS k(job_id, trial_index) "
        "ON t.training_job_id = k.job_id AND t.trial_index = k.trial_index"
    ).format(columns=DETERMINISTIC_SELECT)
    rows = conn.execute(query, [[k[0] for k in keys], [k[1] for k in keys]]).fetchall()
    return {
        (row[0], row[3]): dict(zip(DETERMINISTIC_COLUMNS, row[1:], strict=True)) for row in rows
    }


def differences(stored: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Columns whose stored and new values differ (floats by bits)."""
    return {k: (stored[k], new[k]) for k in new if not same_value(stored[k], new[k])}


def job_ref(conn: psycopg.Connection, ensemble_id: uuid.UUID, seed: int) -> tuple[int, str] | None:
    row = conn.execute(
        "SELECT id, spec_id FROM training_jobs WHERE ensemble_id = %s AND seed = %s",
        [ensemble_id, seed],
    ).fetchone()
    return (row[0], row[1]) if row else None


def job_status(conn: psycopg.Connection, job_id: int) -> JobStatus:
    row = conn.execute("SELECT status::text FROM training_jobs WHERE id = %s", [job_id]).fetchone()
    assert row is not None
    return JobStatus(row[0])


def set_job_status(conn: psycopg.Connection, job_id: int, status: JobStatus) -> None:
    conn.execute(
        "UPDATE training_jobs SET status = %(status)s::job_status, "
        "started_at = CASE WHEN %(status)s::job_status IN ('running', 'complete') "
        "    THEN coalesce(started_at, now()) ELSE started_at END, "
        "finished_at = CASE WHEN %(status)s::job_status = 'complete' "
        "    THEN coalesce(finished_at, now()) END "
        "WHERE id = %(id)s",
        {"status": status.value, "id": job_id},
    )


def update_job_best(conn: psycopg.Connection, job_id: int) -> None:
    conn.execute(
        "UPDATE training_jobs j SET best_trial_index = b.trial_index, best_score = b.score, "
        "best_params = b.params "
        "FROM (SELECT trial_index, score, params FROM trials WHERE training_job_id = %(id)s "
        "      ORDER BY score DESC, trial_index LIMIT 1) b "
        "WHERE j.id = %(id)s",
        {"id": job_id},
    )


def ensemble_identity(conn: psycopg.Connection, ensemble_id: uuid.UUID) -> tuple[str, list[int]]:
    row = conn.execute(
        "SELECT spec_id, seeds FROM ensembles WHERE id = %s", [ensemble_id]
    ).fetchone()
    if row is None:
        raise NotRecorded(f"ensemble {ensemble_id} is not recorded")
    return row[0], list(row[1])


def ensemble_state(
    conn: psycopg.Connection, ensemble_id: uuid.UUID
) -> tuple[EnsembleStatus, list[int]]:
    """The recorded status and the seeds whose job is missing or not complete, or that
    have a walk-forward window that is not complete."""
    row = conn.execute(
        "SELECT e.status::text, ARRAY(SELECT s FROM unnest(e.seeds) s WHERE NOT EXISTS ("
        "    SELECT 1 FROM training_jobs j WHERE j.ensemble_id = e.id AND j.seed = s "
        "    AND j.status = 'complete') OR EXISTS ("
        "    SELECT 1 FROM walk_forward_windows w WHERE w.ensemble_id = e.id AND w.seed = s "
        "    AND w.status <> 'complete') ORDER BY s) "
        "FROM ensembles e WHERE e.id = %s",
        [ensemble_id],
    ).fetchone()
    if row is None:
        raise NotRecorded(f"ensemble {ensemble_id} is not recorded")
    return EnsembleStatus(row[0]), list(row[1])


def set_ensemble_status(
    conn: psycopg.Connection, ensemble_id: uuid.UUID, status: EnsembleStatus
) -> None:
    conn.execute(
        "UPDATE ensembles SET status = %(status)s::ensemble_status, "
        "started_at = CASE WHEN %(status)s::ensemble_status = 'running' "
        "    THEN coalesce(started_at, now()) ELSE started_at END, "
        "finished_at = CASE WHEN %(status)s::ensemble_status = 'complete' "
        "    THEN coalesce(finished_at, now()) END "
        "WHERE id = %(id)s",
        {"status": status.value, "id": ensemble_id},
    )


def mark_interrupted(conn: psycopg.Connection, ensemble_id: uuid.UUID) -> None:
    conn.execute(
        "UPDATE ensembles SET status = 'interrupted' WHERE id = %s AND status = 'running'",
        [ensemble_id],
    )


def insert_dataset_if_missing(conn: psycopg.Connection, fingerprint: str, manifest: Jsonb) -> bool:
    row = conn.execute(
        "INSERT INTO datasets (fingerprint, manifest) VALUES (%s, %s) "
        "ON CONFLICT (fingerprint) DO NOTHING RETURNING true",
        [fingerprint, manifest],
    ).fetchone()
    return row is not None


def finish_run(
    conn: psycopg.Connection, run_id: uuid.UUID, outcome: RunOutcome, execution: Jsonb
) -> None:
    updated = conn.execute(
        "UPDATE ensemble_runs SET outcome = %s, finished_at = coalesce(finished_at, now()), "
        "execution = execution || %s WHERE id = %s AND outcome IS NULL RETURNING true",
        [outcome.value, execution, run_id],
    ).fetchone()
    if (
        updated is None
        and conn.execute("SELECT 1 FROM ensemble_runs WHERE id = %s", [run_id]).fetchone() is None
    ):
        raise NotRecorded(f"run {run_id} is not recorded")
