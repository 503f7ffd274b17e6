"""`run_job`: a job spec and its seeds in, one recorded ensemble out (DESIGN.md's data flow).

In order, so that bad input never half-runs (contract 6):
1. validate the spec (cluster.job.parse) and build every seed's searcher;
2. resolve and load the candles once (cleaning rules, gap policy, fingerprint), and the
   holdout's if the job has one (refused when it overlaps the search range as loaded);
   with walk_forward, the windows over the loaded candles (refused when none fits);
3. record the dataset (and the holdout's, linked to the ensemble), a new ensemble, one
   training job per seed (and its walk-forward windows) and this run, and take the
   ensemble's lock (a second driver for it is refused);
4. start or join Ray, put the candle table in the object store once, and run every seed
   (and every window of every seed: cluster.job.windows) in one Tune experiment
   (cluster.job.experiment), recording each kernel outcome as it arrives
   (cluster.job.recording); only this process talks to PostgreSQL;
5. mark the jobs, windows and the ensemble complete, or stop "interrupted, resumable"
   (exit 3) when trials failed past their retries or a signal stopped the run;
6. once complete (`after_search`): with a holdout, backtest each seed's best and the
   consensus on the holdout's candles in this process and record them
   (cluster.report.holdout; the holdout's candles are never put in the object store:
   no trial can see them); with walk_forward, test each window's best on its test rows
   and record the stitched out-of-sample equity (cluster.report.walk_forward).

`execute_ensemble` (steps 4-5) and `after_search` (step 6) are shared with `resume`.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any

from cluster.candles.dataset import Dataset, check_fingerprint
from cluster.candles.exchange import DownloadSettings
from cluster.errors import Interrupted, InvalidInput
from cluster.job.after_search import after_search
from cluster.job.data import load_holdout_data, load_job_data
from cluster.job.experiment import ExperimentEnd, ExperimentPlan, StopSwitch, run_experiment
from cluster.job.kill_points import kill_at_experiment_start
from cluster.job.metrics import ProgressMetrics
from cluster.job.parse import load_job_file
from cluster.job.progress import Progress
from cluster.job.recording import TrialRecording
from cluster.job.session import check_ray_address, ray_session
from cluster.job.spec import JobSpec
from cluster.job.suggestions import platform_changed, suggestion_pool
from cluster.job.summary import print_start, print_summary, why_unfinished
from cluster.job.windows import WindowPlan, by_seed, mark_complete, mark_running, search_key
from cluster.records.database import database, resolve_database_url
from cluster.records.out_of_sample import HOLDOUT_ROLE
from cluster.records.recorder import Recorder
from cluster.records.retry import RetryPolicy
from cluster.records.types import (
    EnsembleRecord,
    EnsembleStatus,
    NonDeterministicRetry,
    RecordsUnavailable,
    RunKind,
    RunOutcome,
    RunRecord,
    TrainingJobRecord,
    TrialRecord,
)
from search.core import SeededSearcher
from search.interleave import CompletedTrial
from search.registry import make_searcher
from trainable.declaration import SCORE_PENALTY
from trainable.strategies import DEFAULT_STRATEGY

if TYPE_CHECKING:
    from search.pool import SuggestionPool


@dataclass(frozen=True)
class RunOptions:
    """Per-invocation settings (execution-only, like the spec's `execution` table)."""

    database_url: str | None = None
    ray_address: str | None = None
    max_concurrent_trials: int | None = None
    storage_path: str | None = None
    chunk_size: int | None = None
    suggestion_processes: int | None = None
    progress: bool = True
    dashboard: bool = False
    exchange_url: str | None = None
    out: IO[str] | None = None
    records_retry: RetryPolicy | None = None  # None: the recorder's default budget

    def download_settings(self) -> DownloadSettings:
        """How a ccxt source's candles are fetched (a mirror replaces the exchange's URL)."""
        return DownloadSettings(api_url=self.exchange_url, progress=self.progress or None)


def run_job(
    spec: JobSpec | str | os.PathLike[str],
    *,
    seeds: tuple[int, ...] | list[int] | None = None,
    expect_fingerprint: str | None = None,
    expected_platform: Mapping[str, Any] | None = None,
    allow_platform_change: bool = False,
    **options: Any,
) -> uuid.UUID:
    """Run a job (a `JobSpec` or a job file's path) as a new ensemble; its id.

    `seeds` replaces the spec's seed list; `options` are `RunOptions` fields. Raises
    `InvalidInput` (exit 2) before anything is recorded when the spec, seeds or data
    are wrong (or the data's fingerprint is not `expect_fingerprint`, or the numeric
    platform is not `expected_platform` without `allow_platform_change`: a rerun), and
    `Interrupted` (exit 3) when the run stopped before the end (`resume_job` finishes
    it).
    """
    settings = RunOptions(**options)
    out = settings.out or sys.stdout
    resolve_database_url(settings.database_url)  # a wrong URL is refused before anything
    if isinstance(spec, JobSpec):
        if seeds is not None:
            from cluster.job.parse import check_seeds

            problems: list[str] = []
            checked = check_seeds(list(seeds), "seeds", problems)
            if checked is None:
                raise InvalidInput(problems)
            spec = spec.with_seeds(checked)
    else:
        spec = load_job_file(spec, seeds=None if seeds is None else tuple(seeds))
    spec, dataset = load_job_data(spec, settings=settings.download_settings())
    if expect_fingerprint is not None:
        check_fingerprint(dataset, expect_fingerprint)
    spec, holdout = load_holdout_data(spec, dataset, settings=settings.download_settings())
    plan = WindowPlan.of(spec, dataset.table.num_rows)
    check_ray_address(settings.ray_address)
    with (
        database(settings.database_url) as conninfo,
        Recorder(conninfo, retry=settings.records_retry) as recorder,
    ):
        recorder.migrate()
        earlier = recorder.ensembles_of_spec(spec.spec_id)
        ensemble_id = uuid.uuid4()
        recorder.ensure_dataset(dataset.manifest.fingerprint, dataset.manifest.to_dict())
        recorder.create_ensemble(
            EnsembleRecord(
                id=ensemble_id,
                spec_id=spec.spec_id,
                spec=spec.resolved(),
                seeds=spec.seeds,
                dataset_fingerprint=dataset.manifest.fingerprint,
                name=spec.name,
            )
        )
        if holdout is not None:
            recorder.ensure_dataset(holdout.manifest.fingerprint, holdout.manifest.to_dict())
            recorder.record_ensemble_dataset(
                ensemble_id, HOLDOUT_ROLE, holdout.manifest.fingerprint
            )
        recorder.upsert_training_jobs(ensemble_id, [job_record(spec, s) for s in spec.seeds])
        if plan.windows:
            timestamps = dataset.table.column("timestamp").to_numpy()
            recorder.upsert_windows(
                ensemble_id,
                plan.records(spec.seeds, timestamps, spec.data.source.timeframe, spec.iterations),
            )
        print_start(out, spec, dataset, ensemble_id, earlier, plan)
        keys = [*spec.seeds, *plan.keys(spec.seeds)]
        with recorder.running(ensemble_id):
            execute_ensemble(
                recorder,
                ensemble_id,
                spec,
                dataset,
                lambda pool: {key: new_searcher(spec, key, pool) for key in keys},
                settings,
                RunKind.RUN,
                windows=plan,
                expected_platform=expected_platform,
                allow_platform_change=allow_platform_change,
            )
            after_search(recorder, ensemble_id, spec, dataset, holdout, out)
    return ensemble_id


def new_searcher(spec: JobSpec, seed: int, pool: SuggestionPool | None = None) -> SeededSearcher:
    return make_searcher(
        spec.searcher,
        space=spec.space,
        seed=seed,
        iterations=spec.iterations,
        invalid_score=SCORE_PENALTY,
        pool=pool,
        **spec.searcher_options,
    )


def job_record(spec: JobSpec, seed: int) -> TrainingJobRecord:
    return TrainingJobRecord(
        seed=seed,
        spec_id=spec.spec_id,
        searcher=spec.searcher,
        budget=spec.iterations,
        searcher_options=dict(spec.searcher_options),
    )


SearcherFactory = Callable[["SuggestionPool | None"], dict[int, SeededSearcher]]


def execute_ensemble(
    recorder: Recorder,
    ensemble_id: uuid.UUID,
    spec: JobSpec,
    dataset: Dataset,
    build_searchers: SearcherFactory,
    settings: RunOptions,
    kind: RunKind,
    *,
    windows: WindowPlan | None = None,
    recorded: Mapping[int, list[TrialRecord]] | None = None,
    expected_platform: Mapping[str, Any] | None = None,
    allow_platform_change: bool = False,
) -> None:
    """Run the searches that `build_searchers(pool)` returns (searcher key -> searcher:
    job seeds, and `window_seed`s of the `windows`) to the end and record them (steps
    4-5 above).

    The caller holds the ensemble's lock. A Bayesian job's searchers compute their
    batches in a `search.pool.SuggestionPool` (pinned numerics); its numeric platform is
    recorded with the run, and must equal `expected_platform` (the ensemble's, on a
    resume or a rerun) unless `allow_platform_change`. `recorded` are trials already in
    the records, by searcher key (a resume): they count towards progress and are never
    run again.
    PostgreSQL lost for longer than the recorder's retry budget stops the run as
    `Interrupted` (exit 3), naming the database: what was committed stays, and
    `resume` finishes it.
    """
    try:
        _execute(
            recorder, ensemble_id, spec, dataset, build_searchers, settings, kind,
            windows or WindowPlan(()), recorded or {}, expected_platform,
            allow_platform_change,
        )  # fmt: skip
    except RecordsUnavailable as error:
        raise Interrupted(
            f"{error}; the trials recorded so far are kept: once the database is back, "
            f"python -m cluster resume {ensemble_id}"
        ) from None


def _execute(
    recorder: Recorder,
    ensemble_id: uuid.UUID,
    spec: JobSpec,
    dataset: Dataset,
    build_searchers: SearcherFactory,
    settings: RunOptions,
    kind: RunKind,
    windows: WindowPlan,
    recorded: Mapping[int, list[TrialRecord]],
    expected_platform: Mapping[str, Any] | None,
    allow_platform_change: bool,
) -> None:
    warm_kernel = spec.strategy == DEFAULT_STRATEGY
    with (
        suggestion_pool(spec, settings) as pool,
        ray_session(settings.ray_address, dashboard=settings.dashboard, warm=warm_kernel),
    ):
        platform = pool.platform if pool is not None else {}
        changed = platform_changed(spec, expected_platform, platform, allow_platform_change)
        searchers = build_searchers(pool)
        run = RunRecord(
            id=uuid.uuid4(),
            ensemble_id=ensemble_id,
            kind=kind,
            execution=execution_record(spec, settings, pool),
            platform=platform,
            manifest=dataset.manifest.to_dict(),
            platform_change_allowed=changed,
        )
        recorder.start_run(run)
        done = {key: len(recorded.get(key, [])) for key in searchers}
        mark_running(recorder, ensemble_id, done)
        progress = _progress(spec, recorded, done, settings, ensemble_id)
        try:
            end = _record_experiment(
                recorder, ensemble_id, spec, dataset, searchers, settings, progress,
                done, windows.rows(searchers),
            )  # fmt: skip
        finally:
            progress.close()
    if isinstance(end.error, RecordsUnavailable):
        raise end.error  # no status can be written now (see execute_ensemble)
    ran = {
        "tune_trials": end.tune_trials,
        "candidates": sum(done.values()) - sum(len(t) for t in recorded.values()),
    }
    complete = mark_complete(recorder, ensemble_id, done, spec.iterations)
    out = settings.out or sys.stdout
    if end.error is None and end.finished and complete:
        recorder.set_ensemble_status(ensemble_id, EnsembleStatus.COMPLETE)
        recorder.finish_run(run.id, RunOutcome.COMPLETE, ran)
        print_summary(recorder, ensemble_id, out)
        return
    if isinstance(end.error, NonDeterministicRetry):
        recorder.finish_run(run.id, RunOutcome.FAILED, ran)
        raise end.error
    recorder.finish_run(run.id, RunOutcome.INTERRUPTED, ran)
    print_summary(recorder, ensemble_id, out)
    raise Interrupted(why_unfinished(end.failed, end.error, ensemble_id))


def _progress(
    spec: JobSpec,
    recorded: Mapping[int, list[TrialRecord]],
    done: Mapping[int, int],
    settings: RunOptions,
    ensemble_id: uuid.UUID,
) -> Progress:
    """Progress per job seed: its windows' trials count towards it, its best score is
    its whole-range search's (a window's best is on fewer candles: not comparable)."""
    grouped = by_seed(done)
    return Progress(
        {seed: spec.iterations * len(keys) for seed, keys in grouped.items()},
        done={seed: sum(done[key] for key in keys) for seed, keys in grouped.items()},
        best={s: max(t.score for t in recorded[s]) for s in grouped if recorded.get(s)},
        enabled=settings.progress,
        metrics=ProgressMetrics(str(ensemble_id)),
    )


def _record_experiment(
    recorder: Recorder,
    ensemble_id: uuid.UUID,
    spec: JobSpec,
    dataset: Dataset,
    searchers: Mapping[int, SeededSearcher],
    settings: RunOptions,
    progress: Progress,
    done: dict[int, int],
    rows: Mapping[int, tuple[int, int]],
) -> ExperimentEnd:
    """The experiment, recording each outcome as it arrives (`done` counts them per
    searcher key); a recording error ends it (`ExperimentEnd.error`)."""

    def recorded(key: int, trial: TrialRecord) -> None:
        done[key] += 1
        progress.add(trial.seed, trial.score, best=search_key(key).window is None)

    recording = TrialRecording(recorder, ensemble_id, spec.spec_id, on_recorded=recorded)
    switch = StopSwitch()

    def on_result(completed: CompletedTrial, attempts: int) -> None:
        if switch.error is not None:
            return
        try:
            recording.add(completed, attempts)
        except (RecordsUnavailable, NonDeterministicRetry) as problem:
            switch.stop(problem)

    end = _run(spec, dataset, searchers, settings, ensemble_id, on_result, progress, switch, rows)
    if end.error is None:
        try:
            recording.flush()
        except (RecordsUnavailable, NonDeterministicRetry) as problem:
            switch.stop(problem)
    return replace(end, error=switch.error or end.error)


def _run(
    spec: JobSpec,
    dataset: Dataset,
    searchers: Mapping[int, SeededSearcher],
    settings: RunOptions,
    ensemble_id: uuid.UUID,
    on_result: Any,
    progress: Progress,
    switch: StopSwitch,
    rows: Mapping[int, tuple[int, int]],
) -> Any:
    import ray

    candles = ray.put(dataset.table)
    cpus = spec.execution.cpus_per_trial
    concurrent = settings.max_concurrent_trials or spec.execution.max_concurrent_trials
    if concurrent is None:
        concurrent = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
    plan = ExperimentPlan(
        name=f"reprotune-{ensemble_id}",
        max_concurrent_trials=concurrent,
        cpus_per_trial=cpus,
        max_failures=spec.execution.max_failures,
        storage_path=settings.storage_path or spec.execution.storage_path,
        chunk_size=settings.chunk_size or spec.execution.chunk_size,
    )
    kill_at_experiment_start()  # a test hook (cluster.job.kill_points)
    return run_experiment(
        searchers,
        candles=candles,
        constants=spec.constants(),
        strategy=spec.strategy_object(),
        plan=plan,
        on_result=on_result,
        on_step=progress.tick,
        switch=switch,
        rows=rows or None,
    )


def execution_record(
    spec: JobSpec, settings: RunOptions, pool: SuggestionPool | None = None
) -> dict[str, Any]:
    """What this run's execution-only settings were (ensemble_runs.execution)."""
    return {
        "name": spec.name,
        "base_dir": spec.base_dir,
        **spec.execution.to_dict(),
        "max_concurrent_trials": settings.max_concurrent_trials
        or spec.execution.max_concurrent_trials,
        "storage_path": settings.storage_path or spec.execution.storage_path,
        "chunk_size": settings.chunk_size or spec.execution.chunk_size,
        "suggestion_processes": None if pool is None else pool.size,
        "ray_address": settings.ray_address or os.environ.get("RAY_ADDRESS") or "local",
    }
