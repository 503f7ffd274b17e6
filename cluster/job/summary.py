"""What a run prints: its start (`print_start`), its end (`print_summary`: each seed's
best trial and the commands that show more) or why it stopped early (`why_unfinished`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import IO, Any

from cluster.candles.dataset import Dataset
from cluster.job.spec import JobSpec
from cluster.job.windows import WindowPlan, search_key
from cluster.records.recorder import Recorder


def print_summary(recorder: Recorder, ensemble_id: uuid.UUID, out: IO[str]) -> None:
    """Per seed: trials recorded, best score (ties: lowest trial_index) and its params."""
    (ensemble,) = [e for e in recorder.ensembles() if e.id == ensemble_id]
    print(f"\nensemble {ensemble_id}: {ensemble.status}", file=out)
    print(f"{'seed':>10} {'trials':>11} {'best score':>12} {'trial':>6}  params", file=out)
    for job in ensemble.jobs:
        if job.best_score is None:
            trials = recorder.best_trials(job.id, 1)
            best = trials[0] if trials else None
            score, index, params = (
                (best.score, best.trial_index, best.params) if best else (None, None, None)
            )
        else:
            score, index, params = job.best_score, job.best_trial_index, job.best_params
        shown = "-" if score is None else f"{score:.6g}"
        values = " ".join(f"{k}={_value(v)}" for k, v in sorted((params or {}).items()))
        print(
            f"{job.seed:>10} {f'{job.n_trials}/{job.budget}':>11} {shown:>12} "
            f"{'-' if index is None else index:>6}  {values}",
            file=out,
        )
    short = str(ensemble_id)
    seed = ensemble.jobs[0].seed if ensemble.jobs else ensemble.seeds[0]
    print(
        "\nSee more:\n"
        f"  python -m cluster report {short}             do the seeds agree? (--plot DIR "
        "for pictures)\n"
        f"  python -m cluster show {short}:{seed}            a seed's trials, best first\n"
        f"  python -m cluster export {short} --format digest   the sha256 that determinism "
        "checks compare\n"
        f"  python -m cluster verify --rerun {short}        run it again and compare, bit "
        "for bit",
        file=out,
        flush=True,
    )


def _value(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def why_unfinished(failed: Mapping[Any, str], error: BaseException | None, ensemble: Any) -> str:
    """Why a run stopped before the end, and the command that finishes it."""
    resume = f"python -m cluster resume {ensemble}"
    if error is not None:
        return f"{error}; the trials recorded so far are kept: {resume}"
    if failed:
        shown = ", ".join(
            f"{search_name(key.seed)} trial {key.trial_index} ({reason})"
            for key, reason in sorted(failed.items())[:5]
        )
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        return (
            f"{len(failed)} trial(s) failed past their retries: {shown}{more}; "
            f"the other trials are recorded: {resume}"
        )
    return f"the run was stopped before the end; finish it with: {resume}"


def search_name(key: int) -> str:
    """A searcher key as a person reads it: "seed 42", or "seed 42 window 3"."""
    search = search_key(key)
    window = "" if search.window is None else f" window {search.window}"
    return f"seed {search.seed}{window}"


def print_start(
    out: IO[str],
    spec: JobSpec,
    dataset: Dataset,
    ensemble_id: uuid.UUID,
    earlier: list[tuple[uuid.UUID, str]],
    plan: WindowPlan,
) -> None:
    """The start of a run: the ensemble, its seeds and data, its walk-forward windows,
    and earlier ensembles of the same spec."""
    manifest = dataset.manifest
    seeds = ", ".join(map(str, spec.seeds[:8])) + (" ..." if len(spec.seeds) > 8 else "")
    print(
        f"ensemble {ensemble_id}  spec {spec.spec_id[:12]}\n"
        f"  {len(spec.seeds)} seed(s) ({seeds}) x {spec.iterations} trials, "
        f"{spec.searcher} searcher, strategy {spec.strategy}\n"
        f"  data: {manifest.rows:,} candles of {manifest.pair or manifest.source.kind} "
        f"{manifest.timeframe}, fingerprint {manifest.fingerprint[:12]}",
        file=out,
        flush=True,
    )
    if plan.windows and spec.walk_forward is not None:
        wf = spec.walk_forward
        print(
            f"  walk-forward: {len(plan.windows)} window(s) per seed (train {wf.train:,}, "
            f"test {wf.test:,}, step {wf.step:,} candles), each searched with "
            f"{spec.iterations} trials besides the whole-range search",
            file=out,
            flush=True,
        )
    if earlier:
        other, fingerprint = earlier[-1]
        same = "the same data" if fingerprint == manifest.fingerprint else "different data"
        times = "once" if len(earlier) == 1 else f"{len(earlier)} times"
        print(
            f"  this spec ran {times} before, last as ensemble {other} ({same}); to compare:\n"
            f"    python -m cluster verify {other} {ensemble_id}",
            file=out,
            flush=True,
        )
