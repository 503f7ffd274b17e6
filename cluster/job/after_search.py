"""What the driver records once an ensemble's searches are complete (step 6 of
cluster.job.driver), shared by `run` and `resume`.

- With a holdout: each seed's best and the consensus backtested on the holdout's
  candles (cluster.report.holdout). The holdout's candles are loaded by the driver and
  never put in the object store: no trial can see them.
- With walk_forward: each window's best backtested on its test rows, and each seed's
  stitched out-of-sample equity (cluster.report.walk_forward).

Each step keeps what is recorded already (checking that it is what the records give
now) and computes and records what is missing, so it is safe to run again: a resume
after a driver that died between the search and these steps finishes them.
"""

from __future__ import annotations

import uuid
from typing import IO

from cluster.candles.dataset import Dataset
from cluster.job.spec import JobSpec
from cluster.records.recorder import Recorder


def after_search(
    recorder: Recorder,
    ensemble_id: uuid.UUID,
    spec: JobSpec,
    dataset: Dataset,
    holdout: Dataset | None,
    out: IO[str],
) -> None:
    """The steps of the module docstring that the job has, for a complete ensemble."""
    if holdout is not None:
        _test_on_holdout(recorder, ensemble_id, spec, dataset, holdout, out)
    if spec.walk_forward is not None:
        _test_walk_forward(recorder, ensemble_id, spec, dataset, out)


def _test_walk_forward(
    recorder: Recorder, ensemble_id: uuid.UUID, spec: JobSpec, dataset: Dataset, out: IO[str]
) -> None:
    """Each window's best on its test rows, and their stitched equity, recorded
    (cluster.report.walk_forward); one line per seed says so."""
    from cluster.report.walk_forward import record_after_search

    result = record_after_search(recorder, ensemble_id, spec, dataset)
    for seed in result.seeds:
        print(f"walk-forward: {seed.summary()}", file=out, flush=True)
    print(f"  in-sample beside it: python -m cluster report {ensemble_id}", file=out, flush=True)


def _test_on_holdout(
    recorder: Recorder,
    ensemble_id: uuid.UUID,
    spec: JobSpec,
    dataset: Dataset,
    holdout: Dataset,
    out: IO[str],
) -> None:
    """After a complete search: each seed's best and the consensus on the holdout,
    recorded (cluster.report.holdout); one line says so."""
    from cluster.report.holdout import record_after_search

    result = record_after_search(recorder, ensemble_id, spec, dataset, holdout)
    if result is None:
        return
    scores = ", ".join(f"{row.label} {row.holdout.score:.6g}" for row in result.sets)
    print(
        f"holdout ({result.rows:,} candles never seen by the search): score {scores}; "
        f"in-sample beside it: python -m cluster report {ensemble_id}",
        file=out,
        flush=True,
    )
