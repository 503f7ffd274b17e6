"""The ensemble report: the records in, seeds side by side and a verdict out.

`ensemble_report(...)` is the Python call behind `python -m cluster report`: it reads
an ensemble's trials (`frame`), measures how far the seeds' answers lie apart
(`stability`), backtests and records the consensus parameter set once (`backtests`),
shows each seed's best and the consensus on the job's holdout (`holdout`) and the
walk-forward windows' stitched out-of-sample equity (`walk_forward`), computes and
records the robustness figures once (`robustness`: deflated Sharpe, PBO, Monte Carlo,
sensitivity), and, with `plot_dir`, draws the pictures (`plots`). `output` renders it as
text or JSON.

The ensemble must be complete: a report of a partial search would record a consensus
that the finished search contradicts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cluster.candles.exchange import DownloadSettings
from cluster.errors import InvalidInput
from cluster.records.recorder import Recorder
from cluster.records.types import EnsembleDetail, EnsembleStatus
from cluster.report.backtests import Consensus, EnsembleData, consensus
from cluster.report.frame import recorded_frame, recorded_space
from cluster.report.holdout import Holdout, holdout_results
from cluster.report.robustness import Robustness, robustness
from cluster.report.stability import Stability, analyse
from cluster.report.walk_forward import WalkForward, walk_forward_results


@dataclass(frozen=True)
class Report:
    """Everything the report shows (`frame` is the trials it was computed from)."""

    ensemble_id: uuid.UUID
    name: str | None
    spec_id: str
    strategy: str
    searcher: str
    iterations: int
    seeds: tuple[int, ...]
    dataset_fingerprint: str
    penalty: float  # the job's score for trials that trade too little or are invalid
    candles: dict[str, Any]  # rows, timeframe, source of the dataset
    stability: Stability
    consensus: Consensus
    frame: pd.DataFrame
    holdout: Holdout | None = None
    walk_forward: WalkForward | None = None
    robustness: Robustness | None = None
    plots: tuple[Path, ...] = ()
    plot_notes: tuple[str, ...] = field(default=())


def ensemble_report(
    ensemble: str | uuid.UUID | None = None,
    *,
    database_url: str | None = None,
    plot_dir: str | Path | None = None,
    download: DownloadSettings | None = None,
) -> Report:
    """The report of `ensemble` (its id or a unique prefix; the latest when None).

    Raises InvalidInput (exit 2) for an ensemble that is not complete or whose candles
    changed, NotRecorded when none matches.
    """
    from cluster.records.database import database

    with database(database_url) as conninfo, Recorder(conninfo) as recorder:
        recorder.migrate()
        if ensemble is None:
            ensemble_id = recorder.latest_ensemble()
        else:
            ensemble_id = recorder.find_ensemble(str(ensemble))
        return build_report(recorder, ensemble_id, plot_dir=plot_dir, download=download)


def build_report(
    recorder: Recorder,
    ensemble_id: uuid.UUID,
    *,
    plot_dir: str | Path | None = None,
    download: DownloadSettings | None = None,
) -> Report:
    """`ensemble_report` on an open recorder."""
    detail = recorder.ensemble_detail(ensemble_id)
    _require_complete(detail)
    frame = recorded_frame(recorder, ensemble_id)
    space = recorded_space(detail.spec)
    penalty = float(detail.spec["score_penalty"])
    stability = analyse(frame, space, penalty)
    data = EnsembleData(recorder, detail, download)
    runs = recorder.runs(ensemble_id)
    manifest = runs[-1].manifest if runs else {}
    agreed = consensus(recorder, detail, stability, data)
    report = Report(
        ensemble_id=ensemble_id,
        name=detail.name,
        spec_id=detail.spec_id,
        strategy=detail.spec["strategy"]["name"],
        searcher=detail.spec["searcher"]["kind"],
        iterations=int(detail.spec["iterations"]),
        seeds=tuple(detail.seeds),
        dataset_fingerprint=detail.dataset_fingerprint,
        penalty=penalty,
        candles={
            "rows": manifest.get("rows"),
            "timeframe": manifest.get("timeframe"),
            "source": (manifest.get("source") or {}).get("kind"),
            "pair": manifest.get("pair"),
        },
        stability=stability,
        consensus=agreed,
        frame=frame,
        holdout=holdout_results(recorder, detail, stability, agreed, data),
        walk_forward=walk_forward_results(recorder, detail, data),
        robustness=robustness(recorder, detail, stability, data),
    )
    if plot_dir is None:
        return report
    from dataclasses import replace

    from cluster.report.plots import write_plots

    paths, notes = write_plots(report, Path(plot_dir), data)
    return replace(report, plots=tuple(paths), plot_notes=tuple(notes))


def _require_complete(detail: EnsembleDetail) -> None:
    if detail.status is EnsembleStatus.COMPLETE:
        return
    if detail.status is EnsembleStatus.RUNNING:
        then = "report it when it has finished"
    else:
        then = f"finish it first: python -m cluster resume {detail.id}"
    raise InvalidInput(
        f"ensemble {detail.id} is {detail.status.value}: the report compares complete "
        f"searches only; {then}"
    )
