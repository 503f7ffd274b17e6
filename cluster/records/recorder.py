"""The recorder: the driver's only way to PostgreSQL (DESIGN.md, contract 5).

The records layer is the `cluster.records` package: this module, its helpers, the
migration runner (`migrations.py`) and the server choice (`database.py`,
`pg_server.py`); no code outside the package opens a database connection.

Every write is an upsert on a natural key. A retried write with the same payload is a
no-op; one with a different payload raises NonDeterministicRetry naming the key and the
columns, and the stored record stays (never last-write-wins). Floats compare by their
bits. Connection loss, a server shutdown (57P01), serialization failures and deadlocks
are retried within a RetryPolicy; then RecordsUnavailable says what failed.

Usage (the driver):

    with Recorder(conninfo) as recorder:
        recorder.migrate()
        recorder.upsert_dataset(fingerprint, manifest)
        recorder.create_ensemble(EnsembleRecord(...))
        recorder.upsert_training_jobs(ensemble_id, [TrainingJobRecord(...), ...])
        with recorder.running(ensemble_id):
            recorder.record_trials(ensemble_id, [TrialRecord(...), ...])
            recorder.set_job_status(ensemble_id, seed, JobStatus.COMPLETE)
            recorder.set_ensemble_status(ensemble_id, EnsembleStatus.COMPLETE)
        recorder.record_evaluation(EvaluationRecord(...))  # the report's extra backtests

Walk-forward windows, their trials, the holdout's dataset and the report's robustness
figures: `cluster.records.out_of_sample` (mixed in).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from cluster.records import sql as q
from cluster.records.database import redact
from cluster.records.evaluations import EvaluationRecord
from cluster.records.exact import canonical_params
from cluster.records.lock import EnsembleLock
from cluster.records.out_of_sample import OutOfSampleRecords
from cluster.records.queries import RecordsQueries
from cluster.records.retry import RetryPolicy, call_with_retry
from cluster.records.types import (
    EnsembleBusy,
    EnsembleRecord,
    EnsembleStatus,
    JobStatus,
    NonDeterministicRetry,
    NotRecorded,
    RecordsUnavailable,
    RunOutcome,
    RunRecord,
    TrainingJobRecord,
    TrialRecord,
    check_sha256,
)

T = TypeVar("T")


class Recorder(RecordsQueries, OutOfSampleRecords):
    """Writes and reads the records of one database through a checked connection pool.

    Not thread-safe for writes from several threads to the same job (the driver is
    the single writer); reads may run from any thread.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        retry: RetryPolicy | None = None,
        durable_trials: bool = False,
        max_connections: int = 4,
    ) -> None:
        """Connect (RecordsUnavailable at once if the server cannot be reached).

        `durable_trials=False` (the default) commits trial writes without waiting for
        their WAL flush (`synchronous_commit = off` for those transactions only): a
        crash of the database server (not of the driver) may lose the last ~0.6 s of
        trials, which resume then recomputes with identical results (contract 2), and
        WAL order means any later durable write (a status) makes them durable too.
        Per-trial commits are fsync-bound otherwise (bench/RESULTS.md, "Records").
        """
        self._conninfo = conninfo
        self._durable_trials = durable_trials
        self.where = redact(conninfo)
        self._retry = retry or RetryPolicy()
        self._connection_lost = threading.Event()
        self._locks: dict[uuid.UUID, EnsembleLock] = {}
        self._job_refs: dict[tuple[uuid.UUID, int], tuple[int, str]] = {}
        self._probe()
        self._pool: ConnectionPool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "application_name": "reprotune"},
            check=self._check_connection,
            timeout=self._retry.connect_timeout_s,
            open=False,
            name="reprotune-records",
        )
        self._pool.open(wait=True, timeout=self._retry.connect_timeout_s)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for lock in list(self._locks.values()):
            lock.release()
        self._locks.clear()
        self._pool.close()

    # -- plumbing -------------------------------------------------------------------

    def _probe(self) -> None:
        """One direct connection first: a wrong URL or password fails at once, with
        libpq's own message instead of a pool timeout."""
        try:
            psycopg.connect(self._conninfo, connect_timeout=10).close()
        except psycopg.OperationalError as error:
            raise RecordsUnavailable(
                f"cannot connect to PostgreSQL at {self.where}: {' '.join(str(error).split())}"
            ) from None

    def _check_connection(self, conn: psycopg.Connection) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            self._connection_lost.set()  # the server may have restarted: see _run
            raise

    def _run(self, what: str, action: Callable[[psycopg.Connection], T], atomic: bool = True) -> T:
        """`action(conn)` in one transaction (or autocommit), retried within the budget."""

        def attempt() -> T:
            with self._pool.connection(timeout=self._retry.connect_timeout_s) as conn:
                if self._connection_lost.is_set():
                    # A restart ends every session, the lock holders' too: take the
                    # locks again before writing as a running ensemble.
                    for lock in list(self._locks.values()):
                        lock.ensure_held()
                    self._connection_lost.clear()
                if not atomic:
                    return action(conn)
                with conn.transaction():
                    return action(conn)

        return call_with_retry(attempt, self._retry, f"{what} at {self.where}")

    # -- schema -----------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the missing migrations of sql/; the versions applied (may be [])."""
        from cluster.records.migrations import migrate

        return call_with_retry(
            lambda: migrate(self._conninfo), self._retry, f"migrating {self.where}"
        )

    # -- writes -----------------------------------------------------------------------

    def upsert_dataset(self, fingerprint: str, manifest: Mapping[str, Any]) -> None:
        """Record a dataset by its content fingerprint (a sha256); `manifest` describes it."""
        check_sha256("dataset fingerprint", fingerprint)
        self._run(
            f"recording dataset {fingerprint[:12]}",
            lambda conn: q.upsert(
                conn, "datasets", {"fingerprint": fingerprint}, {"manifest": Jsonb(manifest)}
            ),
        )

    def ensure_dataset(self, fingerprint: str, manifest: Mapping[str, Any]) -> bool:
        """Record a dataset unless its content is recorded already; True if it was new.

        Unlike `upsert_dataset`, an existing row is kept as it is, whatever its manifest:
        the same content may come from another file or download (or from the same one
        read by newer libraries). The first manifest stays with the dataset; each run
        records the manifest it loaded in `ensemble_runs`.
        """
        check_sha256("dataset fingerprint", fingerprint)
        return self._run(
            f"recording dataset {fingerprint[:12]}",
            lambda conn: q.insert_dataset_if_missing(conn, fingerprint, Jsonb(manifest)),
        )

    def create_ensemble(self, ensemble: EnsembleRecord) -> None:
        """Record a new ensemble; its dataset must be recorded first."""
        values = {
            "name": ensemble.name,
            "spec_id": ensemble.spec_id,
            "spec": Jsonb(ensemble.spec),
            "seeds": list(ensemble.seeds),
            "dataset_fingerprint": ensemble.dataset_fingerprint,
            "records_version": ensemble.records_version,
            "library_versions": Jsonb(ensemble.library_versions),
            "host": Jsonb(ensemble.host),
        }

        def create(conn: psycopg.Connection) -> None:
            try:
                q.upsert(conn, "ensembles", {"id": ensemble.id}, values)
            except psycopg.errors.ForeignKeyViolation:
                raise NotRecorded(
                    f"dataset {ensemble.dataset_fingerprint} is not recorded: "
                    "upsert_dataset before create_ensemble"
                ) from None

        self._run(f"creating ensemble {ensemble.id}", create)

    def upsert_training_jobs(
        self, ensemble_id: uuid.UUID, jobs: Sequence[TrainingJobRecord]
    ) -> None:
        """Record the ensemble's jobs, one per seed, in one transaction."""

        def upsert_all(conn: psycopg.Connection) -> None:
            spec_id, seeds = q.ensemble_identity(conn, ensemble_id)
            for job in jobs:
                if job.seed not in seeds:
                    raise ValueError(
                        f"seed {job.seed} is not in ensemble {ensemble_id}'s seeds {seeds}"
                    )
                if job.spec_id != spec_id:
                    raise ValueError(
                        f"job of seed {job.seed} has spec_id {job.spec_id}, but ensemble "
                        f"{ensemble_id} has {spec_id}"
                    )
                q.upsert(
                    conn,
                    "training_jobs",
                    {"ensemble_id": ensemble_id, "seed": job.seed},
                    {
                        "spec_id": job.spec_id,
                        "searcher": job.searcher,
                        "searcher_options": Jsonb(job.searcher_options),
                        "budget": job.budget,
                    },
                )

        self._run(f"recording the jobs of ensemble {ensemble_id}", upsert_all)

    def start_run(self, run: RunRecord) -> None:
        """Record the start of an execution of an ensemble (an idempotent upsert)."""
        values = {
            "ensemble_id": run.ensemble_id,
            "kind": run.kind.value,
            "execution": Jsonb(run.execution),
            "platform": Jsonb(run.platform),
            "platform_change_allowed": run.platform_change_allowed,
            "manifest": Jsonb(run.manifest),
            "host": Jsonb(run.host),
        }
        self._run(
            f"recording run {run.id} of ensemble {run.ensemble_id}",
            lambda conn: q.upsert(conn, "ensemble_runs", {"id": run.id}, values),
        )

    def finish_run(
        self, run_id: uuid.UUID, outcome: RunOutcome, execution: Mapping[str, Any] | None = None
    ) -> None:
        """Record how an execution ended (the first recorded outcome stays), adding
        `execution` facts learnt while it ran (e.g. how many Tune trials it took)."""
        outcome = RunOutcome(outcome)
        self._run(
            f"recording the end of run {run_id}",
            lambda conn: q.finish_run(conn, run_id, outcome, Jsonb(dict(execution or {}))),
        )

    def record_trial(self, ensemble_id: uuid.UUID, trial: TrialRecord) -> None:
        """Record one finished trial (see record_trials)."""
        self.record_trials(ensemble_id, [trial])

    def record_trials(self, ensemble_id: uuid.UUID, trials: Sequence[TrialRecord]) -> None:
        """Record finished trials in one transaction: all of them or none. Batches are
        cheaper per trial (one commit each); see `durable_trials` for durability.

        A trial already recorded with the same deterministic part is left as it is
        (its node, attempts and times stay the first write's); one that differs raises
        NonDeterministicRetry and nothing of this call is written.
        """
        if not trials:
            return
        refs = {trial.seed: self._job_ref(ensemble_id, trial.seed) for trial in trials}
        for trial in trials:
            job_spec_id = refs[trial.seed][1]
            if trial.spec_id != job_spec_id:
                raise ValueError(
                    f"trial {trial.trial_index} of seed {trial.seed} has spec_id "
                    f"{trial.spec_id}, but its job has {job_spec_id}"
                )
        rows = [
            q.trial_row(refs[t.seed][0], t, Jsonb(t.params), canonical_params(t.params))
            for t in trials
        ]

        def insert(conn: psycopg.Connection) -> None:
            if not self._durable_trials:
                conn.execute("SET LOCAL synchronous_commit TO off")
            inserted = q.insert_trials(conn, rows)
            conflicts = [t for t in trials if (refs[t.seed][0], t.trial_index) not in inserted]
            if conflicts:
                self._compare_stored(conn, ensemble_id, refs, conflicts)

        what = f"recording {len(trials)} trial(s) of ensemble {ensemble_id}"
        self._run(what, insert)

    def _compare_stored(
        self,
        conn: psycopg.Connection,
        ensemble_id: uuid.UUID,
        refs: Mapping[int, tuple[int, str]],
        trials: Sequence[TrialRecord],
    ) -> None:
        stored = q.stored_trials(conn, [(refs[t.seed][0], t.trial_index) for t in trials])
        for trial in trials:
            differences = q.differences(
                stored[(refs[trial.seed][0], trial.trial_index)], trial.deterministic()
            )
            if differences:
                key = {
                    "ensemble": ensemble_id,
                    "seed": trial.seed,
                    "trial_index": trial.trial_index,
                }
                raise NonDeterministicRetry("trials", key, differences)

    def _job_ref(self, ensemble_id: uuid.UUID, seed: int) -> tuple[int, str]:
        """(training_jobs.id, spec_id) of the job (ensemble, seed); cached: never changes."""
        key = (ensemble_id, seed)
        if key not in self._job_refs:
            found = self._run(
                f"finding the job of seed {seed}",
                lambda conn: q.job_ref(conn, ensemble_id, seed),
                atomic=False,
            )
            if found is None:
                raise NotRecorded(f"ensemble {ensemble_id} has no training job for seed {seed}")
            self._job_refs[key] = found
        return self._job_refs[key]

    def record_evaluation(self, evaluation: EvaluationRecord) -> bool:
        """Record an extra backtest of an ensemble; True if it was new. The same record
        again is a no-op; one that differs in its deterministic part raises
        NonDeterministicRetry and the stored one stays."""
        values = {
            "params": Jsonb(evaluation.params),
            "params_exact": canonical_params(evaluation.params),
            "basis": Jsonb(evaluation.basis),
            "dataset_fingerprint": evaluation.dataset_fingerprint,
            "status": evaluation.status.value,
            "score": evaluation.score,
            **evaluation.metrics,
            "message": evaluation.message,
        }

        def upsert(conn: psycopg.Connection) -> bool:
            try:
                return q.upsert(conn, "evaluations", evaluation.key, values)
            except psycopg.errors.ForeignKeyViolation:
                raise NotRecorded(
                    f"ensemble {evaluation.ensemble_id} or dataset "
                    f"{evaluation.dataset_fingerprint} is not recorded"
                ) from None

        what = f"recording evaluation {evaluation.kind}/{evaluation.label}"
        return self._run(f"{what} of ensemble {evaluation.ensemble_id}", upsert)

    def set_job_status(self, ensemble_id: uuid.UUID, seed: int, status: JobStatus) -> None:
        """Set a job's status; `complete` also sets its best trial and finished_at.

        A complete job stays complete: setting any other status then is a ValueError.
        """
        status = JobStatus(status)
        job_id = self._job_ref(ensemble_id, seed)[0]

        def update(conn: psycopg.Connection) -> None:
            current = q.job_status(conn, job_id)
            if current == JobStatus.COMPLETE and status != JobStatus.COMPLETE:
                raise ValueError(
                    f"job of seed {seed} in {ensemble_id} is complete; cannot set {status}"
                )
            q.set_job_status(conn, job_id, status)
            if status == JobStatus.COMPLETE:
                q.update_job_best(conn, job_id)

        self._run(f"setting the status of seed {seed} in {ensemble_id}", update)

    def update_job_best(self, ensemble_id: uuid.UUID, seed: int) -> None:
        """Set the job's best trial from its recorded trials (highest score, then the
        lowest trial_index); a job without trials keeps none."""
        job_id = self._job_ref(ensemble_id, seed)[0]
        self._run(f"updating the best trial of seed {seed}", lambda c: q.update_job_best(c, job_id))

    def set_ensemble_status(self, ensemble_id: uuid.UUID, status: EnsembleStatus) -> None:
        """Set the recorded status. `complete` needs every job complete, and stays."""
        status = EnsembleStatus(status)

        def update(conn: psycopg.Connection) -> None:
            current, incomplete = q.ensemble_state(conn, ensemble_id)
            if current == EnsembleStatus.COMPLETE and status != EnsembleStatus.COMPLETE:
                raise ValueError(f"ensemble {ensemble_id} is complete; cannot set {status}")
            if status == EnsembleStatus.COMPLETE and incomplete:
                raise ValueError(
                    f"ensemble {ensemble_id} cannot be complete: the jobs (or walk-forward "
                    f"windows) of seeds {incomplete} are not"
                )
            q.set_ensemble_status(conn, ensemble_id, status)

        self._run(f"setting the status of ensemble {ensemble_id}", update)

    @contextmanager
    def running(self, ensemble_id: uuid.UUID) -> Iterator[None]:
        """Hold the ensemble's advisory lock while the body runs, so its status cannot
        go stale: if this process dies, the lock goes with its session and the ensemble
        shows as interrupted. Raises EnsembleBusy when another process holds it.

        On leaving, a recorded status still `running` becomes `interrupted`.
        """
        # An unknown ensemble raises NotRecorded here, before any lock is taken.
        self._read("looking up the ensemble", lambda conn: q.ensemble_state(conn, ensemble_id))
        if ensemble_id in self._locks:
            raise EnsembleBusy(f"ensemble {ensemble_id} is already running in this process")
        lock = EnsembleLock(self._conninfo, ensemble_id)
        call_with_retry(lock.acquire, self._retry, f"locking ensemble {ensemble_id}")
        self._locks[ensemble_id] = lock
        try:
            self.set_ensemble_status(ensemble_id, EnsembleStatus.RUNNING)
            yield
        finally:
            try:
                self._run(
                    f"marking ensemble {ensemble_id} interrupted",
                    lambda conn: q.mark_interrupted(conn, ensemble_id),
                )
            except RecordsUnavailable:
                pass  # the live status (lock gone) says interrupted anyway
            finally:
                del self._locks[ensemble_id]
                lock.release()

    # -- reads used by the queries mixin -----------------------------------------------

    def _read(self, what: str, action: Callable[[psycopg.Connection], T]) -> T:
        return self._run(what, action, atomic=False)
