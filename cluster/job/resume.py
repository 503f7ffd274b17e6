"""`resume_job`: finish an interrupted ensemble from its records, exactly as it would have
run (DESIGN.md, contract 5).

The records are the only source: the ensemble's resolved spec and seeds, its dataset's
fingerprint, and each seed's recorded trials. Tune's experiment directory is never read.

1. Refuse (exit 2, naming each difference) when this code cannot reproduce the records:
   another RECORDS_VERSION, another build of a library that decides result bits, or
   candles whose fingerprint is not the recorded one.
2. Take the ensemble's lock (a second `resume` of it is refused) before Ray starts and
   before anything is written.
3. Rebuild each unfinished seed's searcher from its recorded trials; the searcher
   recomputes the suggestions it can check and they must equal the recorded params bit
   for bit, else the resume stops (exit 1) naming the seed and trial_index.
4. Run only the missing trials, in the same experiment machinery as `run`.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cluster.candles.dataset import check_fingerprint
from cluster.errors import Failed, InvalidInput
from cluster.job.data import load_job_data
from cluster.job.driver import RunOptions, execute_ensemble, new_searcher
from cluster.job.parse import parse_job, table_of_resolved
from cluster.job.spec import Execution, JobSpec
from cluster.records.database import database
from cluster.records.recorder import Recorder
from cluster.records.types import (
    EnsembleDetail,
    EnsembleStatus,
    JobStatus,
    RunKind,
    RunRecord,
    TrialRecord,
    TrialStatus,
)
from cluster.versions import RECORDS_VERSION, installed_versions
from search.core import Outcome, RebuildMismatch, RecordedTrial, SeededSearcher
from search.registry import rebuild_searcher
from trainable.declaration import SCORE_PENALTY


def resume_job(ensemble: str | uuid.UUID, **options: Any) -> uuid.UUID:
    """Finish `ensemble` (its id or a unique prefix); returns its id.

    `options` are `RunOptions` fields. A complete ensemble is left as it is.
    """
    settings = RunOptions(**options)
    out = settings.out or sys.stdout
    with (
        database(settings.database_url) as conninfo,
        Recorder(conninfo, retry=settings.records_retry) as recorder,
    ):
        recorder.migrate()
        ensemble_id = recorder.find_ensemble(str(ensemble))
        detail = recorder.ensemble_detail(ensemble_id)
        if detail.status == EnsembleStatus.COMPLETE:
            print(f"ensemble {ensemble_id} is complete: nothing to resume", file=out)
            return ensemble_id
        refuse_changed_code(detail)
        spec = recorded_spec(detail, recorder.runs(ensemble_id))
        with recorder.running(ensemble_id):
            spec, dataset = load_job_data(spec, settings=settings.download_settings())
            check_fingerprint(dataset, detail.dataset_fingerprint)
            recorded = {s: recorder.recorded_trials(ensemble_id, s) for s in detail.seeds}
            unfinished = [s for s in detail.seeds if len(recorded[s]) < spec.iterations]
            searchers = {s: rebuild(spec, s, recorded[s]) for s in unfinished}
            for seed in detail.seeds:
                if seed not in searchers:
                    recorder.set_job_status(ensemble_id, seed, JobStatus.COMPLETE)
            missing = sum(spec.iterations - len(recorded[s]) for s in unfinished)
            print(
                f"resuming ensemble {ensemble_id}: {missing} trial(s) missing in "
                f"{len(unfinished)} of {len(detail.seeds)} seed(s)",
                file=out,
                flush=True,
            )
            if not searchers:
                recorder.set_ensemble_status(ensemble_id, EnsembleStatus.COMPLETE)
                print(f"ensemble {ensemble_id} is complete", file=out)
                return ensemble_id
            execute_ensemble(
                recorder, ensemble_id, spec, dataset, searchers, settings, RunKind.RESUME,
                recorded={s: recorded[s] for s in unfinished},
            )  # fmt: skip
    return ensemble_id


def refuse_changed_code(detail: EnsembleDetail) -> None:
    """InvalidInput naming every way this code differs from the one that recorded."""
    problems = []
    if detail.records_version != RECORDS_VERSION:
        problems.append(
            f"records_version: the ensemble was recorded by RECORDS_VERSION "
            f"{detail.records_version}, this code is {RECORDS_VERSION}; its records cannot "
            "be continued (run the job again as a new ensemble)"
        )
    installed = installed_versions()
    for name, version in sorted(detail.library_versions.items()):
        if installed.get(name) != version:
            problems.append(
                f"{name}: recorded with {version}, installed {installed.get(name)}; install "
                "the locked builds (requirements.lock) to continue these records"
            )
    if problems:
        raise InvalidInput(problems)


def recorded_spec(detail: EnsembleDetail, runs: list[RunRecord]) -> JobSpec:
    """The ensemble's spec, rebuilt from its records and checked against its spec_id;
    execution settings and the base directory come from its latest run."""
    execution: Mapping[str, Any] = runs[-1].execution if runs else {}
    base_dir = str(execution.get("base_dir") or ".")
    spec = parse_job(
        table_of_resolved(detail.spec),
        base_dir=base_dir,
        default_name=detail.name,
        seeds=tuple(detail.seeds),
    )
    spec = replace(
        spec,
        name=detail.name,
        execution=Execution(
            max_concurrent_trials=execution.get("max_concurrent_trials"),
            cpus_per_trial=float(execution.get("cpus_per_trial", 1.0)),
            max_failures=int(execution.get("max_failures", 3)),
            storage_path=execution.get("storage_path"),
        ),
    )
    if spec.spec_id != detail.spec_id:
        raise Failed(
            f"this code rebuilds ensemble {detail.id}'s spec with id {spec.spec_id}, not the "
            f"recorded {detail.spec_id}: a default changed without a RECORDS_VERSION bump"
        )
    return spec


def rebuild(spec: JobSpec, seed: int, trials: list[TrialRecord]) -> SeededSearcher:
    """The seed's searcher as its recorded trials left it; `Failed` if they disagree."""
    if not trials:
        return new_searcher(spec, seed)
    recorded = {t.trial_index: RecordedTrial(dict(t.params), _outcome(t)) for t in trials}
    try:
        return rebuild_searcher(
            spec.searcher,
            space=spec.space,
            seed=seed,
            iterations=spec.iterations,
            invalid_score=SCORE_PENALTY,
            recorded=recorded,
            **spec.searcher_options,
        )
    except (RebuildMismatch, ValueError) as error:
        raise Failed(
            f"non-determinism: {error}; the records were not made by this code and "
            "platform, so they cannot be continued"
        ) from None


def _outcome(trial: TrialRecord) -> Outcome:
    if trial.status is TrialStatus.INVALID:
        return Outcome.invalid()
    return Outcome.ok(trial.score)
