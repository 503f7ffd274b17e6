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
from typing import TYPE_CHECKING, Any

from cluster.candles.dataset import check_fingerprint
from cluster.errors import Failed
from cluster.job.data import load_job_data
from cluster.job.driver import RunOptions, execute_ensemble, new_searcher
from cluster.job.recorded import recorded_spec, refuse_changed_code
from cluster.job.session import check_ray_address
from cluster.job.spec import JobSpec
from cluster.records.database import database
from cluster.records.recorder import Recorder
from cluster.records.types import (
    EnsembleStatus,
    JobStatus,
    RunKind,
    TrialRecord,
    TrialStatus,
)
from search.core import Outcome, RebuildMismatch, RecordedTrial, SeededSearcher
from search.registry import rebuild_searchers
from trainable.declaration import SCORE_PENALTY

if TYPE_CHECKING:
    from search.pool import SuggestionPool


def resume_job(
    ensemble: str | uuid.UUID, *, allow_platform_change: bool = False, **options: Any
) -> uuid.UUID:
    """Finish `ensemble` (its id or a unique prefix); returns its id.

    `options` are `RunOptions` fields. A complete ensemble is left as it is. A Bayesian
    ensemble resumed on another numeric platform (search.pinned) is refused unless
    `allow_platform_change`, which the run's record then notes.
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
        runs = recorder.runs(ensemble_id)
        spec = recorded_spec(detail, runs)
        with recorder.running(ensemble_id):  # a second driver is refused first
            check_ray_address(settings.ray_address)
            spec, dataset = load_job_data(spec, settings=settings.download_settings())
            check_fingerprint(dataset, detail.dataset_fingerprint)
            recorded = {s: recorder.recorded_trials(ensemble_id, s) for s in detail.seeds}
            unfinished = [s for s in detail.seeds if len(recorded[s]) < spec.iterations]
            for seed in detail.seeds:
                if seed not in unfinished:
                    recorder.set_job_status(ensemble_id, seed, JobStatus.COMPLETE)
            missing = sum(spec.iterations - len(recorded[s]) for s in unfinished)
            print(
                f"resuming ensemble {ensemble_id}: {missing} trial(s) missing in "
                f"{len(unfinished)} of {len(detail.seeds)} seed(s)",
                file=out,
                flush=True,
            )
            if not unfinished:
                recorder.set_ensemble_status(ensemble_id, EnsembleStatus.COMPLETE)
                print(f"ensemble {ensemble_id} is complete", file=out)
                return ensemble_id
            execute_ensemble(
                recorder,
                ensemble_id,
                spec,
                dataset,
                lambda pool: rebuild(spec, {s: recorded[s] for s in unfinished}, pool),
                settings,
                RunKind.RESUME,
                recorded={s: recorded[s] for s in unfinished},
                expected_platform=runs[0].platform if runs else None,
                allow_platform_change=allow_platform_change,
            )
    return ensemble_id


def rebuild(
    spec: JobSpec, recorded: Mapping[int, list[TrialRecord]], pool: SuggestionPool | None
) -> dict[int, SeededSearcher]:
    """Each seed's searcher as its recorded trials left it (every seed's current batch
    computed at once in the pool); `Failed` when the records disagree with it."""
    histories = {
        seed: {t.trial_index: RecordedTrial(dict(t.params), _outcome(t)) for t in trials}
        for seed, trials in recorded.items()
        if trials
    }
    try:
        rebuilt = rebuild_searchers(
            spec.searcher,
            space=spec.space,
            iterations=spec.iterations,
            invalid_score=SCORE_PENALTY,
            recorded=histories,
            pool=pool,
            **spec.searcher_options,
        )
    except (RebuildMismatch, ValueError) as error:
        raise Failed(
            f"non-determinism: {error}; the records were not made by this code and "
            "platform, so they cannot be continued"
        ) from None
    return {
        seed: rebuilt[seed] if seed in rebuilt else new_searcher(spec, seed, pool)
        for seed in recorded
    }


def _outcome(trial: TrialRecord) -> Outcome:
    if trial.status is TrialStatus.INVALID:
        return Outcome.invalid()
    return Outcome.ok(trial.score)
