"""The end of a run: each seed's best trial and the commands that show more."""

from __future__ import annotations

import uuid
from typing import IO

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
