"""`resume_job`: finish an interrupted ensemble from its records, exactly as it would have
run (DESIGN.md, contract 5).

The records are the only source: the ensemble's resolved spec and seeds, its dataset's
fingerprint, and each seed's recorded trials. Tune's experiment directory is never read.

1. Refuse (exit 2, naming each difference) when this code cannot reproduce the records:
   another RECORDS_VERSION, another build of a library that decides result bits, or
   candles whose fingerprint is not the recorded one.
2. Take the ensemble's lock (a second `resume` of it is refused) before Ray starts and
   before anything is written.
3. Rebuild each unfinished search's searcher from its recorded trials (a seed's
   whole-range search from `trials`, a walk-forward window's from
   `walk_forward_trials`, keyed by its `window_seed` as `run` keys it); the searcher
   recomputes the suggestions it can check and they must equal the recorded params bit
   for bit, else the resume stops (exit 1) naming the seed (or window key) and
   trial_index. Finished windows are marked complete and not run again.
4. Run only the missing trials, in the same experiment machinery as `run`.
5. Run the steps after the search that are missing (the holdout's backtests, the
   walk-forward windows' tests and stitched equity: cluster.job.driver.after_search),
   also for an ensemble whose searches were complete when its driver died before them.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from cluster.candles.dataset import check_fingerprint
from cluster.errors import Failed
from cluster.job.after_search import after_search
from cluster.job.data import load_holdout_data, load_job_data
from cluster.job.driver import RunOptions, execute_ensemble, new_searcher
from cluster.job.recorded import recorded_spec, refuse_changed_code
from cluster.job.session import check_ray_address
from cluster.job.spec import JobSpec
from cluster.job.windows import WindowPlan, mark_complete, search_key
from cluster.records.database import database
from cluster.records.out_of_sample import WindowRecord
from cluster.records.recorder import Recorder
from cluster.records.types import (
    EnsembleDetail,
    EnsembleStatus,
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

    `options` are `RunOptions` fields. A complete ensemble only gets the steps after
    its search that are missing. A Bayesian ensemble resumed on another numeric
    platform (search.pinned) is refused unless `allow_platform_change`, which the run's
    record then notes.
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
            _finish_complete(recorder, detail, settings, out)
            return ensemble_id
        refuse_changed_code(detail)
        runs = recorder.runs(ensemble_id)
        spec = recorded_spec(detail, runs)
        with recorder.running(ensemble_id):  # a second driver is refused first
            check_ray_address(settings.ray_address)
            spec, dataset = load_job_data(spec, settings=settings.download_settings())
            check_fingerprint(dataset, detail.dataset_fingerprint)
            plan = _recorded_windows(recorder, ensemble_id, spec, dataset)
            recorded = _recorded(recorder, ensemble_id, detail.seeds, plan)
            unfinished = [k for k, trials in recorded.items() if len(trials) < spec.iterations]
            done = {key: len(trials) for key, trials in recorded.items()}
            mark_complete(recorder, ensemble_id, done, spec.iterations)
            _print_missing(out, ensemble_id, spec, detail.seeds, recorded, unfinished)
            if unfinished:
                execute_ensemble(
                    recorder,
                    ensemble_id,
                    spec,
                    dataset,
                    lambda pool: rebuild(spec, {k: recorded[k] for k in unfinished}, pool),
                    settings,
                    RunKind.RESUME,
                    windows=plan,
                    recorded={k: recorded[k] for k in unfinished},
                    expected_platform=runs[0].platform if runs else None,
                    allow_platform_change=allow_platform_change,
                )
            else:
                recorder.set_ensemble_status(ensemble_id, EnsembleStatus.COMPLETE)
                print(f"ensemble {ensemble_id} is complete", file=out)
            _, holdout = load_holdout_data(spec, dataset, settings=settings.download_settings())
            after_search(recorder, ensemble_id, spec, dataset, holdout, out)
    return ensemble_id


def _recorded_windows(
    recorder: Recorder, ensemble_id: uuid.UUID, spec: JobSpec, dataset: Any
) -> WindowPlan:
    """The job's windows over its candles, which must be the recorded ones."""
    plan = WindowPlan.of(spec, dataset.table.num_rows)
    timestamps = dataset.table.column("timestamp").to_numpy()
    expected = plan.records(spec.seeds, timestamps, spec.data.source.timeframe, spec.iterations)

    def rows(windows: Sequence[WindowRecord]) -> dict[tuple[int, int], dict[str, int]]:
        return {(w.seed, w.window_index): w.deterministic() for w in windows}

    if rows(recorder.windows(ensemble_id)) != rows(expected):
        raise Failed(
            f"ensemble {ensemble_id}'s recorded walk-forward windows are not the ones its "
            "job gives on its candles: the records were changed"
        )
    return plan


def _recorded(
    recorder: Recorder, ensemble_id: uuid.UUID, seeds: Sequence[int], plan: WindowPlan
) -> dict[int, list[TrialRecord]]:
    """Every search's recorded trials by searcher key: the seeds', then the windows'."""
    found = {seed: recorder.recorded_trials(ensemble_id, seed) for seed in seeds}
    in_windows = recorder.window_trials(ensemble_id) if plan.windows else {}
    for key in plan.keys(seeds):
        seed, window = search_key(key).seed, search_key(key).window
        assert window is not None, "plan.keys gives window keys only"
        found[key] = in_windows.get((seed, window), [])
    return found


def _print_missing(
    out: IO[str],
    ensemble_id: uuid.UUID,
    spec: JobSpec,
    seeds: Sequence[int],
    recorded: Mapping[int, list[TrialRecord]],
    unfinished: Sequence[int],
) -> None:
    missing = sum(spec.iterations - len(recorded[k]) for k in unfinished)
    touched = {search_key(k).seed for k in unfinished}
    windows = [k for k in unfinished if search_key(k).window is not None]
    of_windows = f" ({len(windows)} walk-forward window search(es) among them)" if windows else ""
    print(
        f"resuming ensemble {ensemble_id}: {missing} trial(s) missing in "
        f"{len(touched)} of {len(seeds)} seed(s){of_windows}",
        file=out,
        flush=True,
    )


def _finish_complete(
    recorder: Recorder, detail: EnsembleDetail, settings: RunOptions, out: IO[str]
) -> None:
    """A complete ensemble: the steps after its search, when some are missing."""
    if not _after_search_missing(recorder, detail):
        print(f"ensemble {detail.id} is complete: nothing to resume", file=out)
        return
    refuse_changed_code(detail)
    spec = recorded_spec(detail, recorder.runs(detail.id))
    spec, dataset = load_job_data(spec, settings=settings.download_settings())
    check_fingerprint(dataset, detail.dataset_fingerprint)
    _, holdout = load_holdout_data(spec, dataset, settings=settings.download_settings())
    print(f"ensemble {detail.id} is complete: recording the steps after its search", file=out)
    after_search(recorder, detail.id, spec, dataset, holdout, out)


def _after_search_missing(recorder: Recorder, detail: EnsembleDetail) -> bool:
    """Whether the holdout's or the walk-forward's records of the search are missing."""
    from cluster.report.holdout import HOLDOUT_KIND
    from cluster.report.walk_forward import WALK_FORWARD

    if "holdout" in detail.spec:
        tested = recorder.evaluations(detail.id, HOLDOUT_KIND)
        if len(tested) < len(detail.seeds) + 1:  # each seed's best and the consensus
            return True
    if "walk_forward" in detail.spec:
        return len(recorder.figures(detail.id, WALK_FORWARD)) < len(detail.seeds)
    return False


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
